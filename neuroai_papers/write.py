"""Write the corpus into papers.db: shape, rows, full-text search, documentation, checks.

The database's shape is declared once, as data (`TABLES`, `INDEXES`, `FTS`), and
applied by `ensure_db_shape`. Column descriptions live in metadata.yml, the same
file Datasette reads; `load_docs` copies them into the database so that a person
who downloads only papers.db can still read what every table and column means.

A full build is atomic: everything is written to a temporary file next to the target,
checked, and only then renamed over it. An incremental build is atomic too, by SQLite's
own means: it updates papers.db in one transaction with a rollback journal (see
DatabaseUpdate). A failed or interrupted build leaves the previous papers.db as it was.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Iterable, Iterator

import sqlite_utils
from sqlite_utils.db import DescIndex

from .stopping import putting_in_place
from .uris import file_uri, read_only_uri
from .yamlfiles import YamlDocument, read_yaml_document


DATABASE = "papers"  # the database's name in Datasette's URLs and in metadata.yml

# Table -> (columns in order, primary key, foreign keys as column -> (table, column)).
TABLES: dict[str, tuple[dict[str, type], str | tuple[str, ...], dict[str, tuple[str, str]]]] = {
    "dumps": (
        {"name": str, "position": int, "sha256": str, "bytes": int, "lines": int,
         "layout": str, "capture_text": str, "capture_line": int, "capture_date": str,
         "capture_year": int, "capture_method": str, "capture_year_min": int,
         "capture_year_max": int, "records": int, "papers": int, "new_papers": int, "problems": int},
        "name", {},
    ),
    "organizations": (
        {"id": str, "name": str, "handle": str, "written": str, "papers": int, "city": str,
         "country": str, "latitude": float, "longitude": float, "location_method": str,
         "location_score": float},
        "id", {},
    ),
    "papers": (
        {"id": str, "title": str, "abstract": str, "published": str, "published_year": int,
         "date_method": str, "date_text": str, "authors": int, "organization": str,
         "organization_id": str, "comments": int, "first_seen_dump": str,
         "last_seen_dump": str, "dumps_seen": int, "dumps": str, "topics": str,
         "title_key": str, "search_rowid": int},
        "id",
        {"organization_id": ("organizations", "id"), "first_seen_dump": ("dumps", "name"),
         "last_seen_dump": ("dumps", "name")},
    ),
    "sightings": (
        {"id": int, "paper_id": str, "dump": str, "position": int, "line": int,
         "end_line": int, "title": str, "abstract": str, "authors": int, "organization": str,
         "organization_id": str, "date_text": str, "comments": int, "published": str,
         "date_method": str, "match_method": str},
        "id",
        {"paper_id": ("papers", "id"), "dump": ("dumps", "name"),
         "organization_id": ("organizations", "id")},
    ),
    "merges": (
        {"id": int, "paper_id": str, "dump": str, "line": int, "title": str,
         "paper_title": str, "method": str, "title_score": float, "abstract_score": float},
        "id", {"paper_id": ("papers", "id"), "dump": ("dumps", "name")},
    ),
    "lookalikes": (
        {"id": int, "paper_id": str, "other_paper_id": str, "dump": str, "line": int,
         "title_score": float, "abstract_score": float},
        "id",
        {"paper_id": ("papers", "id"), "other_paper_id": ("papers", "id"),
         "dump": ("dumps", "name")},
    ),
    "topics": (
        {"id": str, "label": str, "topic_group": str, "description": str, "title_rules": str,
         "abstract_rules": str, "abstract_hits": int, "exclude_rules": str, "papers": int},
        "id", {},
    ),
    "paper_topics": (
        {"paper_id": str, "topic": str, "field": str, "rule": str, "matched": str, "hits": int},
        ("paper_id", "topic", "field", "rule"),
        {"paper_id": ("papers", "id"), "topic": ("topics", "id")},
    ),
    "terms": ({"term": str, "papers": int}, "term", {}),
    "title_blocks": ({"block": int, "paper_rowid": int}, ("block", "paper_rowid"), {}),
    "problems": (
        {"id": int, "dump": str, "line": int, "text": str, "reason": str},
        "id", {"dump": ("dumps", "name")},
    ),
    "build_info": ({"key": str, "value": str}, "key", {}),
    "table_docs": ({"table_name": str, "description": str}, "table_name", {}),
    "column_docs": (
        {"table_name": str, "column_name": str, "description": str},
        ("table_name", "column_name"), {},
    ),
}

# Tables stored in the order of their primary key (CREATE TABLE ... WITHOUT ROWID): a table
# whose key is most of its row would otherwise hold the key twice, once in its rows and once
# in the key's own index. On a 300,000-record file paper_topics took 184 MB, the index of its
# key 191 MB more; title_blocks 46 MB and the index the incremental build reads it by 48 MB.
# Stored by key they take 199 and about 50 MB, the file 12% less, and the build copies the
# worker's rows in sorted by key instead of filling an index at random (9.2 -> 4.1 s).
WITHOUT_ROWID = {"paper_topics", "title_blocks"}

# Every column that the site filters or facets on gets an index. The list facets (topics,
# dumps) read every paper's array once per server: their indexes cover that read, which
# would otherwise go through the whole table, abstracts and all.
# The date index is in the order of the papers table's pages: newest first, then id, as
# Datasette orders every page after the first (`order by published desc, id`); SQLite walks
# it and stops at the page's last row (at a million papers the second page took 16 s
# through an index on the date alone, which SQLite read three times over and sorted), and
# rows of the same date come in the same order on every page. It carries search_rowid, so
# that a search sorted by date walks it without reading a row it will not show (see
# plugins/search_plan.py). No other index carries search_rowid: behind a column of few
# values (the year's, say), SQLite would look the matches up in it, one skip-scan each
# (5.7 s for the count of "neural" at a million papers).
INDEXES = {
    "papers": [["published_year"], ["organization"], ["organization_id"],
               ["authors"], ["first_seen_dump"], ["last_seen_dump"], ["dumps_seen"],
               ["date_method"], [DescIndex("published"), "id", "search_rowid"], ["title_key"],
               ["topics"], ["dumps"]],
    # A table's default facets (metadata.yml) read their index: without one, the sightings'
    # facet on match_method read every sighting (362 ms at a million, over Datasette's
    # default facet limit of 200 ms; 30-50 ms from the index).
    "sightings": [["paper_id"], ["dump", "position"], ["organization_id"], ["match_method"]],
    # The feed walks the dumps newest first (metadata.yml's `feed`): without it SQLite read
    # and sorted every paper, 3 s at a million papers, past the SQL time limit.
    "dumps": [["position"]],
    "merges": [["paper_id"], ["dump"]],
    "lookalikes": [["paper_id"], ["other_paper_id"]],
    "problems": [["dump", "line"], ["reason"]],
    "paper_topics": [["topic", "paper_id"]],
    "organizations": [["papers"], ["country"]],
}

# The porter stemmer makes `decoding` find `decode`; unicode61 folds case and accents.
FTS = {"papers": (["title", "abstract"], "porter unicode61 remove_diacritics 2")}
# FTS5 writes its index out in a segment each time the terms it holds in memory reach its
# `hashsize` (1 MB by default): hundreds of segments at a million papers, which `optimize`
# must then merge. 256 MB writes one segment up to about 300,000 papers and a few beyond,
# for about 250 MB more memory at the end of the build (measured at 300,000 papers: 15.8 s
# to build and merge the index instead of 23.2 s).
FTS_HASH_BYTES = 256 * 1024 * 1024


class BuildCheckError(Exception):
    """The freshly written database failed a check; it was not put in place."""


class WriteError(OSError):
    """SQLite could not write the temporary file (a full disk, a file-size limit, an I/O error)."""


def load_metadata(path: Path) -> dict:
    """Return metadata.yml; raise DumpError naming the file (and the line, when one is at
    fault) if it is not Datasette metadata with the documentation of this database's tables,
    in the shape load_docs copies into the file."""
    document = read_yaml_document(path)
    metadata = document.data
    try:
        tables = table_descriptions(metadata)
    except (KeyError, TypeError):
        tables = None
    if not isinstance(tables, dict):
        raise document.error(f"expected `databases: {DATABASE}: tables:` with the "
                             f"description of every table", "databases", DATABASE, "tables")
    for name, table in tables.items():
        check_table_docs(document, name, table)
    return metadata


def check_table_docs(document: YamlDocument, name: str, table) -> None:
    """Raise DumpError, naming the line, unless the table's entry is a mapping whose
    `description` (if any) is text and whose `columns` (if any) map names to texts."""
    where = ("databases", DATABASE, "tables", name)
    if not isinstance(table, dict):
        raise document.error(f"table `{name}`: expected `description:` and `columns:`, got "
                             f"{table!r}", *where)
    if not isinstance(table.get("description", ""), str):
        raise document.error(f"table `{name}`: the description must be text, got "
                             f"{table['description']!r}", *where, "description")
    columns = table.get("columns") or {}
    if not isinstance(columns, dict):
        raise document.error(f"table `{name}`: `columns` must map each column to its "
                             f"description, got {columns!r}", *where, "columns")
    for column, text in columns.items():
        if not isinstance(text, str):
            raise document.error(f"column `{name}.{column}`: the description must be text, "
                                 f"got {text!r}", *where, "columns", column)


def table_descriptions(metadata: dict) -> dict:
    return metadata["databases"][DATABASE]["tables"]


def ensure_db_shape(db: sqlite_utils.Database) -> None:
    """Create every table, with primary and foreign keys, if it does not exist yet."""
    for name, (columns, pk, foreign_keys) in TABLES.items():
        if db[name].exists():
            continue
        sql = db.create_table_sql(
            name, columns, pk=pk,
            foreign_keys=[(col, table, other) for col, (table, other) in foreign_keys.items()])
        db.execute(sql.strip().rstrip(";") + (" WITHOUT ROWID" if name in WITHOUT_ROWID else ""))


def shaped_copy_sql(table: str, schema: str, name: str) -> tuple[str, list[str]]:
    """Return the statement that creates, as `schema`.`name`, an empty table of the same
    shape as `table` (its columns' types, its primary key, WITHOUT ROWID, but no foreign
    keys), and those that give it the same indexes (best created once it is filled): what
    DatabaseWriter.copy_from copies with SQLite's transfer optimization, which asks for
    the same column affinities, keys and indexes."""
    columns, pk, _ = TABLES[table]
    types = {str: "TEXT", int: "INTEGER", float: "FLOAT"}
    keys = (pk,) if isinstance(pk, str) else pk
    declared = ", ".join(f"[{column}] {types[kind]}" for column, kind in columns.items())
    create = (f"CREATE TABLE {schema}.[{name}] ({declared}, "
              f"PRIMARY KEY ({', '.join(f'[{key}]' for key in keys)}))"
              + (" WITHOUT ROWID" if table in WITHOUT_ROWID else ""))
    indexes = [f"CREATE INDEX {schema}.[{name}_index_{number}] ON [{name}] "
               f"({', '.join(f'[{column}]' for column in index)})"
               for number, index in enumerate(INDEXES.get(table, []))]
    return create, indexes


def storage_order(table: str) -> str:
    """Return the ORDER BY that lists rows in the order the table stores them: its primary
    key for a table WITHOUT ROWID, its rowid for the others."""
    if table not in WITHOUT_ROWID:
        return "rowid"
    return ", ".join(f"[{column}]" for column in TABLES[table][1])


def create_indexes_and_search(db: sqlite_utils.Database, tables: Iterable[str],
                              search: "SearchIndexBuild") -> None:
    """Index what the site filters on, after the bulk load, and bring in the full-text index
    that `search` has been building beside the rows (copy_search_index); check_database
    checks it against the table."""
    for table in tables:
        for columns in INDEXES.get(table, []):
            db[table].create_index(columns, if_not_exists=True)
    search.wait()
    copy_search_index(db.conn, "papers", search.path)
    db["papers_fts"].optimize()


# The ranking of `order by rank` in the published file: title words weigh ten times as much,
# as the site ranks (plugins/site_pages.py), so that a search of the downloaded file that
# sorts by FTS5's rank (sqlite-utils search, `order by rank`) lists the site's best matches.
SEARCH_RANK = "bm25(10.0, 1.0)"


def search_index_sql(table: str) -> str:
    """Return the CREATE statement of the table's FTS5 index, as sqlite-utils' enable_fts
    writes it (so Datasette and sqlite-utils find it)."""
    columns, tokenize = FTS[table]
    quoted = ", ".join(f'"{column}"' for column in columns)
    return (f'CREATE VIRTUAL TABLE "{table}_fts" USING FTS5 (\n    {quoted},\n'
            f"    tokenize='{tokenize}',\n    content=\"{table}\"\n)")


def search_index_setup(table: str) -> list[str]:
    """Return the statements that create the table's empty FTS5 index with the build's
    write buffer (FTS_HASH_BYTES)."""
    return [search_index_sql(table),
            f"INSERT INTO [{table}_fts]([{table}_fts], rank) VALUES ('hashsize', {FTS_HASH_BYTES})"]


def build_search_index(conn: sqlite3.Connection, table: str) -> None:
    """Create the table's FTS5 index and fill it from the table in one pass, with the
    build's write buffer (the benchmark's floor builds its index so)."""
    conn.execute(f"DROP TABLE IF EXISTS [{table}_fts]")
    for statement in search_index_setup(table):
        conn.execute(statement)
    conn.execute(f"INSERT INTO [{table}_fts]([{table}_fts]) VALUES ('rebuild')")
    # The setting only matters while writing: the published file keeps FTS5's defaults.
    conn.execute(f"DELETE FROM [{table}_fts_config] WHERE k = 'hashsize'")
    conn.commit()


@dataclass(frozen=True)
class IndexedTexts:
    """Where the texts of a SearchIndexBuild stay until the build is checked: the titles
    (table `titles`, n = the row's rowid) in the index's own file, and the abstracts in a
    texts.DiskList file (n = rowid - 1)."""

    titles: Path
    abstracts: Path


class SearchIndexBuild:
    """A table's FTS5 index, built into a new SQLite file at `path` by a thread: the index
    alone, without the table, from the rows' indexed columns (`titles`, in rowid order from
    1, and the abstracts in the scratch file of a texts.DiskList at `abstracts`).

    The build starts it as soon as matching is done (build.full_build), so the index is
    written beside the rows, on whatever core the build and the new-papers worker leave
    free, and is ready by the time the rows are. The titles go into
    the file first; then one INSERT ... SELECT joins them with the abstracts, inside SQLite:
    a thread that fed the index row by row from Python took Python's lock for every row,
    and slowed the rows down by as much as it saved."""

    def __init__(self, path: Path, table: str, titles: list[str], abstracts: Path):
        self.path = path
        self.texts = IndexedTexts(path, abstracts)
        self.stopping = False
        self.conn = sqlite3.connect(path, check_same_thread=False, uri=True)
        try:
            self.conn.execute("PRAGMA journal_mode = OFF")
            self.conn.execute("PRAGMA synchronous = OFF")
            with self.conn:
                self.conn.execute("CREATE TABLE titles (n INTEGER PRIMARY KEY, title TEXT)")
                self.conn.executemany("INSERT INTO titles VALUES (?, ?)", enumerate(titles, 1))
            self.conn.execute("ATTACH DATABASE ? AS abstracts", (read_only_uri(abstracts),))
        except sqlite3.Error:
            self.conn.close()
            remove_temporary(path)
            raise
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.done = self.pool.submit(self.fill, table)

    def fill(self, table: str) -> None:
        columns = ", ".join(FTS[table][0])
        statements = [
            *search_index_setup(table),
            # DiskList numbers its items from 0; rowids start at 1.
            f"INSERT INTO [{table}_fts](rowid, {columns}) SELECT titles.n, titles.title, "
            f"abstracts.items.value FROM titles JOIN abstracts.items "
            f"ON abstracts.items.n = titles.n - 1 ORDER BY titles.n",
            f"INSERT INTO [{table}_fts]([{table}_fts]) VALUES ('optimize')",
            # The settings the published index keeps (copied with it): SEARCH_RANK, and not
            # the write buffer, which only matters while writing.
            f"INSERT INTO [{table}_fts]([{table}_fts], rank) VALUES ('rank', '{SEARCH_RANK}')",
            f"DELETE FROM [{table}_fts_config] WHERE k = 'hashsize'",
            # Then the `terms` counts, from the finished index: reading all of it took the
            # build 2.4 s at 300,000 records after the papers' rows; here it runs beside them.
            "CREATE TABLE terms (term TEXT, papers INTEGER)",
            *terms_count_statements("main", table),
        ]
        with self.conn:
            for statement in statements:
                if self.stopping:  # an interrupt that falls between two statements is lost
                    raise BuildCheckError("the full-text index was stopped")
                self.conn.execute(statement)

    def wait(self) -> None:
        """Wait for the index and close its file; raise what stopped it."""
        try:
            self.done.result()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the thread, wherever it is, and close the file."""
        self.stopping = True
        if not self.done.done():
            self.conn.interrupt()  # the running statement fails at once
        self.pool.shutdown(wait=True)
        with suppress(sqlite3.Error):
            self.conn.close()


