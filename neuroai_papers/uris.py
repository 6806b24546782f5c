"""The URIs that open an SQLite file read-only, or for writing without creating it."""

from __future__ import annotations

from pathlib import Path


def file_uri(path: Path | str, mode: str) -> str:
    """Return the URI that opens the SQLite file at `path` in `mode` ("ro" or "rw"), whatever
    its name holds.

    SQLite reads a '#' or '?' in f"file:{path}?mode=ro" as the URI's own fragment or query:
    `x#y/papers.db` opened a file named `x`, created it, writable; and `%20` became a
    space. as_uri() escapes them."""
    return f"{Path(path).resolve().as_uri()}?mode={mode}"


def read_only_uri(path: Path | str) -> str:
    return file_uri(path, "ro")
