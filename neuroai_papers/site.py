"""How the site is served: the one place that holds Datasette's options.

`python -m neuroai_papers.site serve` builds papers.db and renders the notebooks if
they are missing or older than their inputs, then runs Datasette on
http://127.0.0.1:8001, and again on the new file whenever a build replaces papers.db.
The tests and the publish
step take their options from `datasette_options()` too, so the served site, the
tested site and the published site are the same.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import suppress
from functools import partial
from pathlib import Path

from .build import ROOT
from .build import main as build_main
from .parallel import die_with_parent
from .write import hold_while_serving, settle

DEFAULT_DB = ROOT / "papers.db"

# Limits that keep a public site up under hostile SQL; see README "Read-only and safe".
# Python values, as Datasette(settings=...) takes them: there a string "off" is true, and
# the in-process tests' server suggested facets that the served site does not.
SETTINGS = {
    # The slowest queries of the site's own pages at a million papers (a common word's
    # ranking and its count, over half the papers) take about 1.1 s each on a slow two-core
    # machine; the rows of such a search take 0.15 s (plugins/search_plan.py).
    "sql_time_limit_ms": 1500,
    "max_returned_rows": 1000,
    "facet_time_limit_ms": 400,
    "facet_suggest_time_limit_ms": 100,
    "suggest_facets": False,
    "default_page_size": 50,
    "allow_download": True,
    "allow_facet": True,
    "default_cache_ttl": 300,
    "num_sql_threads": 3,
}


def site_paths(root: Path = ROOT) -> dict[str, Path]:
    return {
        "metadata": root / "metadata.yml",
        "plugins": root / "plugins",
        "templates": root / "templates",
        "static": root / "static",
        "notebooks": root / "build" / "notebooks",
    }


def datasette_options(root: Path = ROOT) -> list[str]:
    """Return the Datasette command-line options (everything but the database and port)."""
    paths = site_paths(root)
    options = ["--metadata", str(paths["metadata"]), "--plugins-dir", str(paths["plugins"])]
    if paths["templates"].is_dir():
        options += ["--template-dir", str(paths["templates"])]
    for mount in ("static", "notebooks"):
        if paths[mount].is_dir():
            options += ["--static", f"{mount}:{paths[mount]}"]
    return options + setting_options()


def setting_options() -> list[str]:
    """Return SETTINGS as Datasette's command line takes them (booleans as on/off)."""
    def text(value) -> str:
        return ("on" if value else "off") if isinstance(value, bool) else str(value)

    return [part for name, value in SETTINGS.items() for part in ("--setting", name, text(value))]


def serve_command(db: Path, host: str = "127.0.0.1", port: int = 8001) -> list[str]:
    """Return the full command that serves `db` read-only (immutable)."""
    return ["datasette", "serve", "-i", str(db), "--host", host, "--port", str(port),
            *datasette_options()]


def free_port() -> int:
    """Return a free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Straight to the server: a proxy set for the machine (http_proxy) must not answer for it.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_until_up(base: str, process: subprocess.Popen, seconds: float = 60) -> None:
    """Return once the Datasette at `base` answers (any HTTP status: a site that keeps
    /-/versions.json to some visitors answers 403); raise RuntimeError if it exits or stays
    silent."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"datasette at {base} exited with code {process.returncode}")
        try:
            with DIRECT.open(f"{base}/-/versions.json", timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"datasette at {base} did not answer within {seconds:.0f} s")


def stale(output: Path, inputs: list[Path]) -> bool:
    """True if `output` is missing or older than one of `inputs` (files or folders)."""
    if not output.exists():
        return True
    made = output.stat().st_mtime
    return any(path.stat().st_mtime > made for path in inputs if path.exists())


def database_inputs(root: Path = ROOT) -> list[Path]:
    # The folder itself too: removing or renaming a dump changes only the folder's date.
    return [root / "dumps", *root.joinpath("dumps").iterdir(), root / "metadata.yml",
            *root.joinpath("reference").iterdir(), *root.joinpath("neuroai_papers").glob("*.py")]


