"""The whole build on the real dumps: counts, search, documentation, atomicity, determinism.

Broken dumps of every kind are in test_broken_dumps.py; kills and a full disk in test_faults.py.
"""

from __future__ import annotations

import os
import sqlite3

import pytest
import yaml

from conftest import (ABSTRACT_A, ABSTRACT_B, ABSTRACT_C, REAL_DUMPS, ROOT, blank_separated, rows,
                      run_build)
from neuroai_papers.parse import read_dump
from neuroai_papers.write import FTS as SEARCH

METADATA = yaml.safe_load((ROOT / "metadata.yml").read_text())
DOCUMENTED = METADATA["databases"]["papers"]["tables"]
FTS_SHADOW = ("papers_fts_data", "papers_fts_idx", "papers_fts_docsize", "papers_fts_config")


def schema(db) -> dict[str, list[str]]:
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute(
            "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")]
        return {t: [c[1] for c in conn.execute(f"pragma table_info([{t}])")]
                for t in tables if t not in FTS_SHADOW}
    finally:
        conn.close()


def test_sightings_per_dump_equal_the_records_each_dump_holds(real_db):
    expected = {path.name: len(read_dump(path).records) for path in REAL_DUMPS.glob("*.txt")}
    got = dict(rows(real_db, "select dump, count(*) from sightings group by dump"))
    assert got == expected
    assert dict(rows(real_db, "select name, records from dumps")) == expected


def test_new_papers_per_dump_add_up_to_all_papers(real_db):
    (total,) = rows(real_db, "select sum(new_papers) from dumps")[0]
    assert total == rows(real_db, "select count(*) from papers")[0][0]


def test_papers_per_dump_count_a_paper_listed_twice_once(dumps_dir, tmp_path):
    """dumps.papers is what the `dumps` facet shows unfiltered: the papers whose dumps hold it."""
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Twice listed", ABSTRACT_A), ("Other paper", ABSTRACT_B), ("Twice listed", ABSTRACT_A)))
    out = tmp_path / "p.db"
    assert run_build(dumps_dir, out).returncode == 0
    assert rows(out, "select records, papers from dumps") == [(3, 2)]
    assert rows(out, "select count(*) from papers, json_each(papers.dumps) j where j.value = 'a.txt'") == [(2,)]


def test_search_uses_stemming_so_decoding_finds_decode(real_db):
    stemmed = rows(real_db, "select count(*) from papers_fts where papers_fts match 'decode'")[0][0]
    plain = rows(real_db, "select count(*) from papers where title || abstract like '%decode %'")[0][0]
    assert stemmed > plain > 0
    titles = [r[0] for r in rows(
        real_db, "select papers.title from papers_fts join papers on papers.rowid = papers_fts.rowid "
                 "where papers_fts match 'mindbridge' order by rank")]
    assert titles == ["MindBridge: A Cross-Subject Brain Decoding Framework"]


def test_search_index_is_declared_as_sqlite_utils_declares_it_with_default_settings(real_db):
    """The build writes the FTS5 table itself (to give it a large write buffer); sqlite-utils
    and Datasette must still find it, and the file must keep FTS5's default settings but
    for the rank, which ranks as the site does (no write buffer of the build's)."""
    import sqlite_utils

    reference = sqlite_utils.Database(memory=True)
    reference["papers"].insert({"title": "t", "abstract": "a"})
    reference["papers"].enable_fts(["title", "abstract"], tokenize=SEARCH["papers"][1])
    declared = "select sql from sqlite_master where name = 'papers_fts'"
    assert rows(real_db, declared) == [tuple(reference.execute(declared).fetchone())]
    assert sqlite_utils.Database(real_db)["papers"].detect_fts() == "papers_fts"
    assert rows(real_db, "select k, v from papers_fts_config order by k") == [
        ("rank", "bm25(10.0, 1.0)"), ("version", 4)]
    assert rows(real_db, "select count(*) from papers_fts_docsize") == rows(
        real_db, "select count(*) from papers")


def test_search_index_equals_one_rebuilt_from_the_papers_table(real_db, tmp_path):
    """The build indexes the papers' texts in a thread, into a file of its own, and copies
    that index in: it must be the index FTS5 makes from the table itself."""
    import shutil

    rebuilt = tmp_path / "rebuilt.db"
    shutil.copyfile(real_db, rebuilt)
    with sqlite3.connect(rebuilt) as conn:
        conn.execute("INSERT INTO papers_fts(papers_fts) VALUES ('rebuild')")
    built = search_index_contents(real_db)
    assert built == search_index_contents(rebuilt)
    assert len(built[0]) > 10 * len(built[1])  # every word of every paper: many entries


