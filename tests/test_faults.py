"""Faults during the build: SIGKILL at random points, leftovers, and running out of space.

Whatever happens to a build, the previous papers.db stays as it was (or, if the build got
past its final rename, is the new complete database), and the next build clears the
temporaries an interrupted one left behind.
"""

from __future__ import annotations

import os
import random
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.generate import generate_corpus
from conftest import REAL_DUMPS, ROOT, rows, run_build
from neuroai_papers.write import settle

SYNTHETIC_RECORDS = 1500  # a build of about a second, three times the real dumps'
KILLS = 25
SEED = 20251123


@dataclass
class Timeline:
    """Seconds from a build's start to its first line (a full build's `topics:` line, once
    its temporary file exists), to its `writing` line (the write stage begins) and to its
    `stages:` line (the new file is in place)."""

    first: float
    writing: float
    written: float


def start_build(dumps: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "build_db.py"), "--dumps", str(dumps), "--out", str(out),
         *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def timed_build(dumps: Path, out: Path, *extra: str) -> Timeline:
    started = time.monotonic()
    process = start_build(dumps, out, *extra)
    seen = {}
    for line in process.stderr:
        seen.setdefault(line.split(" ", 1)[0], time.monotonic() - started)
    assert process.wait() == 0
    return Timeline(min(seen.values()), seen["writing"], seen["stages:"])


def kill_after(process: subprocess.Popen, delay: float, anchor: str | None) -> None:
    """SIGKILL the build `delay` seconds after it printed a line starting with `anchor`
    (after it started, if no anchor)."""
    if anchor:
        for line in process.stderr:
            if line.startswith(anchor):
                break
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)


