"""Facets that stay fast on a large papers table; metadata.yml declares them by type.

`list` (papers.topics, papers.dumps). Datasette's own array facet counts each item once per
row by joining every item with the whole row (`select distinct j.value, inner.* ...`), which
copies every column of every matching row, abstracts included: on 15,000 papers the topics
facet gave up after the site's 400 ms facet limit. The build writes every array with
distinct values, so counting items needs only that one column; with no filter and no search
the counts are already in the database (topics.papers, dumps.papers, which the build
computes from the same arrays). The links filter with Datasette's own
`topics__arraycontains=`.

`indexed` (the plain columns: published_year, organization, ...). Datasette's column facet
counts `select col ... from (<the page's query>)`, which SQLite answers by looking up each
matching row of papers (a whole row, abstract included) and then sorting the values. The
links are the column facet's own (`?published_year=2025`).

A search that matches half of a million papers is the hard case: counting through SQL took
1.2 s for a list facet (mostly looking up each paper's row) and 170 ms for a plain column
even when read from the column's index. So when nothing but a search filters the page of an
immutable database (or, for plain columns, nothing filters it), the facets count in memory
(ValueIndex): every (rowid, value) pair of each facet column is loaded once per server
process, in a thread started when the server starts (about 2.5 s for all seven at a
million papers); the search's rowids are read from the full-text index once per page, as
one string; numpy counts the pairs whose row matched. All seven facets of such a page then
take about 100 ms together at a million papers. Any other filter goes the SQL way (the
filtered set is then usually small, and the plain columns read their index when they can);
so does a mutable database, where loaded pairs could go stale. Tests hold every path equal
to Datasette's own facets.
"""

import asyncio
import copy
import functools
import json
import re
import sqlite3
import threading
import weakref
from array import array
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import numpy as np
from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.facets import ArrayFacet, ColumnFacet, DateFacet, load_facet_configs
from datasette.filters import Filters
from datasette.utils import (compound_keys_after_sql, escape_sqlite, path_with_added_args,
                             path_with_removed_args, sqlite_timelimit)

# Counts the build stores, equal to counting the arrays of every paper (tests hold them equal).
STORED_COUNTS = {
    ("papers", "topics"): "select id as value, papers as count from topics where papers > 0",
    ("papers", "dumps"): "select name as value, papers as count from dumps where papers > 0",
}

# The longest rowid list a search may give (in bytes): 8 bytes per paper for 100 million.
GROUP_CONCAT_MAX = 800_000_000

# The clauses of Datasette's own list filters, `?topics__arraycontains=` and
# `?topics__arraynotcontains=`, as its templates write them.
IDENTIFIER = r'(?:"[^"]+"|\[[^\]]+\])'
ARRAY_CONTAINS = re.compile(rf":(?P<param>p\d+) in \(select value from json_each\("
                            rf"(?P<table>{IDENTIFIER})\.(?P<column>{IDENTIFIER})\)\)")
ARRAY_NOT_CONTAINS = re.compile(rf":(?P<param>p\d+) not in \(select value from json_each\("
                                rf"(?P<table>{IDENTIFIER})\.(?P<column>{IDENTIFIER})\)\)")
# The clause search_plan.py adds beside a `?dumps__arraycontains=` filter: the same papers,
# read through the sightings' index (it selects a dump's few papers at once).
SEEN_IN = re.compile(r"rowid in \(select carrier\.rowid from sightings as sighting "
                     r"join papers as carrier on carrier\.id = sighting\.paper_id "
                     r"where sighting\.dump = :seen_in_\d+\)")

# ... and beside a `?topics__arraycontains=` filter of a topic few papers carry.
WITH_TOPIC = re.compile(r"rowid in \(select carrier\.rowid from paper_topics as evidence "
                        r"join papers as carrier on carrier\.id = evidence\.paper_id "
                        r"where evidence\.topic = :with_topic_\d+\)")
