"""The database download (plugins/download.py): its length, ranges, HEAD, and the decisions
it leaves to Datasette (permissions, a mutable database, allow_download, the ETag and 304)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from datasette.app import Datasette

from conftest import ROOT
from neuroai_papers.site import SETTINGS, free_port, serve_command, site_paths, wait_until_up

METADATA = yaml.safe_load((ROOT / "metadata.yml").read_text())


def site(db: Path, mutable: bool = False, **settings) -> Datasette:
    paths = site_paths()
    return Datasette([str(db)] if mutable else [], immutables=[] if mutable else [str(db)],
                     metadata=METADATA, plugins_dir=str(paths["plugins"]),
                     template_dir=str(paths["templates"]), settings={**SETTINGS, **settings})


@pytest.fixture(scope="module")
def ds(real_db):
    return site(real_db)


@pytest.fixture(scope="module")
def data(real_db) -> bytes:
    return real_db.read_bytes()


async def test_the_whole_file_comes_with_its_length_and_an_offer_of_ranges(ds, data):
    response = await ds.client.get("/papers.db")
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["accept-ranges"] == "bytes"
    assert "transfer-encoding" not in response.headers
    assert response.headers["content-disposition"] == 'attachment; filename="papers.db"'
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["etag"].startswith('"') and response.headers["last-modified"]


class Client:
    """An ASGI client of the app itself, that records every message the app sends: an HTTP
    client library hides a body sent with HEAD, and bytes sent after a client has gone."""

    def __init__(self, ds: Datasette):
        self.app = ds.app()
        self.messages: list[dict] = []
        self.gone = asyncio.Event()
        self.on_body = None  # called with each body message, as it is sent

    async def request(self, method: str, path: str, headers: dict | None = None) -> None:
        scope = {"type": "http", "http_version": "1.1", "method": method, "path": path,
                 "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
                 "headers": [(b"host", b"localhost"),
                             *((k.encode(), v.encode()) for k, v in (headers or {}).items())]}
        asked = False

        async def receive():
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self.gone.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            self.messages.append(message)
            if message["type"] == "http.response.body" and self.on_body:
                self.on_body(message)
                await asyncio.sleep(0)  # let the app hear of a disconnect

        await self.app(scope, receive, send)

    def start(self) -> dict:
        (start,) = [m for m in self.messages if m["type"] == "http.response.start"]
        return {"status": start["status"],
                **{k.decode(): v.decode() for k, v in start["headers"]}}

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages
                        if m["type"] == "http.response.body")


async def test_head_gives_the_headers_without_the_file(ds, data):
    for headers, status, length in (({}, 200, len(data)), ({"range": "bytes=10-19"}, 206, 10)):
        client = Client(ds)
        await client.request("HEAD", "/papers.db", headers)
        start = client.start()
        assert start["status"] == status and start["content-length"] == str(length)
        assert client.body() == b"", "HEAD sent the file"
    assert start["content-range"] == f"bytes 10-19/{len(data)}"


async def test_a_download_stops_reading_when_the_client_goes(ds, data):
    client = Client(ds)
    client.on_body = lambda message: client.gone.set()  # gone after the first chunk
    await asyncio.wait_for(client.request("GET", "/papers.db"), 30)
    assert client.start()["content-length"] == str(len(data))
    sent = client.body()
    assert 0 < len(sent) < len(data) and data.startswith(sent)


async def test_a_download_under_way_is_cut_when_the_file_is_written_into(real_db, tmp_path):
    served = tmp_path / "papers.db"
    shutil.copy(real_db, served)
    data = served.read_bytes()
    client = Client(site(served))

    def write_into_the_file(message):
        if len(client.body()) == len(message["body"]):  # after the first chunk
            with served.open("r+b") as file:
                file.seek(len(data) - 4096)
                file.write(b"\1" * 4096)

    client.on_body = write_into_the_file
    await asyncio.wait_for(client.request("GET", "/papers.db"), 30)
    assert client.start()["status"] == 200
    sent = client.body()
    assert len(sent) < len(data) and data.startswith(sent), "another file's bytes were sent"
    assert client.messages[-1]["more_body"], "the body was ended as if complete"


# (Range header, the slice of the file it asks for)
RANGES = [("bytes=0-99", slice(0, 100)), ("bytes=100-", slice(100, None)),
          ("bytes=-50", slice(-50, None)), ("bytes=5-5", slice(5, 6)),
          ("bytes=0-", slice(0, None)), ("bytes=4096-8191", slice(4096, 8192)),
          ("bytes=10-99999999999", slice(10, None)), (" bytes=7-9 ", slice(7, 10))]


@pytest.mark.parametrize("header, part", RANGES)
async def test_one_range_gives_206_with_that_part(ds, data, header, part):
    response = await ds.client.get("/papers.db", headers={"range": header})
    assert response.status_code == 206, header
    expected = data[part]
    first = part.start % len(data) if part.start is not None else 0
    assert response.content == expected
    assert response.headers["content-length"] == str(len(expected))
    assert response.headers["content-range"] == (
        f"bytes {first}-{first + len(expected) - 1}/{len(data)}")


async def test_the_last_bytes_of_more_than_the_file_are_the_whole_file(ds, data):
    response = await ds.client.get("/papers.db", headers={"range": f"bytes=-{len(data) * 2}"})
    assert response.status_code == 206 and response.content == data


@pytest.mark.parametrize("header", ["bytes=5-2", "bytes=abc", "items=0-5", "bytes=0-1,4-5",
                                    "bytes=-", "bytes=1-2-3", ""])
async def test_a_range_not_understood_or_several_get_the_whole_file(ds, data, header):
    response = await ds.client.get("/papers.db", headers={"range": header})
    assert response.status_code == 200 and response.content == data
    assert "content-range" not in response.headers


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{size}", "bytes=-0",
                                    "bytes=99999999999-"])
async def test_a_range_past_the_end_gets_416(ds, data, header):
    response = await ds.client.get("/papers.db",
                                   headers={"range": header.format(size=len(data))})
    assert response.status_code == 416 and response.content == b""
    assert response.headers["content-range"] == f"bytes */{len(data)}"


async def test_if_range_resumes_only_the_same_file(ds, data):
    """Only the ETag says which file: two files can have the same date to the second."""
    whole = await ds.client.head("/papers.db")
    etag, modified = whole.headers["etag"], whole.headers["last-modified"]
    same = await ds.client.get("/papers.db", headers={"range": "bytes=100-", "if-range": etag})
    assert same.status_code == 206 and same.content == data[100:]
    for other in ('"another-file"', modified, "Thu, 01 Jan 1970 00:00:00 GMT", etag.strip('"')):
        changed = await ds.client.get("/papers.db", headers={"range": "bytes=100-",
                                                              "if-range": other})
        assert changed.status_code == 200 and changed.content == data


async def test_datasette_still_answers_if_none_match_with_304(ds):
    etag = (await ds.client.head("/papers.db")).headers["etag"]
    response = await ds.client.get("/papers.db", headers={"if-none-match": etag})
    assert response.status_code == 304 and response.content == b""
    assert response.headers["etag"] == etag  # RFC 9110: a 304 carries the ETag


async def test_datasette_still_decides_who_may_download(real_db, tmp_path):
    forbidden = site(real_db, allow_download=False)
    assert (await forbidden.client.get("/papers.db")).status_code == 403
    assert (await forbidden.client.get("/papers.db", headers={"range": "bytes=0-9"})
            ).status_code == 403
    copy = tmp_path / "papers.db"
    shutil.copy(real_db, copy)
    mutable = site(copy, mutable=True)  # a file that may change is never offered
    assert (await mutable.client.get("/papers.db")).status_code == 403
    assert (await site(real_db).client.get("/nothing.db")).status_code == 404


def test_a_real_server_stops_reading_when_the_client_goes(real_db, tmp_path):
    """Uvicorn drops what is sent after the client has gone, without a word: the server's
    own reads show whether a download cut after 64 KiB went on reading the file."""
    import socket
    import sqlite3

    db = tmp_path / "papers.db"
    shutil.copy(real_db, db)
    with sqlite3.connect(db) as conn:  # a file larger than the kernel's socket buffers
        conn.execute("create table padding (b)")
        conn.execute("insert into padding values (zeroblob(60000000))")
    conn.close()
    size = db.stat().st_size
    port = free_port()
    command = serve_command(db, "127.0.0.1", port)
    command[0] = str(Path(sys.executable).with_name("datasette"))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def bytes_read() -> int:
        io = Path(f"/proc/{process.pid}/io").read_text().splitlines()
        return int(next(line for line in io if line.startswith("rchar")).split()[1])

    try:
        wait_until_up(f"http://127.0.0.1:{port}", process)
        head = urllib.request.Request(f"http://127.0.0.1:{port}/papers.db", method="HEAD")
        urllib.request.urlopen(head, timeout=60).close()  # waits for the hash's reading
        before = bytes_read()
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(b"GET /papers.db HTTP/1.1\r\nHost: localhost\r\n\r\n")
                received = 0
                while received < 65536:
                    received += len(client.recv(65536))
        time.sleep(2)
        read = bytes_read() - before
        assert read < size / 2, f"{read:,} bytes read for 3 downloads cut at 64 KiB of {size:,}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_cut_download_resumes_over_http(real_db, data):
    """A real server on loopback: a download cut off after 1,000 bytes goes on from there
    (what `curl -C -` and browsers do), and the two parts are the file."""
    port = free_port()
    command = serve_command(real_db, "127.0.0.1", port)
    command[0] = str(Path(sys.executable).with_name("datasette"))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/papers.db"
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process)
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.headers["Content-Length"] == str(len(data))
            etag = response.headers["ETag"]
            first = response.read(1000)  # and the connection is closed
        request = urllib.request.Request(url, headers={"Range": f"bytes={len(first)}-",
                                                       "If-Range": etag})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 206
            rest = response.read()
        assert first + rest == data
        request = urllib.request.Request(url, headers={"Range": f"bytes={len(data)}-"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 416
    finally:
        process.terminate()
        process.wait(timeout=20)


async def test_a_file_renamed_over_the_served_one_is_not_sent_under_the_old_etag(real_db, tmp_path):
    """A build while the site serves renames a new file over papers.db, and the server
    restarts on it a second or two later. Meanwhile the old file's ETag must not come with
    the new file's bytes: a resumed download would join two files."""
    served = tmp_path / "papers.db"
    shutil.copy(real_db, served)
    ds = site(served)
    before = await ds.client.get("/papers.db", headers={"range": "bytes=0-99"})
    assert before.status_code == 206
    rebuilt = tmp_path / "rebuilt.db"
    shutil.copy(real_db, rebuilt)
    rebuilt.replace(served)
    for method in ("get", "head"):
        response = await getattr(ds.client, method)(
            "/papers.db", headers={"range": "bytes=100-", "if-range": before.headers["etag"]})
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        assert "etag" not in response.headers
    restarted = site(served)
    assert (await restarted.client.get("/papers.db")).content == real_db.read_bytes()


