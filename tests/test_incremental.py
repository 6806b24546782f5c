"""Incremental builds: reusing the previous database gives exactly what a full build gives."""

from __future__ import annotations

import importlib
import json
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from benchmarks.generate import generate_corpus
from conftest import (ABSTRACT_A, ABSTRACT_B, ABSTRACT_C, REAL_DUMPS, ROOT, blank_separated,
                      made_up_words, rows, run_build)
from neuroai_papers.enrich import INVALID_DATE_REASON



def contents(db) -> dict[str, list[tuple]]:
    """Return every row of every table (FTS through its own table), ordered by primary key.

    Tables with a primary key are compared by it: their rowid is not an id (an incremental
    build appends a new organization where a full build sorts it in). The papers' rowids are
    compared too, since the full-text index refers to papers by rowid.
    """
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute(
            "select name from sqlite_master where type = 'table' and name not like 'papers_fts%' "
            "and name not like 'sqlite_%'")]
        out = {}
        for table in tables:
            key = [row[1] for row in sorted(
                (r for r in conn.execute(f"pragma table_info([{table}])") if r[5]), key=lambda r: r[5])]
            order = ", ".join(f"[{column}]" for column in key) if key else "rowid"
            columns = "*" if key else "rowid, *"
            out[table] = conn.execute(f"select {columns} from [{table}] order by {order}").fetchall()
        # The build time is the one value two builds of the same dumps never share.
        out["build_info"] = [row for row in out["build_info"] if row[0] != "built_at"]
        out["paper_rowids"] = conn.execute("select rowid, id from papers order by rowid").fetchall()
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
    assert "incremental: adding 1 new dump to incremental.db (4 already in it)" in result.stderr
    assert "parsed 1/1 004_a2400baee32e0311.txt" in result.stderr
    assert contents(incremental) == contents(full)


def test_the_counts_of_dumps_have_thousands_separators_as_the_other_counts(dumps_dir, tmp_path):
    """1,000 dumps of a paper each, then one more: the lines said "parsed 1000/1000" and
    "(1000 already in it)" beside "1,000 records" and "1,001 dumps"."""
    def add_dump(number):
        (dumps_dir / f"{number:04}.txt").write_text(blank_separated(
            (made_up_words(f"title {number}", 5).capitalize(), made_up_words(f"abstract {number}", 16) + ".")))

    for number in range(1000):
        add_dump(number)
    out = tmp_path / "papers.db"
    result = run_build(dumps_dir, out)
    assert result.returncode == 0, result.stderr
    assert "parsed 1,000/1,000 0999.txt: 1 record, 0 problems" in result.stderr
    add_dump(1000)
    result = run_build(dumps_dir, out, "--incremental")
    assert result.returncode == 0, result.stderr
    assert f"incremental: adding 1 new dump to {out.name} (1,000 already in it)" in result.stderr
    assert f"built {out}: 1,001 dumps, 1,001 records -> 1,001 papers" in result.stderr


def test_an_update_in_a_folder_whose_name_holds_uri_characters(tmp_path):
    """'#', '?' and '%41' in the path: the update opens the previous file (an SQLite URI
    made by pasting the path in opened, and created, a file named `x` instead, and the
    build fell back to a full one)."""
    folder = tmp_path / "x#y?z%41"
    folder.mkdir()
    result, incremental, full = incremental_then_full(REAL_DUMPS, ["004_a2400baee32e0311.txt"],
                                                      folder)
    assert "incremental: adding 1 new dump to incremental.db (4 already in it)" in result.stderr
    assert contents(incremental) == contents(full)
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]