# The shadow tables that hold an FTS5 index (copy_search_index copies
# them, copied_index_differences compares them): key, value columns.
SEARCH_INDEX_SHADOWS = {"data": (("id",), ("block",)), "idx": (("segid", "term"), ("pgno",)),
                        "docsize": (("id",), ("sz",)), "config": (("k",), ("v",))}


def copied_tables(table: str) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Return what copy_search_index copies of the table's index: table -> key, value columns."""
    return {**{f"{table}_fts_{shadow}": columns for shadow, columns in SEARCH_INDEX_SHADOWS.items()},
            "terms": (("term",), ("papers",))}


def copy_search_index(conn: sqlite3.Connection, table: str, path: Path) -> None:
    """Create the table's full-text index from the one in the SQLite file at `path`.

    An FTS5 index is the rows of its shadow tables (_data: the segments, _idx: their
    terms, _docsize: each row's token counts, _config: the format version and the
    settings, SEARCH_RANK), so copying them copies the index."""
    in_transaction = conn.in_transaction
    if in_transaction:
        conn.execute("COMMIT")  # SQLite attaches a file only outside a transaction
    conn.execute("ATTACH DATABASE ? AS source", (str(path),))
    conn.execute("BEGIN")
    conn.execute(search_index_sql(table))
    # main. everywhere: an unqualified name would find the attached file's tables too.
    for shadow in SEARCH_INDEX_SHADOWS:
        conn.execute(f"DELETE FROM main.[{table}_fts_{shadow}]")
        conn.execute(f"INSERT INTO main.[{table}_fts_{shadow}] "
                     f"SELECT * FROM source.[{table}_fts_{shadow}]")
    # The thread counted the terms too (SearchIndexBuild.fill), in term order.
    conn.execute("INSERT INTO main.terms (term, papers) SELECT term, papers FROM source.terms "
                 "ORDER BY term")
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE source")
    if in_transaction:
        conn.execute("BEGIN")


