"""Bad request parameters get a 400 with Datasette's error page, not a 500.

Datasette 0.65 answers some mistakes in a URL with "500 Internal Server Error": a
`_sort` on a missing column or together with `_sort_desc`, a `_through` or a JSON
`_facet` of the wrong shape, a `_timelimit` that is not a number, a NUL character, a
row address with too few parts of a compound key, an empty `sql=` for JSON or CSV (or
none: `/papers.csv`, `/papers.json?_shape=array`), a
number too big for SQLite, a `_where` whose value exceeds SQLITE_LIMIT_LENGTH (see
sql_limits.py), or a CSV export whose query hits the time limit (the HTML and JSON pages
answer that one with a 400 already). These are the client's errors; answering them with
a 500 would hide real faults among them.

A table search in FTS5's own syntax (`_searchmode=raw`) that FTS5 cannot read (`"brain`,
`eeg AND`) gets a page that says what is wrong with the search and has the search in a box
to correct it, with a link to search its words instead; Datasette 0.65 showed only "Invalid
SQL" and FTS5's words ("unterminated string"), with no way back to the search.

A POST to a table or to a canned query that writes nothing (`POST /papers/papers`,
`POST /papers/search`) answers 405 Method Not Allowed, as a POST to a row or a database
does: Datasette 0.65 failed with a 500 (an assertion, or a read-only canned query's result
taken for a response). Only a canned query with `write: true` takes a POST there; the site
has none, and no page of the site posts anywhere but to Datasette's own `/-/` pages.

JSON: a query's JSON asked for a `_shape` it cannot give (`_shape=bogus`, or `object`,
which only a table's rows have) answers 400 with the error, as a table's JSON does;
Datasette 0.65 sent that error in a body with the status 200.

CSV: a CSV whose query fails answers 400 with the error as plain text, not an HTML page
a CSV reader would take for data. Datasette 0.65 answered a failing `?sql=` or canned query
in CSV with 200 and an empty body (its JSON says 400; Datasette issue #2129): the query
page hands its error to the CSV export as data, which the export ignores. A CSV streamed
with `_stream=on` reads its rows a page at a time and has sent its 200 with the first
page: a later page that fails (its own time limit; `max_csv_mb`, 100 MB) can only end the
body, with the error's text, which Datasette writes as a last line of its own. That line
is marked here, `error: <message>`, so that nobody takes it for a row.
"""

import json
import sqlite3
from http import HTTPStatus
from urllib.parse import urlencode

import datasette.handle_exception as default_handling
from datasette import Response, hookimpl
from datasette.database import QueryInterrupted
from datasette.utils import add_cors_headers
from datasette.utils.asgi import Base400
from datasette.views.base import DatasetteError
from datasette.utils import await_me_maybe, escape_sqlite, tilde_decode
from datasette.views.database import QueryView
from datasette.views.table import TableView

PARAMETER_MESSAGES = ("Cannot sort table by", "Cannot use _sort and _sort_desc",
                      "Invalid _through")
# Raised only by the SQL or the parameters a request supplies.
REQUEST_SQL_ERRORS = (sqlite3.DataError, OverflowError, json.JSONDecodeError)
# Parameters that Datasette parses without checking their shape.
UNCHECKED_PARAMETERS = ("_through", "_timelimit", "_facet", "_facet_array", "_facet_date",
                        "_facet_list", "_facet_indexed")  # the last two: plugins/facets.py
# A row page's key parts are bound as :p0, :p1, ...: an address with too few of them.
MISSING_KEY_PART = "You did not supply a value for binding parameter :p"
TOO_LONG = "SQL query took too long. The time limit is controlled by sql_time_limit_ms."
STREAM_ERROR_MARK = b"error: "


def parses_unchecked_parameters(request) -> bool:
    return request is not None and any(key in request.args for key in UNCHECKED_PARAMETERS)