def test_incremental_equals_full_with_variants_typos_and_lookalikes(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    generate_corpus(corpus, 1200, seed=3)
    names = sorted(p.name for p in corpus.glob("*.txt"))
    result, incremental, full = incremental_then_full(corpus, names[-3:], tmp_path)
    assert f"adding 3 new dumps to incremental.db ({len(names) - 3:,} already in it)" in result.stderr
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


def test_a_renamed_or_removed_old_dump_is_named_as_gone(tmp_path):
    """A rename keeps the number of dumps: the reason is the dump that is gone, not the
    order of the one that came."""
    folder = tmp_path / "dumps"
    shutil.copytree(REAL_DUMPS, folder)
    out = tmp_path / "papers.db"
    assert run_build(folder, out).returncode == 0
    (folder / "003_1f59b1b600343454.txt").rename(folder / "005_renamed.txt")
    result = run_build(folder, out, "--incremental")
    assert result.returncode == 0, result.stderr
    assert ("incremental: 003_1f59b1b600343454.txt, which the previous database holds, is gone; "
            "building everything") in result.stderr
    full = tmp_path / "full.db"
    assert run_build(folder, full).returncode == 0
    assert contents(out) == contents(full)
    for name in ("000_a6c095fc83dff075.txt", "001_be74241cc718eecc.txt"):
        (folder / name).unlink()
    result = run_build(folder, out, "--incremental")
    assert ("incremental: 000_a6c095fc83dff075.txt, 001_be74241cc718eecc.txt, which the "
            "previous database holds, are gone; building everything") in result.stderr


def test_only_the_modules_that_make_rows_are_build_code():
    """Serving, publishing and rendering the notebooks make no row: a change there keeps
    the previous database reusable (the publish job adds the new dumps to it)."""
    from neuroai_papers import build

    names = [path.name for path in build.build_code()]
    assert "site.py" not in names and "publish.py" not in names and "notebooks.py" not in names
    assert {"parse.py", "dedupe.py", "enrich.py", "write.py", "topics.py"} <= set(names)
    for name in build.NOT_BUILD_CODE:  # none of them is imported by the build's modules
        stem = name[:-3]
        for path in build.build_code():
            assert f"from .{stem} import" not in path.read_text(), (path.name, stem)


PATCHED_BUILD = """
import importlib, sys
module, attribute, value = sys.argv[1:4]
setattr(importlib.import_module(module), attribute, value)
from neuroai_papers.build import main
sys.exit(main(sys.argv[4:]))
"""


def as_if_built_by_other_code(db, changed_part: str | None) -> None:
    """Make `db` look built by other build code: another fingerprint, and, when
    `changed_part` is given, that part's sha256 other among the parts it keeps (without,
    as a file of older build code, which kept none)."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("update build_info set value = 'other' where key = 'reusable_inputs_sha256'")
        (stored,) = conn.execute(
            "select value from build_info where key = 'reusable_inputs'").fetchone()
        parts = {**json.loads(stored), changed_part: "0" * 64} if changed_part else {}
        conn.execute("update build_info set value = ? where key = 'reusable_inputs'",
                     [json.dumps(parts)])
    conn.close()


def test_other_build_code_falls_back_to_a_full_build_naming_what_changed(tmp_path):
    folder = tmp_path / "dumps"
    shutil.copytree(REAL_DUMPS, folder)
    out = tmp_path / "papers.db"
    assert run_build(folder, out).returncode == 0
    for changed, reason in [
            ("enrich.py", "enrich.py"), ("the topic rules", "the topic rules"),
            (None, "the build code, the topic rules, the organization reference or the version "
                   "of Python's Unicode database, rapidfuzz or SQLite")]:
        as_if_built_by_other_code(out, changed)
        result = run_build(folder, out, "--incremental")
        assert result.returncode == 0, result.stderr
        assert (f"incremental: {reason} changed since the previous build; building everything"
                in result.stderr)


def build_reporting_version(module: str, attribute: str, value: str, *arguments: str):
    """Run the real build command under a Python whose `module.attribute` (a version) reads
    `value`."""
    return subprocess.run([sys.executable, "-c", PATCHED_BUILD, module, attribute, value,
                           *arguments], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("module, attribute, label", [
    ("unicodedata", "unidata_version", "Python's Unicode database"),
    ("rapidfuzz", "__version__", "rapidfuzz"), ("sqlite3", "sqlite_version", "SQLite"),
])
def test_another_version_of_what_shapes_the_rows_falls_back_to_a_full_build(tmp_path, module,
                                                                            attribute, label):
    """Another Unicode database, rapidfuzz or SQLite may make other rows from the same dumps
    (title keys, scores, the full-text index): the previous file is not reused."""
    folder = tmp_path / "dumps"
    shutil.copytree(REAL_DUMPS, folder)
    out = tmp_path / "papers.db"
    assert run_build(folder, out).returncode == 0
    arguments = ("--dumps", str(folder), "--out", str(out), "--incremental")
    same = str(getattr(importlib.import_module(module), attribute))
    result = build_reporting_version(module, attribute, same, *arguments)
    assert result.returncode == 0, result.stderr
    assert "papers.db is up to date: 5 dumps, nothing new" in result.stderr  # the same version
    result = build_reporting_version(module, attribute, "0.0.0-other", *arguments)
    assert result.returncode == 0, result.stderr
    assert (f"{label} {same} -> 0.0.0-other changed since the previous build; building "
            f"everything") in result.stderr


def add_then_compare(dumps_dir, tmp_path, first: dict[str, str], later: dict[str, str]):
    """Build from `first` ({file name: text}), add `later` incrementally; return the result,
    the incremental database and a full build of everything."""
    for name, text in first.items():
        (dumps_dir / name).write_text(text, encoding="utf-8")
    out = tmp_path / "incremental.db"
    assert run_build(dumps_dir, out).returncode == 0
    for name, text in later.items():
        (dumps_dir / name).write_text(text, encoding="utf-8")
    result = run_build(dumps_dir, out, "--incremental")
    assert result.returncode == 0, result.stderr
    full = tmp_path / "full.db"
    assert run_build(dumps_dir, full).returncode == 0
    return result, out, full


def test_a_new_dump_that_pins_an_old_capture_year_updates_its_dates(dumps_dir, tmp_path):
    """b.txt shows with its year a paper that a.txt showed without: a.txt's capture year is
    pinned, so its yearless dates and its papers change, as in a full build."""
    first = {"a.txt": blank_separated(("Shared paper", ABSTRACT_A, ["• 2 authors", "·", "Mar 21"]),
                                      ("Lone paper", ABSTRACT_C, ["·", "Feb 2"]))}
    later = {"b.txt": blank_separated(("Shared paper", ABSTRACT_A, ["• 2 authors", "·", "Mar 21, 2024"]),
                                      ("Other", ABSTRACT_B, ["·", "Jan 3, 2025"]))}
    result, out, full = add_then_compare(dumps_dir, tmp_path, first, later)
    assert "adding 1 new dump to" in result.stderr
    assert rows(out, "select name, capture_year, capture_method from dumps order by name") == [
        ("a.txt", 2024, "inferred"), ("b.txt", 2026, "inferred_earliest")]
    assert rows(out, "select published from papers where title = 'Lone paper'") == [("2024-02-02",)]
    assert contents(out) == contents(full)


def test_pinning_the_year_of_a_dump_with_dates_no_page_could_show_is_an_update(dumps_dir,
                                                                             tmp_path):
    """a.txt's Feb 30 and May 20 are problems whatever its capture year: pinning the year
    changes neither problem, so the update goes on, and equals a full build."""
    first = {"a.txt": blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"]),
                                      ("No such day", ABSTRACT_B, ["·", "Feb 30"]),
                                      ("After the page", ABSTRACT_C, ["·", "May 20"]))}
    later = {"b.txt": blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21, 2024"]))}
    result, out, full = add_then_compare(dumps_dir, tmp_path, first, later)
    assert "adding 1 new dump to" in result.stderr and "building everything" not in result.stderr
    assert rows(out, "select capture_year, capture_method from dumps where name = 'a.txt'") == [
        (2024, "inferred")]
    assert rows(out, "select count(*) from problems") == [(2,)]
    assert contents(out) == contents(full)


def test_a_new_dumps_date_refused_on_its_page_does_not_date_an_old_dump(dumps_dir, tmp_path):
    """b.txt's Dec 12, 2025 is after its own page's Apr 17, 2025: no evidence for a.txt's
    year, in an update as in a full build (which the update equals)."""
    first = {"a.txt": blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"]))}
    later = {"b.txt": blank_separated(("Shared paper", ABSTRACT_A, ["·", "Dec 12, 2025"]))
             .replace("Apr 17", "Apr 17, 2025")}
    result, out, full = add_then_compare(dumps_dir, tmp_path, first, later)
    assert "adding 1 new dump to" in result.stderr and "building everything" not in result.stderr
    assert rows(out, "select name, capture_method from dumps order by name") == [
        ("a.txt", "unknown"), ("b.txt", "page")]
    assert contents(out) == contents(full)


def test_a_new_dump_that_makes_an_old_date_impossible_falls_back(dumps_dir, tmp_path):
    """Feb 29 in a.txt is possible until b.txt pins a.txt's year to 2025."""
    first = {"a.txt": blank_separated(("Leap paper", ABSTRACT_C, ["·", "Feb 29"]),
                                      ("Shared paper", ABSTRACT_A, ["·", "Mar 21"]))}
    later = {"b.txt": blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21, 2025"]))}
    result, out, full = add_then_compare(dumps_dir, tmp_path, first, later)
    assert "impossible, which renumbers the problems; building everything" in result.stderr
    assert rows(out, "select reason from problems") == [(INVALID_DATE_REASON,)]
    assert contents(out) == contents(full)


def test_new_organizations_slug_clashes_and_look_alikes_of_stored_papers(dumps_dir, tmp_path):
    first = {"a.txt": blank_separated(("Same title", ABSTRACT_A, ["zetalab Zeta Lab", "·", "May 9, 2025"]),
                                      ("Typo-free title about cortex", ABSTRACT_B))}
    later = {"b.txt": blank_separated(
        ("Same title", ABSTRACT_C, ["newlab New Lab", "·", "May 9, 2025"]),  # a look-alike
        ("Same Title", ABSTRACT_A, ["zetalab Zeta Lab", "·", "May 10, 2025"]),  # the same paper
        ("Typo-free titel about cortex", ABSTRACT_B, ["newlab New Lab", "·", "May 11, 2025"]))}  # a typo
    result, out, full = add_then_compare(dumps_dir, tmp_path, first, later)
    assert "adding 1 new dump to" in result.stderr
    assert rows(out, "select id from papers order by rowid") == [
        ("same-title",), ("typo-free-title-about-cortex",), ("same-title-2",)]
    assert rows(out, "select method from merges order by id") == [("normalized_title",), ("fuzzy_title",)]
    assert rows(out, "select paper_id, other_paper_id from lookalikes") == [("same-title-2", "same-title")]
    assert {name: count for name, count in rows(out, "select name, papers from organizations")} == {
        "Zeta Lab": 1, "New Lab": 2}
    assert contents(out) == contents(full)


def file_state(path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_an_update_with_nothing_new_leaves_the_file_untouched(dumps_dir, tmp_path):
    """No new dump, the same manifest, build code and metadata: `make build` rewrote the file
    anyway (a new built_at). It is left byte for byte, its date too, and says so; a changed
    description of metadata.yml or manifest entry still reaches the file."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)))
    (dumps_dir / "b.txt").write_text(blank_separated(("Other", ABSTRACT_B)))
    out = tmp_path / "papers.db"
    metadata = tmp_path / "metadata.yml"
    shutil.copy(ROOT / "metadata.yml", metadata)
    assert run_build(dumps_dir, out, "--metadata", str(metadata)).returncode == 0
    before = file_state(out)
    time.sleep(0.01)  # a rewrite would show in the file's date
    result = run_build(dumps_dir, out, "--incremental", "--metadata", str(metadata))
    assert result.returncode == 0, result.stderr
    assert "papers.db is up to date: 2 dumps, nothing new" in result.stderr
    assert f"kept {out}: 2 dumps, 2 records -> 2 papers" in result.stderr.splitlines()[-1]
    assert "incremental: adding" not in result.stderr
    assert file_state(out) == before

    metadata.write_text(metadata.read_text().replace(
        "Facts about the build that made this file", "Facts of the build of this file", 1))
    result = run_build(dumps_dir, out, "--incremental", "--metadata", str(metadata))
    assert "incremental: adding 0 new dumps to papers.db (2 already in it)" in result.stderr
    assert rows(out, "select description from table_docs where table_name = 'build_info'")[0][
        0].startswith("Facts of the build of this file")

    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2024\n")
    result = run_build(dumps_dir, out, "--incremental", "--metadata", str(metadata))
    assert "the capture of a.txt in dumps/manifest.yml changed; building everything" in result.stderr
    assert rows(out, "select value from build_info where key = 'manifest'") == [
        ('{"a.txt": "2024"}',)]


def test_a_changed_manifest_entry_of_an_old_dump_falls_back(dumps_dir, tmp_path):
    first = {"a.txt": blank_separated(("Lone", ABSTRACT_A, ["·", "Feb 25 2"])),
             "manifest.yml": "captures:\n  a.txt: 2024\n"}
    later = {"b.txt": blank_separated(("Other", ABSTRACT_B)),
             "manifest.yml": "captures:\n  a.txt: 2023\n  b.txt: 2025\n"}
    result, out, full = add_then_compare(dumps_dir, tmp_path, first, later)
    assert "the capture of a.txt in dumps/manifest.yml changed; building everything" in result.stderr
    assert contents(out) == contents(full)


def test_a_manifest_entry_for_the_new_dump_alone_is_an_update(dumps_dir, tmp_path):
    first = {"a.txt": blank_separated(("Lone", ABSTRACT_A, ["·", "Feb 25 2"]))}
    later = {"b.txt": blank_separated(("Other", ABSTRACT_B, ["·", "Mar 1"])),
             "manifest.yml": "captures:\n  b.txt: 2025-04-17\n"}
    result, out, full = add_then_compare(dumps_dir, tmp_path, first, later)
    assert "adding 1 new dump to" in result.stderr
    assert rows(out, "select published from papers where title = 'Other'") == [("2025-03-01",)]
    assert contents(out) == contents(full)


def test_the_update_check_finds_new_rows_that_point_nowhere_or_went_to_another_paper(real_db,
                                                                                    tmp_path):
    """incremental.changed_row_links: the links of the rows an update added, including those
    of the tables stored WITHOUT ROWID, which have no rowids to tell the new rows by."""
    from neuroai_papers.incremental import changed_row_links, last_rowids

    copy = tmp_path / "copy.db"
    shutil.copy(real_db, copy)
    conn = sqlite3.connect(copy)
    since = last_rowids(conn)
    assert "paper_topics" not in since and "title_blocks" not in since
    assert list(changed_row_links(conn, since, {})) == []
    old_paper, topic = conn.execute("select paper_id, topic from paper_topics limit 1").fetchone()
    conn.execute("insert into papers (id, title) values ('new-paper', 'A new paper')")
    new_rowid = conn.execute("select rowid from papers where id = 'new-paper'").fetchone()[0]
    conn.execute("insert into paper_topics values ('new-paper', ?, 'title', 'r', 'x', 1)", (topic,))
    conn.execute("insert into title_blocks values (7, ?)", (new_rowid,))
    conn.execute("insert into sightings (id, paper_id, dump) values (999999, 'new-paper', "
                 "(select name from dumps limit 1))")
    added = {"paper_topics": 1, "title_blocks": 1, "sightings": 1, "papers": 1}
    assert list(changed_row_links(conn, since, added)) == []
    conn.execute("insert into paper_topics values ('new-paper', 'no-such-topic', 'title', 'r', "
                 "'x', 1)")
    conn.execute("insert into paper_topics values (?, ?, 'title', 'another rule', 'x', 1)",
                 (old_paper, topic))  # written for a stored paper: no new paper holds it
    conn.execute("insert into sightings (id, paper_id, dump) values (1000000, 'nowhere', "
                 "(select name from dumps limit 1))")
    added.update(paper_topics=3, sightings=2)
    assert list(changed_row_links(conn, since, added)) == [
        "sightings.paper_id: 1 new rows point nowhere",
        "paper_topics.topic: 1 new rows point nowhere",
        "paper_topics: 2 rows of the new papers, 3 added",
    ]
    conn.close()


def untitled_dump(abstracts: list[str]) -> str:
    return blank_separated(*[("Untitled", abstract) for abstract in abstracts])


def random_abstracts(count: int, seed: int) -> list[str]:
    import random
    import string

    rng = random.Random(seed)
    return [" ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))
                     for _ in range(70)).capitalize() + "." for _ in range(count)]


def test_a_title_many_papers_share_is_compared_with_its_64_newest_only(tmp_path):
    """`Untitled` held by 70 distinct papers: a new copy is compared with the 64 newest (as
    for a blocking key), so cost and look-alike rows grow with the records, not their
    square. A copy of one of them merges; a copy of an older one becomes a new paper (the
    price of the bound), and an incremental build draws the same line."""
    first, second = random_abstracts(70, seed=1), random_abstracts(10, seed=2)
    folder = tmp_path / "dumps"
    folder.mkdir()
    (folder / "a.txt").write_text(untitled_dump(first))
    (folder / "b.txt").write_text(untitled_dump([*second, first[60], first[2]]))
    result, incremental, full = incremental_then_full(folder, ["b.txt"], tmp_path)
    assert contents(incremental) == contents(full)
    assert rows(full, "select count(*) from papers") == [(70 + 10 + 1,)]
    assert rows(full, "select paper_id, match_method from sightings where dump = 'b.txt' "
                      "and line = (select max(line) from sightings where dump = 'b.txt')") == [
        ("untitled-81", "new")]  # first[2] was not among the 64 newest
    assert rows(full, "select paper_id, match_method from sightings where dump = 'b.txt' "
                      "order by line limit 10, 1") == [("untitled-61", "identical")]
    # Each record is compared with at most 64 earlier papers of the key.
    compared = sum(min(n, 64) for n in range(80)) + 64 + 64
    assert 0 < rows(full, "select count(*) from lookalikes")[0][0] <= compared


def test_a_new_dump_of_known_year_pins_an_old_capture_with_a_yearless_date(dumps_dir, tmp_path):
    """b.txt's page shows its year, so its yearless `Mar 21` pins a.txt's capture year: the
    update redates a.txt as a full build dates it."""
    first = {"a.txt": blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"]),
                                      ("Lone paper", ABSTRACT_C, ["·", "Feb 2"]))}
    later = {"b.txt": blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"]))
             .replace("Apr 17", "Apr 17, 2024")}
    result, out, full = add_then_compare(dumps_dir, tmp_path, first, later)
    assert "adding 1 new dump to" in result.stderr and "building everything" not in result.stderr
    assert rows(out, "select name, capture_year, capture_method from dumps order by name") == [
        ("a.txt", 2024, "inferred"), ("b.txt", 2024, "page")]
    assert rows(out, "select published from papers where title = 'Lone paper'") == [("2024-02-02",)]
    assert contents(out) == contents(full)


def test_an_old_dump_of_known_year_pins_a_new_dumps_capture(dumps_dir, tmp_path):
    """The other way round: a.txt's year is on its page; the new b.txt takes it from a.txt's
    yearless date of a paper they share."""
    first = {"a.txt": blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"]))
             .replace("Apr 17", "Apr 17, 2024")}
    later = {"b.txt": blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"]))}
    result, out, full = add_then_compare(dumps_dir, tmp_path, first, later)
    assert "building everything" not in result.stderr
    assert rows(out, "select name, capture_year, capture_method from dumps order by name") == [
        ("a.txt", 2024, "page"), ("b.txt", 2024, "inferred")]
    assert contents(out) == contents(full)


def test_an_old_dumps_inferred_year_does_not_date_a_new_dump(dumps_dir, tmp_path):
    """b.txt's year was inferred from c.txt: no evidence for d.txt, which shares another of
    b.txt's papers, in an update as in a full build."""
    first = {"b.txt": blank_separated(("First", ABSTRACT_A, ["·", "Mar 21"]),
                                      ("Second", ABSTRACT_B, ["·", "Feb 2"])),
             "c.txt": blank_separated(("First", ABSTRACT_A, ["·", "Mar 21, 2025"]))}
    later = {"d.txt": blank_separated(("Second", ABSTRACT_B, ["·", "Feb 2"]))}
    result, out, full = add_then_compare(dumps_dir, tmp_path, first, later)
    assert "building everything" not in result.stderr
    assert rows(out, "select name, capture_year, capture_method from dumps order by name") == [
        ("b.txt", 2025, "inferred"), ("c.txt", 2026, "inferred_earliest"), ("d.txt", None, "unknown")]
    assert contents(out) == contents(full)


def test_a_new_copy_whose_abstract_differs_from_a_stored_papers_keeps_it(dumps_dir, tmp_path):
    """The update compares a new copy's abstract with the stored paper's text, and with a
    paper of the update itself, as a full build compares them."""
    longer = ABSTRACT_A + " Code and weights are released."
    first = {"a.txt": blank_separated(("Shared paper", ABSTRACT_A), ("Other", ABSTRACT_B))}
    later = {"b.txt": blank_separated(("Shared paper", longer), ("Other", ABSTRACT_B),
                                      ("New paper", ABSTRACT_C)),
             "c.txt": blank_separated(("New paper", ABSTRACT_C + " Appendix added.")),
             }
    result, out, full = add_then_compare(dumps_dir, tmp_path, first, later)
    assert "building everything" not in result.stderr
    assert rows(out, "select dump, title from sightings where abstract is not null "
                     "order by id") == [("b.txt", "Shared paper"), ("c.txt", "New paper")]
    assert contents(out) == contents(full)


def test_an_update_refuses_the_new_stated_capture_its_own_page_refutes(dumps_dir, tmp_path):
    """c.txt's page shows 2024, its stated capture says 2025, and taken as stated it would
    date b.txt's paper after b.txt's stated capture: the update names c.txt, as a full
    build does, not b.txt."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Other", ABSTRACT_B)))
    out = tmp_path / "papers.db"
    assert run_build(dumps_dir, out).returncode == 0
    (dumps_dir / "b.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A, ["·", "Jan 5"])))
    (dumps_dir / "c.txt").write_text(blank_separated(
        ("Shared paper", ABSTRACT_A, ["·", "Jan 5"])).replace("Apr 17", "Apr 17, 2024"))
    (dumps_dir / "manifest.yml").write_text("captures:\n  b.txt: 2023\n  c.txt: 2025\n")
    expected = (f"{dumps_dir / 'c.txt'}:11: the page shows Apr 17, 2024 but "
                f"{dumps_dir / 'manifest.yml'} states 2025")
    for extra in (("--incremental",), ()):
        result = run_build(dumps_dir, out, *extra)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr


def test_an_update_reads_the_captures_of_only_the_stored_dumps_it_meets(dumps_dir, tmp_path,
                                                                       monkeypatch):
    """A stored dump's capture is evidence only for the papers it shows: the update reads
    that of each stored dump sharing a paper with the new one, not all of them (16,656 at a
    million records)."""
    from neuroai_papers import build, incremental

    for number in range(12):
        (dumps_dir / f"{number:02d}.txt").write_text(blank_separated(
            (f"Paper number {number} of many", f"{ABSTRACT_B} Variant {number}.",
             ["·", "Mar 21"])))
    (dumps_dir / "03.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"])))
    out = tmp_path / "papers.db"
    assert run_build(dumps_dir, out).returncode == 0
    (dumps_dir / "99.txt").write_text(blank_separated(
        ("Shared paper", ABSTRACT_A, ["·", "Mar 21, 2025"]), ("New paper", ABSTRACT_C)))
    read = []

    def stored_capture(row):
        read.append(row["name"])
        return real(row)

    real = incremental.stored_capture
    monkeypatch.setattr(incremental, "stored_capture", stored_capture)
    assert build.main(["--dumps", str(dumps_dir), "--out", str(out), "--incremental"]) == 0
    assert rows(out, "select capture_year, capture_method from dumps where name = '03.txt'") == [
        (2025, "inferred")]
    assert read == ["03.txt"]



def test_a_new_dump_contradicting_an_old_stated_capture_is_refused_there_as_in_a_full_build(
        dumps_dir, tmp_path):
    """c.txt dates a paper of the new b.txt and one of the stored a.txt after their stated
    captures: both builds name a.txt, the first dump at fault (the update named b.txt)."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A, ["·", "Jan 2"])))
    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2025\n")
    out = tmp_path / "incremental.db"
    assert run_build(dumps_dir, out).returncode == 0
    (dumps_dir / "b.txt").write_text(blank_separated(("Other", ABSTRACT_B, ["·", "Jun 1"])))
    (dumps_dir / "c.txt").write_text(blank_separated(
        ("Shared paper", ABSTRACT_A, ["·", "Jan 2"]), ("Other", ABSTRACT_B, ["·", "Jun 1, 2026"]))
        .replace("Apr 17", "Dec 17, 2026"))
    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2025\n  b.txt: 2025\n")
    update, full = run_build(dumps_dir, out, "--incremental"), run_build(dumps_dir, tmp_path / "full.db")
    error = f"error: {dumps_dir / 'a.txt'}:13: this paper is dated 2026-01-02 in another dump"
    for result in (update, full):
        assert result.returncode == 2 and error in result.stderr, result.stderr


RANDOM_TITLES = ["Decoding vision from fMRI", "Spiking networks at scale", "EEG foundation model"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Dec"]


def random_dumps(rng) -> tuple[dict[str, str], dict[str, str]]:
    """Dumps of a few papers shown again under variant titles (case, a period, a typo) and
    abstracts (longer, shorter), look-alikes (a title with another abstract), dates with and
    without their year (some impossible), page years and stated captures: ({name: text},
    {name: stated capture})."""
    papers = []
    for _ in range(rng.randint(2, 5)):
        month = rng.choice(MONTHS)
        day = rng.choice([2, 21, 28, 29] if month == "Feb" else [1, 21, 30, 31])
        papers.append((rng.choice(RANDOM_TITLES), rng.choice([ABSTRACT_A, ABSTRACT_B, ABSTRACT_C]),
                       f"{month} {day}", rng.choice([2024, 2025, 2026])))
    dumps, manifest = {}, {}
    for number in range(rng.randint(2, 5)):
        records = []
        for _ in range(rng.randint(1, 8)):
            title, abstract, shown, year = rng.choice(papers)
            title = rng.choice([title, title.upper(), title + ".", title.replace("o", "oo", 1)])
            abstract = rng.choice([abstract, abstract + " Code is released.",
                                   abstract.rsplit(". ", 1)[0] + "."])
            if rng.random() < 0.2:
                shown = f"{rng.choice(MONTHS)} {rng.choice([2, 29, 30])}"
            shown = rng.choice([shown, f"{shown}, {year}"])
            meta = rng.choice([None, ["·", shown], [f"• {rng.randint(1, 9)} authors", "·", shown]])
            records.append((title, abstract, meta) if meta else (title, abstract))
        name = f"{number:03d}.txt"
        page = rng.choice(["Apr 17", "Apr 17", "Apr 17, 2025", "Apr 17, 2026"])
        dumps[name] = blank_separated(*records).replace("Apr 17", page)
        if page == "Apr 17" and rng.random() < 0.25:
            manifest[name] = rng.choice(["2025", "2026", "2026-04-17"])
    return dumps, manifest


def write_dumps(folder, dumps: dict[str, str], manifest: dict[str, str]) -> None:
    for name, text in dumps.items():
        (folder / name).write_text(text, encoding="utf-8")
    stated = "".join(f"  {name}: {manifest[name]}\n" for name in dumps if name in manifest)
    if stated:
        (folder / "manifest.yml").write_text("captures:\n" + stated)


@pytest.mark.parametrize("seed", range(8))
def test_random_dumps_added_incrementally_equal_a_full_build(tmp_path, seed):
    """Seeded random dumps: the first ones built, the others added with --incremental,
    equal a full build, or the update falls back saying why and still equals it; a full
    build refused is refused by the update with the same error."""
    import random

    rng = random.Random(seed)
    dumps, manifest = random_dumps(rng)
    names = sorted(dumps)
    first = rng.randint(1, len(names) - 1)
    full_dir, staged = tmp_path / "full", tmp_path / "staged"
    full_dir.mkdir(), staged.mkdir()
    write_dumps(full_dir, dumps, manifest)
    full = run_build(full_dir, tmp_path / "full.db")
    assert full.returncode in (0, 2) and "Traceback" not in full.stderr, full.stderr
    write_dumps(staged, {name: dumps[name] for name in names[:first]}, manifest)
    out = tmp_path / "incremental.db"
    if run_build(staged, out).returncode != 0:
        return  # refused already: nothing to add to
    write_dumps(staged, dumps, manifest)
    update = run_build(staged, out, "--incremental")
    errors = [line.replace(str(staged), "dumps").replace(str(full_dir), "dumps")
              for line in (update.stderr + full.stderr).splitlines() if line.startswith("error:")]
    if full.returncode == 2:
        assert update.returncode == 2 and len(errors) == 2 and errors[0] == errors[1], errors
        return
    assert update.returncode == 0, update.stderr
    assert "adding" in update.stderr or "incremental: " in update.stderr, update.stderr
    assert contents(out) == contents(tmp_path / "full.db")


def test_a_new_dump_bounds_the_year_of_an_old_page_without_a_date_line(dumps_dir, tmp_path):
    """a.txt shows no date; b.txt dates a paper of it 2025-03-21: the update gives a.txt the
    lower bound a full build gives it."""
    first = {"a.txt": blank_separated(("Shared paper", ABSTRACT_A)).replace("Apr 17\n\n", "")}
    later = {"b.txt": blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21, 2025"]))}
    result, out, full = add_then_compare(dumps_dir, tmp_path, first, later)
    assert "building everything" not in result.stderr
    assert rows(out, "select capture_year, capture_method from dumps where name = 'a.txt'") == [
        (2025, "inferred_earliest")]
    assert contents(out) == contents(full)


def papers_in_statistics(db) -> int:
    """The number of papers the planner's statistics (sqlite_stat1) counted."""
    [(stat,)] = rows(db, "select stat from sqlite_stat1 where tbl = 'papers' and idx is not null "
                         "limit 1")
    return int(stat.split()[0])


def test_an_update_takes_the_planners_statistics_again_once_the_papers_outgrow_them(
        dumps_dir, tmp_path):
    """A full build runs ANALYZE; an update runs it again when the papers differ by more
    than a tenth from those the statistics counted (20 -> 21 papers: kept; 21 -> 30: taken
    again), so that updates alone do not leave the first build's statistics for ever."""
    def dump(name, count):
        papers = [(made_up_words(f"{name}{n}t", 6), made_up_words(f"{name}{n}a", 40))
                  for n in range(count)]
        (dumps_dir / name).write_text(blank_separated(*papers))

    out = tmp_path / "papers.db"
    dump("a.txt", 20)
    assert run_build(dumps_dir, out).returncode == 0
    assert papers_in_statistics(out) == 20
    dump("b.txt", 1)
    result = run_build(dumps_dir, out, "--incremental")
    assert "adding 1 new dump to" in result.stderr, result.stderr
    assert papers_in_statistics(out) == 20  # a twentieth more: not worth reading every index
    dump("c.txt", 9)
    result = run_build(dumps_dir, out, "--incremental")
    assert "adding 1 new dump to" in result.stderr, result.stderr
    assert papers_in_statistics(out) == 30