# The clause search_plan.py adds beside a column filter few rows pass: that filter's rows,
# written with parameters of its own (`:rare_<filter>_<n>`).
RARE_PARAM = r":rare_\d+_\d+"
RARE_ROWS = re.compile(
    rf"rowid in \(select rare\.rowid from (?:{IDENTIFIER}|\w+) as rare where "
    rf"(?:{IDENTIFIER} (?:=|>=|<=|>|<) {RARE_PARAM}|{IDENTIFIER} is (?:not )?null"
    rf"|\w+ in \({RARE_PARAM}(?:, {RARE_PARAM})*\))\)")

# The query Datasette hands to facets: `select <columns> from <table> [where ...]`.
PAGE_QUERY = re.compile(r"select .+? from (?P<table>\S+)(?: where (?P<where>.*?))?\s*$", re.S)


def page_filters(sql: str) -> str | None:
    """Return the where clause of the page's query ('' for none), or None if it is not that shape."""
    match = PAGE_QUERY.fullmatch(sql.strip())
    return None if match is None else (match["where"] or "").strip()


def search_clauses(fts_table: str, fts_pk: str = "rowid") -> dict[str, str]:
    """The where clauses Datasette writes for `?_search=` (escaped and raw search modes),
    each with its match expression; with an fts_pk other than rowid, also the clause on the
    rowid that plugins/search_plan.py may add beside it."""
    return {f"{escape_sqlite(pk)} in (select rowid from {escape_sqlite(fts_table)} "
            f"where {escape_sqlite(fts_table)} match {match})": match
            for pk in dict.fromkeys([fts_pk, "rowid"])
            for match in ("escape_fts(:search)", ":search")}


def search_clause(fts_table: str, fts_pk: str = "rowid") -> set[str]:
    return set(search_clauses(fts_table, fts_pk))


async def run_facet_query(facet, sql: str, params: dict):
    return await facet.ds.execute(facet.database, sql, params, truncate=False,
                                  custom_time_limit=facet.ds.setting("facet_time_limit_ms"))


def sqlite_order(value) -> tuple:
    """Sort key of SQLite's order for values of mixed types: numbers, then text, then blobs."""
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, value) if isinstance(value, str) else (2, value)


