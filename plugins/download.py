"""The database download (`/papers.db`): with its length, in ranges, and HEAD without the file.

Datasette 0.65 sends the file in 4 KiB reads, each through a thread, with both a
Content-Length and "Transfer-Encoding: chunked" (a client then sees no length), takes no
Range (a download cut off at 3 of 4.6 GB starts again from nothing), answers HEAD with the
whole file, and goes on reading the file after the client has gone. This route answers the
same URL first (plugin routes come before Datasette's own), after Datasette's own view has
made every decision about the request: permissions, a missing or mutable database,
`allow_download`, the ETag and a 304. Only the sending is new:
- one Range of bytes (`bytes=a-b`, `bytes=a-`, `bytes=-n`) gets 206 with its part, a range
  past the end gets 416; several ranges get the whole file (HTTP lets a server ignore Range,
  and no download tool asks for several);
- If-Range other than the current ETag gets the whole file, so a client that says which
  file it holds part of (browsers do) never joins two files. A date in If-Range gets the
  whole file too: two files can have the same date to the second;
- HEAD gets the headers alone;
- the file goes out in 1 MiB reads, and the reads stop when the client goes.
The ETag is Datasette's (the sha256 of the file), computed in a thread when the server
starts; the pages that need it (this one, the front page, /-/databases) wait for that
thread instead of hashing the file in the event loop, where every other request waited
(about 2 s at a million papers, from the page cache); if the thread fails, they answer
with an error and the next one tries again in a thread. It is the ETag of the file the server
started on: if another file has been renamed to its name since (a build while the site
serves; see neuroai_papers/site.py), or the file was written into (`cp` over it), the
download is refused with 503 until the server is started on it; a download under way when
that happens is cut short rather than finished with the other file's bytes.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
from concurrent.futures import Future
from email.utils import formatdate

from datasette import hookimpl
from datasette.utils import tilde_decode
from datasette.utils.asgi import AsgiFileDownload, Response
from datasette.views.database import DatabaseDownload

CHUNK_BYTES = 1 << 20
# Datasette's pages that read a database's hash (Database.hash): the front page, as JSON
# too, and /-/databases.
HASHING_PAGES = {"/", "/.json", "/.jsono", "/-/databases", "/-/databases.json"}
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
        self.client_gone = asyncio.Event()
        self.headers = {key: value for key, value in download.headers.items()
                        if key.lower() != "transfer-encoding"}
        self.headers["content-disposition"] = f'attachment; filename="{download.filename}"'
        self.headers["content-type"] = download.content_type
        self.headers["accept-ranges"] = "bytes"

    def wanted_range(self, size: int):
        if_range = self.request.headers.get("if-range")
        if if_range is not None and if_range != self.headers.get("Etag"):
            return None  # the client holds part of another file: send this one whole
        return requested_range(self.request.headers.get("range"), size)

    async def asgi_send(self, send) -> None:
        with open(self.path, "rb") as file:
            stat = os.fstat(file.fileno())
            if started_on(self.db) != identity(stat):
                await replaced_response(self.request.method).asgi_send(send)
                return
            size = stat.st_size
            headers = {**self.headers, "last-modified": formatdate(stat.st_mtime, usegmt=True)}
            wanted = self.wanted_range(size)
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
            listening = asyncio.create_task(self.listen_for_the_client_going())
            try:
                await self.send_bytes(send, file.fileno(), first, last + 1, identity(stat))
            finally:
                listening.cancel()

    async def listen_for_the_client_going(self) -> None:
        # Uvicorn drops what is sent after the client has gone, without a word: without
        # this, a cancelled download of 4.6 GB would still read the whole file.
        while (await self.request.receive())["type"] != "http.disconnect":
            pass
        self.client_gone.set()

    @staticmethod
    async def start(send, status: int, headers: dict, length: int) -> None:
        headers["content-length"] = str(length)
        await send({"type": "http.response.start", "status": status,
                    "headers": [[key.lower().encode("latin1"), value.encode("latin1")]
                                for key, value in headers.items()]})

    async def send_bytes(self, send, fd: int, start: int, end: int, sent_as) -> None:
        position = start
        while position < end and not self.client_gone.is_set():
            chunk = await asyncio.to_thread(os.pread, fd, min(CHUNK_BYTES, end - position),
                                            position)
            # A write changes the file's date before its bytes: a chunk read while the date
            # is still the same is the file the headers promised.
            if identity(os.fstat(fd)) != sent_as or not chunk:
                # Returning before the body is complete makes the server close the
                # connection: the client sees a cut download, not a whole other file.
                print(f"download of {self.path} cut at byte {position}: the file changed",
                      file=sys.stderr)
                return
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


def replaced(db) -> bool:
    """True if the file at the database's path is no longer the one the server started on."""
    try:
        return identity(os.stat(db.path)) != started_on(db)
    except FileNotFoundError:
        return True


