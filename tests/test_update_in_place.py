"""An incremental build updates papers.db where it lies, in one SQLite transaction, unless a
server holds the file; a failed or interrupted update leaves no trace (write.DatabaseUpdate)."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from conftest import REAL_DUMPS, ROOT, rows, run_build
from neuroai_papers import build
from neuroai_papers.site import free_port, wait_until_up
from neuroai_papers.write import BuildCheckError
from test_incremental import contents

LAST = "004_a2400baee32e0311.txt"


def previous_database(tmp_path: Path) -> tuple[Path, Path]:
    """Build papers.db from the real dumps but the last one, then put the last one beside
    them; return (dumps folder, papers.db)."""
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for path in sorted(REAL_DUMPS.glob("*.txt")):
        if path.name != LAST:
            shutil.copy(path, dumps / path.name)
    out = tmp_path / "papers.db"
    assert run_build(dumps, out).returncode == 0
    shutil.copy(REAL_DUMPS / LAST, dumps / LAST)
    return dumps, out


def journal(db: Path) -> Path:
    return db.with_name(db.name + "-journal")


def site_query(base: str, sql: str) -> list[dict]:
    url = f"{base}/papers.json?" + urllib.parse.urlencode({"sql": sql, "_shape": "array"})
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def served(db: Path):
    """Run the project's own serve command on `db` (a real Datasette); yield its address."""
    return served_with_log(db, db.with_name("serve.log"))


