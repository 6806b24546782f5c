"""Broken dumps next to the real ones: the real build gives each its documented outcome.

The cases and their expected exit codes and messages are the table of
tests/broken_dumps/README.md. A refusal (exit 2) must be one clear line naming the file
(and the line, when one is at fault), with no traceback, and must leave the previous
papers.db byte for byte as it was; a warning (exit 0) must also be a row of `problems`.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ABSTRACT_A, ABSTRACT_B, blank_separated, load_plugin, rows, run_build

CORPUS = Path(__file__).parent / "broken_dumps"
TABLE_ROW = re.compile(
    r"^\| `(?P<name>[^`]+)`(?P<generated> \(generated\))? \| (?P<wrong>.+?) \| "
    r"(?P<exit>\d) \| `(?P<message>.+)` \|$"
)


@dataclass(frozen=True)
class Case:
    name: str
    generated: bool
    exit_code: int
    message: str  # `name[:line]: reason`, as printed after the path of the dumps folder


def documented_cases() -> list[Case]:
    table = (CORPUS / "README.md").read_text(encoding="utf-8").splitlines()
    return [Case(m["name"], bool(m["generated"]), int(m["exit"]), m["message"])
            for m in map(TABLE_ROW.match, table) if m]


CASES = documented_cases()


# --- the generated cases --------------------------------------------------------------------

def write_huge_line(path: Path) -> dict:
    sentence = b"We decode visual stimuli from fMRI recordings of six subjects. "
    path.write_bytes((sentence * (10_000_000 // len(sentence) + 1))[:10_000_000])
    return {}


def make_directory(path: Path) -> dict:
    path.mkdir()
    (path / "inside.txt").write_text(blank_separated(("A paper", ABSTRACT_A)))
    return {}


CAP_SETPCAP = 8
CAPS_THAT_BYPASS_FILE_MODES = (1, 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
PR_CAPBSET_DROP = 24


def effective_capabilities() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^CapEff:\s*([0-9a-f]+)$", status, re.M)[1], 16)


def drop_file_mode_bypass() -> None:
    """In the child, before exec: take away root's power to read any file whatever its mode."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in CAPS_THAT_BYPASS_FILE_MODES:
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def make_unreadable(path: Path) -> dict:
    """Write a good dump with mode 000; return how to run a build that mode 000 really stops.

    root reads any file whatever its mode, and the interpreter lives where an unprivileged
    user may not go, so as root the build runs as root without the two capabilities that
    bypass file modes (dropped from its bounding set before exec). Any other user is simply
    stopped by the mode.
    """
    path.write_text(blank_separated(("A paper", ABSTRACT_A)), encoding="utf-8")
    path.chmod(0)
    if os.geteuid() != 0:
        if os.access(path, os.R_OK):
            pytest.skip("this user reads files of mode 000 (a capability), so none is unreadable")
        return {}
    if not effective_capabilities() >> CAP_SETPCAP & 1:
        pytest.skip("running as root without CAP_SETPCAP: cannot make a file unreadable to the build")
    return {"preexec_fn": drop_file_mode_bypass}


def write_under_the_escaped_name(path: Path) -> dict:
    """Write a good dump under the case's name with its escapes made the bytes themselves
    (`\\xff` the byte 0xff, `\\n` a line break: the table, as the error, shows them as Python
    escapes them)."""
    name = path.name.encode("ascii").decode("unicode_escape").encode("latin-1")
    path.with_name(os.fsdecode(name)).write_text(blank_separated(("A paper", ABSTRACT_A)),
                                                 encoding="utf-8")
    return {}


def make_named_pipe(path: Path) -> dict:
    os.mkfifo(path)  # nothing ever writes into it: opening it would wait forever
    return {}


MEMORY_CAP_BYTES = 2 << 30


def cap_memory() -> None:
    """In the child, before exec: a build that reads /dev/zero fails at 2 GB, not at the
    machine's end."""
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))


def link_to_dev_zero(path: Path) -> dict:
    path.symlink_to("/dev/zero")
    return {"preexec_fn": cap_memory}


GENERATORS = {"huge_line.txt": write_huge_line, "directory.txt": make_directory,
              "unreadable.txt": make_unreadable, "name_\\xff.txt": write_under_the_escaped_name,
              "line_\\nbreak.txt": write_under_the_escaped_name,
              "fifo.txt": make_named_pipe, "dev_zero.txt": link_to_dev_zero}


def put_broken_dump(case: Case, dumps: Path) -> dict:
    """Put the case's dump into `dumps`; return extra options for running the build."""
    if case.generated:
        return GENERATORS[case.name](dumps / case.name)
    shutil.copy(CORPUS / case.name, dumps / case.name)
    return {}


# --- checks ---------------------------------------------------------------------------------

def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".papers.db.tmp"))