def search_index_contents(db) -> tuple[list, list, list]:
    """Every entry of the papers' full-text index (term, row, column, position), each row's
    token counts and the index's totals."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.entries "
                     "USING fts5vocab(main, 'papers_fts', 'instance')")
        entries = conn.execute("select * from temp.entries order by term, doc, col, offset")
        return (entries.fetchall(),
                conn.execute("select * from papers_fts_docsize order by id").fetchall(),
                conn.execute("select block from papers_fts_data where id = 1").fetchall())
    finally:
        conn.close()


def test_search_rowid_repeats_the_rowid_and_the_check_catches_a_stray(real_db, tmp_path):
    """The site's search compares papers.search_rowid with the index's rowids
    (plugins/search_plan.py): a paper whose copy differs would vanish from searches."""
    import shutil

    from neuroai_papers.write import BuildCheckError, check_search_rowids

    assert rows(real_db, "select count(*) from papers where search_rowid = rowid") == rows(
        real_db, "select count(*) from papers")
    stray = tmp_path / "stray.db"
    shutil.copyfile(real_db, stray)
    with sqlite3.connect(stray) as conn:
        conn.execute("update papers set search_rowid = search_rowid + 1 where rowid = 3")
    conn = sqlite3.connect(stray)
    try:
        with pytest.raises(BuildCheckError, match=r"^papers.search_rowid: 1 rows differ"):
            check_search_rowids(conn)
    finally:
        conn.close()


@pytest.mark.parametrize("damage, error", [
    # The full-text index no longer agrees with its table (checked in the second thread).
    ("update papers set abstract = 'quite different words now' where rowid = 2",
     r"^papers_fts: .*"),
    ("update sightings set paper_id = 'no-such-paper' where id = (select min(id) from sightings)",
     r"^foreign keys broken: sightings.paper_id: 1 values not in papers.id \('no-such-paper'"),
    ("delete from sightings where id = (select max(id) from sightings)",
     r"^sightings: \d+ rows written, \d+ expected$"),
])
def test_the_closing_check_catches_a_damaged_file(real_db, tmp_path, damage, error):
    """check_database runs the full-text index's check beside the others: each still fails
    the build, and an index that is sound passes."""
    import shutil

    from neuroai_papers.write import BuildCheckError, check_database

    expected = {"sightings": rows(real_db, "select count(*) from sightings")[0][0]}
    check_database(real_db, expected)  # the build's own file passes
    damaged = tmp_path / "damaged.db"
    shutil.copyfile(real_db, damaged)
    with sqlite3.connect(damaged) as conn:
        conn.execute("pragma foreign_keys = off")
        conn.execute(damage)
    with pytest.raises(BuildCheckError, match=error):
        check_database(damaged, expected)


def test_the_link_check_finds_what_sqlites_foreign_key_check_finds(real_db, tmp_path):
    """broken_links looks each distinct value up once instead of PRAGMA foreign_key_check's
    every row: with one row of every linking column pointing nowhere, both name the same
    links, and neither names any in the built file."""
    import shutil

    from neuroai_papers.write import TABLES, broken_links, storage_order

    def pragma_finds(conn):
        columns = {(table, fk[0]): fk[3] for table in TABLES
                   for fk in conn.execute(f"pragma foreign_key_list([{table}])")}
        return {(table, columns[table, fk_id])
                for table, _, _, fk_id in conn.execute("pragma foreign_key_check")}

    damaged = tmp_path / "damaged.db"
    shutil.copyfile(real_db, damaged)
    conn = sqlite3.connect(damaged)
    try:
        assert pragma_finds(conn) == set() and list(broken_links(conn)) == []
        links = [(table, column) for table, (_, _, keys) in TABLES.items() for column in keys]
        for table, column in links:
            key = storage_order(table)  # the rowid, or the primary key WITHOUT ROWID
            conn.execute(f"update [{table}] set [{column}] = 'nowhere' "
                         f"where ({key}) = (select {key} from [{table}] limit 1)")
        found = {tuple(line.split(":")[0].split(".")) for line in broken_links(conn)}
        assert found == pragma_finds(conn)
        assert found == {(t, c) for t, c in links if rows(real_db, f"select count(*) from [{t}]")[0][0]}
        assert {("sightings", "paper_id"), ("paper_topics", "paper_id")} <= found
    finally:
        conn.close()


@pytest.mark.parametrize("damaged, damage, error", [
    ("papers", "update papers set abstract = 'quite different words now' where rowid = 2",
     r"^papers_fts: 1 papers differ from the text their full-text index was built from$"),
    ("papers", "update papers set title = title || ' again' where rowid = 3",
     r"^papers_fts: 1 papers differ from the text"),
    ("built", "delete from titles where n = (select max(n) from titles)",
     r"^papers_fts: 1 papers differ from the text"),
    # The index in the file is no longer the one FTS5 built from the texts.
    ("papers", "update papers_fts_data set block = block || x'00' "
               "where id = (select max(id) from papers_fts_data)",
     r"^papers_fts: the index is not the one built from the texts: "
     r"papers_fts_data: 1 rows not as built \((\d+) rows, \1 built\)$"),
    ("papers", "delete from papers_fts_idx where (segid, term) = "
               "(select segid, term from papers_fts_idx order by segid, term desc limit 1)",
     r"^papers_fts: the index is not the one built from the texts: "
     r"papers_fts_idx: 0 rows not as built \((\d+) rows, (?!\1)\d+ built\)$"),
    ("built", "update papers_fts_docsize set sz = x'00' where id = 1",
     r"^papers_fts: the index is not the one built from the texts: papers_fts_docsize: 1 rows"),
    # The terms counted from it, copied with it.
    ("papers", "update terms set papers = papers + 1 where term = (select min(term) from terms)",
     r"^papers_fts: the index is not the one built from the texts: terms: 1 rows not as built"),
    ("built", "delete from terms where term = (select max(term) from terms)",
     r"^papers_fts: the index is not the one built from the texts: terms: 1 rows not as built "
     r"\((\d+) rows, (?!\1)\d+ built\)$"),
])
def test_the_build_checks_the_index_against_the_texts_it_was_built_from(
        real_db, tmp_path, damaged, damage, error):
    """In a build, the full-text index is checked against the titles and abstracts it was
    built from, and against the index FTS5 built from them in its own file, not tokenized
    again from the table: a paper whose text differs from them, a text missing, or an index
    that is not, row for row, the one built from them, fails the check. The index built
    here from the file's texts, as the build builds it, is the one in the file."""
    import shutil

    from neuroai_papers.texts import DiskList
    from neuroai_papers.write import BuildCheckError, SearchIndexBuild, check_database

    db, built = tmp_path / "papers.db", tmp_path / "search.db"
    shutil.copyfile(real_db, db)
    with DiskList(tmp_path / "abstracts.db") as texts:
        for (abstract,) in rows(real_db, "select abstract from papers order by rowid"):
            texts.append(abstract)
        texts.flush()
        titles = [title for (title,) in rows(real_db, "select title from papers order by rowid")]
        search = SearchIndexBuild(built, "papers", titles, texts.path)
        search.wait()
        check_database(db, {}, search.texts)  # the build's own file passes
        with sqlite3.connect(db if damaged == "papers" else built) as conn:
            conn.execute(damage)
        with pytest.raises(BuildCheckError, match=error):
            check_database(db, {}, search.texts)


