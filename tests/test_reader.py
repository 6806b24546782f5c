"""The dump reader (neuroai_papers/parallel.py): a worker process parses the dumps ahead of
matching. Whatever it gives must be what parsing in the build's own process gives, refusals
included, and its death must fail the build with one line."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from benchmarks.generate import generate_corpus
from conftest import REAL_DUMPS, ROOT, rows, run_build
from neuroai_papers.dedupe import RecordKeys, record_keys
from neuroai_papers.parallel import DumpReader
from neuroai_papers.parse import DumpDate, DumpError, read_dump
from neuroai_papers.write import BuildCheckError

IN_PROCESS = 10**15  # min_bytes no corpus reaches
WORKER = 0


@pytest.fixture(scope="module")
def mixed_dumps(tmp_path_factory):
    """The real dumps and 2,000 generated records, in one folder."""
    folder = tmp_path_factory.mktemp("mixed")
    generate_corpus(folder, 2_000, seed=21)
    for path in REAL_DUMPS.glob("*.txt"):
        shutil.copy(path, folder / path.name)
    return sorted(folder.glob("*.txt"), key=lambda p: p.name)


def test_the_worker_gives_what_this_process_parses(mixed_dumps):
    with DumpReader(mixed_dumps, min_bytes=WORKER) as reader:
        assert reader.process is not None
        from_worker = list(reader)
    with DumpReader(mixed_dumps, min_bytes=IN_PROCESS) as reader:
        assert reader.process is None
        here = list(reader)
    assert len(from_worker) == len(mixed_dumps)
    assert from_worker == here
    # Equal as tuples is not enough: the keys come as plain tuples, the dates as their fields.
    assert {type(keys) for _, dump_keys in from_worker for keys in dump_keys} == {RecordKeys}
    dates = [record.date for dump, _ in from_worker for record in dump.records if record.date]
    assert dates and {type(date) for date in dates} == {DumpDate}
    for dump, keys in here[:3]:
        assert dump == read_dump(mixed_dumps[here.index((dump, keys))])
        assert keys == [record_keys(record) for record in dump.records]


def test_a_refused_dump_is_refused_in_order_with_the_same_message(mixed_dumps, tmp_path):
    paths = mixed_dumps[:4] + [tmp_path / "zz_bad.txt"] + mixed_dumps[4:6]
    paths[4].write_bytes(b"Daily Papers\n\xff\xfe broken\n")
    with pytest.raises(DumpError) as here:
        read_dump(paths[4])
    with DumpReader(paths, min_bytes=WORKER) as reader:
        dumps = iter(reader)
        assert [next(dumps)[0].name for _ in range(4)] == [p.name for p in paths[:4]]
        with pytest.raises(DumpError) as from_worker:
            next(dumps)
    assert str(from_worker.value) == str(here.value)
    assert str(paths[4]) in str(from_worker.value)


def test_a_dead_worker_fails_the_read_with_one_line(mixed_dumps):
    with DumpReader(mixed_dumps, min_bytes=WORKER) as reader:
        dumps = iter(reader)
        next(dumps)
        reader.process.kill()
        with pytest.raises(BuildCheckError, match=r"reading the dumps: the worker process "
                                                  r"ended with exit code -9"):
            for _ in dumps:  # what it queued before it died may still come
                pass


def test_a_worker_that_dies_as_it_starts_fails_the_read_instead_of_hanging(tmp_path):
    """A script that reads the dumps without a __main__ guard: spawn runs it again in the
    worker, whose own DumpReader then fails before the worker has read anything. With
    16,000 paths given as the process's arguments (650 KB through a pipe nobody reads any
    more), start() used to wait forever; here 3,000 paths make 200 KB."""
    script = tmp_path / "no_guard.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from neuroai_papers.parallel import DumpReader
        paths = [Path({str(tmp_path)!r}) / f"{{n:06d}}_a_dump_with_a_long_name.txt"
                 for n in range(3000)]
        with DumpReader(paths, min_bytes=0) as reader:
            next(iter(reader))
        """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert result.stderr.rstrip().splitlines()[-1] == (
        "neuroai_papers.write.BuildCheckError: reading the dumps: the worker process ended "
        "with exit code 1")


def test_a_large_build_reads_in_a_worker_and_keeps_every_record_in_order(tmp_path):
    """14,000 records are over READER_MIN_BYTES: the build says so, and its papers and
    sightings are the records of the dumps as this process reads them, in order.

    In a folder whose name holds what a URI gives a meaning: the build and its workers open
    their files there, and an SQLite URI made by pasting the path in opened `x` instead."""
    folder = tmp_path / "x#y?z%41"
    dumps = folder / "dumps"
    generate_corpus(dumps, 14_000, seed=8)
    out = folder / "papers.db"
    result = run_build(dumps, out)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]
    assert "reading the dumps in process" in result.stderr
    paths = sorted(dumps.glob("*.txt"), key=lambda p: p.name)
    expected = [(d.name, r.line, r.title) for d, _ in DumpReader(paths, min_bytes=IN_PROCESS)
                for r in d.records]
    assert rows(out, "select dump, line, title from sightings order by id") == expected