def test_an_update_in_place_keeps_the_file_and_equals_a_full_build(tmp_path):
    dumps, out = previous_database(tmp_path)
    inode = out.stat().st_ino
    result = run_build(dumps, out, "--incremental")
    assert result.returncode == 0, result.stderr
    assert "incremental: adding 1 new dump to" in result.stderr
    assert "being served" not in result.stderr
    assert out.stat().st_ino == inode, "the update went to a new file"
    assert not journal(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dumps", "papers.db"]
    full = tmp_path / "full" / "papers.db"
    assert run_build(dumps, full).returncode == 0
    assert contents(out) == contents(full)


def test_a_failed_update_check_rolls_back_every_page(tmp_path, monkeypatch):
    """The check runs after every row is written; with a cache of a few pages, SQLite has
    already written changed pages into papers.db itself, and the rollback puts them back."""
    dumps, out = previous_database(tmp_path)
    before, inode = out.read_bytes(), out.stat().st_ino

    def check_then_fail(conn, *args):
        build_check(conn, *args)  # the real check passes ...
        (papers,) = conn.execute("select count(*) from papers").fetchone()
        raise BuildCheckError(f"refused on purpose with {papers} papers written")

    build_check = build.check_update
    monkeypatch.setattr(build, "check_update", check_then_fail)
    monkeypatch.setattr(build.DatabaseUpdate, "CACHE_KIB", 8)
    log = io.StringIO()
    monkeypatch.setattr(build.Progress.__init__, "__defaults__", (log,))  # main's progress
    status = build.main(["--dumps", str(dumps), "--out", str(out), "--incremental"])
    stderr = log.getvalue()
    assert status == build.EXIT_BUILD_FAILED
    assert "refused on purpose with" in stderr and "papers.db is unchanged" in stderr
    written = int(stderr.split("refused on purpose with ")[1].split()[0])
    assert written > rows(out, "select count(*) from papers")[0][0]  # the update did write
    assert out.read_bytes() == before and out.stat().st_ino == inode
    assert not journal(out).exists()


def interrupt_an_update(db: Path) -> None:
    """Start an update in place that changes every paper and sighting, with a cache of a few
    pages so that SQLite writes changed pages into the file, and kill its process before it
    commits: what SIGKILL does to a build in the middle of its update."""
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from neuroai_papers.write import DatabaseUpdate\n"
        "DatabaseUpdate.CACHE_KIB = 8\n"
        "update = DatabaseUpdate(Path(sys.argv[1]))\n"
        "update.conn.execute(\"update papers set abstract = 'overwritten'\")\n"
        "update.conn.execute('delete from sightings')\n"
        "os._exit(9)\n")
    result = subprocess.run([sys.executable, "-c", script, str(db)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 9, result.stderr


def test_serving_plays_back_an_interrupted_update_first(real_db, tmp_path):
    """Datasette reads the file immutable, ignoring journals: `site serve` must play back the
    journal of an interrupted update before it serves, or it would serve its pages."""
    db = tmp_path / "papers.db"
    shutil.copy(real_db, db)
    before = db.read_bytes()
    sightings = rows(db, "select count(*) from sightings")[0][0]
    interrupt_an_update(db)
    assert journal(db).exists() and db.read_bytes() != before  # pages were written in place
    with served(db) as base:
        assert site_query(base, "select count(*) as n from sightings") == [{"n": sightings}]
        assert site_query(base, "select count(*) as n from papers where abstract = "
                                "'overwritten'") == [{"n": 0}]
    assert db.read_bytes() == before and not journal(db).exists()


def etag_or_status(base: str) -> str | int:
    try:
        return download_etag(base)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:  # restarting: the port is closed for a moment
        return 0


def download_etag(base: str) -> str:
    with urllib.request.urlopen(f"{base}/papers.db", timeout=30) as response:
        return response.headers["ETag"]


def served_counts(base: str, times: int = 9) -> set[int]:
    """The paper counts the server answers; its SQL threads answer in turn, so ask often."""
    counts = set()
    for _ in range(times):
        try:
            counts.add(site_query(base, "select count(*) as n from papers")[0]["n"])
        except OSError:  # restarting: the port is closed for a moment
            time.sleep(0.2)
    return counts


def test_the_build_updates_a_copy_while_the_site_serves_the_file(tmp_path):
    """Pages changing under an immutable server would serve a half-updated database: while
    `site serve` runs on papers.db, the incremental build writes a copy and renames it in.
    `site serve` then starts Datasette again on the new file: until then every answer is the
    old file's (Datasette reads a hard link to it, see site.ServedFile), and after it every
    answer and the download's ETag are the new one's. Once it stops, updates are in place."""
    dumps, out = previous_database(tmp_path)
    inode = out.stat().st_ino
    papers_before = rows(out, "select count(*) from papers")[0][0]
    with served(out) as base:
        etag_before = download_etag(base)
        result = run_build(dumps, out, "--incremental")
        assert result.returncode == 0, result.stderr
        assert ("papers.db is being served: updating a copy, which replaces it when done; the "
                "server starts again on it by itself within a few seconds") in result.stderr
        assert out.stat().st_ino != inode, "the served file was updated in place"
        papers_after = rows(out, "select count(*) from papers")[0][0]
        assert papers_after > papers_before
        deadline = time.monotonic() + 60
        while (counts := served_counts(base)) != {papers_after}:
            assert counts <= {papers_before, papers_after}, counts  # one whole file's answers
            assert time.monotonic() < deadline, f"still serving the old file: {counts}"
        assert download_etag(base) != etag_before
        wait_for(lambda: served_links(out) == [out.stat().st_ino], "one link, to the new file")
    assert served_counts(base, times=1) == set(), "Datasette outlived `site serve`"
    assert not (tmp_path / ".papers.db.serving").exists()
    full = tmp_path / "full" / "papers.db"
    assert run_build(dumps, full).returncode == 0
    assert contents(out) == contents(full)

    # No server now: the next update is in place.
    shutil.copy(REAL_DUMPS / LAST, dumps / "005_copy_of_the_last.txt")
    inode = out.stat().st_ino
    result = run_build(dumps, out, "--incremental")
    assert result.returncode == 0, result.stderr
    assert "being served" not in result.stderr and "adding 1 new dump to" in result.stderr
    assert out.stat().st_ino == inode
    assert rows(out, "select count(*) from dumps")[0][0] == 6


def served_links(db: Path) -> list[int]:
    """The inodes of the files `site serve` holds links to (site.ServedFile)."""
    return [link.stat().st_ino for link in db.parent.glob(f".{db.name}.serving/*/{db.name}")]


@contextmanager
def served_with_log(db: Path, log: Path):
    """`site serve` on `db`, its output in `log`; yield its address. A proxy is set for it
    that answers nothing: its checks of the server it starts must go to the server."""
    port = free_port()
    proxied = {**os.environ, "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
               "no_proxy": "", "NO_PROXY": ""}
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "neuroai_papers.site", "serve", "--db", str(db), "--port",
             str(port)], cwd=ROOT, stdout=output, stderr=output, env=proxied)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        yield base
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, log.read_text()
    # Datasette's own traceback, when it cannot open a file, may be there; never this one's.
    assert "neuroai_papers/site.py" not in log.read_text(), log.read_text()