def test_ranked_search_puts_title_matches_first(real_db):
    top = rows(real_db, "select papers.title from papers_fts join papers on papers.rowid = "
                        "papers_fts.rowid where papers_fts match 'spiking' "
                        "order by bm25(papers_fts, 10.0, 1.0) limit 3")
    assert all("spiking" in title.lower() for (title,) in top)


def test_every_table_and_column_is_documented_and_nothing_else(real_db):
    actual = schema(real_db)
    assert set(actual) == set(DOCUMENTED)
    for table, columns in actual.items():
        described = DOCUMENTED[table].get("columns") or {}
        assert DOCUMENTED[table].get("description"), table
        assert set(columns) == set(described), table
        assert all(text and text.strip() for text in described.values()), table


def test_every_column_that_holds_a_null_says_what_null_means(real_db, dumps_dir, tmp_path):
    """What unknown looks like is in the documentation: a column that holds a null, in the
    real database or in one of a page of unknown year with an unplaced organization and an
    impossible date, says when it is null (handle, location_score, capture_line, the
    sightings' published and date_method and papers.date_text did not)."""
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Decoding speech from EEG", ABSTRACT_A, ["Unknown Lab Of Nowhere", "·", "Feb 30 2"]),
        ("Spiking networks on chips", ABSTRACT_B)).replace("Apr 17\n", "", 1))
    tiny = tmp_path / "tiny.db"
    assert run_build(dumps_dir, tiny).returncode == 0
    silent = set()
    for db in (real_db, tiny):
        for table, column, text in rows(db, "select table_name, column_name, description "
                                            "from column_docs where table_name <> 'papers_fts'"):
            nulls = rows(db, f'select count(*) from "{table}" where "{column}" is null')[0][0]
            if nulls and "null" not in text.lower():
                silent.add(f"{table}.{column}")
    assert not silent