def terms_count_statements(schema: str, table: str) -> list[str]:
    """Return the statements that fill `terms` in `schema` from the table's full-text index
    there: each term and the number of rows holding it (what plugins/related_papers.py
    weighs words by)."""
    return [f"CREATE VIRTUAL TABLE temp.{table}_fts_terms USING fts5vocab({schema}, "
            f"'{table}_fts', 'row')",
            f"INSERT INTO {schema}.terms (term, papers) SELECT term, doc FROM temp.{table}_fts_terms",
            f"DROP TABLE temp.{table}_fts_terms"]


def check_search_index(path: Path, table: str) -> None:
    """Raise BuildCheckError unless the table's FTS index in the file is sound: its own
    structure, and every row's tokens, read again from the table."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # An INSERT by its syntax, but it only reads: it holds no lock that stops a reader.
        conn.execute(f"INSERT INTO {table}_fts({table}_fts, rank) "
                     f"VALUES ('integrity-check', 1)")
    except sqlite3.DatabaseError as error:
        raise BuildCheckError(f"{table}_fts: {error}") from None
    finally:
        conn.close()


def check_indexed_texts(path: Path, texts: IndexedTexts) -> None:
    """Raise BuildCheckError unless the file's papers hold, row for row, the texts their
    full-text index was built from (`texts`), the index holds one entry per paper, and the
    index in the file is, row for row, the one FTS5 built from those texts (in the file at
    `texts.titles`, from which copy_search_index copied it).

    Together these prove what FTS5's own check of the index against the table proves (every
    row's tokens are in it), without tokenizing a gigabyte of abstracts again: FTS5 wrote the
    index from exactly these texts, and the file holds that index unchanged. Nor does it walk
    the structure FTS5 has just written (FTS5's structural check, 13.7 s at a million records,
    the longest of the closing checks): for the same reason quick_check does not match every
    index entry with its row, which CREATE INDEX after the load guarantees. A file checked on
    its own, without the texts, still gets FTS5's full check (check_search_index)."""
    conn = sqlite3.connect(path, uri=True)
    try:
        conn.execute("ATTACH DATABASE ? AS indexed_titles", (read_only_uri(texts.titles),))
        conn.execute("ATTACH DATABASE ? AS indexed_abstracts",
                     (read_only_uri(texts.abstracts),))
        (differ,) = conn.execute(
            "SELECT count(*) FROM papers LEFT JOIN indexed_titles.titles AS t "
            "ON t.n = papers.rowid LEFT JOIN indexed_abstracts.items AS a "
            "ON a.n = papers.rowid - 1 "
            "WHERE papers.title IS NOT t.title OR papers.abstract IS NOT a.value").fetchone()
        (papers, titles, entries) = conn.execute(
            "SELECT (SELECT count(*) FROM papers), (SELECT count(*) FROM indexed_titles.titles), "
            "(SELECT count(*) FROM papers_fts_docsize)").fetchone()
        copied = list(copied_index_differences(conn, "papers", "indexed_titles"))
    except sqlite3.DatabaseError as error:
        raise BuildCheckError(f"papers_fts: {error}") from None
    finally:
        conn.close()
    if differ:
        raise BuildCheckError(f"papers_fts: {differ} papers differ from the text their "
                              f"full-text index was built from")
    if not papers == titles == entries:
        raise BuildCheckError(f"papers_fts: {entries} index entries for {papers} papers "
                              f"({titles} titles indexed)")
    if copied:
        raise BuildCheckError(f"papers_fts: the index is not the one built from the texts: "
                              f"{'; '.join(copied)}")