REPLACED = ("The database file was replaced since this server started; the server is "
            "restarting on the new one. Try again in a few seconds.\n")


def replaced_response(method: str) -> Response:
    """503 for a file replaced since the start: try again once the server has restarted."""
    response = Response.text(REPLACED, status=503,
                             headers={"retry-after": "5", "cache-control": "no-store"})
    if method == "HEAD":
        response.headers["content-length"] = str(len(REPLACED.encode()))
        response.body = b""
    return response


def hash_in_a_thread(db) -> Future:
    """Compute the database's hash (Database.hash caches it) in a thread of its own, and
    keep a future of it on the database for the pages that need it (hash_failure)."""
    done: Future = Future()
    # Running, so that a request cancelled while it waits cannot cancel it for the others
    # (asyncio.wrap_future passes a cancellation on to a future still pending).
    done.set_running_or_notify_cancel()
    db.hash_computed = done

    def compute():
        try:
            done.set_result(db.hash)
        except BaseException as error:  # the file could not be read: see hash_failure
            done.set_exception(error)

    threading.Thread(target=compute, name=f"hash of {db.name}", daemon=True).start()
    return done


async def hash_failure(databases) -> str | None:
    """Wait for the hashes of `databases`; return why one could not be computed, or None.

    Datasette would compute a missing hash in the event loop, reading the whole file while
    every other request waits: after a failure, the next page to ask starts the thread
    again (one at a time: the pages that ask meanwhile wait for the same thread), and a
    failure is answered as an error of its own."""
    for db in databases:
        computing = getattr(db, "hash_computed", None)
        if computing is None:
            continue
        if computing.done() and computing.exception() is not None:
            computing = hash_in_a_thread(db)
        try:
            await asyncio.wrap_future(computing)
        except Exception as error:
            return f"The database file {db.name} could not be read: {error}\n"
    return None


class RangedDownload(DatabaseDownload):
    """Datasette's download view, sending what it decided to send with RangedFile."""

    async def get(self, request):
        try:
            db = self.ds.get_database(route=tilde_decode(request.url_vars["database"]))
        except KeyError:  # Datasette's own 404
            return await super().get(request)
        failure = await hash_failure([db])  # Datasette reads it at once, in the event loop
        if failure:
            return Response.text(failure, status=500)
        response = await super().get(request)
        if isinstance(response, AsgiFileDownload):
            return RangedFile(response, request, db)
        if response.status == 304:  # "your copy is current": only if it still is
            if replaced(db):
                return replaced_response(request.method)
            response.headers["Etag"] = f'"{db.hash}"'
        return response

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
    for db in datasette.databases.values():
        if not (db.is_mutable or db.is_memory) and db.path:
            started_on(db)
            hash_in_a_thread(db)  # the server starts meanwhile


@hookimpl
def asgi_wrapper(datasette):
    base = datasette.setting("base_url")

    def page(scope) -> str:
        """The path as Datasette routes it (datasette.app.DatasetteRouter)."""
        path = (scope["raw_path"].decode("ascii") if scope.get("raw_path")
                else scope["path"]).partition("?")[0]
        return "/" + path[len(base):] if base != "/" and path.startswith(base) else path

    def wrap(app):
        async def waiting_for_hashes(scope, receive, send):
            if scope["type"] == "http" and page(scope) in HASHING_PAGES:
                failure = await hash_failure(datasette.databases.values())
                if failure:
                    await Response.text(failure, status=500).asgi_send(send)
                    return
            await app(scope, receive, send)
        return waiting_for_hashes
    return wrap
