"""Facets that stay fast on a large papers table; metadata.yml declares them by type.

`list` (papers.topics, papers.dumps). Datasette's own array facet counts each item once per
row by joining every item with the whole row (`select distinct j.value, inner.* ...`), which
copies every column of every matching row, abstracts included: on 15,000 papers the topics
facet gave up after the site's 400 ms facet limit. The build writes every array with
distinct values, so counting items needs only that one column. With no filter and no
search the counts are already in the database (topics.papers, dumps.papers, which the
build computes from the same arrays), so the page reads them instead of every paper's
array: at a million papers that took 1.5 s. The links filter with Datasette's own
`topics__arraycontains=`. A search that matches half of a million papers is the hard case:
reading 540,000 arrays took 1.2 s, mostly looking up each paper's row. So when a search
alone filters an immutable database, the facet counts in memory instead (ListIndex): every
(paper rowid, item) pair of the column is loaded once per server process (1.7 s for both
list columns at a million papers, started when the server starts), the search's rowids come
from the full-text index as one string, and numpy counts the pairs whose paper matched.
That takes about 70 ms at a million papers for the two facets together. Any other filter
goes the SQL way (the filtered set is then usually small); so does a mutable database, where
loaded pairs could go stale.

`indexed` (the plain columns: published_year, organization, ...). Datasette's column facet
counts `select col ... from (<the page's query>)`, which SQLite answers by looking up each
matching row of papers (a whole row, abstract included) and then sorting the values: at a
million papers a common word's search (540,000 rows) took 550 ms per facet. When the page
has no filter but its search, this facet reads the column's index instead: the index holds
every value with its rowid, in value order, so each entry is checked against the search's
rowids and counted without touching the table and without a sort. Any other filter goes
Datasette's way (the filtered set is then usually small). The facet's links are the column
facet's own (`?published_year=2025`).
"""

import asyncio
import copy
import json
import re
import sqlite3
import threading
import weakref
from array import array
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.facets import ArrayFacet, ColumnFacet
from datasette.utils import (escape_sqlite, path_with_added_args, path_with_removed_args,
                             sqlite_timelimit)

# Counts the build stores, equal to counting the arrays of every paper (tests hold them equal).
STORED_COUNTS = {
    ("papers", "topics"): "select id as value, papers as count from topics where papers > 0",
    ("papers", "dumps"): "select name as value, papers as count from dumps where papers > 0",
}

# The longest rowid list a search may give (in bytes): 8 bytes per paper for 100 million.
GROUP_CONCAT_MAX = 800_000_000

# The query Datasette hands to facets: `select <columns> from <table> [where ...]`.
PAGE_QUERY = re.compile(r"select .+? from (?P<table>\S+)(?: where (?P<where>.*?))?\s*$", re.S)


def page_filters(sql: str) -> str | None:
    """Return the where clause of the page's query ('' for none), or None if it is not that shape."""
    match = PAGE_QUERY.fullmatch(sql.strip())
    return None if match is None else (match["where"] or "").strip()


def search_clauses(fts_table: str, fts_pk: str = "rowid") -> dict[str, str]:
    """The where clauses Datasette writes for `?_search=` (escaped and raw search modes),
    each with its match expression."""
    return {f"{escape_sqlite(fts_pk)} in (select rowid from {escape_sqlite(fts_table)} "
            f"where {escape_sqlite(fts_table)} match {match})": match
            for match in ("escape_fts(:search)", ":search")}


def search_clause(fts_table: str, fts_pk: str = "rowid") -> set[str]:
    return set(search_clauses(fts_table, fts_pk))


async def run_facet_query(facet, sql: str, params: dict):
    return await facet.ds.execute(facet.database, sql, params, truncate=False,
                                  custom_time_limit=facet.ds.setting("facet_time_limit_ms"))


