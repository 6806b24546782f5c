"""Order a sorted table's first page as Datasette orders the pages after it.

Datasette 0.65 orders the first page of a sorted table (`?_sort=`, `?_sort_desc=`, or the
table's default sort: the papers, newest first) by the sort column alone, and every page
after it (`?_next=`) by the sort column and then the primary key, starting after the first
page's last row in that order. Papers share dates, author counts and numbers of dumps, so a
first page often ends inside a tie, whose rows come in whatever order SQLite's plan reads
them (by rowid after a filter or a rare search, not by id): the next page then skips some
papers of the tie and repeats others. Walking `?_sort=authors` ten papers a page through
the seed database showed 318 of its 332 papers, nine of them twice.

This plugin adds the primary key to the first page's ORDER BY, as Datasette writes it on the
later pages, so that all pages follow one order. It rewrites the SQL on its way to SQLite
(Datasette has no hook for a table page's query), and only SQL of the exact shape of a table
page's query: `select <columns> from <table> [where ...] order by <column> [desc] limit N`,
whose columns name the table's primary key (Datasette always selects it). A visitor's own
query of that shape gets the same tie-break, which changes nothing but the order of ties, which
SQL leaves open. Its cost is that of the next pages: an index on the sort column alone is
walked and each tie sorted by id (at 225,000 papers, 0.2 -> 65 ms for the first page sorted by
authors, whose 119,000 unknown counts come first, as the second page already took).

Two more rewrites of the same pages, first and later, keep a sort of a million papers under
the time limit; neither changes which rows a page lists or their order:

- Sorted before read. A sort column's index holds the column and the rowid, not the id of
  the tie-break, so SQLite sorts each tie by id, and held every row of a tie, abstract and
  all, in its sorter: sorting by date oldest first, where 371,502 of 749,426 papers have no
  date (a tie, first in that order), took 2.5 s and failed at the 1.5 s limit. Now the page
  sorts only the rowids (`where rowid in (select rowid ... order by ... limit N)`) and reads
  its N rows after: 0.13 s; the other sorts with large ties 35-50% faster. Tables with a
  rowid only; a sort by the primary key alone, and a visitor's query of this shape that
  unions or groups rows, are left as they were.
- Nulls read from the index. A later page sorted newest first (`?_sort_desc=`) carries
  Datasette's cursor `(col < :v or col is null or (col = :v and id > :p))`. SQLite read
  each of the three tests from the column's index and sorted everything they found: 2.7-5.5
  s for page 2 sorted by id, by last dump or by title key, which failed. Written `+col is
  null` (the same test; `+` only keeps SQLite from reading that test from an index), the
  page walks the index in order and stops after N rows: 0-1 ms, 25-35 ms 300,000 rows in.
"""

from __future__ import annotations

import re

from datasette import hookimpl
from datasette.utils import detect_primary_keys, escape_sqlite

# A name as Datasette's escape_sqlite writes it: bare, [bracketed] or "quoted".
NAME = r'(?:\w+|\[[^\]]*\]|"(?:[^"]|"")*")'
SORTED_FIRST_PAGE = re.compile(
    rf"select (?P<columns>{NAME}(?:, {NAME})*) from (?P<table>{NAME}) (?:where .* )?"
    rf"order by (?P<column>{NAME})(?: desc)?(?P<limit> limit \d+)", re.DOTALL)
COLUMN = re.compile(NAME)


def unescaped(name: str) -> str:
    if name.startswith("["):
        return name[1:-1]
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    return name


def tie_keys(conn, table: str) -> list[str] | None:
    """Return what Datasette's later pages order a table's ties by (its primary key, else
    rowid), or None if `table` is not a table."""
    kind = conn.execute("select type from sqlite_master where name = ?", [table]).fetchone()
    if kind is None or kind[0] != "table":
        return None
    return detect_primary_keys(conn, table) or ["rowid"]


def table_facts(conn, table: str) -> tuple[list[str] | None, list[str] | None]:
    """Return the table's tie keys (tie_keys) and the same keys if the table has a rowid
    that no column hides, else None (what sorted_before_read needs)."""
    keys = tie_keys(conn, table)
    with_rowid = conn.execute(
        "select count(*) from pragma_table_list where name = ? and schema = 'main' "
        "and type = 'table' and not wr", [table]).fetchone()[0]
    hidden = conn.execute("select count(*) from pragma_table_info(?) where lower(name) in "
                          "('rowid', '_rowid_', 'oid')", [table]).fetchone()[0]
    return keys, keys if with_rowid and not hidden else None


