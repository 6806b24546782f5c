"""Work on two cores: a worker process parses the dumps ahead of matching, and another
takes the second half of the papers' topic rules.

Reading (DumpReader). Parsing a dump and computing its records' keys (title key, abstract
fingerprint, blocking keys: dedupe.record_keys) depend on the dump alone, while matching
depends on every record before. From READER_MIN_BYTES of dumps on, a worker parses the
dumps in name order and sends each, with its keys, through a bounded queue, while the build
matches the dumps already sent: a million records spend about 60 s on parsing and keys,
which then overlap with matching. A dump the worker refuses is refused with the same
DumpError, at the same place in the order, as if the build had read it itself.

Topics (TopicRules). Matching the topic rules is the longest stage of the build that can be
cut in two, since a paper's topics depend on its own title and abstract only. From
WORKER_MIN_PAPERS papers on, a worker matches the second half of the papers while the build
matches the first; the build then reads the worker's results, so the rows come out in paper
order as if one process had made them all (a test holds them equal).

Each worker is a fresh Python process (spawned, not forked: a fork would share the build's
memory only until it touched it), and dies with the build if the build is killed. A failure
in it fails the build with one line, like any other. Small corpora skip the workers:
starting a Python process costs more than it saves.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
import sqlite3
from contextlib import suppress
from pathlib import Path
from typing import Iterator

from .dedupe import Paper, RecordKeys, record_keys
from .parse import DumpError, ParsedDump, read_dump
from .texts import DiskList
from .topics import Topic, load_topics, topics_of_papers
from .write import TABLES, BuildCheckError

EVIDENCE = list(TABLES["paper_topics"][0])
WORKER_MIN_PAPERS = 10_000
READER_MIN_BYTES = 16_000_000  # about 10,000 records
READ_AHEAD = 16  # parsed dumps waiting in the queue at most (bounds the memory they take)
PR_SET_PDEATHSIG = 1


class DumpReader:
    """The dumps in name order, parsed, each with its records' keys."""

    def __init__(self, paths: list[Path], min_bytes: int = READER_MIN_BYTES):
        self.paths = paths
        self.process = None
        if sum(map(file_size, paths)) >= min_bytes:
            context = multiprocessing.get_context("spawn")
            self.queue = context.Queue(maxsize=READ_AHEAD)
            self.process = context.Process(target=read_ahead, args=(os.getpid(), paths, self.queue),
                                           daemon=True)
            self.process.start()

    @property
    def where(self) -> str:
        return "in this process" if self.process is None else f"in process {self.process.pid}"

    def __iter__(self) -> Iterator[tuple[ParsedDump, list[RecordKeys]]]:
        if self.process is None:
            yield from map(read_with_keys, self.paths)
            return
        for _ in self.paths:
            message = self.next_message()
            if message[0] == "refused":
                raise DumpError(message[1])
            if message[0] == "failed":
                raise BuildCheckError(f"reading the dumps: {message[1]}")
            yield message[1], message[2]

    def next_message(self) -> tuple:
        """Return the worker's next message; fail if it died without sending one."""
        while True:
            try:
                return self.queue.get(timeout=1.0)
            except queue.Empty:
                if self.process.is_alive():
                    continue
            try:  # it may have sent its last message just before it ended
                return self.queue.get(timeout=1.0)
            except queue.Empty:
                raise BuildCheckError(f"reading the dumps: the worker process ended with exit "
                                      f"code {self.process.exitcode}") from None

    def stop(self) -> None:
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join()
            self.queue.close()

    def __enter__(self) -> "DumpReader":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def read_with_keys(path: Path) -> tuple[ParsedDump, list[RecordKeys]]:
    """Return the parsed dump and its records' keys (what the reader gives for each dump)."""
    dump = read_dump(path)
    return dump, [record_keys(record) for record in dump.records]