@dataclass
class ValueIndex:
    """Every (rowid, value) pair of one column, as parallel numpy arrays: for a list column,
    each distinct item of the row's JSON array; for a plain column, its value unless null."""

    values: list  # value number -> the value
    rowids: np.ndarray
    numbers: np.ndarray  # value numbers
    every_row: list | None = field(default=None, repr=False)  # counts of the whole table
    numbers_of: dict | None = field(default=None, repr=False)  # value -> its number
    size: int = 0  # above every rowid of the pairs

    # Each value number's place among the values in SQLite's order, which breaks ties of
    # counts: ranks sort in numpy, where sqlite_order sorted thousands of values in Python on
    # every page (a dump's name per dump: 16,656 at a million records).
    rank: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        self.size = int(self.rowids.max(initial=0)) + 1
        order = sorted(range(len(self.values)), key=lambda n: sqlite_order(self.values[n]))
        self.rank = np.empty(len(self.values), dtype=np.int64)
        self.rank[order] = np.arange(len(order))

    @classmethod
    def load(cls, conn, table: str, column: str, is_list: bool) -> "ValueIndex":
        numbers: dict = {}
        numbered_arrays: dict[str, list[int]] = {}  # many rows share an array: parse each once
        # 4-byte integers: rowids and value numbers stay far below 2**31, and at a million
        # papers the seven columns' 8 million pairs then take 67 MB.
        rowids, numbered = array("i"), array("i")
        for rowid, value in conn.execute(f"select rowid, {escape_sqlite(column)} from "
                                         f"{escape_sqlite(table)} where {escape_sqlite(column)} "
                                         f"is not null order by rowid"):  # see numbers_held
            if not is_list:
                rowids.append(rowid)
                numbered.append(numbers.setdefault(value, len(numbers)))
                continue
            items = numbered_arrays.get(value)
            if items is None:
                items = numbered_arrays[value] = [numbers.setdefault(item, len(numbers))
                                                  for item in dict.fromkeys(json.loads(value))]
            rowids.extend([rowid] * len(items))
            numbered.extend(items)
        return cls(list(numbers), np.frombuffer(rowids, np.int32), np.frombuffer(numbered, np.int32))

    def counts(self, matched: np.ndarray | None, limit: int) -> list[tuple]:
        """Return the `limit` values held by most of the `matched` rows (None: by most rows),
        with how many rows hold each: count desc, then value, as the facets' SQL orders them."""
        if matched is None:
            if self.every_row is None:
                self.every_row = self.ordered(np.bincount(self.numbers, minlength=len(self.values)))
            return self.every_row[:limit]
        held = self.numbers_held(matched)
        return self.ordered(np.bincount(held, minlength=len(self.values)), limit)

    def numbers_held(self, matched: np.ndarray) -> np.ndarray:
        """Return the value numbers of the pairs of the `matched` rows (distinct rowids).

        Few rows (a rare word): each row's pairs are found by binary search in the rowids,
        which are in order (load), instead of testing every pair of the column (2 million
        pairs for the dumps at a million records, whatever the page's rows)."""
        if len(matched) * 64 < len(self.rowids):
            matched = matched.astype(self.rowids.dtype)  # else numpy converts all the rowids
            starts = np.searchsorted(self.rowids, matched, "left")
            lengths = np.searchsorted(self.rowids, matched, "right") - starts
            total = int(lengths.sum())
            # For each pair, its row's first pair, plus its place among that row's pairs.
            firsts = np.repeat(starts, lengths)
            places = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            return self.numbers[firsts + places]
        selected = np.zeros(max(self.size, int(matched.max(initial=0)) + 1), dtype=bool)
        selected[matched] = True
        return self.numbers[selected[self.rowids]]

    def rowids_holding(self, value) -> np.ndarray:
        """Return the rowids whose column holds `value` (text compared as SQLite compares it)."""
        if self.numbers_of is None:
            self.numbers_of = {value: n for n, value in enumerate(self.values)}
        number = self.numbers_of.get(value)
        if number is None:
            return np.zeros(0, dtype=np.int32)
        return np.unique(self.rowids[self.numbers == number])

    def ordered(self, counts: np.ndarray, limit: int | None = None) -> list[tuple]:
        """Return (value, count) of the values counted, count desc, then value in SQLite's
        order; the first `limit` of them."""
        found = np.flatnonzero(counts)
        best = found[np.lexsort((self.rank[found], -counts[found]))][:limit]
        return [(self.values[n], int(counts[n])) for n in best]


# One load per server, database and column, in a thread of its own, shared by every request:
# the startup hook runs before the server's event loop exists, so futures of the concurrent
# kind, which any loop can await. Weakly keyed by the Datasette instance, so a test's
# instance and its arrays go together.
VALUE_INDEXES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
LOADING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facet-values")
LOADING_LOCK = threading.Lock()
# The rowids a page's search matched, read once for all its facets (keyed by the request).
MATCHED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def value_index(datasette, database: str, table: str, column: str, is_list: bool) -> Future:
    """Return the future of the column's ValueIndex (loading starts on first need)."""
    def load() -> ValueIndex:
        conn = datasette.get_database(database).connect()
        try:
            return ValueIndex.load(conn, table, column, is_list)
        finally:
            conn.close()

    with LOADING_LOCK:
        futures = VALUE_INDEXES.setdefault(datasette, {})
        key = (database, table, column)
        if key not in futures:
            futures[key] = LOADING.submit(load)
        return futures[key]


async def matched_rowids(facet, where: str, sources: list[tuple]) -> np.ndarray:
    """Return the rowids of the page's rows (read once per page, for every facet)."""
    pending = MATCHED.setdefault(facet.request, {})
    key = (facet.database, facet.table, where)
    if key not in pending:
        pending[key] = asyncio.ensure_future(read_matched_rowids(facet, sources))
    return await pending[key]