def temporaries(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tmp"))


def integrity(db: Path) -> str:
    return rows(db, "PRAGMA integrity_check")[0][0]


def paper_count(db: Path) -> int:
    return rows(db, "select count(*) from papers")[0][0]


@pytest.fixture(scope="module")
def synthetic_dumps(tmp_path_factory) -> Path:
    dumps = tmp_path_factory.mktemp("faults") / "dumps"
    generate_corpus(dumps, SYNTHETIC_RECORDS, seed=11)
    return dumps


def previous_database_and_a_new_dump(corpus: Path, dumps: Path, out: Path) -> tuple[bytes, int]:
    """Build `out` from every dump of `corpus` but the last, in the folder `dumps`, then add
    the last dump to the folder; return the file's bytes and its paper count."""
    dumps.mkdir()
    names = sorted(p.name for p in corpus.glob("*.txt"))
    for name in names[:-1]:
        os.link(corpus / name, dumps / name)
    timed_build(dumps, out)
    os.link(corpus / names[-1], dumps / names[-1])
    return out.read_bytes(), paper_count(out)


def test_sigkill_at_random_points_never_harms_the_previous_database(synthetic_dumps, tmp_path):
    """Builds are killed anywhere in their run: full builds, which write a new file and
    rename it over papers.db, and incremental builds adding the last dump, which update
    papers.db in one transaction. A kill inside that transaction leaves a journal, which the
    next SQLite connection plays back: the file is the previous one again, byte for byte."""
    dumps, out = tmp_path / "dumps", tmp_path / "papers.db"
    previous, papers = previous_database_and_a_new_dump(synthetic_dumps, dumps, out)
    full = timed_build(dumps, out)
    all_papers = paper_count(out)
    assert all_papers > papers
    out.write_bytes(previous)
    incremental = timed_build(dumps, out, "--incremental")
    assert paper_count(out) == all_papers
    rng = random.Random(SEED)
    killed = completed = left_temporary = left_journal = 0
    for run in range(KILLS):
        out.write_bytes(previous)  # in place: the inode stays
        inode = out.stat().st_ino
        if run % 2:
            process = start_build(dumps, out, "--incremental")
            kill_after(process, rng.uniform(0, incremental.written), None)
        else:
            # From its first line on: before it, a kill finds only Python starting up.
            process = start_build(dumps, out)
            kill_after(process, rng.uniform(0, full.written - full.first), "topics:")
        killed += process.returncode == -signal.SIGKILL
        left_temporary += (tmp_path / f".papers.db.tmp-{process.pid}").exists()
        left_journal += (tmp_path / "papers.db-journal").exists()
        settle(out)  # what the next build and `site serve` do first: play back a journal
        assert not (tmp_path / "papers.db-journal").exists()
        assert integrity(out) == "ok"
        if paper_count(out) == all_papers:  # the build was done before the kill
            completed += 1
            assert (out.stat().st_ino == inode) == bool(run % 2), "in place iff incremental"
        else:
            assert out.read_bytes() == previous and out.stat().st_ino == inode
    print(f"{killed}/{KILLS} builds killed (full {full}, incremental {incremental}): "
          f"{left_temporary} left their temporary file, {left_journal} their journal, "
          f"{completed} had already put their database in place")
    assert killed >= KILLS // 2, "most kills came too late: the builds ran faster than measured"
    assert left_temporary >= 3, "too few kills landed while the temporary file existed"

    assert run_build(dumps, out).returncode == 0
    assert temporaries(out) == []
    assert sorted(os.listdir(tmp_path)) == ["dumps", "papers.db"]
    assert integrity(out) == "ok"


def test_killed_in_the_middle_of_its_transaction_an_update_in_place_is_rolled_back(
        synthetic_dumps, tmp_path):
    """Kills aimed at the update's own transaction, which random kills seldom hit: 0 to
    0.2 s after the build says it adds the dump (about the update's span here). The file is
    the previous one byte for byte, or the complete new one."""
    dumps, out = tmp_path / "dumps", tmp_path / "papers.db"
    previous, papers = previous_database_and_a_new_dump(synthetic_dumps, dumps, out)
    journals = 0
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2):
        out.write_bytes(previous)
        process = start_build(dumps, out, "--incremental")
        kill_after(process, delay, "incremental: adding")
        journals += (tmp_path / "papers.db-journal").exists()
        settle(out)
        assert not (tmp_path / "papers.db-journal").exists()
        assert integrity(out) == "ok"
        if paper_count(out) == papers:
            assert out.read_bytes() == previous
        else:
            assert rows(out, "select count(*) from dumps") == [(len(os.listdir(dumps)),)]
    assert journals >= 1, "no kill landed inside the update's transaction"