def copied_index_differences(conn: sqlite3.Connection, table: str,
                             built: str) -> Iterator[str]:
    """Yield what differs in each table copied of the table's full-text index (its shadow
    tables and `terms`) in `main` from the one in the attached schema `built`: how many of
    its rows have no equal row there (blobs compared byte for byte), and how many rows each
    side has. At 300,000 records 0.08 s, against 3 s for FTS5's structural check."""
    for copied, (key, values) in copied_tables(table).items():
        name = f"[{copied}]"
        (unequal, ours, theirs) = conn.execute(
            f"SELECT (SELECT count(*) FROM main.{name} AS m LEFT JOIN {built}.{name} AS b "
            f"ON {' AND '.join(f'b.{k} = m.{k}' for k in key)} "
            f"WHERE {' OR '.join(f'b.{v} IS NOT m.{v}' for v in values)} "
            f"OR b.{key[0]} IS NULL), "
            f"(SELECT count(*) FROM main.{name}), (SELECT count(*) FROM {built}.{name})"
        ).fetchone()
        # Keys are unique: with as many rows on both sides, each of ours equal to one of
        # theirs leaves none of theirs unmatched.
        if unequal or ours != theirs:
            yield f"{copied}: {unequal} rows not as built ({ours} rows, {theirs} built)"


def load_docs(conn: sqlite3.Connection, metadata: dict, build_info: dict[str, str]) -> None:
    """Copy the table and column descriptions of metadata.yml, and the build facts, into the file.

    Plain executemany, inside the caller's transaction: sqlite-utils' insert_all commits, and
    an incremental build must not commit before its checks."""
    table_rows, column_rows = docs_rows(metadata)
    conn.executemany("insert into table_docs (table_name, description) values (?, ?)",
                     table_rows)
    conn.executemany("insert into column_docs (table_name, column_name, description) "
                     "values (?, ?, ?)", column_rows)
    conn.executemany("insert into build_info (key, value) values (?, ?)",
                     [(key, str(value)) for key, value in build_info.items()])


def docs_rows(metadata: dict) -> tuple[list[tuple], list[tuple]]:
    """Return the rows of table_docs and of column_docs that metadata.yml gives, in the
    order they are written."""
    tables = table_descriptions(metadata)
    return ([(name, table.get("description", "")) for name, table in tables.items()],
            [(name, column, text) for name, table in tables.items()
             for column, text in (table.get("columns") or {}).items()])