def datasette_filter_clauses(facet) -> set[str]:
    """Return the where clauses Datasette writes for the page's column filters, as its table
    view builds them from the request (every argument but `_` ones without `__`, sorted)."""
    args = facet.request.args
    pairs = [(key, value) for key in args if not (key.startswith("_") and "__" not in key)
             for value in args.getlist(key)]
    where, _ = Filters(sorted(pairs), facet.metadata.get("units", {})).build_where_clauses(facet.table)
    return set(where)


def page_clauses(where: str, whole: set[str]) -> list[str]:
    """Split the page's where clause into the clauses Datasette joined with " and ", keeping
    each clause of `whole` in one piece (`?col__notblank=1` is `(col is not null and ...)`)."""
    pieces, clauses = where.split(" and "), []
    while pieces:
        joined = next((n for n in range(len(pieces), 1, -1)
                       if " and ".join(pieces[:n]) in whole), 1)
        clauses.append(" and ".join(pieces[:joined]))
        del pieces[:joined]
    return clauses


def rowid_sources(facet, where: str) -> list[tuple] | None:
    """Return how to find the rowids the page's where clause selects, clause by clause:
    ("sql", query) for a query giving them as one string, ("items", column, parameter) for
    the rows whose list column holds an item, ("items_not", ...) for those whose list does
    not (both found from the column's pairs in memory).

    A search is asked of the full-text index, which gives its rowids at once. Datasette's
    column filters (any of its filters: `=`, `__gt`, `__in`, `__isnull`, `__date` ...) and
    search_plan.py's hints are read in SQL, each on its own, from their column's index where
    there is one. A clause in no form known here (a visitor's `_where=`, say) gives None: the
    facets then count Datasette's way, under every limit on visitors' SQL, since the queries
    here lift the limit on the length of a value.
    """
    fts_table = facet.metadata.get("fts_table")
    searches = search_clauses(fts_table, facet.metadata.get("fts_pk", "rowid")) if fts_table else {}
    lists = {column for database, table, column, is_list in declared_facets(facet.ds)
             if is_list and (database, table) == (facet.database, facet.table)}
    own = datasette_filter_clauses(facet)
    table = escape_sqlite(facet.table)
    sources = []
    for clause in page_clauses(where, own):
        listed = ARRAY_CONTAINS.fullmatch(clause) or ARRAY_NOT_CONTAINS.fullmatch(clause)
        if clause in searches:
            fts = escape_sqlite(fts_table)
            sources.append(("sql", f"select group_concat(rowid, ' ') from {fts} "
                                   f"where {fts} match {searches[clause]}"))
        elif listed and listed["table"][1:-1] == facet.table and listed["column"][1:-1] in lists:
            kind = "items" if listed.re is ARRAY_CONTAINS else "items_not"
            sources.append((kind, listed["column"][1:-1], listed["param"]))
        elif clause in own or any(form.fullmatch(clause) for form in (SEEN_IN, WITH_TOPIC,
                                                                      RARE_ROWS)):
            sources.append(("sql", f"select group_concat(rowid, ' ') from {table} where {clause}"))
        else:
            return None
    return list(dict.fromkeys(sources))  # the search's two clauses (search_plan.py): one read


async def read_matched_rowids(facet, sources: list[tuple]) -> np.ndarray:
    """Return the rowids the sources select: the rows every one of them agrees on."""
    queries = [source[1] for source in sources if source[0] == "sql"]
    if not any(kind in ("sql", "items") for kind, *_ in sources):  # only lists not holding
        queries.append(f"select group_concat(rowid, ' ') from {escape_sqlite(facet.table)}")
    found = [np.array(text.split(), dtype=np.int64)
             for text in await read_rowid_strings(facet, queries)]
    excluded = []
    for kind, column, param in (source for source in sources if source[0] != "sql"):
        index = await asyncio.wrap_future(
            value_index(facet.ds, facet.database, facet.table, column, is_list=True))
        holding = index.rowids_holding(facet.params[param])
        (found if kind == "items" else excluded).append(holding)
    matched = functools.reduce(lambda a, b: np.intersect1d(a, b, assume_unique=True), found)
    for holding in excluded:
        matched = np.setdiff1d(matched, holding, assume_unique=True)
    return matched