def client_error_message(exception, request):
    """Return why `exception` is the request's fault, or None if it may be the server's."""
    if isinstance(exception, QueryInterrupted):
        return TOO_LONG
    if isinstance(exception, REQUEST_SQL_ERRORS):
        return str(exception)
    if isinstance(exception, sqlite3.ProgrammingError) and "null character" in str(exception):
        return str(exception)
    if isinstance(exception, sqlite3.ProgrammingError) and str(exception).startswith(
            MISSING_KEY_PART):
        return "this row's address lacks part of its primary key"
    if (isinstance(exception, KeyError) and request is not None
            and not request.args.get("sql", "").strip()
            and ("sql" in request.args or "table" not in request.url_vars)):
        # An empty sql=, or none on the database's own page (/papers.csv, /papers.json?_shape=)
        return "no SQL query given (the sql parameter is missing or empty)"
    if (isinstance(exception, DatasetteError) and exception.status == 500
            and str(exception.message).startswith(PARAMETER_MESSAGES)):
        return exception.message
    if isinstance(exception, (KeyError, TypeError, ValueError)) and parses_unchecked_parameters(
            request):
        return f"invalid parameter ({type(exception).__name__}: {exception})"
    return None


def is_csv(request) -> bool:
    return request is not None and request.path.endswith(".csv")


def as_text(datasette, exception):
    """Return a client error (4xx) as a plain-text response, or None for any other."""
    if isinstance(exception, DatasetteError) and exception.status < 500:
        status, title, message = exception.status, exception.title, exception.message
    elif isinstance(exception, Base400):
        status, title, message = exception.status, None, exception.args[0]
    else:
        return None
    headers = {}
    if datasette.cors:
        add_cors_headers(headers)
    title = title or HTTPStatus(status).phrase
    return Response.text(f"{title}: {message}\n", status=status, headers=headers)


def may_be_a_refused_search(exception, request) -> bool:
    """Whether `exception` may be FTS5 refusing the raw search of a table's HTML page."""
    return (isinstance(exception, (DatasetteError, sqlite3.OperationalError))
            and getattr(exception, "status", 400) == 400 and request is not None
            and "table" in request.url_vars and request.url_vars.get("format") is None
            and request.args.get("_searchmode") == "raw" and bool(searches(request)))


def searches(request) -> list[str]:
    """Return the page's search parameters as Datasette reads them: `_search`, or, without
    it, each search of one column (`_search_title`)."""
    if "_search" in request.args:
        return ["_search"] if request.args["_search"] else []
    return [key for key in request.args.keys()
            if key.startswith("_search_") and request.args[key]]


async def search_refusal(datasette, request) -> tuple[str, str] | None:
    """Return the page's raw search FTS5 refuses and why, or None if it reads them all."""
    database = datasette.get_database(route=tilde_decode(request.url_vars["database"]))
    table = tilde_decode(request.url_vars["table"])
    fts_table = (request.args.get("_fts_table")
                 or datasette.table_metadata(database.name, table).get("fts_table")
                 or await database.fts_table(table))
    if not fts_table:
        return None
    fts = escape_sqlite(fts_table)
    columns = await database.table_columns(fts_table)
    for parameter in searches(request):
        column = parameter.removeprefix("_search_") if parameter != "_search" else fts_table
        if column not in columns and parameter != "_search":
            continue  # Datasette refuses that column itself
        try:
            await database.execute(
                f"select rowid from {fts} where {escape_sqlite(column)} match :search limit 1",
                {"search": request.args[parameter]})
        except sqlite3.OperationalError as error:
            return parameter, str(error)
    return None


def explaining_the_search(datasette, request, exception):
    async def inner():
        refused = await search_refusal(datasette, request)
        if refused is None:  # the fault is elsewhere (a `_where`, say)
            return await await_me_maybe(client_error_answer(datasette, request, exception))
        parameter, refusal = refused
        search = request.args[parameter]
        # The page's other parameters, but its cursor: a corrected search starts afresh.
        others = [(key, value) for key in request.args.keys() for value in request.args.getlist(key)
                  if key not in (parameter, "_next")]
        as_words = [(key, value) for key, value in others if key != "_searchmode"]
        return Response.html(await datasette.render_template("invalid_search.html", {
            "search": search, "refusal": refusal, "action": request.path, "hidden": others,
            "parameter": parameter, "column": parameter.removeprefix("_search_")
            if parameter != "_search" else None,
            "as_words": f"{request.path}?{urlencode([*as_words, (parameter, search)])}",
        }, request=request), status=400)

    return inner