@dataclass
class ListIndex:
    """Every (paper rowid, item) pair of one list column, as two parallel numpy arrays."""

    labels: list[str]  # item number -> the item
    rowids: np.ndarray
    items: np.ndarray  # item numbers

    @classmethod
    def load(cls, conn, table: str, column: str) -> "ListIndex":
        numbers: dict[str, int] = {}
        items_of: dict[str, list[int]] = {}  # many papers share an array: parse each once
        rowids, items = array("q"), array("q")
        for rowid, text in conn.execute(f"select rowid, {escape_sqlite(column)} from "
                                        f"{escape_sqlite(table)} where {escape_sqlite(column)} "
                                        f"is not null"):
            numbered = items_of.get(text)
            if numbered is None:
                numbered = items_of[text] = [numbers.setdefault(item, len(numbers))
                                             for item in dict.fromkeys(json.loads(text))]
            rowids.extend([rowid] * len(numbered))
            items.extend(numbered)
        return cls(list(numbers), np.frombuffer(rowids, np.int64), np.frombuffer(items, np.int64))

    def counts(self, matched: np.ndarray, limit: int) -> list[tuple[str, int]]:
        """Return the `limit` items held by most of the `matched` rowids, with how many hold
        each: count desc, then item, as the SQL query orders them."""
        size = max(int(self.rowids.max(initial=0)), int(matched.max(initial=0))) + 1
        selected = np.zeros(size, dtype=bool)
        selected[matched] = True
        counts = np.bincount(self.items[selected[self.rowids]], minlength=len(self.labels))
        found = [(-int(counts[n]), label) for n, label in enumerate(self.labels) if counts[n]]
        return [(label, -negative) for negative, label in sorted(found)[:limit]]


# One load per server and database, in a thread of its own, shared by every request: the
# startup hook runs before the server's event loop exists, so a future of the concurrent
# kind, which any loop can await. Weakly keyed by the Datasette instance, so a test's
# instance and its arrays go together.
LIST_INDEXES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
LOADING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="list-facets")
LOADING_LOCK = threading.Lock()


def list_index(datasette, database: str, table: str, column: str) -> Future:
    """Return the future of the column's ListIndex (loading starts on first need)."""
    def load() -> ListIndex:
        conn = datasette.get_database(database).connect()
        try:
            return ListIndex.load(conn, table, column)
        finally:
            conn.close()

    with LOADING_LOCK:
        futures = LIST_INDEXES.setdefault(datasette, {})
        key = (database, table, column)
        if key not in futures:
            futures[key] = LOADING.submit(load)
        return futures[key]


def list_facet_columns(datasette):
    """Yield (database, table, column) for every `list` facet metadata.yml declares."""
    for database, config in (datasette.metadata("databases") or {}).items():
        for table, table_config in (config.get("tables") or {}).items():
            for facet in table_config.get("facets") or []:
                if isinstance(facet, dict) and "list" in facet:
                    yield database, table, facet["list"]