async def read_rowid_strings(facet, queries: list[str]) -> list[str]:
    """Run the queries under one facet time limit; each gives rowids as one string (a row
    per rowid would take twice as long in Python)."""
    limit_ms = min(facet.ds.setting("facet_time_limit_ms"), facet.ds.sql_time_limit_ms)
    params = facet.params

    def read(conn) -> list[str]:
        # A string is about 8 bytes per row, over the 32 kB a value may hold in visitors'
        # queries (plugins/sql_limits.py): lifted for these queries of ours.
        previous = conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, GROUP_CONCAT_MAX)
        try:
            with sqlite_timelimit(conn, limit_ms):
                cursor = conn.cursor()
                cursor.row_factory = None
                return [cursor.execute(sql, params).fetchone()[0] or "" for sql in queries]
        except sqlite3.OperationalError as error:
            if error.args == ("interrupted",):
                raise QueryInterrupted(error, "; ".join(queries), params) from None
            raise
        finally:
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, previous)

    return await facet.ds.get_database(facet.database).execute_fn(read)


async def counted_in_memory(facet, column: str, limit: int, every_row: bool) -> list | None:
    """Return the column's `limit` most held values with their counts, counted in memory; or
    None if the page cannot be (a mutable database, a query or a filter of another shape,
    or no filter unless `every_row`)."""
    if facet.ds.get_database(facet.database).is_mutable:
        return None
    where = page_filters(facet.sql)
    if where is None or (where == "" and not every_row):
        return None
    sources = rowid_sources(facet, where) if where else []
    if sources is None:
        return None
    matched = await matched_rowids(facet, where, sources) if where else None
    index = await asyncio.wrap_future(value_index(facet.ds, facet.database, facet.table, column,
                                                  is_list=facet.type == ListFacet.type))
    return index.counts(matched, limit)


class ListFacet(ArrayFacet):
    type = "list"

    async def suggest(self):
        return []  # declared in metadata.yml, never suggested

    def count_query(self, column: str, limit: int) -> str:
        stored = STORED_COUNTS.get((self.table, column))
        if stored and page_filters(self.sql) == "":
            return f"select value, count from ({stored}) order by count desc, value limit {limit}"
        return (f"select j.value as value, count(*) as count "
                f"from ({self.sql}) as inner_rows, json_each(inner_rows.{escape_sqlite(column)}) j "
                f"group by j.value order by count(*) desc, j.value limit {limit}")

    async def value_counts(self, column: str, limit: int) -> list[tuple]:
        # With nothing filtered the stored counts answer at once, loaded or not.
        counts = await counted_in_memory(self, column, limit, every_row=False)
        if counts is None:
            rows = await run_facet_query(self, self.count_query(column, limit), self.params)
            counts = [(row["value"], row["count"]) for row in rows.rows]
        return counts

    async def facet_results(self):
        results, timed_out = [], []
        size = self.get_facet_size()
        pairs = self.get_querystring_pairs()
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            try:
                counts = await self.value_counts(column, size + 1)
            except QueryInterrupted:
                timed_out.append(column)
                continue
            values = []
            links = ValueLinks(self.ds, self.request)
            for value, count in counts[:size]:
                value = str(value)
                selected = (f"{column}__arraycontains", value) in pairs
                toggle = links.toggle(f"{column}__arraycontains", value, selected)
                values.append({"value": value, "label": value, "count": count,
                               "selected": selected, "toggle_url": links.absolute(toggle)})
            results.append({
                "name": column, "type": self.type, "results": values,
                "hideable": source_and_config["source"] != "metadata",
                "toggle_url": self.ds.urls.path(
                    path_with_removed_args(self.request, {f"_facet_{self.type}": column})),
                "truncated": len(counts) > size,
            })
        return results, timed_out