def wait_for(condition, what: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}"
        time.sleep(0.2)


def test_a_new_file_datasette_cannot_open_leaves_the_previous_one_served(tmp_path):
    """A papers.db cut short (a copy interrupted, a partial download) renamed over the
    served one: Datasette does not start on it, and `site serve` says so and serves the
    previous file again, the download too, instead of leaving no site. The next good file
    is served as usual."""
    dumps, out = previous_database(tmp_path)
    before = out.read_bytes()
    papers_before = rows(out, "select count(*) from papers")[0][0]
    log = tmp_path / "serve.log"
    with served_with_log(out, log) as base:
        etag = download_etag(base)
        cut = tmp_path / "cut.db"
        cut.write_bytes(before[:20000])
        cut.replace(out)
        wait_for(lambda: "serving the previous one again" in log.read_text(), "the fallback")
        assert "error: Datasette did not start on the new papers.db" in log.read_text()
        wait_for(lambda: served_counts(base) == {papers_before}, "the previous file served")
        assert download_etag(base) == etag
        with urllib.request.urlopen(f"{base}/papers.db", timeout=30) as response:
            assert response.read() == before
        assert len(served_links(out)) == 1 and served_links(out) != [out.stat().st_ino]
        time.sleep(2.5)  # the cut file is not tried again
        assert log.read_text().count("did not start") == 1
        good = tmp_path / "full" / "papers.db"
        assert run_build(dumps, good).returncode == 0
        papers_after = rows(good, "select count(*) from papers")[0][0]
        assert papers_after > papers_before
        good.replace(out)
        wait_for(lambda: served_counts(base) == {papers_after}, "the next good file served")
        # The previous file's link goes once the new server answers.
        wait_for(lambda: served_links(out) == [out.stat().st_ino], "one link, to the new file")


def test_a_file_copied_over_the_served_one_is_served_anew(tmp_path):
    """`cp rebuilt.db papers.db` writes into the served file itself (the same inode), without
    the lock a build respects: `site serve` restarts Datasette on what it now holds."""
    dumps, out = previous_database(tmp_path)
    papers_before = rows(out, "select count(*) from papers")[0][0]
    good = tmp_path / "full" / "papers.db"
    assert run_build(dumps, good).returncode == 0
    papers_after = rows(good, "select count(*) from papers")[0][0]
    inode = out.stat().st_ino
    with served_with_log(tmp_path / "papers.db", tmp_path / "serve.log") as base:
        assert served_counts(base) == {papers_before}
        etag = download_etag(base)
        shutil.copyfile(good, out)
        assert out.stat().st_ino == inode
        # Until the restart (at least one poll of a second away), the download is refused
        # (plugins/download.py), not sent under the ETag of what the file held.
        assert etag_or_status(base) == 503
        wait_for(lambda: etag_or_status(base) not in (etag, 503, 0), "the restart on it")
        assert served_counts(base) == {papers_after}
        # One link again once the new server answered `site serve`'s own check (60 s or a
        # fallback if that check cannot reach it).
        wait_for(lambda: served_links(out) == [inode], "the check of the new server", 20)


def test_a_cut_file_copied_over_the_served_one_leaves_no_site_until_a_good_one(tmp_path):
    """`cp` of a file cut short writes into the served file: there is no previous file left
    to serve. `site serve` says so and waits, and serves the next good file."""
    dumps, out = previous_database(tmp_path)
    good = tmp_path / "full" / "papers.db"
    assert run_build(dumps, good).returncode == 0
    papers_after = rows(good, "select count(*) from papers")[0][0]
    log = tmp_path / "serve.log"
    with served_with_log(out, log) as base:
        shutil.copyfile(good, tmp_path / "good-copy.db")
        with out.open("r+b") as file:
            file.truncate(20000)
        wait_for(lambda: "there is no previous file to serve" in log.read_text(), "the report")
        assert served_counts(base, times=1) == set()  # no server
        time.sleep(2.5)
        assert log.read_text().count("did not start") == 1, "the cut file was tried again"
        (tmp_path / "good-copy.db").replace(out)
        wait_for(lambda: served_counts(base) == {papers_after}, "the good file served")
        wait_for(lambda: served_links(out) == [out.stat().st_ino], "one link, to the good file")


