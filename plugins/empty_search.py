"""An empty search is no search: `?_search=` (or `?_search_title=`, or one of spaces or
invisible characters alone) lists every row.

A URL with an empty search parameter, or a search box submitted empty, asked Datasette to
search for the empty string: FTS5 refuses it as a syntax error, which search_plan.py's
escape_fts turns into the empty phrase, matching no paper, so the page listed nothing (and a
raw one, `&_searchmode=raw`, got the invalid-search page). The request goes on without its
empty search parameters (a search of spaces alone is empty: site_pages.py's ranked box
reads it so, while the table searched for it and listed nothing), so the page is the page
without a search: every row, its facets, no ranked box, and links that carry no empty
search.
"""

import unicodedata
from urllib.parse import unquote_plus

from datasette import hookimpl


def is_empty_search(part: str) -> bool:
    """True for a query-string part `_search=` or `_search_<column>=` with no value, or
    with spaces alone (`_search=+`, `_search=%20`) or invisible characters (a zero-width
    space or a byte-order mark pasted with a word, which the page then showed as a search
    for “” matching nothing)."""
    key, _, value = part.partition("=")
    key = unquote_plus(key)
    return is_blank(unquote_plus(value)) and (key == "_search" or key.startswith("_search_"))


def is_blank(text: str) -> bool:
    """True if `text` has nothing but spaces and invisible format characters (Unicode's
    Cf: zero-width spaces and joiners, byte-order marks, direction marks)."""
    return not "".join(char for char in text if unicodedata.category(char) != "Cf").strip()


def without_empty_searches(query: bytes) -> bytes:
    """Return the query string without its empty search parameters; the other parts are
    kept byte for byte."""
    parts = query.decode("latin-1").split("&")
    kept = [part for part in parts if not is_empty_search(part)]
    return "&".join(kept).encode("latin-1") if len(kept) < len(parts) else query


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def searching_only_for_something(scope, receive, send):
            if scope["type"] == "http" and scope.get("query_string"):
                scope = {**scope, "query_string": without_empty_searches(scope["query_string"])}
            return await app(scope, receive, send)

        return searching_only_for_something

    return wrap