class IndexedFacet(ColumnFacet):
    """Datasette's column facet, counted in memory or from the column's index when it can."""

    type = "indexed"

    async def suggest(self):
        return []  # declared in metadata.yml, never suggested

    async def facet_results(self):
        indexes = None  # read only if a facet is counted through SQL
        where = self.index_friendly_filters()
        size = self.get_facet_size()
        results, timed_out = [], []
        for config in self.get_configs():
            column = config["config"].get("column") or config["config"]["simple"]
            try:
                counts = await counted_in_memory(self, column, size + 1, every_row=True)
            except QueryInterrupted:
                timed_out.append(column)
                continue
            if counts is not None:
                found, gave_up = [await self.column_result(column, config, counts, size)], []
            else:
                if indexes is None:
                    indexes = await self.ds.get_database(self.database).execute_fn(
                        self.single_column_indexes)
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
                for item in facet["results"]:  # Datasette's toggles keep the cursor
                    item["toggle_url"] = without_cursor(item["toggle_url"])
            results += found
            timed_out += gave_up
        return results, timed_out

    async def column_result(self, column: str, config: dict, counts: list, size: int) -> dict:
        """Return the facet as ColumnFacet.facet_results words it, from counts made here."""
        pairs = self.get_querystring_pairs()
        shown = counts[:size]
        labels = await self.ds.expand_foreign_keys(self.database, self.table, column,
                                                   [value for value, _ in shown])
        column_qs = f"{column}__exact" if column.startswith("_") else column
        values = []
        links = ValueLinks(self.ds, self.request)
        for value, count in shown:
            selected = (column_qs, str(value)) in pairs
            toggle = links.toggle(column_qs, str(value) if selected else value, selected)
            values.append({
                "value": value, "label": labels.get((column, value), value), "count": count,
                "toggle_url": links.absolute(self.ds.urls.path(toggle)), "selected": selected,
            })
        return {"name": column, "type": self.type, "hideable": config["source"] != "metadata",
                "results": values, "truncated": len(counts) > size}

    def single_column_indexes(self, conn) -> dict[str, str]:
        """Return {column: index} for the single-column indexes of the table."""
        indexes = {}
        for (name,) in conn.execute("select name from pragma_index_list(?)", [self.table]):
            columns = [row[0] for row in conn.execute("select name from pragma_index_info(?)", [name])]
            if len(columns) == 1:
                indexes.setdefault(columns[0], name)
        return indexes

    def index_friendly_filters(self) -> str | None:
        """Return the page's where clause if it is empty or only the search (one clause or
        both of search_plan.py's), else None. The search is given on the rowid, which every
        index holds: on search_rowid, reading a column's index would read each row too."""
        where = page_filters(self.sql)
        fts_table = self.metadata.get("fts_table")
        if where == "":
            return where
        searches = search_clauses(fts_table, self.metadata.get("fts_pk", "rowid")) if fts_table else {}
        clauses = [] if where is None else where.split(" and ")
        if clauses and all(clause in searches for clause in clauses):
            on_rowid = {searches[clause]: clause for clause in search_clause(fts_table)}
            return " and ".join(dict.fromkeys(on_rowid[searches[clause]] for clause in clauses))
        return None


def declared_facets(datasette):
    """Yield (database, table, column, is_list) for every facet of ours that metadata declares."""
    kinds = {ListFacet.type: True, IndexedFacet.type: False}
    for database, config in (datasette.metadata("databases") or {}).items():
        for table, table_config in (config.get("tables") or {}).items():
            for facet in table_config.get("facets") or []:
                if isinstance(facet, dict):
                    for kind, column in facet.items():
                        if kind in kinds:
                            yield database, table, column, kinds[kind]


def with_filter_added(request, key: str, value) -> str:
    """The page's path with the filter `key=value` added, from the first page again: the
    cursor (`_next`) of the listing before was a place in other rows, and kept, it skipped
    the newest matches with no link back to them."""
    return path_with_added_args(request, [(key, value), ("_next", None)])