def check_refusal(case: Case, result, dumps: Path, out: Path, before: bytes) -> None:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {dumps}{os.sep}{case.message}"], result.stderr
    assert result.stderr.splitlines()[-1] == f"nothing written; {out} is unchanged"
    assert out.read_bytes() == before
    assert temporaries(out.parent) == []


def check_warning(case: Case, result, dumps: Path, out: Path) -> None:
    location, reason = case.message.split(": ", 1)
    name, line = location.split(":")
    warnings = [l for l in result.stderr.splitlines() if l.startswith("warning: ")]
    assert any(l.startswith(f"warning: {dumps}{os.sep}{case.message}: ") for l in warnings), \
        result.stderr
    problems = rows(out, "select line, text, reason from problems where dump = ?", (name,))
    assert (int(line), reason) in [(number, why) for number, _, why in problems]
    text_lines = (CORPUS / name).read_text(encoding="utf-8").split("\n")
    assert all(text == text_lines[number - 1].strip() for number, text, _ in problems)
    assert rows(out, "pragma integrity_check") == [("ok",)]
    assert rows(out, "select count(*) from dumps") == [(6,)]
    assert temporaries(out.parent) == []


# --- tests ----------------------------------------------------------------------------------

def test_every_file_of_the_corpus_is_documented_and_every_documented_file_exists():
    committed = {p.name for p in CORPUS.iterdir() if p.name != "README.md"}
    assert committed == {case.name for case in CASES if not case.generated}
    assert {case.name for case in CASES if case.generated} == set(GENERATORS)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_broken_dump_gives_its_documented_outcome(case, copy_real_dumps, real_db, tmp_path):
    out = tmp_path / "papers.db"
    before = real_db.read_bytes()
    out.write_bytes(before)
    options = put_broken_dump(case, copy_real_dumps)
    result = run_build(copy_real_dumps, out, **options)
    assert result.returncode == case.exit_code, result.stderr
    assert "Traceback" not in result.stderr
    if case.exit_code == 0:
        check_warning(case, result, copy_real_dumps, out)
    else:
        check_refusal(case, result, copy_real_dumps, out, before)


def test_an_overlong_line_in_a_good_dump_is_a_problem_stored_short(tmp_path):
    """A 64 kB 'abstract' is reported, not stored whole: the site refuses values over 32 kB."""
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    overlong = " ".join(["We decode visual stimuli from fMRI recordings."] * 1400)
    text = blank_separated(("A paper", ABSTRACT_A), ("Another paper", overlong),
                           ("Third paper", ABSTRACT_B))
    (dumps / "x.txt").write_text(text, encoding="utf-8")
    lines = text.split("\n")
    title_line = lines.index("Another paper") + 1
    long_line = lines.index(overlong) + 1
    out = tmp_path / "papers.db"
    result = run_build(dumps, out)
    assert result.returncode == 0, result.stderr
    assert [title for (title,) in rows(out, "select title from papers order by rowid")] == [
        "A paper", "Third paper"]
    problems = rows(out, "select line, reason, text from problems order by line")
    assert [(line, reason) for line, reason, _ in problems] == [
        (title_line, "title with no abstract after it"),
        (long_line, f"line of {len(overlong):,} characters: too long for a title or an "
                    f"abstract (at most 10,000 bytes)")]
    stored = problems[1][2]
    assert stored.startswith(overlong[:1000]) and stored.endswith(
        f"[{len(overlong):,} characters in all]") and len(stored) < 1100


def test_a_line_over_the_byte_cap_in_fewer_characters_is_a_problem(tmp_path):
    """The cap is in bytes, as the site's: 9,022 characters of a 4-byte letter (36 kB) were
    stored whole, and the site then refused the paper's page and every search finding it."""
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    wide = ("𝐱" * 9_000) + " decoding"
    fits = "é" * 4_990 + " decoding"  # 2 bytes each: 9,989 bytes, under the cap
    text = blank_separated(("Wide paper", wide), ("Fitting paper", fits), ("Third paper", ABSTRACT_B))
    (dumps / "x.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "papers.db"
    result = run_build(dumps, out)
    assert result.returncode == 0, result.stderr
    assert [title for (title,) in rows(out, "select title from papers order by rowid")] == [
        "Fitting paper", "Third paper"]
    line = text.split("\n").index(wide) + 1
    assert rows(out, "select line, reason from problems where line = ?", [line]) == [
        (line, "line of 9,009 characters (36,009 bytes of UTF-8): too long for a title or an "
               "abstract (at most 10,000 bytes)")]
    # Every row the site may be asked for fits its caps: a connection limited as the site's.
    conn = sqlite3.connect(out)
    load_plugin("sql_limits").apply_limits(conn)
    try:
        assert len(conn.execute("select * from papers").fetchall()) == 2
        assert len(conn.execute("select * from problems").fetchall()) == 2
    finally:
        conn.close()