def file_size(path: Path) -> int:
    """Return the file's size, 0 if it cannot be read (read_dump then says why)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def read_ahead(build: int, paths: list[Path], out) -> None:
    """The reader worker: ("dump", parsed, keys) for each dump in order, or ("refused",
    why) for the first dump refused; ("failed", why) and exit 3 if anything else fails."""
    die_with_parent(build)
    try:
        for path in paths:
            try:
                dump, keys = read_with_keys(path)
            except DumpError as error:
                out.put(("refused", str(error)))
                return
            out.put(("dump", dump, keys))
    except BaseException as error:  # the build reports it in its one error line
        out.put(("failed", f"{type(error).__name__}: {error}"))
        out.close()
        out.join_thread()  # the message must leave before the process does
        os._exit(3)


class TopicRules:
    """The paper_topics rows of every paper, in paper order; sets each paper's `topics`."""

    def __init__(self, papers: list[Paper], abstracts: DiskList, topics: list[Topic],
                 topics_path: Path, scratch: Path):
        self.papers, self.abstracts, self.topics = papers, abstracts, topics
        self.scratch = scratch
        self.heads = scratch.with_name(scratch.name + "-papers")
        self.process = None
        self.split = len(papers)
        if len(papers) >= WORKER_MIN_PAPERS:
            self.split = len(papers) // 2
            self.start_worker(topics_path)

    @property
    def where(self) -> str:
        if self.process is None:
            return "in this process"
        return f"the second half in process {self.process.pid}"

    def start_worker(self, topics_path: Path) -> None:
        self.abstracts.flush()  # the worker reads the file: everything must be in it
        write_heads(self.papers[self.split:], self.heads)
        context = multiprocessing.get_context("spawn")
        self.failure = context.SimpleQueue()  # the worker's one-line reason, if it fails
        self.process = context.Process(
            target=work, args=(os.getpid(), self.heads, self.abstracts.path, topics_path,
                               self.scratch, self.failure), daemon=True)
        self.process.start()

    def rows(self) -> Iterator[dict]:
        distinct: dict[str, str] = {}  # papers share few topic sets: one string per set
        first = self.papers[:self.split]
        texts = ({"id": p.id, "title": p.title, "abstract": a}
                 for p, a in zip(first, self.abstracts.values(0, self.split), strict=True))
        for paper, (assigned, evidence) in zip(first, topics_of_papers(texts, self.topics)):
            paper.topics = distinct.setdefault(assigned, assigned)
            yield from evidence
        if self.process is not None:
            yield from self.worker_rows(distinct)

    def worker_rows(self, distinct: dict[str, str]) -> Iterator[dict]:
        self.process.join()
        if self.process.exitcode != 0:
            why = self.failure.get() if not self.failure.empty() else (
                f"the worker process ended with exit code {self.process.exitcode}")
            raise BuildCheckError(f"topic rules: {why}")
        conn = sqlite3.connect(f"file:{self.scratch}?mode=ro", uri=True)
        try:
            for n, assigned in conn.execute("SELECT n, topics FROM assigned ORDER BY n"):
                self.papers[n].topics = distinct.setdefault(assigned, assigned)
            for values in conn.execute(f"SELECT {', '.join(EVIDENCE)} FROM evidence ORDER BY rowid"):
                yield dict(zip(EVIDENCE, values))
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

    def __enter__(self) -> "TopicRules":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def write_heads(papers: list[Paper], path: Path) -> None:
    """Write the papers' numbers, ids and titles, in order, for the worker."""
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


def stored_texts(heads: Path, abstracts: Path) -> Iterator[tuple[int, dict]]:
    """Yield (number, paper text) for the papers of `heads`, with their abstracts."""
    names = sqlite3.connect(f"file:{heads}?mode=ro", uri=True)
    texts = sqlite3.connect(f"file:{abstracts}?mode=ro", uri=True)
    try:
        rows = names.execute("SELECT n, id, title FROM heads ORDER BY n")
        first = names.execute("SELECT min(n) FROM heads").fetchone()[0]
        values = texts.execute("SELECT value FROM items WHERE n >= ? ORDER BY n", (first,))
        for (n, paper_id, title), (abstract,) in zip(rows, values):
            yield n, {"id": paper_id, "title": title, "abstract": abstract}
    finally:
        names.close()
        texts.close()


def work(build: int, heads: Path, abstracts: Path, topics_path: Path, scratch: Path,
         failure) -> None:
    """The worker: topics and evidence of the papers in `heads` into `scratch`; exit 0 or 3."""
    die_with_parent(build)
    try:
        conn = sqlite3.connect(scratch)
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("CREATE TABLE assigned (n INTEGER PRIMARY KEY, topics TEXT)")
        conn.execute(f"CREATE TABLE evidence ({', '.join(EVIDENCE)})")
        numbers: list[int] = []  # of the papers read so far (the rules read ahead a chunk)

        def texts() -> Iterator[dict]:
            for n, text in stored_texts(heads, abstracts):
                numbers.append(n)
                yield text

        results = topics_of_papers(texts(), load_topics(topics_path))
        with conn:
            for index, (assigned, evidence) in enumerate(results):
                n = numbers[index]
                conn.execute("INSERT INTO assigned VALUES (?, ?)", (n, assigned))
                conn.executemany(f"INSERT INTO evidence VALUES ({', '.join('?' * len(EVIDENCE))})",
                                 (tuple(row[c] for c in EVIDENCE) for row in evidence))
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
