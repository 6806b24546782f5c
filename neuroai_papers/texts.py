"""Text on disk while the build runs, so that memory does not grow with the corpus.

Matching needs the start of each paper's abstract (dedupe.abstract_fingerprint) now and
then, by paper number; the topic rules and the papers table need the
whole abstracts, one paper after another. Both are lists that only grow, kept in scratch
SQLite files next to the database being built and deleted when the build ends, however
it ends. At a million papers they hold about 1.5 GB of text that memory does not.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

from .uris import read_only_uri

BATCH = 5_000  # values buffered before one executemany


class ScratchError(OSError):
    """A scratch file could not be written or read (a full disk, a file-size limit)."""


@contextmanager
def reported_as_os_error(path: Path):
    """SQLite reports a full disk as its own error; the build reports OSErrors in one line."""
    try:
        yield
    except sqlite3.Error as error:
        raise ScratchError(f"cannot write {path}: {error}") from None


class DiskList:
    """An append-only list of strings in a scratch file: append, read by index, iterate."""

    def __init__(self, path: Path, private: bool = False):
        """`private`: no other connection reads the file while the list is open, so the
        list holds SQLite's lock on it from its first read to its end (locking_mode
        EXCLUSIVE) instead of taking and releasing it around every lookup: matching looks
        up a paper's fingerprint by number, at random, in 11 instead of 24 µs (750,000 of
        them in the file)."""
        self.path = path
        self.pending: list[str] = []
        with reported_as_os_error(path):
            self.conn = sqlite3.connect(path)
            # A scratch file: nothing to recover after a crash, so no journal and no syncing.
            self.conn.execute("PRAGMA journal_mode = OFF")
            self.conn.execute("PRAGMA synchronous = OFF")
            if private:
                self.conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            self.conn.execute("CREATE TABLE IF NOT EXISTS items (n INTEGER PRIMARY KEY, value TEXT)")
            self.stored = self.conn.execute("SELECT count(*) FROM items").fetchone()[0]

    def append(self, value: str) -> None:
        self.pending.append(value)
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        with reported_as_os_error(self.path), self.conn:
            self.conn.executemany("INSERT INTO items VALUES (?, ?)",
                                  enumerate(self.pending, self.stored))
        self.stored += len(self.pending)
        self.pending.clear()

    def __len__(self) -> int:
        return self.stored + len(self.pending)

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index >= self.stored:
            return self.pending[index - self.stored]
        with reported_as_os_error(self.path):
            return self.conn.execute("SELECT value FROM items WHERE n = ?", (index,)).fetchone()[0]

    def __iter__(self) -> Iterator[str]:
        """Yield every value in order (a fresh pass each time)."""
        self.flush()
        with reported_as_os_error(self.path):
            for (value,) in self.conn.execute("SELECT value FROM items ORDER BY n"):
                yield value

    def values(self, start: int, stop: int) -> Iterator[str]:
        """Return the values at start, start + 1 ... stop - 1, in order, read through a
        connection of their own (any thread may read them, and the list's own connection
        stays free for appends and lookups meanwhile)."""
        self.flush()
        return read_values(self.path, start, stop)

    def close(self) -> None:
        with suppress(sqlite3.Error, AttributeError):
            self.conn.close()
        with suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> "DiskList":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_values(path: Path, start: int, stop: int) -> Iterator[str]:
    with reported_as_os_error(path):
        # Not bound to a thread: the generator may be closed by whichever thread drops it.
        conn = sqlite3.connect(read_only_uri(path), uri=True, check_same_thread=False)
        try:
            for (value,) in conn.execute(
                    "SELECT value FROM items WHERE n >= ? AND n < ? ORDER BY n", (start, stop)):
                yield value
        finally:
            conn.close()