def parent_of(pid: int) -> int | None:
    """Return the parent pid of a running process, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(re.search(r"^PPid:\s*(\d+)$", status, re.M)[1])


@pytest.mark.parametrize("announced", ["reading the dumps", "topics:"],
                         ids=["dump reader", "new papers"])
def test_killing_the_build_also_ends_its_worker(tmp_path, announced):
    # Enough papers that the worker needs seconds of its own: an orphan would still be there.
    dumps = tmp_path / "dumps"
    generate_corpus(dumps, 30_000, seed=12)
    out = tmp_path / "papers.db"
    process = start_build(dumps, out)
    for line in process.stderr:
        if line.startswith(announced):
            break
    worker = int(re.search(r"in process (\d+)", line)[1])
    assert parent_of(worker) == process.pid
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)  # not communicate(): an orphan would hold stderr open
    process.stderr.close()
    deadline = time.monotonic() + 4  # a worker still starting up exits once it runs
    while parent_of(worker) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert parent_of(worker) is None


def test_the_next_build_removes_stale_temporaries_and_their_sqlite_side_files(tmp_path):
    out = tmp_path / "papers.db"
    stale = [".papers.db.tmp-99999", ".papers.db.tmp-99999-journal", ".papers.db.tmp-99998",
             ".papers.db.tmp-99998-wal", ".papers.db.tmp-99998-shm"]
    for name in stale:
        (tmp_path / name).write_bytes(b"left by a killed build")
    (tmp_path / "papers.db.bak").write_bytes(b"not ours to remove")
    assert run_build(REAL_DUMPS, out).returncode == 0
    assert sorted(os.listdir(tmp_path)) == ["papers.db", "papers.db.bak"]


def test_a_temporary_of_a_build_still_running_is_left_alone(tmp_path):
    out = tmp_path / "papers.db"
    running = subprocess.Popen(["sleep", "60"])  # stands for another build writing `out`
    try:
        busy = tmp_path / f".papers.db.tmp-{running.pid}"
        busy.write_bytes(b"being written")
        assert run_build(REAL_DUMPS, out).returncode == 0
        assert busy.read_bytes() == b"being written"
    finally:
        running.kill()
        running.wait()
    assert run_build(REAL_DUMPS, out).returncode == 0
    assert not busy.exists()  # its process is gone: now it is stale


def limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.fixture(scope="module")
def previous_db_size(real_db) -> int:
    return real_db.stat().st_size


@pytest.mark.parametrize("room", ["early", "late"])
def test_running_out_of_space_fails_cleanly(real_db, previous_db_size, tmp_path, room):
    out = tmp_path / "papers.db"
    before = real_db.read_bytes()
    out.write_bytes(before)
    # Early: the rows do not fit. Late: everything but the last pages (indexes, ANALYZE).
    limit = 256 * 1024 if room == "early" else previous_db_size - 16 * 1024
    result = run_build(REAL_DUMPS, out, preexec_fn=limit_file_size(limit))
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: the database could not be built: cannot write "
                                f"{tmp_path / '.papers.db.tmp-'}")
    assert result.stderr.splitlines()[-1] == f"nothing written; {out} is unchanged"
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["papers.db"]


def test_an_update_in_place_that_runs_out_of_space_is_rolled_back(real_db, tmp_path):
    """The file may not grow: the update's first new page fails, SQLite's error ends the
    build with exit 3, and the transaction's rollback leaves the previous file as it was."""
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    names = sorted(p.name for p in REAL_DUMPS.glob("*.txt"))
    for name in names[:-1]:
        os.link(REAL_DUMPS / name, dumps / name)
    out = tmp_path / "papers.db"
    assert run_build(dumps, out).returncode == 0
    before = out.read_bytes()
    os.link(REAL_DUMPS / names[-1], dumps / names[-1])
    result = run_build(dumps, out, "--incremental", preexec_fn=limit_file_size(len(before)))
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    # SQLite says "database or disk is full", or "disk I/O error" when the commit hits it.
    assert len(errors) == 1 and errors[0].startswith(
        f"error: the database could not be built: cannot update {out}: "), result.stderr
    assert result.stderr.splitlines()[-1] == f"nothing written; {out} is unchanged"
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["dumps", "papers.db"]


def test_a_build_that_fails_stops_its_full_text_index_thread_and_removes_its_file(tmp_path):
    """The full-text index is built in a thread beside the rows (write.SearchIndexBuild): a
    build that fails meanwhile must stop it, not wait for it, and leave no scratch file."""
    import threading

    from neuroai_papers.texts import DiskList
    from neuroai_papers.write import DatabaseWriter

    papers = 200_000  # about ten seconds of indexing here
    writer = DatabaseWriter(tmp_path / "papers.db")
    abstracts = DiskList(writer.scratch_path("abstracts"))
    for number in range(papers):
        abstracts.append(f"spiking networks decode the visual cortex, paper {number} " * 8)
    abstracts.flush()
    writer.start_search_index([f"paper {number}" for number in range(papers)], abstracts.path)
    assert writer.search.path.exists() and not writer.search.done.done()
    aborting = threading.Thread(target=writer.abort)
    aborting.start()
    aborting.join(timeout=60)
    assert not aborting.is_alive(), "abort waited for the full-text index"
    assert writer.search.done.exception() is not None  # interrupted or stopped, not finished
    abstracts.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