def test_links_left_by_a_killed_server_are_removed(real_db, tmp_path):
    """Each link keeps its whole file on disk; a `site serve` killed with SIGKILL cannot
    remove its own, so the next one removes those whose lock nobody holds, and leaves a
    live server's, and a folder still being made, alone."""
    import fcntl

    db = tmp_path / "papers.db"
    shutil.copy(real_db, db)
    folders = tmp_path / ".papers.db.serving"
    left, live, making = folders / "left", folders / "live", folders / "making"
    lockless = folders / "lockless"  # its removal stopped between the link and the lock
    for folder in (left, live, lockless):
        folder.mkdir(parents=True)
        (folder / "lock").touch()
        os.link(db, folder / "papers.db")
    (lockless / "lock").unlink()
    making.mkdir()
    (making / "lock").touch()
    held = os.open(live / "lock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # as a live `site serve` holds it
    try:
        with served_with_log(db, tmp_path / "serve.log"):
            assert not left.exists() and not lockless.exists()
            assert live.exists() and making.exists()
            assert served_links(db) == [db.stat().st_ino] * 2
    finally:
        os.close(held)
    assert sorted(p.name for p in folders.iterdir()) == ["live", "making"]


# A stand-in for Datasette whose starts fail while the file `mode` beside it says so: a
# fault in neither database file (the port taken, no memory), which only a stand-in can give
# at will. Otherwise it answers every request with 200.
STAND_IN = """import http.server, sys
from pathlib import Path
if (Path(__file__).parent / "mode").read_text() == "fail":
    sys.exit(1)
port = int(sys.argv[sys.argv.index("--port") + 1])
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Answer).serve_forever()
"""


def test_a_server_that_starts_on_neither_file_stops_site_serve(real_db, tmp_path):
    """If Datasette does not start on the new file, nor then on the previous one it served a
    moment ago, the fault is in neither file: `site serve` stops with an error (for a
    service manager to see and restart it) instead of serving nothing and waiting."""
    db = tmp_path / "papers.db"
    shutil.copy(real_db, db)
    stand_in = tmp_path / "stand_in.py"
    stand_in.write_text(STAND_IN)
    mode = tmp_path / "mode"
    mode.write_text("ok")
    port = free_port()
    script = ("import sys\nfrom pathlib import Path\n"
              "from neuroai_papers.site import serve_until_stopped\n"
              "db = Path(sys.argv[1])\n"
              "sys.exit(serve_until_stopped(db, [sys.executable, sys.argv[2], '-i', str(db), "
              "'--port', sys.argv[3]], '127.0.0.1', int(sys.argv[3]), render=False))\n")
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-c", script, str(db), str(stand_in),
                                    str(port)], cwd=ROOT, stdout=output, stderr=output)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process)
        mode.write_text("fail")
        new = tmp_path / "new.db"
        shutil.copy(real_db, new)
        new.replace(db)
        assert process.wait(timeout=60) == 1, log.read_text()
    finally:
        process.kill()
        process.wait()
    text = log.read_text()
    assert "serving the previous one again" in text
    assert "error: Datasette did not start on the previous papers.db either" in text
    assert "no previous file to serve" not in text and "Traceback" not in text
    assert not (tmp_path / ".papers.db.serving").exists()


def test_a_full_build_never_leaves_a_killed_updates_journal_beside_its_new_file(real_db, tmp_path):
    """SQLite pairs a journal with a database by name only: renamed over a file with a hot
    journal, the new file would get the old file's pages played back into it."""
    db = tmp_path / "papers.db"
    shutil.copy(real_db, db)
    interrupt_an_update(db)
    assert journal(db).exists()
    result = run_build(REAL_DUMPS, db)
    assert result.returncode == 0, result.stderr
    assert not journal(db).exists()
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert contents(db) == contents(real_db)


