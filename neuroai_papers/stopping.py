"""Stopping a build on Ctrl-C (SIGINT) or SIGTERM: one line, and nothing left behind.

While `build.main` builds, either signal raises Interrupted wherever the build is (after the
SQLite statement that runs, if one does), and the build leaves its `with` blocks as on any
error: the temporary database and its scratch files are deleted, the worker processes are
killed and waited for, an update in place is rolled back. Left to their default, SIGINT
printed a traceback and SIGTERM killed the build outright, leaving its scratch files (29 MB
at 20,000 records) and multiprocessing's semaphores until the next build.

One signal is enough: the next ones are dropped while the clean-up runs, which a second
Ctrl-C would cut short. So are the ones that come once the new database is being put in
place (the rename of a full build, the commit of an update: `putting_in_place`): from then
on the build is done, and saying "nothing written" would be false.

A closed output (`| head`) stops the build the same way, as SIGPIPE would have stopped it
had Python not set it aside: `stop_for_closed_output`.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
armed = False  # whether a stop signal raises Interrupted now
placing = False  # within putting_in_place
dropped: int | None = None  # a stop signal that came while placing, in case the step fails


class Interrupted(BaseException):
    """The build was asked to stop by a signal. A BaseException, as KeyboardInterrupt is:
    no `except Exception` takes it for a failure of its own."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """What a shell reports for a command its signal stopped: 128 + the signal number."""
        return 128 + self.signum


def on_stop_signal(signum: int, frame) -> None:
    global armed, dropped
    if armed:
        armed = False  # one is enough: the clean-up it starts must run to its end
        raise Interrupted(signum)
    if placing:
        dropped = signum


def stop_for_closed_output() -> None:
    """The build's output was closed (`build_db.py 2>&1 | head` once head has its lines):
    stop as SIGPIPE would, as at a stop signal (raise Interrupted, exit code 141), where one
    would stop the build; elsewhere the build is done or has failed, and its last lines
    only have no reader."""
    global armed
    if armed:
        armed = False
        raise Interrupted(signal.SIGPIPE)


@contextmanager
def stop_signals_handled() -> Iterator[None]:
    """Take SIGINT and SIGTERM for the block: within its `stoppable` blocks they raise
    Interrupted (once), elsewhere they are dropped (the build has failed or is done, and
    only says so); the previous handlers come back after the block."""
    global armed
    if threading.current_thread() is not threading.main_thread():  # only it has handlers
        yield
        return
    previous = {signum: signal.signal(signum, on_stop_signal) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        armed = False
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def stoppable() -> Iterator[None]:
    """Within the block, a stop signal raises Interrupted (see stop_signals_handled)."""
    global armed
    armed = True
    try:
        yield
    finally:
        armed = False


@contextmanager
def putting_in_place() -> Iterator[None]:
    """The step that puts the new database in place (the rename, the commit): a stop signal
    from here on is dropped, as the build, once the step is done, is done. A signal that
    came before the step raised before it began. If the step fails, nothing was written:
    a stop asked for meanwhile (an update's commit may wait a minute for readers) is the
    answer, Interrupted; otherwise signals raise again."""
    global armed, placing, dropped
    was, armed, placing, dropped = armed, False, True, None
    try:
        yield
    except BaseException:
        armed = was
        if dropped is not None:
            raise Interrupted(dropped)
        raise
    finally:
        placing = False


@contextmanager
def started_deaf_to_ctrl_c() -> Iterator[None]:
    """Start worker processes in the block with SIGINT blocked, which they inherit (and
    keep: Python acts on no signal it never receives). Ctrl-C reaches every process of the
    terminal's group, and a worker would print its own traceback, or report a failure of
    its own; the build decides what a stop does, and kills its workers. SIGTERM stays as it
    is, for multiprocessing to end a daemon worker at exit. (multiprocessing starts its
    resource tracker the same way.)"""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:  # a Ctrl-C that came meanwhile is acted on here, in this process
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