def check_database(path: Path, expected: dict[str, int],
                   indexed: IndexedTexts | None = None) -> None:
    """Raise BuildCheckError unless the file is sound and holds the expected row counts.

    The checks run on two connections, one in a thread: all of them only read, and SQLite
    lets go of Python's lock while it works, so they take two cores. Given the texts the
    index was built from (`indexed`, while the build still has them), the full-text index
    is checked against them instead of the table (see check_indexed_texts), and the links
    go beside it: at 300,000 records quick_check took 0.95 s, the links 0.87, the texts and
    the index 0.43."""
    if indexed is None:  # FTS5's full check, the longest, alone beside the others
        beside = [partial(check_search_index, path, "papers")]
        here = [partial(check_pages_and_rows, path, expected), partial(check_links, path)]
    else:
        beside = [partial(check_indexed_texts, path, indexed), partial(check_links, path)]
        here = [partial(check_pages_and_rows, path, expected)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        checked = pool.submit(lambda: [check() for check in beside])
        try:
            for check in here:
                check()
        finally:
            checked.exception()  # wait for it, whatever happened here
    checked.result()  # its error, if it failed


def check_pages_and_rows(path: Path, expected: dict[str, int]) -> None:
    """Raise BuildCheckError unless the file's pages are sound and its tables hold the
    expected numbers of rows."""
    conn = sqlite3.connect(path, uri=True)
    try:
        # quick_check reads every page, b-tree and record. integrity_check would also match
        # every index entry with its row, which CREATE INDEX after the load guarantees, and
        # costs three times as much (38 s against 11 s at a million records).
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise BuildCheckError(f"quick_check: {result}")
        for table, count in expected.items():
            found = conn.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0]
            if found != count:
                raise BuildCheckError(f"{table}: {found} rows written, {count} expected")
        check_search_rowids(conn)
    except sqlite3.DatabaseError as error:
        raise BuildCheckError(str(error)) from None
    finally:
        conn.close()


def check_links(path: Path) -> None:
    """Raise BuildCheckError unless every foreign key of the file finds its row."""
    conn = sqlite3.connect(path, uri=True)
    try:
        broken = list(broken_links(conn))
    except sqlite3.DatabaseError as error:
        raise BuildCheckError(str(error)) from None
    finally:
        conn.close()
    if broken:
        raise BuildCheckError(f"foreign keys broken: {'; '.join(broken)}")


def broken_links(conn: sqlite3.Connection) -> Iterator[str]:
    """Yield each foreign key of TABLES (one column each) that holds a value its table does
    not, with how many and the first.

    What PRAGMA foreign_key_check finds, but each distinct value looked up once, read from
    the column's index in order, instead of every row's: at a million records 2.2 s instead
    of 9.0 (a paper's id is in 6 evidence rows and 1.3 sightings on average)."""
    for table, (_, _, foreign_keys) in TABLES.items():
        for column, (other, other_column) in foreign_keys.items():
            count, first = conn.execute(
                f"SELECT count(*), min(value) FROM (SELECT DISTINCT [{column}] AS value "
                f"FROM [{table}] WHERE [{column}] IS NOT NULL) "
                f"WHERE value NOT IN (SELECT [{other_column}] FROM [{other}] "
                f"WHERE [{other_column}] IS NOT NULL)").fetchone()
            if count:
                yield f"{table}.{column}: {count} values not in {other}.{other_column} ({first!r}...)"


def check_search_rowids(conn: sqlite3.Connection) -> None:
    """Raise BuildCheckError unless every paper's search_rowid is its rowid (the site's
    search compares it with the full-text index's rowids; read from the date index)."""
    (wrong,) = conn.execute("select count(*) from papers where search_rowid is not rowid").fetchone()
    if wrong:
        raise BuildCheckError(f"papers.search_rowid: {wrong} rows differ from their rowid")