def test_a_journal_whose_file_was_removed_is_not_played_into_the_next_build(tmp_path):
    """`make clean` (or `rm papers.db`) after a killed update removed the file and left its
    hot journal: the next full build put its new file beside it, and the first connection
    that may write (the next `make build` or `make serve`) played the old file's pages back
    into it: "database disk image is malformed"."""
    dumps, db = previous_database(tmp_path)
    interrupt_an_update(db)
    assert journal(db).exists()
    db.unlink()
    result = run_build(dumps, db)
    assert result.returncode == 0, result.stderr
    assert not journal(db).exists()
    result = run_build(dumps, db, "--incremental")  # a writer: it would play a journal back
    assert result.returncode == 0, result.stderr
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_a_journal_sqlite_ignores_is_removed_and_the_file_left_alone(real_db, tmp_path):
    """A journal whose first byte is zero is one SQLite wrote the header of, but had not yet
    synced, when its update was killed: the database was not touched yet, SQLite ignores the
    journal and leaves it there, and settling removes it."""
    from neuroai_papers.write import settle

    db = tmp_path / "papers.db"
    shutil.copy(real_db, db)
    before = db.read_bytes()
    journal(db).write_bytes(b"\0" * 28 + before[:4096])
    settle(db)
    assert not journal(db).exists() and db.read_bytes() == before


def test_a_reader_that_holds_the_file_fails_the_update_cleanly(tmp_path, monkeypatch):
    """A notebook's query left open keeps SQLite's read lock: the update waits for it, then
    fails in one line, having written nothing, and the reader goes on."""
    import sqlite3

    dumps, out = previous_database(tmp_path)
    before = out.read_bytes()
    reader = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
    open_query = reader.execute("select id from papers")
    first = open_query.fetchone()  # not read to the end: the read lock stays
    log = io.StringIO()
    monkeypatch.setattr(build.Progress.__init__, "__defaults__", (log,))
    monkeypatch.setattr(build.DatabaseUpdate, "READERS_WAIT_SECONDS", 1)
    status = build.main(["--dumps", str(dumps), "--out", str(out), "--incremental"])
    assert status == build.EXIT_BUILD_FAILED, log.getvalue()
    assert (f"cannot update {out}: database is locked (another program is still reading it "
            "after 1 s: close it and build again)") in log.getvalue()
    assert open_query.fetchone() != first  # the reader goes on, undisturbed
    reader.close()
    assert out.read_bytes() == before and not journal(out).exists()
    assert run_build(dumps, out, "--incremental").returncode == 0  # once it is closed


def test_removing_a_dump_makes_the_database_stale(tmp_path):
    """`make serve` and `make lab` rebuild when an input is newer than papers.db: removing
    or renaming a dump changes no file's date, only its folder's."""
    import os

    from neuroai_papers.site import database_inputs, stale

    for folder in ("dumps", "reference", "neuroai_papers"):
        (tmp_path / folder).mkdir()
    for name in ("dumps/a.txt", "dumps/b.txt", "metadata.yml", "reference/topics.yml",
                 "neuroai_papers/build.py"):
        (tmp_path / name).write_text(name)
    db = tmp_path / "papers.db"
    db.write_text("built")
    past = db.stat().st_mtime - 60
    for path in tmp_path.rglob("*"):
        if path != db:
            os.utime(path, (past, past))
    assert not stale(db, database_inputs(tmp_path))
    (tmp_path / "dumps" / "b.txt").unlink()
    assert stale(db, database_inputs(tmp_path))


def children(pid: int) -> list[int]:
    return [int(child) for child in
            Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def gone(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # exited, waiting for a parent to collect it
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 0), (signal.SIGHUP, 0),
                                          (signal.SIGINT, 0), (signal.SIGKILL, -9)])
