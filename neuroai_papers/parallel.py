"""Related papers in a second process, while the first assigns topics and writes the rows.

Related papers and the topic rules are the two longest stages, and neither needs the
other's results, so on a machine with two cores they run side by side. The worker is
forked: it shares the papers already in memory and reads the abstracts from their
scratch file (texts.DiskList), then writes its rows to a scratch database of its own,
which the build copies into papers.db afterwards. It dies with the build if the build is
killed, and a failure in it fails the build with one line, like any other.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sqlite3
from contextlib import suppress
from pathlib import Path
from typing import Iterator

from .dedupe import Paper
from .related import iter_related_rows
from .enrich import PaperTexts
from .texts import DiskList, StoredValues
from .write import TABLES, BuildCheckError

COLUMNS = list(TABLES["related"][0])
PR_SET_PDEATHSIG = 1


class RelatedInBackground:
    """Computes the related table in a forked process; `rows()` waits for it and reads them."""

    def __init__(self, papers: list[Paper], abstracts: DiskList, scratch: Path):
        abstracts.flush()  # the worker reads the file: everything must be in it
        self.scratch = scratch
        context = multiprocessing.get_context("fork")
        self.failure = context.SimpleQueue()  # the worker's one-line reason, if it fails
        self.process = context.Process(
            target=work, args=(papers, abstracts.path, scratch, self.failure), daemon=True)
        self.process.start()

    def rows(self) -> Iterator[dict]:
        self.process.join()
        if self.process.exitcode != 0:
            why = self.failure.get() if not self.failure.empty() else (
                f"the worker process ended with exit code {self.process.exitcode}")
            raise BuildCheckError(f"related papers: {why}")
        conn = sqlite3.connect(self.scratch)
        try:
            for values in conn.execute(f"SELECT * FROM related ORDER BY rowid"):
                yield dict(zip(COLUMNS, values))
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        with suppress(FileNotFoundError):
            self.scratch.unlink()

    def __enter__(self) -> "RelatedInBackground":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def work(papers: list[Paper], abstracts: Path, scratch: Path, failure) -> None:
    """The worker: related rows of every paper into `scratch`; exit code 0 or 3."""
    die_with_parent()
    try:
        texts = PaperTexts(papers, StoredValues(abstracts))
        conn = sqlite3.connect(scratch)
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute(f"CREATE TABLE related ({', '.join(COLUMNS)})")
        with conn:
            conn.executemany(f"INSERT INTO related VALUES ({', '.join('?' * len(COLUMNS))})",
                             (tuple(row[c] for c in COLUMNS) for row in iter_related_rows(texts)))
        conn.close()
    except BaseException as error:  # the build reports it in its one error line
        failure.put(f"cannot write {scratch}: {error}" if isinstance(error, sqlite3.Error)
                    else f"{type(error).__name__}: {error}")
        os._exit(3)


def die_with_parent() -> None:
    """Ask Linux to kill this process when the build dies (a SIGKILL leaves no orphan)."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the build died before the request took effect
        os._exit(3)