def sync_to_disk(path: Path) -> None:
    """Return once the file's contents are on disk (before it is renamed into place)."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def temporary_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.tmp-{os.getpid()}")


def remove_temporary(tmp: Path) -> None:
    """Delete a temporary database and the side files SQLite may have made next to it."""
    for path in (tmp, *(tmp.with_name(tmp.name + side) for side in ("-journal", "-wal", "-shm"))):
        with suppress(FileNotFoundError):
            path.unlink()


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def remove_stale_temporaries(out: Path) -> None:
    """Delete temporary files that interrupted builds left next to the target.

    A temporary file names the process that writes it; one whose process still runs belongs
    to a build in progress and is left alone.
    """
    for stale in out.parent.glob(f".{out.name}.tmp-*"):
        pid = stale.name[len(f".{out.name}.tmp-"):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and process_exists(int(pid)):
            continue
        with suppress(OSError):
            stale.unlink()


SORT_THREADS = min(os.cpu_count() or 1, 4)
# Pages of 16 KiB instead of SQLite's 4: building an index reads the whole papers table
# (its abstracts too), once per index, a page at a time; four times fewer pages made the 12
# indexes of 225,000 papers 5.0 -> 3.4-3.8 s, copying the table 3.9-4.1 -> 2.5-3.2 s, and
# the table 9% smaller (less room lost at the end of pages for rows of 2 KB).
PAGE_BYTES = 16_384
INSERT_CACHE_KIB = 96 * 1024  # see DatabaseWriter.cache_for_random_inserts
DEFAULT_CACHE_PAGES = -2000  # SQLite's default cache_size (2,000 KiB)
PACKED_CHUNK = 1_000_000  # pairs per JSON text in insert_packed_pairs (about 20 MB of it)


class Counted:
    """Rows passed through, counted on the way (a generator has no length)."""

    def __init__(self, rows: Iterable[dict]):
        self.rows = rows
        self.seen = 0

    def __iter__(self):
        for row in self.rows:
            self.seen += 1
            yield row


class DatabaseWriter:
    """The temporary database a build streams its rows into, table by table.

    Rows arrive as the build makes them (nothing holds a whole table in memory), in one
    transaction without a journal. `finish` adds the documentation, indexes and full-text
    index after the bulk load, checks the file and renames it over the target. Leaving the
    `with` block without `finish` (an error, a refused dump) deletes the temporary file.
    """

    def __init__(self, out: Path, copy_of: Path | None = None):
        """Start a new temporary database, or (`copy_of`) a copy of an existing one to update."""
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out)
        self.tmp = temporary_path(out)
        self.counts: dict[str, int] = {}
        self.db = None
        self.search: SearchIndexBuild | None = None
        try:
            if copy_of is not None:
                copy_database(copy_of, self.tmp)
            self.db = sqlite_utils.Database(self.tmp)
            if copy_of is None:  # before the first table: a file's page size is then fixed
                self.db.execute(f"PRAGMA page_size = {PAGE_BYTES}")
            # Nothing needs a journal: a failed build throws the whole temporary file away.
            self.db.execute("PRAGMA journal_mode = OFF")
            self.db.execute("PRAGMA synchronous = OFF")
            # SQLite may sort in helper threads (CREATE INDEX after the load): the 23
            # indexes of a 300,000-record file took 4.8 s instead of 5.5 on two cores.
            self.db.execute(f"PRAGMA threads = {SORT_THREADS}")
            if copy_of is None:
                ensure_db_shape(self.db)
            self.db.conn.execute("BEGIN")
        except sqlite3.Error as error:
            self.abort()
            raise WriteError(f"cannot write {self.tmp}: {error}") from None
        except OSError:
            self.abort()
            raise

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def error(self, error: sqlite3.Error) -> WriteError:
        """Return the build's one-line error for a SQLite error while writing."""
        return WriteError(f"cannot write {self.tmp}: {error}")

    def scratch_path(self, name: str) -> Path:
        """Return a path for a scratch file that stale-temporary cleanup also recognizes."""
        return self.tmp.with_name(f"{self.tmp.name}-{name}")

    def insert(self, table: str, rows: Iterable[dict], numbered: bool = False) -> int:
        """Insert rows (dicts with the table's columns; `numbered` adds ids 1, 2 ...)."""
        columns = list(TABLES[table][0])
        if numbered:
            rows = ({"id": number, **row} for number, row in enumerate(rows, 1))
        counted = Counted(rows)
        names = ", ".join(f"[{column}]" for column in columns)
        # itemgetter picks a row's values in C, not a Python generator per row.
        values = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
        try:
            self.db.conn.executemany(
                f"insert into [{table}] ({names}) values ({', '.join('?' * len(columns))})",
                map(values, counted),
            )
        except sqlite3.Error as error:
            # SQLite reports a full disk or a file-size limit as its own error, not as OSError.
            raise WriteError(f"cannot write {self.tmp}: {error}") from None
        self.counts[table] = self.counts.get(table, 0) + counted.seen
        return counted.seen

    def insert_packed_pairs(self, table: str, packed, shift: int) -> int:
        """Insert rows of two integer columns packed as first << shift | second, in the
        order given (numpy integers below 2**63).

        SQLite unpacks them from a JSON array, a million at a time: an executemany of nine
        million pairs costs about 1.7 us a row in Python's sqlite3 module, the JSON text
        and json_each together about 0.6."""
        first, second = TABLES[table][0]
        low = (1 << shift) - 1
        try:
            for start in range(0, len(packed), PACKED_CHUNK):
                self.db.conn.execute(
                    f"insert into [{table}] ([{first}], [{second}]) "
                    f"select value >> {shift}, value & {low} from json_each(?)",
                    (repr(packed[start:start + PACKED_CHUNK].tolist()),))
        except sqlite3.Error as error:
            raise WriteError(f"cannot write {self.tmp}: {error}") from None
        self.counts[table] = self.counts.get(table, 0) + len(packed)
        return len(packed)

    def copy_from(self, table: str, path: Path, source: str) -> int:
        """Copy the rows of table `source` of the SQLite file at `path`, a table of the same
        shape as `table` with the same indexes (made with shaped_copy_sql), into `table`,
        which is still empty: its indexes come with it.

        `INSERT INTO t SELECT * FROM s` between tables of one shape is SQLite's transfer
        optimization: it appends each stored record, and each index entry, as it is, in the
        order they are stored, without decoding them or building the index again (300,000
        records: paper_topics and its index 2.4 s instead of 1.8 + 2.6 s)."""
        conn = self.db.conn
        try:
            conn.execute("COMMIT")  # SQLite attaches a file only outside a transaction
            conn.execute("ATTACH DATABASE ? AS source", (str(path),))
            conn.execute("BEGIN")
            self.index([table])  # on the empty table: the transfer fills them too
            copied = conn.execute(f"insert into main.[{table}] "
                                  f"select * from source.[{source}]").rowcount
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE source")
            conn.execute("BEGIN")
        except sqlite3.Error as error:
            raise WriteError(f"cannot write {self.tmp}: {error}") from None
        self.counts[table] = self.counts.get(table, 0) + copied
        return copied

    @contextmanager
    def cache_for_random_inserts(self):
        """Give SQLite a page cache of INSERT_CACHE_KIB for the block (then its default again).

        The papers arrive in paper order, and their primary key's index (of ids, in no such
        order) takes each one somewhere else: with SQLite's 2 MB cache most of those pages
        were written out and read back again (674,000 papers: 30 s to insert with the
        default cache, 23 s with 64 MB, 22 s with 128 MB; 14 s without the key). Only for the
        block: a larger cache made the indexes built afterwards slower (5.8 -> 7.5 s at
        300,000 records), since SQLite's sorter then sorts more in one thread."""
        try:
            self.db.execute(f"PRAGMA cache_size = -{INSERT_CACHE_KIB}")
            yield
        finally:
            if self.db is not None:
                with suppress(sqlite3.Error):
                    self.db.execute(f"PRAGMA cache_size = {DEFAULT_CACHE_PAGES}")

    def index(self, tables: Iterable[str]) -> None:
        """Create the indexes of tables that hold all their rows already (`finish` creates
        the others): the build does it while it waits for its new-papers worker."""
        try:
            for table in tables:
                for columns in INDEXES.get(table, []):
                    self.db[table].create_index(columns, if_not_exists=True)
        except sqlite3.Error as error:
            raise WriteError(f"cannot write {self.tmp}: {error}") from None

    def start_search_index(self, titles: list[str], abstracts: Path) -> None:
        """Start building the full-text index from the papers' titles (in rowid order) and
        the abstracts stored at `abstracts`, in a thread, beside what the build does next
        (see SearchIndexBuild); `finish` waits for it."""
        try:
            self.search = SearchIndexBuild(self.scratch_path("search"), "papers", titles,
                                           abstracts)
        except sqlite3.Error as error:
            raise WriteError(f"cannot write {self.scratch_path('search')}: {error}") from None

    def finish(self, metadata: dict, build_info: dict[str, str], expected: dict[str, int]) -> None:
        """Complete, check and put the database in place; `expected` holds known row counts.
        The full-text index must have been started (start_search_index)."""
        try:
            load_docs(self.db.conn, metadata, build_info)
            self.db.conn.commit()
            create_indexes_and_search(self.db, TABLES, self.search)
            self.db.execute("PRAGMA journal_mode = DELETE")
            self.db.execute("ANALYZE")
            self.db.close()
            self.db = None
            # The file goes to disk while the checks read it: the checks take both cores and
            # the disk is idle meanwhile (a million records: 5 s of syncing after them).
            with ThreadPoolExecutor(max_workers=1) as pool:
                synced = pool.submit(sync_to_disk, self.tmp)
                check_database(self.tmp, {**self.counts, **expected, "papers_fts": expected.get(
                    "papers", self.counts["papers"])}, self.search.texts)
                synced.result()
            put_in_place(self.tmp, self.out)
        except sqlite3.Error as error:
            raise WriteError(f"cannot write {self.tmp}: {error}") from None

    def finish_update(self, metadata: dict, build_info: dict[str, str], check) -> None:
        """Complete an updated copy: documentation and build facts anew, `check(conn)`, then
        put it in place (see incremental.py for what is checked and why)."""
        try:
            complete_update(self.db.conn, metadata, build_info, check)
            self.db.conn.commit()
            self.db.execute("PRAGMA journal_mode = DELETE")
            self.db.close()
            self.db = None
            sync_to_disk(self.tmp)
            put_in_place(self.tmp, self.out)
        except sqlite3.Error as error:
            raise WriteError(f"cannot write {self.tmp}: {error}") from None

    def abort(self) -> None:
        if self.search is not None:
            self.search.stop()
            remove_temporary(self.search.path)
        if self.db is not None:
            with suppress(sqlite3.Error):
                self.db.close()  # an error may have left it open, holding the file
            self.db = None
        remove_temporary(self.tmp)

    def __enter__(self) -> "DatabaseWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.abort()  # after finish() the temporary is already renamed: nothing to remove