class ValueLinks:
    """The links of a facet's values, as with_filter_added, with_filter_removed and
    Datasette's absolute_url write them, with the page's query read once per facet instead
    of once per value, and each link made absolute without urljoin: at 20,000 papers the
    60-odd links of the seven facets took about 5 ms of a 50 ms page (mostly urljoin, and
    Datasette's URL string class, which lists str's attributes at each method call)."""

    def __init__(self, datasette, request):
        self.datasette, self.request = datasette, request
        # The page's query as path_with_added_args reads it, _next dropped, encoded once.
        self.kept = urlencode([(key, value) for key, value in parse_qsl(request.query_string)
                               if key != "_next"])
        self.origin = None  # scheme://host[:port], read at the first link

    def toggle(self, key: str, value, selected: bool) -> str:
        """The page's path with the filter key=value added, or removed if `selected`."""
        if selected:
            return with_filter_removed(self.request, key, value)
        if value is None:  # path_with_added_args drops the key then: its own way
            return with_filter_added(self.request, key, value)
        query = "&".join(filter(None, (self.kept, urlencode([(key, value)]))))
        return f"{self.request.path}?{query}"

    def absolute(self, path) -> str:
        """datasette.absolute_url(request, path): an absolute path joins the origin as is."""
        path = str(path)
        if path.startswith("/") and not path.startswith("//") and "/." not in path:
            if self.origin is None:
                self.origin = self.datasette.absolute_url(self.request, "/")[:-1]
            return self.origin + path
        return self.datasette.absolute_url(self.request, path)


def without_cursor(url: str) -> str:
    """`url` without its `_next` (see with_filter_added)."""
    base, _, query = url.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "_next"]
    return base + ("?" + urlencode(kept) if kept else "")


def with_filter_removed(request, key: str, value: str) -> str:
    """The page's path without the filter `key=value`, from the first page again."""
    return without_cursor(path_with_removed_args(request, {key: value}))


def starting_from_the_first_page(facet_results):
    """Wrap a facet class's facet_results so that its value links drop the cursor, as
    with_filter_added does for this module's own facets (see there)."""
    async def facet_results_from_the_first_page(self):
        results, timed_out = await facet_results(self)
        for facet in results:
            for item in facet.get("results", []):
                item["toggle_url"] = without_cursor(item["toggle_url"])
        return results, timed_out
    facet_results_from_the_first_page.starts_from_the_first_page = True
    return facet_results_from_the_first_page


# Datasette's own facets (every table's `_facet=`, metadata.yml's facets of sightings,
# paper_topics and problems) build their links in facet_results: there is no hook for them.
for facet_class in (ColumnFacet, ArrayFacet, DateFacet):
    if not getattr(facet_class.facet_results, "starts_from_the_first_page", False):
        facet_class.facet_results = starting_from_the_first_page(facet_class.facet_results)


# The facets of a later page (`?_next=`) count what the first page counts: every row the
# filters and the search select. Datasette 0.65 hands its facets the page's query with the
# cursor's clause in it, so each page counted only the rows after its cursor: the counts
# shrank page by page under a row count that did not, and a facet's "20 papers" no longer
# said what its link would list. The clause also kept the facets from counting in memory:
# page 2 of the papers at a million took 2.3 s, its facets read through SQL. Here the
# clause, rebuilt as Datasette writes it (views/table.py), is taken off the facets' query;
# a clause of another form (another Datasette) is left, and the counts are then Datasette's.
def table_sort(facet) -> tuple[str | None, bool]:
    """Return the page's sort column and whether it is descending, as Datasette reads them:
    the request's `_sort` or `_sort_desc`, else the table's in metadata. (search_plan.py's
    sort_column reads the same: plugins are loaded apart and import nothing of each other.)"""
    args, metadata = facet.request.args, facet.metadata
    sort, sort_desc = args.get("_sort"), args.get("_sort_desc")
    if not sort and not sort_desc:
        sort, sort_desc = metadata.get("sort"), metadata.get("sort_desc")
    return (sort_desc, True) if sort_desc else (sort, False)