def test_documentation_travels_inside_the_database(real_db):
    docs = dict(rows(real_db, "select table_name || '.' || column_name, description from column_docs"))
    assert docs["papers.published"].startswith("Date the page gives")
    assert len(docs) == sum(len(schema(real_db)[t]) for t in schema(real_db))
    info = dict(rows(real_db, "select key, value from build_info"))
    assert set(info) >= {"built_at", "neuroai_papers_version", "git_commit", "dumps"}
    names = sorted(path.name for path in REAL_DUMPS.glob("*.txt"))
    assert info["dumps"].startswith(f"{len(names)} dumps, {names[0]} to {names[-1]}; ")


def test_title_blocks_hold_the_blocking_keys_of_every_papers_title_key(real_db):
    """The build writes title_blocks from matching's block index (packed pairs unpacked by
    SQLite): they must be the blocking keys of each paper's title key, no more, no fewer."""
    from neuroai_papers.dedupe import blocking_keys

    expected = sorted((block, rowid) for rowid, key in rows(real_db, "select rowid, title_key from papers")
                      for block in blocking_keys(key))
    assert rows(real_db, "select block, paper_rowid from title_blocks order by block, paper_rowid") == expected
    assert len(expected) > 3 * rows(real_db, "select count(*) from papers")[0][0]


def test_foreign_keys_and_indexes_exist(real_db):
    conn = sqlite3.connect(real_db)
    fks = {(r[2], r[3]) for r in conn.execute("pragma foreign_key_list(sightings)")}
    assert {("papers", "paper_id"), ("dumps", "dump")} <= fks
    indexed = {r[1] for r in conn.execute("pragma index_list(papers)")}
    for column in ("published_year", "organization_id", "authors", "first_seen_dump", "dumps_seen"):
        assert any(column in name for name in indexed), column
    conn.close()


def test_same_dumps_give_the_same_rows(copy_real_dumps, tmp_path, real_db):
    out = tmp_path / "again.db"
    assert run_build(copy_real_dumps, out).returncode == 0
    for table in schema(real_db):
        if table in ("build_info",):
            continue
        sql = f"select * from [{table}] order by 1, 2"
        assert rows(out, sql) == rows(real_db, sql), table


def test_build_prints_progress_and_a_summary(copy_real_dumps, tmp_path):
    result = run_build(copy_real_dumps, tmp_path / "p.db")
    assert "parsed 5/5 004_a2400baee32e0311.txt: 49 records" in result.stderr
    assert "5 dumps, 425 records -> 332 papers" in result.stderr