async def test_a_file_written_into_since_the_start_is_not_sent_under_the_old_etag(real_db, tmp_path):
    """`cp rebuilt.db papers.db` writes into the served file itself: the same inode, other
    bytes. The ETag was of the bytes the server started on."""
    served = tmp_path / "papers.db"
    shutil.copy(real_db, served)
    ds = site(served)
    assert (await ds.client.head("/papers.db")).status_code == 200
    etag = (await ds.client.head("/papers.db")).headers["etag"]
    with served.open("r+b") as file:
        file.seek(0, 2)
        file.write(b"\0" * 4096)  # as a longer file copied over it would
    assert (await ds.client.get("/papers.db")).status_code == 503
    # Nor is "your copy is current" said of it.
    assert (await ds.client.get("/papers.db", headers={"if-none-match": etag})).status_code == 503


async def test_the_pages_that_show_the_hash_wait_for_its_thread(real_db):
    """The hash is computed once, in its thread; the pages that read it get the file's."""
    import hashlib

    ds = site(real_db)
    databases = (await ds.client.get("/-/databases.json")).json()
    (papers,) = [db for db in databases if db["name"] == "papers"]
    assert papers["hash"] == hashlib.sha256(real_db.read_bytes()).hexdigest()
    assert ds.get_database("papers").hash_computed.result() == papers["hash"]
    assert (await ds.client.get("/")).status_code == 200