def cursor_clauses(pks: list[str], column: str | None, descending: bool,
                   params: dict) -> list[str]:
    """Return the clause Datasette appends for a later page's cursor, in each form it may
    take (a cursor on a value of the sort column, or on a null one), numbered as Datasette
    numbers its parameters: the cursor's come last, the primary key's and then the value."""
    keys, forms = len(pks) or 1, []
    for on_a_value in ((True, False) if column else (False,)):
        start = len(params) - keys - on_a_value
        if start < 0:
            continue
        after = compound_keys_after_sql(pks, start) if pks else f"rowid > :p{start}"
        if column is None:
            forms.append(after)
            continue
        sorted_on = escape_sqlite(column)
        if not on_a_value:
            forms.append(f"({sorted_on} is null and {after})" if descending else
                         f"({sorted_on} is not null or ({sorted_on} is null and {after}))")
            continue
        value = f":p{start + keys}"
        op, nulls = ("<", f" or {sorted_on} is null") if descending else (">", "")
        forms.append(f"({sorted_on} {op} {value}{nulls} or ({sorted_on} = {value} and {after}))")
    return forms


def without_cursor_clause(sql: str, clauses: list[str]) -> str:
    """Return the facets' query without the clause of `clauses` that ends its where clause."""
    sql = sql.rstrip()
    for clause in clauses:
        for joined in (" and ", " where "):
            if sql.endswith(joined + clause):
                return sql[:-len(joined + clause)]
    return sql


def counting_what_the_first_page_counts(facet_results):
    """Wrap a facet class's facet_results so that a later page's facets count without the
    cursor's clause (see above)."""
    async def facet_results_of_every_row(self):
        # Once per facet: IndexedFacet hands a copy of itself to ColumnFacet's facet_results.
        if self.request.args.get("_next") and self.table and not getattr(self, "uncursored", False):
            self.uncursored = True
            db = self.ds.get_database(self.database)
            if await db.table_exists(self.table):  # a view's cursor is an offset
                pks = await db.primary_keys(self.table)
                self.sql = without_cursor_clause(
                    self.sql, cursor_clauses(pks, *table_sort(self), self.params))
        return await facet_results(self)
    facet_results_of_every_row.counts_every_row = True
    return facet_results_of_every_row


# Datasette's facet type that counts what each of ours counts.
SAME_COUNTS_AS = {ColumnFacet.type: IndexedFacet.type, ArrayFacet.type: ListFacet.type}


def facet_column(config: dict) -> str:
    return config.get("column") or config.get("simple")


def without_declared_twins(get_configs):
    """Wrap Facet.get_configs for Datasette's column and array facets: a request's
    `_facet=published_year` (or `_facet_array=topics`) of a column metadata.yml already
    facets as `indexed` (or `list`) is left to that facet. Datasette counted it twice: a
    second box with the same HTML id, and `published_year_2` in the JSON."""
    def get_configs_once(self):
        configs = get_configs(self)
        twin = SAME_COUNTS_AS.get(self.type)
        if twin is None:  # one of ours, or a date facet
            return configs
        declared = {facet_column(c["config"]) for c in
                    load_facet_configs(self.request, self.metadata).get(twin, [])
                    if c["source"] == "metadata"}
        return [c for c in configs
                if c["source"] != "request" or facet_column(c["config"]) not in declared]
    get_configs_once.leaves_declared_twins = True
    return get_configs_once


for facet_class in (ColumnFacet, ArrayFacet):
    if not getattr(facet_class.get_configs, "leaves_declared_twins", False):
        facet_class.get_configs = without_declared_twins(facet_class.get_configs)


for facet_class in (ColumnFacet, ArrayFacet, DateFacet, ListFacet, IndexedFacet):
    if not getattr(facet_class.facet_results, "counts_every_row", False):
        facet_class.facet_results = counting_what_the_first_page_counts(facet_class.facet_results)


@hookimpl
def register_facet_classes():
    return [ListFacet, IndexedFacet]


@hookimpl
def startup(datasette):
    """Start loading the facets' values as the server starts, so no visitor waits for it."""
    for database, table, column, is_list in declared_facets(datasette):
        if database in datasette.databases and not datasette.get_database(database).is_mutable:
            value_index(datasette, database, table, column, is_list)
