"""CSV exports of a table cover its whole filtered result, from any of its pages.

On the second page of a table, Datasette's CSV link and its "Advanced export" form carry
the page's cursor (`_next`): the CSV then started at that page, and "stream all rows"
was refused ("_next not allowed for CSV streaming"). And on a page of `_size=5`, the CSV
link asked for `_size=5&_size=max`, of which Datasette reads the first: 5 rows.
templates/table.html passes both through these filters, which drop the cursor and keep
the export's own size.
"""

from urllib.parse import parse_qsl, urlencode

from datasette import hookimpl

CURSOR = "_next"


def whole_result(url: str) -> str:
    """Return a CSV link without the page's `_next`, and with only its last `_size` (the
    export's `max`, which Datasette appends after the page's own)."""
    path, _, query = url.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    sizes = [value for key, value in pairs if key == "_size"]
    kept = [(key, value) for key, value in pairs if key not in (CURSOR, "_size")]
    kept += [("_size", sizes[-1])] if sizes else []
    return f"{path}?{urlencode(kept)}" if kept else path


def args_without_cursor(args) -> list[tuple[str, str]]:
    """Return the export form's hidden (name, value) pairs without `_next`."""
    return [(key, value) for key, value in args if key != CURSOR]


@hookimpl
def prepare_jinja2_environment(env):
    env.filters["whole_result"] = whole_result
    env.filters["args_without_cursor"] = args_without_cursor