class DatabaseUpdate:
    """The previous database, updated where it lies in one SQLite transaction (what an
    incremental build writes into when no server holds the file: see update_lock).

    Updating a copy and renaming it over the file cost most of an incremental build that
    changes a few hundred pages: at a million records, copying the 4.6 GB file took
    8.5-12.3 s, syncing the copy 3.8-4.7 s and the rename that frees the old file 4.1 s, of
    about 22 s. SQLite's rollback journal makes the update just as atomic: the journal holds
    each changed page as it was; a failed check rolls the transaction back; a build killed
    halfway leaves a hot journal, which the next connection that reads the file (the next
    build, `site serve`, any SQLite reader that may write) plays back before it reads.
    """

    CACHE_KIB = 256 * 1024  # the update's changed pages stay in memory until the commit
    # How long the update waits for readers of the file to let go of it (a notebook whose
    # query is still open holds it) before it fails, having written nothing.
    READERS_WAIT_SECONDS = 60

    def __init__(self, out: Path):
        self.out = out
        self.conn: sqlite3.Connection | None = None
        try:
            # mode=rw: never create a file; the build checked the previous one exists.
            self.conn = sqlite3.connect(file_uri(out, "rw"), uri=True,
                                        timeout=self.READERS_WAIT_SECONDS)
            self.conn.execute("PRAGMA journal_mode = DELETE")
            self.conn.execute("PRAGMA synchronous = FULL")  # the commit is the only copy
            self.conn.execute(f"PRAGMA cache_size = -{self.CACHE_KIB}")
            # EXCLUSIVE: once the readers of the file are done, and for the whole update, not at
            # the commit. A reader holding its read lock (a notebook's query left open) then
            # fails the update before it has done anything; and a cache that fills up writes
            # its pages at once, where waiting for the readers at every page stalled the update.
            self.conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.Error as error:
            self.abort()
            raise self.error(error) from None

    def finish_update(self, metadata: dict, build_info: dict[str, str], check) -> None:
        """Write the documentation and build facts anew, `check(conn)` the update, and
        commit it (see incremental.py for what is checked and why)."""
        try:
            complete_update(self.conn, metadata, build_info, check)
            with putting_in_place():
                self.conn.commit()
            self.conn.close()
            self.conn = None
        except sqlite3.Error as error:
            raise self.error(error) from None

    def error(self, error: sqlite3.Error) -> WriteError:
        """Return the build's one-line error for a SQLite error during the update."""
        hint = ""
        if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
            hint = (f" (another program is still reading it after {self.READERS_WAIT_SECONDS} "
                    "s: close it and build again)")
        return WriteError(f"cannot update {self.out}: {error}{hint}")

    def abort(self) -> None:
        """Roll back whatever the update wrote (nothing once it is committed)."""
        if self.conn is not None:
            with suppress(sqlite3.Error):
                self.conn.rollback()
            with suppress(sqlite3.Error):
                self.conn.close()
            self.conn = None

    def __enter__(self) -> "DatabaseUpdate":
        return self

    def __exit__(self, *exc) -> None:
        self.abort()


def complete_update(conn: sqlite3.Connection, metadata: dict, build_info: dict[str, str],
                    check) -> None:
    """What every update does last, in place or in a copy: the documentation and build facts
    anew, the planner's statistics if they are stale, then `check(conn)`."""
    for table in ("table_docs", "column_docs", "build_info"):
        conn.execute(f"delete from [{table}]")
    load_docs(conn, metadata, build_info)
    refresh_planner_statistics(conn)
    check(conn)


# How far the papers may outgrow the planner's statistics (ANALYZE's sqlite_stat1) before
# an update takes them again: ANALYZE reads every index (about a second at 300,000 records),
# more than an update of one dump itself takes, and a few per cent more rows change no plan.
STALE_STATISTICS = 0.10