def test_the_build_counts_one_of_a_kind_in_the_singular(dumps_dir, tmp_path):
    """A one-paper dump: its lines and build_info say '1 dump', '1 record', '1 paper', and
    name the one dump once ('1 dumps', 'a.txt to a.txt' before)."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A, ["• 2 authors"])))
    out = tmp_path / "p.db"
    result = run_build(dumps_dir, out)
    assert result.returncode == 0, result.stderr
    assert "parsed 1/1 a.txt: 1 record, 0 problems, layout" in result.stderr
    assert "(so far 1 record, 1 new paper)" in result.stderr
    assert "topics of 1 paper, then the papers" in result.stderr
    assert (f"built {out}: 1 dump, 1 record -> 1 paper (0 repeat sightings, 0 title variants "
            f"merged, 0 look-alikes kept apart), 0 organizations, 0 problems," in result.stderr)
    [(dumps,)] = rows(out, "select value from build_info where key = 'dumps'")
    assert dumps.startswith("1 dump, a.txt; sha256 of its name and sha256: ")


def test_parse_problems_are_warnings_with_file_and_line_and_rows(dumps_dir, tmp_path):
    text = blank_separated(("Good", ABSTRACT_A)) + "\nDangling title\n"
    (dumps_dir / "a.txt").write_text(text)
    result = run_build(dumps_dir, tmp_path / "p.db")
    assert result.returncode == 0
    line = text.count("\n")
    assert f"warning: {dumps_dir / 'a.txt'}:{line}: title with no abstract" in result.stderr
    assert rows(tmp_path / "p.db", "select dump, line, text from problems") == [
        ("a.txt", line, "Dangling title")]


def test_truncated_record_gives_a_problem_and_a_sound_database(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(("Whole", ABSTRACT_A)) + "Cut", encoding="utf-8")
    out = tmp_path / "p.db"
    assert run_build(dumps_dir, out).returncode == 0
    assert rows(out, "pragma integrity_check") == [("ok",)]
    assert rows(out, "select reason from problems") == [("title with no abstract after it (truncated record)",)]


def test_the_built_file_has_the_builds_page_size_and_is_sound(real_db):
    from neuroai_papers.write import PAGE_BYTES

    assert PAGE_BYTES != 4096  # SQLite's default: the build sets its own
    assert rows(real_db, "pragma page_size") == [(PAGE_BYTES,)]
    assert rows(real_db, "pragma integrity_check") == [("ok",)]


def test_the_larger_cache_holds_only_for_its_block(tmp_path):
    from neuroai_papers.write import INSERT_CACHE_KIB, DatabaseWriter

    with DatabaseWriter(tmp_path / "papers.db") as writer:
        cache = lambda: writer.conn.execute("pragma cache_size").fetchone()[0]  # noqa: E731
        default = cache()
        with writer.cache_for_random_inserts():
            assert cache() == -INSERT_CACHE_KIB != default
        assert cache() == default
        with pytest.raises(ZeroDivisionError), writer.cache_for_random_inserts():
            1 / 0
        assert cache() == default


def test_interrupted_write_leaves_no_file_in_place(copy_real_dumps, tmp_path, monkeypatch):
    from neuroai_papers import build as build_module, write

    out = tmp_path / "papers.db"
    out.write_bytes(b"SQLite format 3\0previous")  # the build replaces only a database

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(write, "create_indexes_and_search", explode)
    assert build_module.main(["--dumps", str(copy_real_dumps), "--out", str(out)]) == 3
    assert out.read_bytes() == b"SQLite format 3\0previous"
    assert sorted(os.listdir(tmp_path)) == ["dumps", "papers.db"]


def test_records_that_show_the_same_value_share_one_object_and_keep_their_values():
    """build.share_repeated_values: memory at a million records, with nothing changed."""
    from neuroai_papers.build import share_repeated_values

    dumps = [read_dump(path) for path in sorted(REAL_DUMPS.glob("*.txt"))]
    records = [record for dump in dumps for record in dump.records]
    fields = ("organization", "date_text", "date", "line", "end_line")
    before = [[getattr(record, name) for name in fields] for record in records]
    shared: dict = {}
    for dump in dumps:
        share_repeated_values(dump.records, shared)
    assert [[getattr(record, name) for name in fields] for record in records] == before
    for name in fields:
        values = [getattr(record, name) for record in records]
        assert sum(value is not None for value in values) > 1
        assert len({id(value) for value in values}) == len(set(values))


def test_the_build_pauses_the_cycle_collector_and_gives_it_back(copy_real_dumps, tmp_path,
                                                                 monkeypatch):
    """build.cycle_collection_paused: off while the build runs (the records would be walked
    again and again), on again afterwards, whether the build succeeded or failed."""
    import gc

    from neuroai_papers import build as build_module

    seen_during = []
    real_full_build = build_module.full_build

    def watched_full_build(*args, **kwargs):
        seen_during.append(gc.isenabled())
        return real_full_build(*args, **kwargs)

    monkeypatch.setattr(build_module, "full_build", watched_full_build)
    assert gc.isenabled()
    out = tmp_path / "papers.db"
    assert build_module.main(["--dumps", str(copy_real_dumps), "--out", str(out)]) == 0
    assert seen_during == [False] and gc.isenabled()
    (copy_real_dumps / "zz-broken.txt").write_bytes(b"\xff\xfe not text")
    assert build_module.main(["--dumps", str(copy_real_dumps), "--out", str(out)]) == 2
    assert seen_during == [False, False] and gc.isenabled()  # refused halfway through
    gc.disable()
    try:  # a caller that had paused it itself finds it paused still
        assert build_module.main(["--dumps", str(copy_real_dumps), "--out", str(out)]) == 2
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("text, message", [
    ("databases: [\n", "metadata.yml:2: not valid YAML ("),
    ("title: no databases\n", "metadata.yml: expected `databases: papers: tables:`"),
    ("databases:\n  papers:\n    tables: 3\n", "metadata.yml:3: expected `databases: papers: tables:`"),
    ("databases:\n  papers:\n    tables:\n      papers: just a string\n",
     "metadata.yml:4: table `papers`: expected `description:` and `columns:`, got 'just a string'"),
    ("databases:\n  papers:\n    tables:\n      papers:\n        description: [1]\n",
     "metadata.yml:5: table `papers`: the description must be text, got [1]"),
    ("databases:\n  papers:\n    tables:\n      papers:\n        columns: abc\n",
     "metadata.yml:5: table `papers`: `columns` must map each column to its description, got 'abc'"),
    ("databases:\n  papers:\n    tables:\n      papers:\n        columns:\n          id: 3\n",
     "metadata.yml:6: column `papers.id`: the description must be text, got 3"),
])
def test_a_bad_metadata_file_is_refused_in_one_line(dumps_dir, tmp_path, text, message):
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)))
    metadata = tmp_path / "metadata.yml"
    metadata.write_text(text)
    result = run_build(dumps_dir, tmp_path / "papers.db", "--metadata", str(metadata))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "papers.db").exists()


def test_a_file_in_dumps_that_is_not_a_txt_dump_is_named_in_a_warning(dumps_dir, tmp_path):
    """A dump saved as .TXT, .md or with no extension is not read: the build says so,
    instead of leaving its papers out in silence. The manifest and hidden files are not named."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)))
    for name in ("b.TXT", "c.md", "d", ".gitkeep", "manifest.yml"):
        (dumps_dir / name).write_text("captures:\n" if name == "manifest.yml" else "x\n")
    result = run_build(dumps_dir, tmp_path / "papers.db")
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "not read: only files named" in line]
    assert warned == [f"warning: {dumps_dir / name}: not read: only files named *.txt are dumps "
                      f"(rename it if it is one)" for name in ("b.TXT", "c.md", "d")]