def notebook_inputs(db: Path) -> list[Path]:
    # explore.ipynb scores the topic rules against the hand labels: new labels, new figures.
    return [db, *ROOT.joinpath("notebooks").glob("*.ipynb"), ROOT / "tests" / "topic_labels.csv"]


def prepare(db: Path, always: bool = False) -> int:
    """Build papers.db and render the notebooks when their inputs changed; return an exit code.

    The build is incremental: it reuses what `db` already holds when that gives the same
    result, and builds everything otherwise. `always` rebuilds whatever the file dates say
    (a downloaded database is newer than the dumps without being built from them).
    """
    if always or stale(db, database_inputs()):
        status = build_main(["--out", str(db), "--incremental"])
        if status != 0:
            return status
    else:
        # Said, so that a second `make serve` that starts at once is not taken for one that
        # skipped the build by mistake.
        print(f"{db.name} is up to date (no dump, manifest, metadata, reference file or build "
              f"code is newer): not rebuilt", file=sys.stderr, flush=True)
    return render_stale_notebooks(db, always)


def write_page(target: Path, text: str) -> None:
    """Write `text` to `target` through a temporary file in the same folder, renamed over
    it once whole: a render that fails or is stopped meanwhile leaves the previous page
    intact (writing the page itself emptied it first, and a failure left half of it).

    The temporary (`.explore.html.<random>.tmp`) is hidden and not *.html: the publish
    step copies the *.html pages and skips hidden files."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)  # as any page is written: mkstemp's file is private
        os.replace(temporary, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def remove_pages_being_written(folder: Path) -> None:
    """Remove the temporary pages a killed render left in `folder` (write_page), which
    Datasette would serve by their names."""
    for leftover in folder.glob(".*.html.*.tmp"):
        with suppress(FileNotFoundError):  # another render's cleanup was first
            leftover.unlink()


def render_stale_notebooks(db: Path, always: bool = False) -> int:
    """Render the notebooks the site links to, if a page is missing or older than `db` or
    the notebooks; return an exit code. In a child process: nbclient's kernels reset this
    process's signal handlers (SIGTERM) when they end, and importing nbconvert takes seconds."""
    out = site_paths()["notebooks"]
    if out.is_dir():  # whether the pages are rendered again or not: never serve half a page
        remove_pages_being_written(out)
    # Every page, not the first one alone: a render stopped after the first notebook (Ctrl-C)
    # left the next one missing or old, and the first one's date hid it from then on.
    pages = [out / f"{path.stem}.html" for path in ROOT.joinpath("notebooks").glob("*.ipynb")]
    if not (always or any(stale(page, notebook_inputs(db)) for page in pages)):
        print(f"the notebooks' pages in {out.relative_to(ROOT)}/ are up to date: not rendered "
              f"again", file=sys.stderr, flush=True)
        return 0
    return subprocess.run([sys.executable, "-m", "neuroai_papers.notebooks", "--db", str(db),
                           "--out", str(out)], cwd=ROOT).returncode


FileVersion = tuple[int, int, int]  # inode, size, modification time (ns)


def stat_version(stat: os.stat_result) -> FileVersion:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def file_version(path: Path) -> FileVersion | None:
    try:
        return stat_version(path.stat())
    except FileNotFoundError:
        return None


def descriptor_version(handle: int) -> FileVersion:
    return stat_version(os.fstat(handle))


