"""Incremental builds: reusing the previous database gives exactly what a full build gives."""

from __future__ import annotations

import shutil
import sqlite3

from benchmarks.generate import generate_corpus
from conftest import REAL_DUMPS, run_build



def contents(db) -> dict[str, list[tuple]]:
    """Return every row of every table (FTS through its own table), ordered."""
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute(
            "select name from sqlite_master where type = 'table' and name not like 'papers_fts%' "
            "and name not like 'sqlite_%'")]
        out = {}
        for table in tables:
            out[table] = conn.execute(f"select rowid, * from [{table}] order by rowid").fetchall()
        # The build time is the one value two builds of the same dumps never share.
        out["build_info"] = [row for row in out["build_info"] if row[1] != "built_at"]
        out["papers_fts"] = conn.execute(
            "select rowid, title, abstract from papers_fts order by rowid").fetchall()
        return out
    finally:
        conn.close()


def incremental_then_full(folder, later, tmp_path):
    """Build without `later`, add them, build incrementally; also build everything at once."""
    staged = tmp_path / "staged"
    staged.mkdir()
    for path in sorted(folder.glob("*.txt")):
        if path.name not in later:
            shutil.copy(path, staged / path.name)
    out = tmp_path / "incremental.db"
    assert run_build(staged, out).returncode == 0
    for name in later:
        shutil.copy(folder / name, staged / name)
    result = run_build(staged, out, "--incremental")
    assert result.returncode == 0, result.stderr
    full = tmp_path / "full.db"
    assert run_build(folder, full).returncode == 0
    return result, out, full


def test_adding_a_real_dump_incrementally_equals_a_full_build(tmp_path):
    result, incremental, full = incremental_then_full(REAL_DUMPS, ["004_a2400baee32e0311.txt"], tmp_path)
    assert "incremental: reusing 4 dumps" in result.stderr
    assert "parsed 1/1 004_a2400baee32e0311.txt" in result.stderr
    assert contents(incremental) == contents(full)


def test_incremental_equals_full_with_variants_typos_and_lookalikes(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    generate_corpus(corpus, 1200, seed=3)
    names = sorted(p.name for p in corpus.glob("*.txt"))
    result, incremental, full = incremental_then_full(corpus, names[-3:], tmp_path)
    assert f"reusing {len(names) - 3} dumps" in result.stderr
    got, expected = contents(incremental), contents(full)
    assert got["merges"] and got["lookalikes"]
    assert got == expected


def test_a_changed_old_dump_falls_back_to_a_full_build(tmp_path):
    folder = tmp_path / "dumps"
    shutil.copytree(REAL_DUMPS, folder)
    out = tmp_path / "papers.db"
    assert run_build(folder, out).returncode == 0
    changed = folder / "000_a6c095fc83dff075.txt"
    changed.write_text(changed.read_text().replace("CHGNet", "CHGNet v2"))
    result = run_build(folder, out, "--incremental")
    assert result.returncode == 0
    assert "000_a6c095fc83dff075.txt changed since the previous build; building everything" in result.stderr
    full = tmp_path / "full.db"
    assert run_build(folder, full).returncode == 0
    assert contents(out) == contents(full)


def test_a_new_dump_sorting_first_falls_back_to_a_full_build(tmp_path):
    folder = tmp_path / "dumps"
    shutil.copytree(REAL_DUMPS, folder)
    out = tmp_path / "papers.db"
    assert run_build(folder, out).returncode == 0
    shutil.copy(folder / "004_a2400baee32e0311.txt", folder / "0000_early.txt")
    result = run_build(folder, out, "--incremental")
    assert result.returncode == 0
    assert "0000_early.txt sorts before 000_a6c095fc83dff075.txt" in result.stderr


def test_other_build_code_or_topic_rules_fall_back_to_a_full_build(tmp_path):
    folder = tmp_path / "dumps"
    shutil.copytree(REAL_DUMPS, folder)
    out = tmp_path / "papers.db"
    assert run_build(folder, out).returncode == 0
    conn = sqlite3.connect(out)
    with conn:
        conn.execute("update build_info set value = 'other' where key = 'reusable_inputs_sha256'")
    conn.close()
    result = run_build(folder, out, "--incremental")
    assert result.returncode == 0
    assert "the build code or the topic rules changed since the previous build; building everything" in result.stderr
