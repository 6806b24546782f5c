"""Limits on visitors' own SQL, so hostile queries cannot exhaust memory or take every thread.

Datasette's sql_time_limit_ms stops a query between rows, not inside one SQL function
call. One call can allocate a lot: randomblob(999999999), zeroblob(), printf('%.*c',
1e9, 'x') or replace() build up to SQLite's default 1 GB per value in milliseconds, and
Datasette then copies each value into Python, JSON and HTML: without these limits a
server reached 21 GB on such queries and was killed by the kernel. And a few built-in
functions take time that grows with the product of their inputs' sizes (instr,
replace, LIKE, GLOB, trim with a set of characters), so the size of one value also
bounds how long one call can run. Hence:

- SQLite's run-time limits cap one value or stored row at 32 kB (an abstract is under
  2 kB; see tests/test_hostile_sql.py for the largest value the build stores), the SQL
  text at 10 kB, a LIKE/GLOB pattern at 200 bytes, a result at 100 columns, and attached
  databases at none (Datasette refuses ATTACH already);
- a row factory caps the bytes one query returns in all its rows (rows x row size);
- printf()/format() give their NULL at once for a `%c` repeated more times than a value
  may hold (SQLite 3.40 loops over every repetition first: 3 s per 10^9), and trim(),
  ltrim() and rtrim() with a long set of characters run in linear time;
- requests whose cost a visitor sets share all but one of the SQL threads, waiting in
  turn, so the site's pages always find a thread free while such queries run to the time
  limit: those that carry their own SQL (`?sql=`, `?_where=`), and searches that are not
  ordinary ones: FTS5 syntax (`_searchmode=raw`: `a* OR b* OR ...` matches every paper
  many times over) and searches longer than a title (a common word 1,000 times in the
  canned search's `q` or the table's `_search`), and the canned queries that read every
  paper (fuzzy_title: EVERY_PAPER_QUERIES). A table search runs three or four
  queries (count, rows, ranking), each up to the time limit: four such requests at once
  held all three threads for seconds, and the front page waited 3-5 s behind them;
- a query that fails lets go of its cursor in its SQL thread. Datasette's error keeps the
  thread's frames (and the cursor in them) in its traceback, in a reference cycle; Python's
  garbage collector then freed the cursor in the event loop, where closing it waits for
  its connection: while that thread ran a lane query to the time limit, the whole server
  answered nothing, the site's pages included, for up to 1.5 s;
- a query that hits one of these caps gets an error that says which and its size: SQLite
  says only "string or blob too big" or "LIKE or GLOB pattern too complex".

What remains: one row can call instr() or LIKE on 32 kB values some 900 times within
10 kB of SQL, and the time limit waits for the row; measured, such a query holds its
thread about 5 s.
"""

import asyncio
import re
import sqlite3
import threading
import traceback
import weakref
from urllib.parse import parse_qsl

from datasette import hookimpl

