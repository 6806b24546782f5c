"""Paper abstracts on disk while the build runs, so that memory does not grow with the text.

Matching needs only the start of each abstract (dedupe.abstract_fingerprint); the topic
rules, related papers and the papers table need the whole text, one paper after another.
So each new paper's abstract is appended to a scratch SQLite file next to the database
being built and read back, in paper order, whenever a stage walks the papers. The file
is deleted when the build ends, however it ends.
"""

from __future__ import annotations

import sqlite3
from contextlib import suppress
from pathlib import Path
from typing import Iterator

BATCH = 5_000  # abstracts buffered before one executemany


class TextStore:
    """Abstracts numbered 0, 1, 2 ... in the order the papers were created."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = sqlite3.connect(path)
        # A scratch file: nothing to recover after a crash, so no journal and no syncing.
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute("CREATE TABLE IF NOT EXISTS texts (n INTEGER PRIMARY KEY, abstract TEXT)")
        self.count = self.conn.execute("SELECT count(*) FROM texts").fetchone()[0]
        self.pending: list[tuple[int, str]] = []

    def add(self, abstract: str) -> None:
        self.pending.append((self.count, abstract))
        self.count += 1
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        with self.conn:
            self.conn.executemany("INSERT INTO texts VALUES (?, ?)", self.pending)
        self.pending.clear()

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[str]:
        """Yield every abstract in order (a fresh pass each time)."""
        self.flush()
        for (abstract,) in self.conn.execute("SELECT abstract FROM texts ORDER BY n"):
            yield abstract

    def close(self) -> None:
        with suppress(sqlite3.Error):
            self.conn.close()
        with suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> "TextStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