@pytest.fixture(scope="module")
def large_db(real_db, tmp_path_factory) -> Path:
    """The real database with 60 MB more: its hash takes long enough to cancel a request
    that waits for it."""
    import sqlite3

    db = tmp_path_factory.mktemp("large") / "papers.db"
    shutil.copy(real_db, db)
    with sqlite3.connect(db) as conn:
        conn.execute("create table padding (b)")
        conn.execute("insert into padding values (zeroblob(60000000))")
    conn.close()
    return db


async def test_a_request_cancelled_while_the_hash_is_computed_leaves_the_others_served(large_db):
    """A request that waits for the hash's thread and is cancelled (a client's timeout, an
    ASGI server that cancels on disconnect) must not cancel the hash for every later one."""
    import hashlib

    ds = site(large_db)
    await ds.invoke_startup()  # as `datasette serve` does: the hash's thread starts
    waiting = asyncio.create_task(ds.client.get("/"))
    await asyncio.sleep(0.005)
    assert not ds.get_database("papers").hash_computed.done(), "the file hashed too fast"
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (await ds.client.get("/")).status_code == 200
    response = await ds.client.head("/papers.db")
    assert response.status_code == 200
    assert response.headers["etag"] == f'"{hashlib.sha256(large_db.read_bytes()).hexdigest()}"'