MAX_LENGTH = 32_000
SQLITE_LIMITS = {
    sqlite3.SQLITE_LIMIT_LENGTH: MAX_LENGTH,  # bytes in one string, blob or stored row
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: 10_000,  # bytes of SQL text
    sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: 200,  # a title is under 200 characters
    sqlite3.SQLITE_LIMIT_COLUMN: 100,  # columns of a result; the widest table has about 20
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
}
# Bytes of text and blobs one query may return: a full page of the papers table
# (max_returned_rows = 1,000 rows) is about 3 MB.
RESULT_BYTES = 20_000_000
# SQLite's (and Python's) words when a query hits one of SQLITE_LIMITS, and what the site's
# error adds: which cap it was, and its size.
CAPS_HIT = {
    "string or blob too big": "the site caps one value, or one stored row, at "
                              f"{SQLITE_LIMITS[sqlite3.SQLITE_LIMIT_LENGTH]:,} bytes",
    "LIKE or GLOB pattern too complex": "the site caps a LIKE or GLOB pattern (a filter such as "
                                        "?abstract__contains= is one) at "
                                        f"{SQLITE_LIMITS[sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH]:,} bytes",
    "query string is too large": "the site caps the SQL text at "
                                 f"{SQLITE_LIMITS[sqlite3.SQLITE_LIMIT_SQL_LENGTH]:,} bytes",
    "too many columns": "the site caps a result at "
                        f"{SQLITE_LIMITS[sqlite3.SQLITE_LIMIT_COLUMN]:,} columns",
}
OWN_SQL_PARAMETERS = {"sql", "_where"}
# The table's search (`_search`, `_search_<column>`) and the canned search's `q`
# (metadata.yml, queries.search). Longer than a title (under 200 characters, some 20 words),
# a search is a visitor's expensive query: its cost grows faster than its number of words.
SEARCH_PARAMETERS = ("_search", "q")
LONG_SEARCH_CHARACTERS = 200
LONG_SEARCH_WORDS = 20
# One printf conversion: flags, width, precision, length modifier, type (sqlite.org/printf.html).
CONVERSION = re.compile(r"%[-+ #0,!]*(\*|\d*)(?:\.(\*|\d*))?(?:ll?)?(.)", re.DOTALL)
SHORT_SET = 50  # trim() sets up to this many characters go to SQLite's own trim()
TRIM_ENDS = {"trim": (True, True), "ltrim": (True, False), "rtrim": (False, True)}

_returned = weakref.WeakKeyDictionary()  # cursor -> bytes its rows have returned so far
_private = threading.local()  # per SQL thread: a connection whose functions are SQLite's own


class ResultTooLarge(sqlite3.OperationalError):
    pass


def apply_limits(conn) -> None:
    for limit, value in SQLITE_LIMITS.items():
        conn.setlimit(limit, value)


def budgeted_row(cursor, values):
    """Row factory: Datasette's sqlite3.Row, until the query has returned RESULT_BYTES."""
    size = sum(len(value) for value in values if isinstance(value, (str, bytes)))
    total = _returned.get(cursor, 0) + size
    if total > RESULT_BYTES:
        raise ResultTooLarge(f"query result too large: more than {RESULT_BYTES:,} bytes")
    _returned[cursor] = total
    return sqlite3.Row(cursor, values)


def builtin(name, *args):
    """Return SQLite's own function `name` applied to `args` (same limits, not overridden)."""
    placeholders = ", ".join("?" * len(args))
    return private_connection().execute(f"select {name}({placeholders})", args).fetchone()[0]


def private_connection() -> sqlite3.Connection:
    conn = getattr(_private, "conn", None)
    if conn is None:
        conn = _private.conn = sqlite3.connect(":memory:")
        apply_limits(conn)
    return conn


def as_text(value) -> str:
    """Return a value as SQLite's trim() reads it: a number's text as SQLite writes it, a
    blob's bytes as UTF-8."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return private_connection().execute("select cast(? as text)", [value]).fetchone()[0]


def as_int(value) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return 0


def repeats_too_long(format_string: str, args) -> bool:
    """True if a `%c` conversion asks for more repetitions than a value may hold."""
    position = 0  # the next argument: `*` widths and precisions consume arguments too
    for match in CONVERSION.finditer(format_string):
        width, precision, kind = match.groups()
        if kind == "%":
            continue
        position += width == "*"
        if precision == "*":
            precision = args[position] if position < len(args) else 0
            position += 1
        position += 1
        if kind == "c" and precision and as_int(precision) > MAX_LENGTH:
            return True
    return False


def guarded_printf(format_string=None, *args):
    if isinstance(format_string, str) and repeats_too_long(format_string, args):
        return None  # what SQLite returns too, after looping
    return builtin("printf", format_string, *args)


def strip_characters(text: str, characters: str, left: bool, right: bool) -> str:
    """trim() in linear time: SQLite compares every character with every one of the set."""
    remove = set(characters)
    start, end = 0, len(text)
    while left and start < end and text[start] in remove:
        start += 1
    while right and end > start and text[end - 1] in remove:
        end -= 1
    return text[start:end]


def guarded_trim(name):
    left, right = TRIM_ENDS[name]

    def trim(text, characters):
        if not isinstance(characters, (str, bytes)) or len(characters) <= SHORT_SET:
            return builtin(name, text, characters)
        if text is None:
            return None
        return strip_characters(as_text(text), as_text(characters), left, right)

    return trim


@hookimpl
def prepare_connection(conn):
    apply_limits(conn)
    conn.row_factory = budgeted_row
    for name in ("printf", "format"):
        conn.create_function(name, -1, guarded_printf, deterministic=True)
    for name in TRIM_ENDS:
        conn.create_function(name, 2, guarded_trim(name), deterministic=True)


def naming_the_cap(error: sqlite3.Error) -> sqlite3.Error:
    """Return `error`, or if it hit one of the site's caps (SQLite says only "string or blob
    too big") the same error saying which cap and its size."""
    text = str(error)
    cap = next((cap for start, cap in CAPS_HIT.items() if text.startswith(start)), None)
    if cap is None:
        return error
    named = type(error)(f"{text}: {cap}")
    for attribute in ("sqlite_errorcode", "sqlite_errorname"):
        if hasattr(error, attribute):
            setattr(named, attribute, getattr(error, attribute))
    return named


