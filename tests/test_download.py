"""The database download (plugins/download.py): its length, ranges, HEAD, and the decisions
it leaves to Datasette (permissions, a mutable database, allow_download, the ETag and 304)."""

from __future__ import annotations

import shutil
import subprocess
import sys
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


async def test_head_gives_the_headers_without_the_file(ds, data):
    response = await ds.client.head("/papers.db")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len(data))
    part = await ds.client.head("/papers.db", headers={"range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == b""
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"


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
    whole = await ds.client.head("/papers.db")
    etag, modified = whole.headers["etag"], whole.headers["last-modified"]
    for validator in (etag, modified):
        same = await ds.client.get("/papers.db", headers={"range": "bytes=100-",
                                                           "if-range": validator})
        assert same.status_code == 206 and same.content == data[100:]
    for other in ('"another-file"', "Thu, 01 Jan 1970 00:00:00 GMT", etag.strip('"')):
        changed = await ds.client.get("/papers.db", headers={"range": "bytes=100-",
                                                              "if-range": other})
        assert changed.status_code == 200 and changed.content == data


async def test_datasette_still_answers_if_none_match_with_304(ds):
    etag = (await ds.client.head("/papers.db")).headers["etag"]
    response = await ds.client.get("/papers.db", headers={"if-none-match": etag})
    assert response.status_code == 304 and response.content == b""


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
    with served.open("r+b") as file:
        file.seek(0, 2)
        file.write(b"\0" * 4096)  # as a longer file copied over it would
    assert (await ds.client.get("/papers.db")).status_code == 503