class ListFacet(ArrayFacet):
    type = "list"

    async def suggest(self):
        return []  # declared in metadata.yml, never suggested

    def search_only(self) -> str | None:
        """Return the match expression if a search alone filters an immutable database."""
        fts_table = self.metadata.get("fts_table")
        if not fts_table or self.ds.get_database(self.database).is_mutable:
            return None
        return search_clauses(fts_table, self.metadata.get("fts_pk", "rowid")).get(
            page_filters(self.sql))

    async def matched_rowids(self, match: str) -> np.ndarray:
        """Return the rowids the page's search matches, read from the index as one string
        under the facet time limit (a row per rowid would take twice as long in Python)."""
        fts = escape_sqlite(self.metadata["fts_table"])
        sql = f"select group_concat(rowid, ' ') from {fts} where {fts} match {match}"
        limit_ms = min(self.ds.setting("facet_time_limit_ms"), self.ds.sql_time_limit_ms)

        def read(conn) -> str:
            # The string is about 8 bytes per paper, over the 32 kB a value may hold in
            # visitors' queries (plugins/sql_limits.py): lifted for this one query of ours.
            previous = conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, GROUP_CONCAT_MAX)
            try:
                with sqlite_timelimit(conn, limit_ms):
                    cursor = conn.cursor()
                    cursor.row_factory = None
                    return cursor.execute(sql, self.params).fetchone()[0] or ""
            except sqlite3.OperationalError as error:
                if error.args == ("interrupted",):
                    raise QueryInterrupted(error, sql, self.params) from None
                raise
            finally:
                conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, previous)

        text = await self.ds.get_database(self.database).execute_fn(read)
        return np.array(text.split(), dtype=np.int64)

    async def value_counts(self, column: str, limit: int, matched) -> list[tuple[str, int]]:
        if matched is not None:
            index = await asyncio.wrap_future(
                list_index(self.ds, self.database, self.table, column))
            return index.counts(await matched, limit)
        rows = await run_facet_query(self, self.count_query(column, limit), self.params)
        return [(row["value"], row["count"]) for row in rows.rows]

    def count_query(self, column: str, limit: int) -> str:
        stored = STORED_COUNTS.get((self.table, column))
        if stored and page_filters(self.sql) == "":
            return f"select value, count from ({stored}) order by count desc, value limit {limit}"
        return (f"select j.value as value, count(*) as count "
                f"from ({self.sql}) as inner_rows, json_each(inner_rows.{escape_sqlite(column)}) j "
                f"group by j.value order by count(*) desc, j.value limit {limit}")

    async def facet_results(self):
        results, timed_out = [], []
        size = self.get_facet_size()
        pairs = self.get_querystring_pairs()
        match = self.search_only()
        # The search's rowids are read once for all the list facets of the page.
        matched = None if match is None else asyncio.ensure_future(self.matched_rowids(match))
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            try:
                counts = await self.value_counts(column, size + 1, matched)
            except QueryInterrupted:
                timed_out.append(column)
                continue
            values = []
            for value, count in counts[:size]:
                value = str(value)
                selected = (f"{column}__arraycontains", value) in pairs
                change = path_with_removed_args if selected else path_with_added_args
                values.append({
                    "value": value, "label": value, "count": count, "selected": selected,
                    "toggle_url": self.ds.absolute_url(
                        self.request, change(self.request, {f"{column}__arraycontains": value})),
                })
            results.append({
                "name": column, "type": self.type, "results": values,
                "hideable": source_and_config["source"] != "metadata",
                "toggle_url": self.ds.urls.path(
                    path_with_removed_args(self.request, {f"_facet_{self.type}": column})),
                "truncated": len(counts) > size,
            })
        return results, timed_out


class IndexedFacet(ColumnFacet):
    """Datasette's column facet, counted from the column's index when only a search filters."""

    type = "indexed"

    async def suggest(self):
        return []  # declared in metadata.yml, never suggested

    async def facet_results(self):
        indexes = await self.ds.get_database(self.database).execute_fn(self.single_column_indexes)
        where = self.index_friendly_filters()
        results, timed_out = [], []
        for config in self.get_configs():
            column = config["config"].get("column") or config["config"]["simple"]
            one = copy.copy(self)  # ColumnFacet's own code, for this column and its query
            one.get_configs = lambda config=config: [config]
            if where is not None and column in indexes:
                one.sql = (f"select {escape_sqlite(column)} from {escape_sqlite(self.table)} "
                           f"indexed by {escape_sqlite(indexes[column])}"
                           + (f" where {where}" if where else ""))
            found, gave_up = await ColumnFacet.facet_results(one)
            for facet in found:
                facet["toggle_url"] = self.ds.urls.path(
                    path_with_removed_args(self.request, {f"_facet_{self.type}": column}))
            results += found
            timed_out += gave_up
        return results, timed_out

    def single_column_indexes(self, conn) -> dict[str, str]:
        """Return {column: index} for the single-column indexes of the table."""
        indexes = {}
        for (name,) in conn.execute("select name from pragma_index_list(?)", [self.table]):
            columns = [row[0] for row in conn.execute("select name from pragma_index_info(?)", [name])]
            if len(columns) == 1:
                indexes.setdefault(columns[0], name)
        return indexes

    def index_friendly_filters(self) -> str | None:
        """Return the page's where clause if it is empty or only the search, else None."""
        where = page_filters(self.sql)
        fts_table = self.metadata.get("fts_table")
        if where == "" or (fts_table and where in search_clause(
                fts_table, self.metadata.get("fts_pk", "rowid"))):
            return where
        return None


@hookimpl
def register_facet_classes():
    return [ListFacet, IndexedFacet]


@hookimpl
def startup(datasette):
    """Start loading the list facets' pairs as the server starts, so no visitor waits for it."""
    for database, table, column in list_facet_columns(datasette):
        if database in datasette.databases and not datasette.get_database(database).is_mutable:
            list_index(datasette, database, table, column)