WORKER_RECORDS = 14_000  # 21 MB of dumps: over parallel.READER_MIN_BYTES, the build uses both workers


@pytest.fixture(scope="module")
def worker_sized_dumps(tmp_path_factory) -> Path:
    dumps = tmp_path_factory.mktemp("stopped") / "dumps"
    generate_corpus(dumps, WORKER_RECORDS, seed=13)
    return dumps


def stop_when(process: subprocess.Popen, announced: str, signum: int) -> str:
    """Send `signum` to the build once it prints a line starting with `announced`; return
    all it printed, up to the end of its stderr (which the workers and multiprocessing's
    resource tracker hold open too: its warning of leaked semaphores would come last)."""
    printed = []
    for line in process.stderr:
        printed.append(line)
        if line.startswith(announced):
            process.send_signal(signum)
            break
    printed.append(process.stderr.read())
    process.wait(timeout=60)
    return "".join(printed)


def still_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["Ctrl-C", "SIGTERM"])
def test_a_stopped_build_says_so_in_one_line_and_leaves_nothing(worker_sized_dumps, real_db,
                                                                tmp_path, signum, code):
    """Ctrl-C or SIGTERM while a full build runs with its worker processes (once it has
    parsed the dumps): one line, the exit code a shell gives a command its signal stopped,
    the previous papers.db as it was, and no scratch file, worker or semaphore left."""
    out = tmp_path / "papers.db"
    before = real_db.read_bytes()
    out.write_bytes(before)
    process = start_build(worker_sized_dumps, out)
    printed = stop_when(process, "parsed", signum)
    assert process.returncode == code, printed
    assert printed.splitlines()[-1] == f"interrupted: nothing written; {out} is unchanged"
    assert "Traceback" not in printed and "leaked" not in printed, printed
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["papers.db"]
    workers = [int(pid) for pid in re.findall(r"in process (\d+)", printed)]
    assert len(workers) == 2 and not any(map(still_running, workers)), printed


def test_a_stopped_update_in_place_is_rolled_back_and_says_so(worker_sized_dumps, tmp_path):
    """Ctrl-C while an incremental build adds dumps to papers.db in its transaction: rolled
    back, no journal left, the file byte for byte the previous one."""
    dumps, out = tmp_path / "dumps", tmp_path / "papers.db"
    dumps.mkdir()
    names = sorted(p.name for p in worker_sized_dumps.glob("*.txt"))
    for name in names[:len(names) // 3]:
        os.link(worker_sized_dumps / name, dumps / name)
    assert run_build(dumps, out).returncode == 0
    before = out.read_bytes()
    for name in names[len(names) // 3:]:  # about a second of work for the update
        os.link(worker_sized_dumps / name, dumps / name)
    process = start_build(dumps, out, "--incremental")
    printed = stop_when(process, "incremental: adding", signal.SIGINT)
    assert process.returncode == 130, printed
    assert printed.splitlines()[-1] == f"interrupted: nothing written; {out} is unchanged"
    assert "Traceback" not in printed
    assert sorted(os.listdir(tmp_path)) == ["dumps", "papers.db"]
    assert out.read_bytes() == before


def test_a_build_whose_output_is_closed_stops_cleanly(worker_sized_dumps, real_db, tmp_path):
    """`build_db.py 2>&1 | head`: once head has its lines, the build's next line found no
    reader, and the BrokenPipeError became "the database could not be built", whose own line
    failed again: a traceback nobody saw and exit 1. It stops as SIGPIPE would (141), the
    previous papers.db as it was, nothing left behind. Here the pipe is closed from the start:
    its first line comes once its temporary file exists and its workers run."""
    out = tmp_path / "papers.db"
    before = real_db.read_bytes()
    out.write_bytes(before)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, str(ROOT / "build_db.py"), "--dumps",
                                 str(worker_sized_dumps), "--out", str(out)],
                                stdout=write_end, stderr=write_end, timeout=300)
    finally:
        os.close(write_end)
    assert result.returncode == 141
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["papers.db"]


