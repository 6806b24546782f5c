"""Bad request parameters get a 400 with Datasette's error page, not a 500.

Datasette 0.65 answers some mistakes in a URL with "500 Internal Server Error": a
`_sort` on a missing column or together with `_sort_desc`, a `_through` or a JSON
`_facet` of the wrong shape, a `_timelimit` that is not a number, a NUL character, a
row address with too few parts of a compound key, an empty `sql=` for JSON or CSV, a
number too big for SQLite, a `_where` whose value exceeds SQLITE_LIMIT_LENGTH (see
sql_limits.py), or a CSV export whose query hits the time limit (the HTML and JSON pages
answer that one with a 400 already). These are the client's errors; answering them with
a 500 would hide real faults among them.
"""

import json
import sqlite3

import datasette.handle_exception as default_handling
from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.views.base import DatasetteError

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
    if (isinstance(exception, KeyError) and request is not None and "sql" in request.args
            and not request.args["sql"].strip()):
        return "no SQL query given (the sql parameter is empty)"
    if (isinstance(exception, DatasetteError) and exception.status == 500
            and str(exception.message).startswith(PARAMETER_MESSAGES)):
        return exception.message
    if isinstance(exception, (KeyError, TypeError, ValueError)) and parses_unchecked_parameters(
            request):
        return f"invalid parameter ({type(exception).__name__}: {exception})"
    return None


@hookimpl
def handle_exception(datasette, request, exception):
    message = client_error_message(exception, request)
    if message is None:
        return None
    error = DatasetteError(message, title="Invalid request", status=400)
    return default_handling.handle_exception(datasette, request, error)
