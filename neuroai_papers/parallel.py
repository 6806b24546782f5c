"""Work on two cores: a worker process parses the dumps ahead of matching, and another
does what each new paper alone determines (its topics).

Reading (DumpReader). Parsing a dump and computing its records' keys (title key, abstract
fingerprint, blocking keys: dedupe.record_keys) depend on the dump alone, while matching
depends on every record before. From READER_MIN_BYTES of dumps on, a worker parses the
dumps in name order and sends each, with its keys, through a bounded queue, while the build
matches the dumps already sent: 300,000 records spend about 10 s on parsing and keys (in
one process), which then overlap with matching. A dump the worker refuses is refused with
the same DumpError, at the same place in the order, as if the build had read it itself.

New papers (NewPapers). A paper's topics depend only on its first sighting, so they are
known the moment matching creates the paper. From READER_MIN_BYTES of dumps on, the build
hands each dump's new papers to a worker that matches the topic rules while the build goes
on matching (on the time the reader leaves free) and then writes the rows that need no
topics; the build then copies the worker's rows in, as if one process had made them all
(a test holds them equal).

Each worker is a fresh Python process (spawned, not forked: a fork would share the build's
memory only until it touched it), and dies with the build if the build is killed; it is
started deaf to Ctrl-C, which the build acts on for it (stopping.py). A failure
in it fails the build with one line, like any other. Small corpora skip the workers:
starting a Python process costs more than it saves.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import queue
import signal
import sqlite3
from contextlib import suppress
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Iterator

from .dedupe import Deduplicator, Paper, RecordKeys, record_keys
from .parse import DumpError, ParsedDump, read_dump
from .stopping import started_deaf_to_ctrl_c
from .texts import DiskList
from .topics import Topic, load_topics, topics_of_papers
from .uris import read_only_uri
from .write import TABLES, BuildCheckError, DatabaseWriter, shaped_copy_sql

EVIDENCE = list(TABLES["paper_topics"][0])
READER_MIN_BYTES = 16_000_000  # about 10,000 records
READ_AHEAD = 16  # parsed dumps waiting in the queue at most (bounds the memory they take)
NEW_PAPERS_BACKLOG = 400  # dumps' new papers waiting for the worker at most (~20,000 papers)
WORKER_BATCH = 2_000  # papers whose rows the worker inserts together
PR_SET_PDEATHSIG = 1
# The database's table the worker's rows go to, and the worker's table that holds them.
SORTED_FOR_COPY = {"paper_topics": "evidence"}


class DumpReader:
    """The dumps in name order, parsed, each with its records' keys."""

    def __init__(self, paths: list[Path], min_bytes: int = READER_MIN_BYTES):
        self.paths = paths
        self.process = None
        if sum(map(file_size, paths)) >= min_bytes:  # see large_corpus
            context = multiprocessing.get_context("spawn")
            self.queue = context.Queue(maxsize=READ_AHEAD)
            # The paths go through a queue of their own, not as the process's arguments:
            # start() writes the arguments into a pipe the new process reads as it starts,
            # and one that dies before (a script that starts the build without a __main__
            # guard, re-run by spawn) would leave start() waiting forever on the 650 KB of
            # 16,000 paths. A queue writes them from a thread, and the reading below finds
            # the process dead.
            self.paths_inbox = context.Queue()
            self.paths_inbox.cancel_join_thread()  # an exit must not wait for a dead reader
            self.process = context.Process(target=read_ahead,
                                           args=(os.getpid(), self.paths_inbox, self.queue),
                                           daemon=True)
            start_worker(self.process, self.stop)
            self.paths_inbox.put(paths)
            # Only the worker writes to the queue. Without the build's own copy of the pipe's
            # writing end, a worker killed halfway through a message leaves the build an end
            # of file (EOFError) instead of a read that waits forever for the rest.
            self.queue._writer.close()

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
            yield message[1], as_record_keys(message[2])

    def next_message(self) -> tuple:
        """Return the worker's next message; fail if it died without sending one."""
        while True:
            try:
                return self.queue.get(timeout=1.0)
            except queue.Empty:
                if self.process.is_alive():
                    continue
            except (EOFError, OSError):  # it died, perhaps in the middle of a message
                pass
            self.process.join(timeout=5)
            try:  # it may have sent its last message just before it ended
                return self.queue.get(timeout=1.0)
            except (queue.Empty, EOFError, OSError):
                raise BuildCheckError(f"reading the dumps: the worker process ended with exit "
                                      f"code {self.process.exitcode}") from None

    def stop(self) -> None:
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join()
            self.queue.close()
            self.paths_inbox.close()

    def __enter__(self) -> "DumpReader":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_worker(process: multiprocessing.Process, stop) -> None:
    """Start a worker deaf to Ctrl-C (stopping.started_deaf_to_ctrl_c); if the build is
    stopped meanwhile, `stop` it before the build, whose `with` block has not begun, goes on."""
    try:
        with started_deaf_to_ctrl_c():
            process.start()
    except BaseException:
        if process.pid is not None:  # started: ended here, as the `with` block would end it
            stop()
        raise