def refresh_planner_statistics(conn: sqlite3.Connection) -> None:
    """Run ANALYZE again when the papers counted by the statistics of the last one differ by
    more than STALE_STATISTICS from the papers there are: a full build takes them, and
    updates alone would leave them those of the first build however much the file grew."""
    analyzed = conn.execute("select 1 from sqlite_master where name = 'sqlite_stat1'").fetchone()
    row = conn.execute("select stat from sqlite_stat1 where tbl = 'papers' "
                       "and idx is not null limit 1").fetchone() if analyzed else None
    counted = int(row[0].split()[0]) if row else 0
    papers = conn.execute("select count(*) from papers").fetchone()[0]
    if abs(papers - counted) > STALE_STATISTICS * counted:
        conn.execute("ANALYZE")


@contextmanager
def update_lock(db: Path) -> Iterator[bool]:
    """Yield True if the build may update `db` where it lies, False if a server holds it.

    Datasette serves papers.db immutable (and plugins/memory_map.py maps it into memory):
    it reads the file without SQLite's locks, so pages changing under it would serve a
    half-updated database. `site serve` holds a shared flock on the file for as long as it
    serves (hold_while_serving); the build asks for an exclusive one without waiting, and
    while it cannot have it, updates a copy and renames it into place: the server keeps
    the file it opened until `site serve` starts it again on the new one. flock is not the
    POSIX lock SQLite takes, so the two never meet.
    """
    handle = os.open(db, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(handle)  # releases the lock


def hold_while_serving(db: Path) -> int:
    """Take a shared flock on `db`, waiting for an update in place to end, and return its
    descriptor: the lock holds until the descriptor is closed (see update_lock)."""
    handle = os.open(db, os.O_RDONLY)
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


@contextmanager
def settled(db: Path) -> Iterator[None]:
    """Hold the write lock of the database `db`, once any update in place of it has ended:
    an interrupted one's journal is played back (SQLite does it when the lock is taken), and
    a journal that SQLite does not play back, because its first byte is zero, is removed.

    SQLite writes a journal's header with a zero first byte until the journal holds every
    page it must, and writes the database only after that; so such a journal is one of an
    update killed before it touched the database, left behind because SQLite ignores it.
    Readers that ignore journals (Datasette's immutable mode) then see the database as it
    was, and no journal is left to be taken for a new file's under the same name. If `db` is
    not a SQLite database there is nothing to settle."""
    journal = db.with_name(db.name + "-journal")
    conn = sqlite3.connect(file_uri(db, "rw"), uri=True, timeout=LOCK_POLL_SECONDS,
                           isolation_level=None)
    try:
        for _ in range(3):
            try:
                begin_immediate(conn)  # plays back a hot journal; waits for an update
            except sqlite3.OperationalError:
                raise  # still locked after the timeout
            except sqlite3.DatabaseError:
                break  # not a database (its subclass OperationalError went above)
            if not hot_journal_left(journal):
                break
            # A hot journal that came after SQLite looked (an update that died between): again.
            conn.execute("ROLLBACK")
        else:
            raise sqlite3.OperationalError(f"{journal.name} is still to be played back")
        yield
    finally:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        conn.close()


# How long settled() and copy_database() wait for an update in place to end, in waits of
# LOCK_POLL_SECONDS: SQLite's own wait is one C call, and a stop signal (Ctrl-C, SIGTERM) is
# only acted on between two calls, so one wait of a minute kept `site serve` from stopping
# for a minute.
LOCK_WAIT_SECONDS = 60
LOCK_POLL_SECONDS = 0.2


def begin_immediate(conn: sqlite3.Connection, seconds: float = LOCK_WAIT_SECONDS) -> None:
    """BEGIN IMMEDIATE on `conn` (whose busy timeout is LOCK_POLL_SECONDS), waiting up to
    `seconds` for another connection's write lock; raise sqlite3.OperationalError after."""
    retry_while_busy(lambda: conn.execute("BEGIN IMMEDIATE"), seconds)


def retry_while_busy(action, seconds: float = LOCK_WAIT_SECONDS):
    """Return action(), tried again while SQLite says another connection holds its lock
    (SQLITE_BUSY and its extended codes), for up to `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except sqlite3.OperationalError as error:
            busy = (error.sqlite_errorcode & 0xFF) == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise


def hot_journal_left(journal: Path) -> bool:
    """Remove the journal if SQLite ignores it (first byte zero; the caller holds the write
    lock, so no live update is writing it). Return True if a hot journal is there instead."""
    try:
        with open(journal, "rb") as handle:
            first = handle.read(1)
    except FileNotFoundError:
        return False
    if first in (b"", b"\0"):
        journal.unlink()
        return False
    return True


def settle(db: Path) -> None:
    """Play back or remove the journal an interrupted update in place left (see settled)."""
    with settled(db):
        pass


def copy_database(source: Path, target: Path) -> None:
    """Copy a database file as one consistent version: under a SQLite read lock, which waits
    for an update in place to commit (and plays back an interrupted one's journal first)."""
    conn = sqlite3.connect(file_uri(source, "rw"), uri=True, timeout=LOCK_POLL_SECONDS,
                           isolation_level=None)
    try:
        conn.execute("BEGIN")
        # Takes the read lock, in short waits (see LOCK_WAIT_SECONDS).
        retry_while_busy(lambda: conn.execute("select count(*) from sqlite_master").fetchone())
        shutil.copyfile(source, target)  # in the kernel (sendfile), at disk speed
        conn.execute("COMMIT")
    finally:
        conn.close()


def put_in_place(tmp: Path, out: Path) -> None:
    """Rename the finished file `tmp` over `out`.

    A journal left beside `out` by an interrupted update in place would be played back into
    the new file under the same name and corrupt it, so `out` is settled first, and keeps
    its write lock until the rename is done. A stop signal is acted on while the lock is
    waited for (up to a minute), and dropped from the rename on (stopping.putting_in_place).
    With no `out`, a journal still beside it is one of a file removed after an update was
    killed (`rm papers.db`, `make clean`): it belongs to no file any more, and is removed."""
    if not out.exists():
        out.with_name(out.name + "-journal").unlink(missing_ok=True)
        with putting_in_place():
            os.replace(tmp, out)
        return
    with settled(out), putting_in_place():
        os.replace(tmp, out)