async def test_head_of_a_replaced_file_gets_503_without_a_body(real_db, tmp_path):
    served = tmp_path / "papers.db"
    shutil.copy(real_db, served)
    ds = site(served)
    assert (await ds.client.head("/papers.db")).status_code == 200
    os.utime(served, ns=(0, 0))  # written into, as far as its date says
    client = Client(ds)
    await client.request("HEAD", "/papers.db")
    assert client.start()["status"] == 503 and client.body() == b""
    assert client.start()["retry-after"] == "5"


@pytest.mark.parametrize("failures", [1, 99])
async def test_a_failed_hash_is_tried_again_in_a_thread_never_in_the_event_loop(
        real_db, monkeypatch, failures):
    """A read error while hashing (a bad sector, say: only injected here) must not make the
    pages hash the file in the event loop, where every other request would wait: the next
    page starts the thread again, and a lasting failure is answered as an error."""
    import hashlib
    import threading

    import datasette.database

    threads = []
    real_hash = datasette.database.inspect_hash

    def failing_hash(path):
        threads.append(threading.current_thread())
        if len(threads) <= failures:
            raise OSError(5, "Input/output error")
        return real_hash(path)

    monkeypatch.setattr(datasette.database, "inspect_hash", failing_hash)
    ds = site(real_db)
    await ds.invoke_startup()
    for path in ("/", "/papers.db", "/-/databases.json"):
        response = await ds.client.get(path)
        if failures == 1:
            assert response.status_code == 200, path
        else:
            assert response.status_code == 500, path
            assert "could not be read: [Errno 5] Input/output error" in response.text
    assert threads and threading.main_thread() not in threads
    if failures == 1:
        assert len(threads) == 2  # the failed one, then one more for every page
        etag = (await ds.client.head("/papers.db")).headers["etag"]
        assert etag == f'"{hashlib.sha256(real_db.read_bytes()).hexdigest()}"'