@hookimpl
def handle_exception(datasette, request, exception):
    if may_be_a_refused_search(exception, request):
        return explaining_the_search(datasette, request, exception)
    return client_error_answer(datasette, request, exception)


def client_error_answer(datasette, request, exception):
    message = client_error_message(exception, request)
    if message is not None:
        exception = DatasetteError(message, title="Invalid request", status=400)
    if is_csv(request) and (answer := as_text(datasette, exception)) is not None:
        return answer
    if message is None:
        return None
    return default_handling.handle_exception(datasette, request, exception)


def raising_errors_in_csv(query_data):
    """Wrap QueryView.data: in CSV, a failed query raises its error (a 400) instead of
    returning it as data with no rows, which the CSV export sent as an empty 200."""
    async def data(self, request, *args, **kwargs):
        result = await query_data(self, request, *args, **kwargs)
        answer = result[0] if isinstance(result, tuple) else None
        if request.url_vars.get("format") == "csv" and isinstance(answer, dict) \
                and answer.get("error"):
            raise DatasetteError(answer["error"], title="Invalid SQL", status=400)
        return result

    return data


# The shapes Datasette's JSON gives a query; `object` (rows by primary key) is for tables.
QUERY_SHAPES = ("arrays", "objects", "array", "arrayfirst")


def refusing_shapes_a_query_cannot_give(query_data):
    """Wrap QueryView.data: a query's JSON with a `_shape` it cannot give answers 400.
    Datasette 0.65 wrote the error into a body it sent with the query's own 200, so a
    script that checks the status took `{"ok": false, ...}` for rows."""
    async def data(self, request, *args, **kwargs):
        shape = request.args.get("_shape", "arrays")
        if request.url_vars.get("format") == "json" and shape not in QUERY_SHAPES:
            raise DatasetteError("_shape=object is only available on tables"
                                 if shape == "object" else f"Invalid _shape: {shape}",
                                 title="Invalid request", status=400)
        return await query_data(self, request, *args, **kwargs)

    return data


def refusing_posts_that_write_nothing(table_post):
    """Wrap TableView.post: only a canned query that writes takes a POST."""
    async def post(self, request):
        try:
            database = self.ds.get_database(route=tilde_decode(request.url_vars["database"])).name
        except KeyError:
            return await table_post(self, request)  # Datasette's 404
        query = await self.ds.get_canned_query(
            database, tilde_decode(request.url_vars["table"]), request.actor)
        if not (query and query.get("write")):
            return Response.text("Method not allowed: this page is read-only; use GET\n",
                                 status=405, headers={"Allow": "GET, HEAD"})
        return await table_post(self, request)

    post.refuses_posts_that_write_nothing = True
    return post


@hookimpl
def startup(datasette):
    if not getattr(QueryView.data, "checks_client_errors", False):  # once per process
        QueryView.data = refusing_shapes_a_query_cannot_give(raising_errors_in_csv(QueryView.data))
        QueryView.data.checks_client_errors = True
    if not getattr(TableView.post, "refuses_posts_that_write_nothing", False):
        TableView.post = refusing_posts_that_write_nothing(TableView.post)


def is_streamed_csv(scope) -> bool:
    query = scope.get("query_string", b"")
    return (scope["type"] == "http" and scope["path"].endswith(".csv")
            and b"_stream=" in query and b"_trace=" not in query)


def marking_the_error_line(send):
    """Return `send` holding back each body chunk until the next: Datasette writes one
    chunk per CSV row, each ending in a line break, and a failure's text as one chunk
    without one, right before the body ends. That chunk is marked as an error."""
    held = None

    async def send_marked(message):
        nonlocal held
        if message["type"] != "http.response.body":
            return await send(message)
        last = not message.get("more_body", False)
        if held is not None:
            if last and held["body"] and not held["body"].endswith(b"\n"):
                held = {**held, "body": STREAM_ERROR_MARK + held["body"] + b"\r\n"}
            await send(held)
        held = None if last else message
        if last:
            await send(message)

    return send_marked


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def marked_streams(scope, receive, send):
            if is_streamed_csv(scope):
                send = marking_the_error_line(send)
            return await app(scope, receive, send)

        return marked_streams

    return wrap