def test_a_folder_with_no_txt_dump_names_the_files_it_did_not_read(dumps_dir, tmp_path):
    """A folder of dumps saved as `.TXT`: the build said only "no *.txt dumps", without the
    warning that names the file."""
    (dumps_dir / "005.TXT").write_text(blank_separated(("Lone", ABSTRACT_A)))
    result = run_build(dumps_dir, tmp_path / "papers.db")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"warning: {dumps_dir / '005.TXT'}: not read: only files named *.txt are dumps "
        f"(rename it if it is one)", f"error: {dumps_dir}: no *.txt dumps to build from",
        f"nothing written; {tmp_path / 'papers.db'} is unchanged"]


@pytest.mark.parametrize("incremental", [[], ["--incremental"]])
def test_an_output_that_is_a_folder_is_refused_before_the_build(dumps_dir, tmp_path,
                                                                 incremental):
    """It read every dump and failed at the end, blaming its own temporary file ("cannot
    write .../.out.tmp-123: unable to open database file")."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)))
    out = tmp_path / "out"
    out.mkdir()
    result = run_build(dumps_dir, out, *incremental)
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines() == [
        f"error: the database could not be built: {out}: is a directory, not a database "
        f"file (--out names the file to write)", f"nothing written; {out} is unchanged"]
    assert list(out.iterdir()) == [] and not list(tmp_path.glob(".out.tmp-*"))


@pytest.mark.parametrize("incremental", [[], ["--incremental"]])
def test_an_output_that_is_not_a_database_is_refused_before_the_dumps_are_read(
        dumps_dir, tmp_path, incremental):
    """`--out dumps/a.txt`, a typo, replaced the dump with a database (and --incremental
    only said it could not read it first): a file that is neither empty nor an SQLite
    database is refused, before the dumps are read (the broken one here is never reached)."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)))
    (dumps_dir / "b.txt").write_bytes(b"\xff not a dump")
    out = dumps_dir / "a.txt"
    before = out.read_bytes()
    result = run_build(dumps_dir, out, *incremental)
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines() == [
        f"error: the database could not be built: {out}: is not an SQLite database, and the "
        f"build would replace it (--out names the database to write; delete the file first "
        f"if it is to go)", f"nothing written; {out} is unchanged"]
    assert out.read_bytes() == before and not list(dumps_dir.glob(".a.txt.tmp-*"))