class ServedFile:
    """One version of `db` while Datasette serves it: the shared lock that keeps builds from
    updating it in place (write.hold_while_serving), and a hard link to it that Datasette
    reads, in a folder of its own beside `db` (`.papers.db.serving/<random>/papers.db`).

    Datasette opens its connections lazily, by path, and the download opens the file at
    each request: on `db` itself, a file renamed over it would be read by the old server
    in the seconds before its restart. The link keeps its path on this one file until the
    server stops, and keeps the file for a restart on it again if the server on a new file
    fails to start. A file system without hard links gets `db` itself.

    The folder's `lock` file is locked for as long as the link is used: a folder whose lock
    can be taken is one a killed `site serve` left (remove_stale_links)."""

    # What link() may meet on a file system without hard links (FAT, some network mounts).
    NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV, errno.ENOSYS}

    def __init__(self, db: Path):
        self.folder: Path | None = None
        self.lock: int | None = None
        while True:
            # The lock first, so that no build can start an update in place between the
            # two: then an interrupted update's journal is played back, as Datasette reads
            # the file immutable, ignoring SQLite's journals and locks.
            self.handle = hold_while_serving(db)
            try:
                settle(db)
                self.version = descriptor_version(self.handle)
                self.path = self.link(db)
                if self.path == db or self.path.stat().st_ino == self.version[0]:
                    return
            except BaseException:
                self.close()
                raise
            self.close()  # another file was renamed to the name meanwhile: that one

    def link(self, db: Path) -> Path:
        for attempt in range(3):
            served_links(db).mkdir(exist_ok=True)
            try:
                self.folder = Path(tempfile.mkdtemp(dir=served_links(db)))
                break
            except FileNotFoundError:  # another server's close removed the emptied folder
                if attempt == 2:
                    raise
        # The lock before the link: a folder with a link and no lock is a stale one.
        self.lock = os.open(self.folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        path = self.folder / db.name
        try:
            os.link(db, path)
        except OSError as error:
            if error.errno not in self.NO_HARD_LINKS:
                raise
            return db
        return path

    def unchanged(self) -> bool:
        """True if the file is still as it was when serving began (nothing wrote into it
        without the lock: a `cp` over papers.db writes into the served file itself)."""
        return descriptor_version(self.handle) == self.version

    def close(self) -> None:
        if self.handle is not None:
            os.close(self.handle)  # releases the lock
            self.handle = None
        if self.folder is not None:
            try:
                remove_links(self.folder)
            finally:
                if self.lock is not None:
                    os.close(self.lock)
                self.folder = self.lock = None


def remove_links(folder: Path) -> None:
    """Remove a folder of ServedFile: the link first, the lock last (a link left without
    its lock, by a stop in between, is then a stale one for remove_stale_links)."""
    with suppress(FileNotFoundError):  # removed by another server meanwhile
        for path in sorted(folder.iterdir(), key=lambda path: path.name == "lock"):
            path.unlink(missing_ok=True)
        folder.rmdir()
    with suppress(OSError):  # the last server's: no folder is left behind
        folder.parent.rmdir()


def served_links(db: Path) -> Path:
    return db.with_name(f".{db.name}.serving")


def remove_stale_links(db: Path) -> None:
    """Remove the links a killed `site serve` left (each keeps its whole file on disk): those
    whose folder's lock nobody holds, or that have no lock (the lock is made before the link
    and removed after it). A folder without its link yet may be another server's in the
    making: it is left alone. A folder that vanishes meanwhile was another server's, closed."""
    try:
        folders = list(served_links(db).iterdir())
    except FileNotFoundError:
        return
    for folder in folders:
        linked = folder / db.name
        try:
            # The link again after the lock: a live server removing its folder unlinks the
            # link before the lock, so a link still there without a held lock is stale.
            if linked.exists() and not holds_its_lock(folder) and linked.exists():
                remove_links(folder)
        except FileNotFoundError:
            continue


def holds_its_lock(folder: Path) -> bool:
    """True if a live server holds the folder's lock."""
    try:
        lock = os.open(folder / "lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(lock)
    return False


def address_taken(host: str, port: int) -> str | None:
    """Return why a server cannot listen on `host`:`port` (the port taken, an address this
    machine does not have), or None if it can. The socket is bound as Datasette's server
    (uvicorn) binds its own: IPv6 for a host with a colon, else IPv4, with SO_REUSEADDR, so
    that a port left in TIME_WAIT is not taken for a used one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        return error.strerror or str(error)
    return None


def check_address(host: str, port: int) -> str:
    """The address this machine reaches the server at (a wildcard host on loopback)."""
    reachable = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{reachable}]:{port}" if ":" in reachable else f"http://{reachable}:{port}"


def serve_until_stopped(db: Path, command: list[str], host: str, port: int,
                        render: bool, poll: float = 1.0) -> int:
    """Run Datasette on `db` until it exits or this process is stopped, and start it again
    on the new file each time a build replaces `db`; return an exit code.

    `command` serves `db`; it is run on the served file's link instead (see ServedFile).
    A build while the site serves writes a new file and renames it in (write.update_lock).
    Datasette, serving immutable, would go on answering from the old file and offer it for
    download with the old file's ETag (computed at start). Restarting is the one way it
    reads the new file. Datasette's own --reload also watches the file, but it turns off the
    cache headers and restarts on every change of the code too; this restarts on a new
    database only, once it has stayed the same for one poll (a file copied in by hand may
    still be growing). If Datasette does not start on a new file (not a database, cut
    short), the previous file is served again, and the new one is left until another comes;
    if there is no previous file to serve (a `cp` wrote the new file into it), the site
    stays down, says so, and waits for another file. If Datasette does not start on the
    previous file again either, the fault is in neither file: this stops, with an error.

    Datasette runs in its own session: Ctrl-C reaches this process alone, which stops
    Datasette and waits for it; SIGTERM and SIGHUP do the same, and if this process is
    killed, Linux kills Datasette (parallel.die_with_parent).
    """
    server = None
    held: list[ServedFile] = []  # the files this process holds: closed however it ends
    handlers = {signum: signal.signal(signum, interrupt) for signum in STOP_SIGNALS}
    try:
        remove_stale_links(db)
        held.append(ServedFile(db))
        served, previous = held[-1], None  # previous: served before a restart, until it works
        refused: FileVersion | None = None  # a file Datasette did not start on
        falling_back = False  # serving the previous file again: nothing new to render
        while True:
            print(f"serving {db.name} on http://{host}:{port}/", flush=True)
            server = subprocess.Popen(
                [str(served.path) if part == str(db) else part for part in command],
                start_new_session=True, preexec_fn=partial(die_with_parent, os.getpid()))
            if previous is not None or refused is not None:  # not the first start
                try:
                    wait_until_up(check_address(host, port), server)
                except RuntimeError as error:
                    if stop_server(server):
                        return 0
                    if falling_back:
                        # Nor on the file it served a moment ago: the fault is in neither
                        # file (the port taken, memory, a machine too slow for the check).
                        # Stop, for whoever runs the site to see, rather than serve nothing.
                        print(f"error: Datasette did not start on the previous {db.name} "
                              f"either ({error}): stopping", file=sys.stderr, flush=True)
                        # (a positive code of its own, or 1: not 143 for the SIGTERM that
                        # stop_server sent a server that never answered)
                        return server.returncode if server.returncode > 0 else 1
                    refused = served.version
                    close_held(held, served)
                    if previous is not None and previous.unchanged():
                        served, previous, falling_back = previous, None, True
                        print(f"error: Datasette did not start on the new {db.name} ({error}): "
                              f"serving the previous one again", file=sys.stderr, flush=True)
                        continue
                    print(f"error: Datasette did not start on {db.name} ({error}), and there "
                          f"is no previous file to serve: waiting for another {db.name}",
                          file=sys.stderr, flush=True)
                    if previous is not None:
                        close_held(held, previous)
                    previous = None
                    wait_for_a_new_file(db, None, None, refused, poll)
                    held.append(ServedFile(db))
                    served, falling_back = held[-1], False
                    continue
                if previous is not None:
                    close_held(held, previous)
                    previous = None
                if render and not falling_back and render_stale_notebooks(db) != 0:
                    print("warning: the notebooks could not be rendered for the new file",
                          file=sys.stderr, flush=True)
                falling_back = False
            if not wait_for_a_new_file(db, served, server, refused, poll):
                print(f"error: Datasette stopped (exit code {server.returncode})",
                      file=sys.stderr, flush=True)
                return exit_code(server.returncode)
            # The new file is locked before anything else, so that a second build updates a
            # copy of it too; the old file's lock goes once the new server answers.
            held.append(ServedFile(db))
            print(f"{db.name} was rebuilt: restarting the server on the new file", flush=True)
            if stop_server(server):
                return 0
            previous, served = served, held[-1]
    except (OSError, sqlite3.Error) as error:
        print(f"error: cannot serve {db}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(server)
        for served_file in held:
            with suppress(OSError):
                served_file.close()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def close_held(held: list[ServedFile], served_file: ServedFile) -> None:
    served_file.close()  # before it leaves the list: a stop in between still closes it
    held.remove(served_file)


def wait_for_a_new_file(db: Path, served: ServedFile | None, server: subprocess.Popen | None,
                        refused: FileVersion | None, poll: float) -> bool:
    """Return True once `db` is another file than the one served (or than `refused`), or the
    served one was written into, and has stayed the same for one poll; False if Datasette
    exits first. With no server, wait for as long as it takes."""
    seen = file_version(db)
    while server is None or server.poll() is None:
        time.sleep(poll)
        now = file_version(db)
        if now and now == seen and now != refused and (
                served is None or now[0] != served.version[0] or not served.unchanged()):
            return True
        seen = now
    return False


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def interrupt(signum, frame):
    """SIGTERM and SIGHUP stop serving as Ctrl-C does: Datasette is stopped and waited for."""
    raise KeyboardInterrupt


def exit_code(returncode: int) -> int:
    """A child's return code as a shell reports it: 128 + N for a child killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def stop_server(server: subprocess.Popen | None) -> bool:
    """Stop Datasette (SIGTERM, then SIGKILL after 10 s) and wait for it; return True if
    this process was asked to stop meanwhile (Ctrl-C, SIGTERM, SIGHUP): the request is kept
    for the caller, not raised halfway through the wait, which would leave Datasette running."""
    if server is None or server.poll() is not None:
        return False
    asked: list[int] = []
    handlers = {signum: signal.signal(signum, lambda signum, frame: asked.append(signum))
                for signum in (signal.SIGINT, *STOP_SIGNALS)}
    try:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return bool(asked)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neuroai_papers.site")
    parser.add_argument("command", choices=["serve", "prepare"],
                        help="serve: prepare, then run Datasette; prepare: build and render only")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    if args.db.name != DEFAULT_DB.name:
        # Datasette names a database after its file, and the site's metadata, canned queries
        # and pages all address the database `papers`.
        parser.error(f"--db must name a file called {DEFAULT_DB.name}, got {args.db.name}")
    default = args.db.resolve() == DEFAULT_DB  # `--db papers.db` in the repository too
    if args.command == "serve" and (taken := address_taken(args.host, args.port)):
        # Before the build and the notebooks, which take minutes on a large corpus: Datasette
        # found the port taken only then.
        print(f"error: cannot serve on {args.host}:{args.port}: {taken} (another server, a "
              f"second `make serve`?): stop it, or serve on another port with --port",
              file=sys.stderr)
        return 2
    try:
        if default and (status := prepare(args.db)) != 0:
            return status
    except KeyboardInterrupt:
        return 130
    if args.command == "prepare":
        return 0
    command = serve_command(args.db, args.host, args.port)
    executable = Path(sys.executable).with_name("datasette")
    return serve_until_stopped(args.db, [str(executable), *command[1:]], args.host, args.port,
                               render=default)


if __name__ == "__main__":
    sys.exit(main())