def read_with_keys(path: Path) -> tuple[ParsedDump, list[RecordKeys]]:
    """Return the parsed dump and its records' keys (what the reader gives for each dump)."""
    dump = read_dump(path)
    return dump, [record_keys(record) for record in dump.records]


def as_record_keys(sent: list[tuple]) -> list[RecordKeys]:
    """Return the keys the reader sent as plain tuples. Pickling a named tuple calls its
    __getnewargs__ and loading it its __new__, both Python functions: 1,500 dumps' keys took
    0.18 s to pickle and 0.22 s to load, 0.11 s and 0.19 s this way."""
    return list(map(tuple.__new__, repeat(RecordKeys), sent))  # RecordKeys(*keys), in C


def file_size(path: Path) -> int:
    """Return the file's size, 0 if it cannot be read (read_dump then says why)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def read_ahead(build: int, inbox, out) -> None:
    """The reader worker: for the dumps it gets from `inbox`, ("dump", parsed, keys) for
    each in order, or ("refused", why) for the first dump refused; ("failed", why) and exit
    3 if anything else fails."""
    die_with_parent(build)
    gc.disable()  # as in the build (build.cycle_collection_paused): it makes no cycles
    try:
        for path in inbox.get():
            try:
                dump, keys = read_with_keys(path)
            except DumpError as error:
                out.put(("refused", str(error)))
                return
            out.put(("dump", dump, list(map(tuple, keys))))  # see as_record_keys
    except BaseException as error:  # the build reports it in its one error line
        out.put(("failed", f"{type(error).__name__}: {error}"))
        out.close()
        out.join_thread()  # the message must leave before the process does
        os._exit(3)


class NewPapers:
    """What each paper alone determines: its topics and topic evidence.

    On a large corpus (`worker`), the papers go to a worker process as matching creates
    them (`add`), so the work runs on the core that matching leaves free, and goes on while
    the build writes the rows that need none of it; `assign` then reads the topics it found,
    and `copy_rows` copies its rows. Otherwise `assign` does the work here.
    """

    def __init__(self, topics: list[Topic], topics_path: Path, scratch: Path, worker: bool):
        self.topics = topics
        self.scratch = scratch
        self.process = None
        self.finished = self.sent_all = False
        if worker:
            context = multiprocessing.get_context("spawn")
            self.inbox = context.Queue(maxsize=NEW_PAPERS_BACKLOG)
            self.failure = context.SimpleQueue()  # the worker's one-line reason, if it fails
            self.topics_done = context.Event()  # every paper's topics are in the scratch file
            self.process = context.Process(
                target=work, args=(os.getpid(), self.inbox, topics_path, scratch, self.failure,
                                   self.topics_done),
                daemon=True)
            start_worker(self.process, self.stop)

    @property
    def where(self) -> str:
        if self.process is None:
            return "in this process, once the papers are known"
        return f"in process {self.process.pid}, as matching finds the papers"

    def add(self, papers: list[tuple[Paper, str]]) -> None:
        """Hand the worker new papers, in paper order, with their abstracts."""
        if self.process is not None and papers:
            self.send([(paper.number, paper.id, paper.title, abstract)
                       for paper, abstract in papers])

    def all_sent(self) -> None:
        """Tell the worker that no more papers come (matching is done), so that it finishes
        the last papers and sorts its rows at once, not when the build first waits for it:
        in a 1M build it sat idle for about 17 s after matching, then sorted while the
        build made the papers' rows beside the full-text index's thread, three busy
        threads on two cores (the build's `topics` stage, its waits for the worker and the
        copy of its rows: 5.1-6.8 s in three 1M builds, 4.0-4.5 s with this)."""
        if self.process is not None and not self.sent_all:
            self.send(None)
            self.sent_all = True

    def send(self, message: list | None) -> None:
        while True:  # a full queue waits for the worker, unless the worker is gone
            try:
                return self.inbox.put(message, timeout=1.0)
            except queue.Full:
                if not self.process.is_alive():
                    raise self.worker_failed() from None

    def assign(self, dedup: Deduplicator, abstracts: DiskList, writer: DatabaseWriter) -> None:
        """Set each paper's `topics`. Without a worker, also insert the paper_topics rows;
        a worker's rows come with `copy_rows`."""
        if self.process is None:
            writer.insert("paper_topics", self.matched_here(dedup.papers, abstracts))
            return
        self.wait(until=self.topics_done)
        self.read_assigned(dedup.papers)

    def copy_rows(self, writer: DatabaseWriter) -> None:
        """Insert the worker's paper_topics rows (after `assign`), once it has sorted them
        (sort_for_copy, while the build made the papers' rows)."""
        if self.process is None:
            return
        self.wait()
        # Millions of rows at a million papers: SQLite copies them, not Python, in the
        # order the tables store them.
        for table, source in SORTED_FOR_COPY.items():
            writer.copy_from(table, sorted_scratch(self.scratch), source)

    def wait(self, until=None) -> None:
        """Wait until the worker has done every paper it was given and ended, or only until
        the event `until` (at once without a worker)."""
        if self.process is None or self.finished:
            return
        self.all_sent()
        while until is not None and self.process.is_alive():
            if until.wait(timeout=1.0):
                return
        self.process.join()
        if self.process.exitcode != 0:
            raise self.worker_failed()
        self.finished = True

    def matched_here(self, papers: list[Paper], abstracts: DiskList) -> Iterator[dict]:
        distinct: dict[str, str] = {}  # papers share few topic sets: one string per set
        texts = ({"id": p.id, "title": p.title, "abstract": a}
                 for p, a in zip(papers, abstracts.values(0, len(papers)), strict=True))
        for paper, (assigned, evidence) in zip(papers, topics_of_papers(texts, self.topics)):
            paper.topics = distinct.setdefault(assigned, assigned)
            yield from evidence

    def read_assigned(self, papers: list[Paper]) -> None:
        """Set each paper's `topics` from the worker's results."""
        distinct: dict[str, str] = {}
        conn = sqlite3.connect(read_only_uri(self.scratch), uri=True)
        try:
            assigned = conn.execute("SELECT n, topics FROM assigned ORDER BY n").fetchall()
        finally:
            conn.close()
        if [n for n, _ in assigned] != [paper.number for paper in papers]:
            raise BuildCheckError(f"new papers: the worker did {len(assigned)} papers "
                                  f"of {len(papers)}")
        for paper, (_, topics) in zip(papers, assigned):
            paper.topics = distinct.setdefault(topics, topics)

    def worker_failed(self) -> BuildCheckError:
        self.process.join(timeout=5)
        why = self.failure.get() if not self.failure.empty() else (
            f"the worker process ended with exit code {self.process.exitcode}")
        return BuildCheckError(f"new papers: {why}")

    def stop(self) -> None:
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join()
            self.inbox.cancel_join_thread()  # papers still queued for a killed worker
            self.inbox.close()
        for path in (self.scratch, sorted_scratch(self.scratch)):
            with suppress(FileNotFoundError):
                path.unlink()

    def __enter__(self) -> "NewPapers":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def work(build: int, inbox, topics_path: Path, scratch: Path, failure, topics_done) -> None:
    """The worker: topics and evidence of the papers that come through `inbox`, until
    None, into `scratch`; set `topics_done` once they are committed, then
    sort them for the copy; exit 0, or 3 with the reason in `failure`."""
    die_with_parent(build)
    gc.disable()  # as in the build (build.cycle_collection_paused): it makes no cycles
    try:
        conn = sqlite3.connect(scratch)
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("CREATE TABLE assigned (n INTEGER PRIMARY KEY, topics TEXT)")
        conn.execute(f"CREATE TABLE evidence ({', '.join(EVIDENCE)})")
        numbers: list[int] = []  # of the papers read so far (the rules read ahead a chunk)

        def texts() -> Iterator[dict]:
            while (batch := inbox.get()) is not None:
                for n, paper_id, title, abstract in batch:
                    numbers.append(n)
                    yield {"id": paper_id, "title": title, "abstract": abstract}

        results = topics_of_papers(texts(), load_topics(topics_path))
        insert_evidence = f"INSERT INTO evidence VALUES ({', '.join('?' * len(EVIDENCE))})"
        values = itemgetter(*EVIDENCE)
        with conn:  # one executemany per table for many papers: fewer calls into SQLite
            papers, rows = [], []
            for index, (assigned, evidence) in enumerate(results):
                papers.append((numbers[index], assigned))
                rows.extend(map(values, evidence))
                if len(papers) == WORKER_BATCH:
                    conn.executemany("INSERT INTO assigned VALUES (?, ?)", papers)
                    conn.executemany(insert_evidence, rows)
                    papers, rows = [], []
            conn.executemany("INSERT INTO assigned VALUES (?, ?)", papers)
            conn.executemany(insert_evidence, rows)
        topics_done.set()
        sort_for_copy(conn, sorted_scratch(scratch))
        conn.close()
    except BaseException as error:  # the build reports it in its one error line
        failure.put(f"cannot write {scratch}: {error}" if isinstance(error, sqlite3.Error)
                    else f"{type(error).__name__}: {error}")
        os._exit(3)


