"""Related papers in a second process, while the first assigns topics and writes the rows.

Related papers and the topic rules are the two longest stages, and neither needs the
other's results, so on a machine with two cores they run side by side. The worker is a
fresh Python process (spawned, not forked: a fork would share the build's memory only
until it touched it, and walking the papers touches it all). It reads the papers' ids and
titles and their abstracts from scratch files, writes its rows to a scratch database of its
own, and the build copies them into papers.db afterwards. It dies with the build if the
build is killed, and a failure in it fails the build with one line, like any other.

Small corpora skip the worker: starting a Python process costs more than it saves.
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
from .enrich import PaperTexts
from .related import iter_related_rows
from .texts import DiskList, StoredValues
from .write import TABLES, BuildCheckError

COLUMNS = list(TABLES["related"][0])
WORKER_MIN_PAPERS = 5_000
PR_SET_PDEATHSIG = 1


class RelatedPapers:
    """The related table: from a worker process for large corpora, else computed in place."""

    def __init__(self, papers: list[Paper], abstracts: DiskList, scratch: Path):
        self.papers, self.abstracts, self.scratch = papers, abstracts, scratch
        self.heads = scratch.with_name(scratch.name + "-papers")
        self.process = None
        if len(papers) >= WORKER_MIN_PAPERS:
            self.start_worker()

    @property
    def where(self) -> str:
        return f"in process {self.process.pid}" if self.process else "in this process"

    def start_worker(self) -> None:
        abstracts_path = self.abstracts.path
        self.abstracts.flush()  # the worker reads the file: everything must be in it
        write_heads(self.papers, self.heads)
        context = multiprocessing.get_context("spawn")
        self.failure = context.SimpleQueue()  # the worker's one-line reason, if it fails
        self.process = context.Process(
            target=work, args=(os.getpid(), self.heads, abstracts_path, self.scratch,
                               self.failure), daemon=True)
        self.process.start()

    def rows(self) -> Iterator[dict]:
        if self.process is None:
            yield from iter_related_rows(PaperTexts(self.papers, self.abstracts))
            return
        self.process.join()
        if self.process.exitcode != 0:
            why = self.failure.get() if not self.failure.empty() else (
                f"the worker process ended with exit code {self.process.exitcode}")
            raise BuildCheckError(f"related papers: {why}")
        conn = sqlite3.connect(self.scratch)
        try:
            for values in conn.execute("SELECT * FROM related ORDER BY rowid"):
                yield dict(zip(COLUMNS, values))
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join()
        for path in (self.scratch, self.heads):
            with suppress(FileNotFoundError):
                path.unlink()

    def __enter__(self) -> "RelatedPapers":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def write_heads(papers: list[Paper], path: Path) -> None:
    """Write each paper's id and title, in order, for the worker."""
    try:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("CREATE TABLE heads (n INTEGER PRIMARY KEY, id TEXT, title TEXT)")
        with conn:
            conn.executemany("INSERT INTO heads VALUES (?, ?, ?)",
                             ((paper.number, paper.id, paper.title) for paper in papers))
        conn.close()
    except sqlite3.Error as error:
        raise BuildCheckError(f"cannot write {path}: {error}") from None


class StoredPapers:
    """The papers' ids, titles and abstracts, read from the scratch files at each pass."""

    def __init__(self, heads: Path, abstracts: Path):
        self.heads, self.abstracts = heads, abstracts

    def __iter__(self) -> Iterator[dict]:
        conn = sqlite3.connect(f"file:{self.heads}?mode=ro", uri=True)
        try:
            heads = conn.execute("SELECT id, title FROM heads ORDER BY n")
            for (paper_id, title), abstract in zip(heads, StoredValues(self.abstracts),
                                                   strict=True):
                yield {"id": paper_id, "title": title, "abstract": abstract}
        finally:
            conn.close()


def work(build: int, heads: Path, abstracts: Path, scratch: Path, failure) -> None:
    """The worker: related rows of every paper into `scratch`; exit code 0 or 3."""
    die_with_parent(build)
    try:
        conn = sqlite3.connect(scratch)
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute(f"CREATE TABLE related ({', '.join(COLUMNS)})")
        rows = iter_related_rows(StoredPapers(heads, abstracts))
        with conn:
            conn.executemany(f"INSERT INTO related VALUES ({', '.join('?' * len(COLUMNS))})",
                             (tuple(row[c] for c in COLUMNS) for row in rows))
        conn.close()
    except BaseException as error:  # the build reports it in its one error line
        failure.put(f"cannot write {scratch}: {error}" if isinstance(error, sqlite3.Error)
                    else f"{type(error).__name__}: {error}")
        os._exit(3)


def die_with_parent(build: int) -> None:
    """Ask Linux to kill this process when the build dies (a SIGKILL leaves no orphan)."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != build:  # the build died while this process was starting
        os._exit(3)
