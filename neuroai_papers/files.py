"""What kind of file a path names, told from its status alone, without opening it.

The build refuses any input that is not a regular file before it reads it: opening a named
pipe waits until something writes into it (forever, for a build), and a link to /dev/zero
reads until memory runs out.
"""

from __future__ import annotations

import stat
from pathlib import Path

KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
         (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
         (stat.S_ISSOCK, "a socket"))


def special_file_kind(path: Path) -> str | None:
    """Return what `path` is ("a named pipe (FIFO)") when, links followed, it is not a
    regular file; None when it is one. Raise OSError if it cannot be looked at (a broken
    link)."""
    mode = path.stat().st_mode
    if stat.S_ISREG(mode):
        return None
    kind = next((name for is_kind, name in KINDS if is_kind(mode)), "not a regular file")
    if path.is_symlink():
        kind += f" (a link to {path.resolve()})"
    return kind
