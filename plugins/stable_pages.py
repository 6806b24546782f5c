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


def sorted_first_page(sql) -> re.Match | None:
    # Cheap checks first: most SQL is not a sorted first page, and the pattern's `.*` is
    # then only tried on SQL that ends like one.
    if not isinstance(sql, str) or not sql.startswith("select ") or " order by " not in sql:
        return None
    return SORTED_FIRST_PAGE.fullmatch(sql)


def tie_breaking(db) -> None:
    """Make db.execute add the primary key to a sorted first page's ORDER BY."""
    execute = db.execute
    known: dict[str, list[str] | None] = {}  # table -> its tie keys (an immutable file's)

    async def execute_with_tie_break(sql, *args, **kwargs):
        if (match := sorted_first_page(sql)) is not None:
            table = unescaped(match["table"])
            if table not in known or db.is_mutable:
                known[table] = await db.execute_fn(lambda conn: tie_keys(conn, table))
            sql = with_tie_break(sql, known[table], match)
        return await execute(sql, *args, **kwargs)

    db.execute = execute_with_tie_break


@hookimpl
def startup(datasette):
    for name, db in datasette.databases.items():
        if name != "_internal":
            tie_breaking(db)