def sort_for_copy(conn: sqlite3.Connection, sorted_path: Path) -> None:
    """Copy the evidence into a new SQLite file, in a table of the same shape as the
    database's paper_topics (kept in the order of its primary key), then index it as the
    database indexes paper_topics.

    The worker does it once its papers' topics are committed, while the build makes the
    papers' rows, on the second core (the reader is done by then). The build then copies
    the table and its index as they are (DatabaseWriter.copy_from): at 300,000 records 2.4 s
    instead of 1.8 s to copy the rows and 2.6 s to index them.
    Another file, because the build reads the topics from the first one meanwhile: in the
    same file a reader would keep the worker from writing its sorted pages."""
    conn.execute("ATTACH DATABASE ? AS sorted", (str(sorted_path),))
    conn.execute("PRAGMA sorted.journal_mode = OFF")
    conn.execute("PRAGMA sorted.synchronous = OFF")
    with conn:
        for table, source in SORTED_FOR_COPY.items():
            columns, key, _ = TABLES[table]
            create_table, create_indexes = shaped_copy_sql(table, "sorted", source)
            conn.execute(create_table)
            conn.execute(f"INSERT INTO sorted.{source} SELECT {', '.join(columns)} "
                         f"FROM main.{source} ORDER BY {', '.join(key)}")
            for statement in create_indexes:  # after the rows: SQLite sorts them once
                conn.execute(statement)


def sorted_scratch(scratch: Path) -> Path:
    return scratch.with_name(scratch.name + "-sorted")


def large_corpus(paths: list[Path]) -> bool:
    """Return whether the dumps are worth the workers (starting one costs about a second)."""
    return sum(map(file_size, paths)) >= READER_MIN_BYTES


def die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when `parent` (the build, or `site serve`) dies: a
    SIGKILL of the parent leaves no orphan."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died while this process was starting
        os._exit(3)
