"""The database download (`/papers.db`): with its length, in ranges, and HEAD without the file.

Datasette 0.65 sends the file in 4 KiB reads, each through a thread, with both a
Content-Length and "Transfer-Encoding: chunked" (a client then sees no length), takes no
Range (a download cut off at 3 of 4.6 GB starts again from nothing), and answers HEAD with
the whole file. This route answers the same URL first (plugin routes come before
Datasette's own), after Datasette's own view has made every decision about the request:
permissions, a missing or mutable database, `allow_download`, the ETag and a 304.
Only the sending is new:
- one Range of bytes (`bytes=a-b`, `bytes=a-`, `bytes=-n`) gets 206 with its part, a range
  past the end gets 416; several ranges get the whole file (HTTP lets a server ignore Range,
  and no download tool asks for several);
- If-Range with a validator other than the current ETag gets the whole file, so a resumed
  download never joins two different files;
- HEAD gets the headers alone;
- the file goes out in 1 MiB reads.
The ETag is Datasette's (the sha256 of the file), computed in a thread when the server
starts, not in the event loop at the first page that asks for it (about 2 s at a million
papers, while every other request waited). It is the ETag of the file the server started
on: if another file has been renamed to its name since (a build while the site serves; see
neuroai_papers/site.py), or the file was written into (`cp` over it), the download is
refused with 503 until the server is started on it, rather than sent under the old file's
ETag, which a resumed download would join to the old file's first part.
"""

from __future__ import annotations

import asyncio
import os
import re
from email.utils import formatdate

from datasette import hookimpl
from datasette.utils import tilde_decode
from datasette.utils.asgi import AsgiFileDownload, Response
from datasette.views.database import DatabaseDownload

CHUNK_BYTES = 1 << 20
ONE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def requested_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """Return the (first, last) byte the Range header asks for, None to send the whole file
    (no header, one not understood, several ranges), or "unsatisfiable"."""
    if not header:
        return None
    match = ONE_RANGE.fullmatch(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":  # the last n bytes
        suffix = int(last)
        return (max(size - suffix, 0), size - 1) if suffix and size else "unsatisfiable"
    first = int(first)
    last = size - 1 if last == "" else min(int(last), size - 1)
    if first > last:
        # "bytes=5-2" is not a valid range (ignored); one that starts past the end is not
        # satisfiable.
        return "unsatisfiable" if first >= size else None
    return first, last


class RangedFile:
    """The file of a download, or the part of it a Range asks for, as an ASGI response."""

    def __init__(self, download: AsgiFileDownload, request, db):
        self.path = download.filepath
        self.request = request
        self.db = db
        self.headers = {key: value for key, value in download.headers.items()
                        if key.lower() != "transfer-encoding"}
        self.headers["content-disposition"] = f'attachment; filename="{download.filename}"'
        self.headers["content-type"] = download.content_type
        self.headers["accept-ranges"] = "bytes"

    def wanted_range(self, size: int, modified: str):
        if_range = self.request.headers.get("if-range")
        if if_range is not None and if_range not in (self.headers.get("Etag"), modified):
            return None  # the client holds part of another file: send this one whole
        return requested_range(self.request.headers.get("range"), size)

    async def asgi_send(self, send) -> None:
        with open(self.path, "rb") as file:
            stat = os.fstat(file.fileno())
            if started_on(self.db) != identity(stat):
                await send_replaced(send)
                return
            size = stat.st_size
            modified = formatdate(stat.st_mtime, usegmt=True)
            headers = {**self.headers, "last-modified": modified}
            wanted = self.wanted_range(size, modified)
            if wanted == "unsatisfiable":
                headers["content-range"] = f"bytes */{size}"
                await self.start(send, 416, headers, 0)
                await send({"type": "http.response.body", "body": b""})
                return
            status, (first, last) = (200, (0, size - 1)) if wanted is None else (206, wanted)
            if status == 206:
                headers["content-range"] = f"bytes {first}-{last}/{size}"
            await self.start(send, status, headers, last - first + 1)
            if self.request.method == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            await self.send_bytes(send, file.fileno(), first, last + 1)

    @staticmethod
    async def start(send, status: int, headers: dict, length: int) -> None:
        headers["content-length"] = str(length)
        await send({"type": "http.response.start", "status": status,
                    "headers": [[key.lower().encode("latin1"), value.encode("latin1")]
                                for key, value in headers.items()]})

    @staticmethod
    async def send_bytes(send, fd: int, start: int, end: int) -> None:
        position = start
        while position < end:
            chunk = await asyncio.to_thread(os.pread, fd, min(CHUNK_BYTES, end - position),
                                            position)
            if not chunk:  # the file shrank under us: end the body short, as a cut connection
                raise OSError(f"the file ended at byte {position} of {end}")
            position += len(chunk)
            await send({"type": "http.response.body", "body": chunk,
                        "more_body": position < end})
        if start == end:
            await send({"type": "http.response.body", "body": b""})


def identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def started_on(db) -> tuple[int, int, int, int]:
    """Return the identity of the file `db` had when the server started (recorded by the
    startup hook, or else at its first download): its device and inode, and its size and
    date, which change if something writes into it (`cp` over the served file)."""
    if not hasattr(db, "started_on"):
        db.started_on = identity(os.stat(db.path))
    return db.started_on


async def send_replaced(send) -> None:
    body = (b"The database file was replaced since this server started; the server is "
            b"restarting on the new one. Try again in a few seconds.\n")
    await send({"type": "http.response.start", "status": 503,
                "headers": [[b"content-type", b"text/plain; charset=utf-8"],
                            [b"content-length", str(len(body)).encode()],
                            [b"retry-after", b"5"], [b"cache-control", b"no-store"]]})
    await send({"type": "http.response.body", "body": body})


class RangedDownload(DatabaseDownload):
    """Datasette's download view, sending what it decided to send with RangedFile."""

    async def get(self, request):
        response = await super().get(request)
        if not isinstance(response, AsgiFileDownload):
            return response
        db = self.ds.get_database(route=tilde_decode(request.url_vars["database"]))
        return RangedFile(response, request, db)

    async def head(self, request):
        response = await self.get(request)
        if isinstance(response, Response):
            response.body = b""
        return response


@hookimpl
def register_routes(datasette):
    # The same address as Datasette's own download route, which this one comes before.
    return [(r"/(?P<database>[^\/\.]+)\.db$", RangedDownload.as_view(datasette))]


@hookimpl
def startup(datasette):
    async def hash_in_a_thread():
        loop = asyncio.get_running_loop()
        for db in datasette.databases.values():
            if not (db.is_mutable or db.is_memory) and db.path:
                started_on(db)
                # Not awaited: the server starts meanwhile; Database.hash caches its result.
                loop.run_in_executor(None, lambda db=db: db.hash)

    return hash_in_a_thread