class ReaderGoneAt:
    """An output whose reader goes away when a line starting with `start` is written."""

    def __init__(self, start: str, file):
        self.start, self.file, self.gone, self.lines = start, file, False, []

    def write(self, text: str) -> None:
        self.gone = self.gone or text.startswith(self.start)
        if self.gone:
            raise BrokenPipeError(32, "Broken pipe")
        self.lines.append(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.file.fileno()


@pytest.mark.parametrize("start, code", [("topics:", 141), ("stages:", 0)],
                         ids=["while building", "once in place"])
def test_an_output_closed_stops_the_build_until_its_database_is_in_place(tmp_path, monkeypatch,
                                                                        start, code):
    """Closed while the build runs, the build stops; closed once the new file is in place
    (its `stages:` line), the build is done: exit 0 with its lines dropped."""
    from neuroai_papers import build

    with open(tmp_path / "stderr", "w") as file:
        output = ReaderGoneAt(start, file)
        progress = build.Progress(output)
        monkeypatch.setattr(build, "Progress", lambda: progress)
        out = tmp_path / "papers.db"
        assert build.main(["--dumps", str(REAL_DUMPS), "--out", str(out)]) == code
    assert out.exists() == (code == 0)
    assert sorted(os.listdir(tmp_path)) == (["papers.db"] if code == 0 else []) + ["stderr"]


def test_the_build_gives_back_the_signal_handlers_it_found(tmp_path):
    """`site serve` and tests call build.main in their own process: Ctrl-C must act there
    as before once the build is over."""
    from neuroai_papers.build import main

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    assert main(["--dumps", str(tmp_path / "none"), "--out", str(tmp_path / "papers.db")]) == 2
    assert main(["--dumps", str(REAL_DUMPS), "--out", str(tmp_path / "papers.db")]) == 0
    assert {signum: signal.getsignal(signum) for signum in handlers} == handlers


def test_a_build_waiting_for_the_lock_to_put_its_file_in_place_stops_at_once(real_db, tmp_path):
    """Another program holds papers.db's write lock: the build waits for it (up to a
    minute) before the rename. Ctrl-C then stops it at once, with one line and exit 130;
    it was dropped, and the build went on waiting for the minute, then failed with exit 3."""
    out = tmp_path / "papers.db"
    before = real_db.read_bytes()
    out.write_bytes(before)
    holder = sqlite3.connect(out, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        process = start_build(REAL_DUMPS, out)
        printed = []
        for line in process.stderr:
            printed.append(line)
            if line.startswith("writing indexes"):
                break
        time.sleep(2)  # the checks of five dumps take a fraction of that: it waits now
        asked = time.monotonic()
        process.send_signal(signal.SIGINT)
        printed.append(process.stderr.read())
        process.wait(timeout=90)
        waited = time.monotonic() - asked
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    printed = "".join(printed)
    assert process.returncode == 130, printed
    assert waited < 10, printed
    assert printed.splitlines()[-1] == f"interrupted: nothing written; {out} is unchanged"
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["papers.db"]


def test_a_stop_that_comes_while_a_failing_step_puts_the_file_in_place_is_the_answer():
    """A stop signal while the file is put in place is dropped, as the build is done once
    the step is; but if the step fails (an update's commit that waited a minute for a
    reader), nothing was written, and the stop asked meanwhile is what the build answers."""
    from neuroai_papers.stopping import (Interrupted, putting_in_place, stop_signals_handled,
                                         stoppable)

    with stop_signals_handled(), stoppable():
        with putting_in_place():  # a step that succeeds: the signal is dropped
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
        with pytest.raises(Interrupted) as stopped:
            with putting_in_place():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)
                raise sqlite3.OperationalError("database is locked")
    assert stopped.value.exit_code == 130