def with_tie_break(sql: str, keys: list[str] | None, match: re.Match) -> str:
    """Return the page's SQL ordered by its sort column and then `keys`, as the next pages are;
    the SQL unchanged if the keys are unknown, already the sort or not among its columns."""
    if not keys or [unescaped(match["column"])] == keys:
        return sql
    selected = {unescaped(name) for name in COLUMN.findall(match["columns"])}
    if not selected.issuperset(keys):
        return sql
    tie_break = ", ".join(escape_sqlite(key) for key in keys)
    return f"{sql[:match.start('limit')]}, {tie_break}{sql[match.start('limit'):]}"


# Any sorted page, first or later: Datasette's later pages order by the column, then the key.
SORTED_PAGE = re.compile(
    rf"select (?P<columns>{NAME}(?:, {NAME})*) from (?P<table>{NAME}) (?P<where>where .* )?"
    rf"order by (?P<column>{NAME})(?P<desc> desc)?(?P<keys>(?:, {NAME})*)(?P<limit> limit \d+)",
    re.DOTALL)


NOT_ONE_TABLES_ROWS = re.compile(r"\b(?:union|intersect|except|group\s+by|having|window)\b",
                                 re.IGNORECASE)


def sorted_page(sql) -> re.Match | None:
    """Return the match of a sorted table page's SQL (first or later page), else None."""
    if not isinstance(sql, str) or not sql.startswith("select ") or " order by " not in sql:
        return None
    return SORTED_PAGE.fullmatch(sql)


def with_nulls_read_last(sql: str, match: re.Match) -> str:
    """Return a later page sorted descending with its cursor's null test kept off the index
    (see the module's docstring); other SQL unchanged."""
    if not match["desc"] or not match["where"]:
        return sql
    column = re.escape(match["column"])
    cursor = re.compile(rf"\({column} < (:p\d+) or {column} is null or \({column} = \1 and ")
    found = list(cursor.finditer(match["where"]))
    if not found:
        return sql
    start = match.start("where") + found[-1].start()  # Datasette appends the cursor last
    null_test = f"{match['column']} is null"
    at = sql.index(null_test, start)
    return f"{sql[:at]}+{sql[at:]}"


def sorted_before_read(sql: str, match: re.Match, keys: list[str] | None) -> str:
    """Return the page's SQL sorting only the rowids of its rows and reading the page's rows
    after (see the module's docstring). `keys` are the primary key of a table with a rowid
    (["rowid"] if it has no other), None for a view or a WITHOUT ROWID table: their SQL is
    left unchanged, as is a page sorted by the key."""
    if not keys or unescaped(match["column"]) in (*keys, "rowid"):
        return sql
    if NOT_ONE_TABLES_ROWS.search(match["where"] or ""):  # a visitor's union or grouping:
        return sql  # the ORDER BY sorts the compound's rows or the groups, not this table's
    table, order = match["table"], sql[match.start("column"):match.start("limit")]
    limit = match["limit"]
    return (f"select {match['columns']} from {table} where rowid in (select rowid from {table} "
            f"{match['where'] or ''}order by {order}{limit}) order by {order}{limit}")


def sorted_first_page(sql) -> re.Match | None:
    # Cheap checks first: most SQL is not a sorted first page, and the pattern's `.*` is
    # then only tried on SQL that ends like one.
    if not isinstance(sql, str) or not sql.startswith("select ") or " order by " not in sql:
        return None
    return SORTED_FIRST_PAGE.fullmatch(sql)


def stable_and_fast(sql: str, facts) -> str:
    """Return a sorted page's SQL with the three rewrites of this module, given its table's
    facts (table_facts): the first page's tie-break, the later pages' null test, the sort
    before the read."""
    keys, with_rowid = facts
    if (match := sorted_first_page(sql)) is not None:
        sql = with_tie_break(sql, keys, match)
    if (match := sorted_page(sql)) is not None:
        sql = with_nulls_read_last(sql, match)
    if (match := sorted_page(sql)) is not None:
        sql = sorted_before_read(sql, match, with_rowid)
    return sql


def tie_breaking(db) -> None:
    """Make db.execute rewrite sorted table pages (stable_and_fast)."""
    execute = db.execute
    known: dict[str, tuple] = {}  # table -> its facts (an immutable file's)

    async def execute_with_tie_break(sql, *args, **kwargs):
        if (match := sorted_page(sql)) is not None:
            table = unescaped(match["table"])
            if table not in known or db.is_mutable:
                known[table] = await db.execute_fn(lambda conn: table_facts(conn, table))
            sql = stable_and_fast(sql, known[table])
        return await execute(sql, *args, **kwargs)

    db.execute = execute_with_tie_break


@hookimpl
def startup(datasette):
    for name, db in datasette.databases.items():
        if name != "_internal":
            tie_breaking(db)