def in_sql_thread(fn):
    """Return fn, whose failed call lets go of its locals (its cursor) in the SQL thread it
    ran in, before the error reaches the event loop, and names the cap a query hit."""
    def run(conn):
        try:
            return fn(conn)
        except sqlite3.Error as error:
            traceback.clear_frames(error.__traceback__)
            named = naming_the_cap(error)
            if named is error:
                raise
            raise named from error
        except BaseException as error:
            traceback.clear_frames(error.__traceback__)
            raise

    return run


def running_queries_in_sql_thread(db) -> None:
    execute_fn = db.execute_fn

    async def execute_fn_in_sql_thread(fn):
        return await execute_fn(in_sql_thread(fn))

    db.execute_fn = execute_fn_in_sql_thread


@hookimpl
def startup(datasette):
    for db in datasette.databases.values():
        running_queries_in_sql_thread(db)


def is_search(key: str) -> bool:
    return key in SEARCH_PARAMETERS or key.startswith("_search_")


def is_long_search(value: str) -> bool:
    return len(value) > LONG_SEARCH_CHARACTERS or len(value.split()) > LONG_SEARCH_WORDS


def visitor_sets_the_cost(parameters: list[tuple[str, str]]) -> bool:
    """True if the request runs SQL whose cost the visitor chooses: their own SQL, a raw
    FTS5 search, or a search longer than a title."""
    raw = any(key == "_searchmode" and value == "raw" for key, value in parameters)
    return any(key in OWN_SQL_PARAMETERS
               or (is_search(key) and value.strip() and (raw or is_long_search(value)))
               for key, value in parameters)


# Canned queries (metadata.yml) that read every paper whatever they are given: fuzzy_title
# scores each title with rapidfuzz, 0.45 s for five words at 15,000 papers and up to the
# time limit for a long one; four at once kept the front page 3 s.
EVERY_PAPER_QUERIES = ("fuzzy_title",)


def runs_an_every_paper_query(path: str) -> bool:
    """True for /<database>/<query> (or .json, .csv, ...) of an EVERY_PAPER_QUERIES query."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return last.split(".", 1)[0] in EVERY_PAPER_QUERIES and path.count("/") == 2


def in_visitors_lane(scope) -> bool:
    if scope["type"] != "http":
        return False
    if runs_an_every_paper_query(scope.get("path", "")):
        return True
    query = scope.get("query_string", b"").decode("latin-1")
    return visitor_sets_the_cost(parse_qsl(query, keep_blank_values=True))


@hookimpl
def asgi_wrapper(datasette):
    slots = max(1, datasette.setting("num_sql_threads") - 1)

    def wrap(app):
        visitors_lane = asyncio.Semaphore(slots)

        async def limited(scope, receive, send):
            if not in_visitors_lane(scope):
                return await app(scope, receive, send)
            async with visitors_lane:
                return await app(scope, receive, send)

        return limited

    return wrap
