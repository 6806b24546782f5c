"""Facets that stay fast on a large papers table; metadata.yml declares them by type.

`list` (papers.topics, papers.dumps). Datasette's own array facet counts each item once per
row by joining every item with the whole row (`select distinct j.value, inner.* ...`), which
copies every column of every matching row, abstracts included: on 15,000 papers the topics
facet gave up after the site's 400 ms facet limit. The build writes every array with
distinct values, so counting items needs only that one column. With no filter and no
search the counts are already in the database (topics.papers, dumps.papers, which the
build computes from the same arrays), so the page reads them instead of every paper's
array: at a million papers that took 1.5 s. The links filter with Datasette's own
`topics__arraycontains=`.

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

import copy
import re

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.facets import ArrayFacet, ColumnFacet
from datasette.utils import escape_sqlite, path_with_added_args, path_with_removed_args

# Counts the build stores, equal to counting the arrays of every paper (tests hold them equal).
STORED_COUNTS = {
    ("papers", "topics"): "select id as value, papers as count from topics where papers > 0",
    ("papers", "dumps"): "select name as value, papers as count from dumps where papers > 0",
}

# The query Datasette hands to facets: `select <columns> from <table> [where ...]`.
PAGE_QUERY = re.compile(r"select .+? from (?P<table>\S+)(?: where (?P<where>.*?))?\s*$", re.S)


def page_filters(sql: str) -> str | None:
    """Return the where clause of the page's query ('' for none), or None if it is not that shape."""
    match = PAGE_QUERY.fullmatch(sql.strip())
    return None if match is None else (match["where"] or "").strip()


def search_clause(fts_table: str, fts_pk: str = "rowid") -> set[str]:
    """The where clauses Datasette writes for `?_search=` (escaped and raw search modes)."""
    return {f"{escape_sqlite(fts_pk)} in (select rowid from {escape_sqlite(fts_table)} "
            f"where {escape_sqlite(fts_table)} match {match})"
            for match in ("escape_fts(:search)", ":search")}


async def run_facet_query(facet, sql: str, params: dict):
    return await facet.ds.execute(facet.database, sql, params, truncate=False,
                                  custom_time_limit=facet.ds.setting("facet_time_limit_ms"))


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

    async def facet_results(self):
        results, timed_out = [], []
        size = self.get_facet_size()
        pairs = self.get_querystring_pairs()
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            try:
                rows = await run_facet_query(self, self.count_query(column, size + 1), self.params)
            except QueryInterrupted:
                timed_out.append(column)
                continue
            values = []
            for row in rows.rows[:size]:
                value = str(row["value"])
                selected = (f"{column}__arraycontains", value) in pairs
                change = path_with_removed_args if selected else path_with_added_args
                values.append({
                    "value": value, "label": value, "count": row["count"], "selected": selected,
                    "toggle_url": self.ds.absolute_url(
                        self.request, change(self.request, {f"{column}__arraycontains": value})),
                })
            results.append({
                "name": column, "type": self.type, "results": values,
                "hideable": source_and_config["source"] != "metadata",
                "toggle_url": self.ds.urls.path(
                    path_with_removed_args(self.request, {f"_facet_{self.type}": column})),
                "truncated": len(rows) > size,
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