@pytest.mark.parametrize("incremental", [[], ["--incremental"]])
def test_an_empty_output_or_a_previous_database_is_replaced(dumps_dir, tmp_path, incremental):
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)))
    out = tmp_path / "papers.db"
    out.touch()  # an empty file, as `touch` or mktemp leave it
    for _ in range(2):  # then the database the first build wrote
        result = run_build(dumps_dir, out, *incremental)
        assert result.returncode == 0, result.stderr
        assert rows(out, "select title from papers") == [("Lone",)]



def test_the_file_says_how_to_search_it_and_to_rebuild_its_index(real_db, tmp_path):
    """papers_fts indexes papers by their rowid and holds none of their text: the file's own
    description of it gives a search that works in plain SQLite, ranked as the site ranks,
    and the statement that brings the index back in step once the papers are changed."""
    import re
    import shutil

    ((described,),) = rows(real_db, "select description from table_docs "
                                    "where table_name = 'papers_fts'")
    statements = [" ".join(code.split()) for code in re.findall(r"`([^`]+)`", described)]
    search = next(code for code in statements if code.startswith("select"))
    rebuild = next(code for code in statements if code.startswith("insert"))
    found = rows(real_db, search)
    texts = dict(rows(real_db, "select id, lower(title || ' ' || abstract) from papers"))
    assert len(found) > 10 and all("decod" in texts[paper] for paper, _ in found)
    assert "decod" in found[0][1].lower()  # title words weigh more
    copy = tmp_path / "papers.db"
    shutil.copyfile(real_db, copy)
    conn = sqlite3.connect(copy)
    try:
        def matches(word):
            return conn.execute("select papers.rowid, papers.search_rowid from papers_fts join "
                                "papers on papers.rowid = papers_fts.rowid "
                                "where papers_fts match ?", (word,)).fetchall()

        with conn:
            conn.execute("update papers set title = 'Quuxword decoding' where rowid = 1")
        assert matches("quuxword") == []  # the index is not kept in step by itself
        with conn:
            conn.execute(rebuild)
        assert matches("quuxword") == [(1, 1)]
    finally:
        conn.close()


def test_the_files_own_rank_ranks_as_the_site_does(dumps_dir, tmp_path):
    """FTS5's `rank` (what `order by rank` and sqlite-utils' search sort by) weighs title
    words ten times, as the site's ranking: the paper with the word in its title comes
    before one whose abstract repeats it, which plain bm25 puts first."""
    import sqlite_utils

    repeated = "Zorblat " * 6 + ABSTRACT_B
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Zorblat decoding of visual scenes", ABSTRACT_A), ("Other spiking work", repeated)))
    out = tmp_path / "p.db"
    assert run_build(dumps_dir, out).returncode == 0
    plain = rows(out, "select papers.title from papers_fts join papers on papers.rowid = "
                      "papers_fts.rowid where papers_fts match 'zorblat' order by bm25(papers_fts)")
    assert plain == [("Other spiking work",), ("Zorblat decoding of visual scenes",)]
    site = [("Zorblat decoding of visual scenes",), ("Other spiking work",)]
    assert rows(out, "select papers.title from papers_fts join papers on papers.rowid = "
                     "papers_fts.rowid where papers_fts match 'zorblat' order by rank") == site
    db = sqlite_utils.Database(out)
    try:
        assert [(row["title"],) for row in db["papers"].search("zorblat")] == site
    finally:
        db.close()
    # An update keeps the setting, as it keeps the index.
    (dumps_dir / "b.txt").write_text(blank_separated(("Zorblat again", ABSTRACT_A + " Zorblat")))
    assert run_build(dumps_dir, out, "--incremental").returncode == 0
    assert rows(out, "select papers.title from papers_fts join papers on papers.rowid = "
                     "papers_fts.rowid where papers_fts match 'zorblat' order by rank") == [
        ("Zorblat again",), *site]