def test_stopping_site_serve_stops_datasette(real_db, tmp_path, signum, code):
    """However `site serve` is stopped (a service manager's SIGTERM, a closed terminal's
    SIGHUP, Ctrl-C, or SIGKILL), Datasette does not outlive it: an orphan would serve
    without the lock that keeps builds from updating its file in place."""
    db = tmp_path / "papers.db"
    shutil.copy(real_db, db)
    port = free_port()
    log = tmp_path / "serve.log"  # a file, not a pipe: an orphan would hold a pipe open
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "neuroai_papers.site", "serve", "--db", str(db), "--port",
             str(port)], cwd=ROOT, stdout=output, stderr=output)
    datasette = None
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process)
        (datasette,) = children(process.pid)
        process.send_signal(signum)
        assert process.wait(timeout=30) == code
        assert "Traceback" not in log.read_text(), log.read_text()
        assert gone(datasette), "Datasette outlived `site serve`"
    finally:
        process.kill()
        process.wait()
        if datasette and not gone(datasette, seconds=0):
            with suppress(ProcessLookupError):
                os.kill(datasette, signal.SIGKILL)


def test_serving_a_file_not_named_papers_db_is_refused(real_db, tmp_path):
    """Datasette names a database after its file; the site's pages address `papers`."""
    other = tmp_path / "other.db"
    shutil.copy(real_db, other)
    result = subprocess.run([sys.executable, "-m", "neuroai_papers.site", "serve", "--db",
                             str(other), "--port", str(free_port())],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--db must name a file called papers.db, got other.db" in result.stderr


@pytest.mark.parametrize("lock", ["flock", "sqlite"])
def test_site_serve_stops_at_once_while_it_waits_for_an_update_in_place(real_db, tmp_path, lock):
    """Before serving, `site serve` waits for an update in place of the file to end: for the
    build's flock (write.update_lock), then for SQLite's write lock (an update killed
    before its journal was played back, or a SQLite writer other than the build). A SIGTERM
    meanwhile stops it within a second or so, not once the minute it may wait is over."""
    import fcntl
    import sqlite3

    db = tmp_path / "papers.db"
    shutil.copy(real_db, db)
    writer = sqlite3.connect(db, isolation_level=None)
    held = os.open(db, os.O_RDONLY)
    if lock == "sqlite":
        writer.execute("BEGIN IMMEDIATE")
    else:
        fcntl.flock(held, fcntl.LOCK_EX)
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "neuroai_papers.site", "serve", "--db", str(db), "--port",
             str(free_port())], cwd=ROOT, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 30
        while not any(Path(link).resolve() == db for link in Path(f"/proc/{process.pid}/fd").iterdir()
                      if Path(link).is_symlink()):  # it holds the file: it is waiting for the lock
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(0.5)
        asked = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert time.monotonic() - asked < 5, "the stop waited for the lock"
        assert "Traceback" not in log.read_text() and "serving" not in log.read_text()
    finally:
        process.kill()
        process.wait()
        writer.close()
        os.close(held)


def test_waiting_for_the_write_lock_gives_up_after_its_time_and_takes_a_freed_lock(tmp_path):
    import sqlite3
    import threading

    from neuroai_papers.write import LOCK_POLL_SECONDS, begin_immediate

    db = tmp_path / "papers.db"
    writer = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    writer.execute("create table t (x)")
    writer.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(db, isolation_level=None, timeout=LOCK_POLL_SECONDS,
                             check_same_thread=False)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        begin_immediate(waiter, seconds=1)
    assert time.monotonic() - started >= 1
    threading.Timer(0.5, lambda: writer.execute("ROLLBACK")).start()
    begin_immediate(waiter, seconds=10)  # the lock, once the writer lets go
    waiter.execute("insert into t values (1)")
    waiter.execute("COMMIT")
    assert rows(db, "select x from t") == [(1,)]


def test_site_serve_on_a_taken_port_says_so_before_building(tmp_path):
    """`make serve` found the port taken only when Datasette started, after the build and the
    notebooks (minutes on a large corpus), and said "Datasette stopped (exit code 1)"."""
    import socket

    from conftest import repository_copy

    repo = repository_copy(tmp_path / "repo")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "neuroai_papers.site", "serve", "--port",
                                 str(port)], cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"error: cannot serve on 127.0.0.1:{port}: Address already in use "
                             f"(another server, a second `make serve`?): stop it, or serve on "
                             f"another port with --port\n")
    assert not (repo / "papers.db").exists()