def test_the_readmes_sqlite_utils_searches_run_and_rank_as_the_site(real_db, tmp_path):
    """README's sqlite-utils searches, run as written beside a downloaded papers.db, list the
    site's best matches, a hyphenated word included: README gave no way to search for one
    (without --quote, `brain-computer` fails with "no such column: computer")."""
    import json
    import re
    import shlex
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from datasette.utils import escape_fts

    commands = re.findall(r"^sqlite-utils search papers\.db .*$", (ROOT / "README.md").read_text(),
                          flags=re.M)
    assert any("brain-computer" in command for command in commands)
    shutil.copyfile(real_db, tmp_path / "papers.db")
    site = sqlite3.connect(real_db)
    site.create_function("escape_fts", 1, escape_fts)
    canned = METADATA["databases"]["papers"]["queries"]["search"]["sql"]
    try:
        for command in commands:
            words = shlex.split(command)
            words[0] = str(Path(sys.executable).with_name("sqlite-utils"))
            ran = subprocess.run(words, cwd=tmp_path, capture_output=True, text=True)
            assert ran.returncode == 0, ran.stderr
            found = [row["id"] for row in json.loads(ran.stdout)]
            query = words[4]
            best = [paper_id for _, paper_id, *_ in site.execute(canned, {"q": query, "page": 1})]
            assert len(found) == 10 and found == best[:10]
    finally:
        site.close()


def test_the_canned_papers_per_year_says_every_kind_of_paper_its_null_year_counts(dumps_dir,
                                                                                  tmp_path):
    """The canned query's null year counts papers with no date, a date of unknown year and
    an impossible date (Feb 30); its description named only the first two."""
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Decoding speech from EEG", ABSTRACT_A, ["·", "Feb 30"]),
        ("Spiking networks on chips", ABSTRACT_B, ["·", "Mar 3"]),
        ("Undated paper", ABSTRACT_C)).replace("Apr 17\n", "", 1))
    db = tmp_path / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    canned = METADATA["databases"]["papers"]["queries"]["papers_per_year"]
    assert rows(db, canned["sql"]) == [(None, 3, 0, 0)]
    assert set(rows(db, "select date_method from papers")) == {
        (None,), ("invalid_date",), ("year_unknown",)}
    description = " ".join(canned["description"].split())
    assert "null = no date shown, its year unknown or the date impossible" in description


def test_hidden_files_are_not_dumps(dumps_dir, tmp_path):
    """A hidden `*.txt` is no dump, as for the shell's `dumps/*.txt`: an editor's lock file
    (`.#a.txt`, a link to nowhere) made the build fail, and a `.old.txt` was read as the
    first dump, its papers taking the ids. A hidden regular file is named in a warning."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)))
    (dumps_dir / ".old.txt").write_text(blank_separated(("Old", ABSTRACT_B)))
    (dumps_dir / ".#a.txt").symlink_to("user@host.1234:1700000000")
    out = tmp_path / "papers.db"
    result = run_build(dumps_dir, out)
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("warning:")] == [
        f"warning: {dumps_dir / '.old.txt'}: not read: a hidden file is not a dump (rename it "
        f"if it is one)"]
    assert rows(out, "select name from dumps") == [("a.txt",)]
    assert rows(out, "select title from papers") == [("Lone",)]


def test_a_dump_copied_under_another_name_is_named_in_a_warning(dumps_dir, tmp_path):
    """A file copied by mistake was read as a second capture without a word: every paper of
    it counted twice. It is still read (both files are dumps), and named, in a full build
    and in an update that adds the copy."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)))
    (dumps_dir / "b.txt").write_text(blank_separated(("Other", ABSTRACT_B)))
    out = tmp_path / "papers.db"
    first = run_build(dumps_dir, out)
    assert first.returncode == 0 and "warning" not in first.stderr, first.stderr
    (dumps_dir / "c.txt").write_bytes((dumps_dir / "a.txt").read_bytes())
    expected = (f"warning: {dumps_dir / 'c.txt'}: the same bytes as a.txt: read as a second "
                f"capture, every paper of it seen twice (delete one copy if it is a mistake)")
    for extra in (["--incremental"], []):
        result = run_build(dumps_dir, out, *extra)
        assert result.returncode == 0, result.stderr
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        assert warnings == [expected], (extra, result.stderr)
        assert ("incremental: adding 1 new dump" in result.stderr) == bool(extra)
        assert rows(out, "select count(*) from sightings where paper_id = 'lone'") == [(2,)]
