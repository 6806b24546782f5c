"""A table page's search box searches what the page searched.

On a page that searches one column (`?_search_title=brain`), Datasette fills its search box
with that column's search, but names the box `_search` (a search of every column) and
carries `_search_title` along as a hidden field: submitting the form sent both, and
Datasette searched every column and ignored the title search, silently. templates/table.html
passes the page through these filters: the box takes the name of the column search it
shows, says which column it searches, and is left out of the hidden fields.
"""

from datasette import hookimpl
from markupsafe import Markup

BOX = '<label for="_search">Search:</label><input id="_search" type="search" name="_search"'


def search_box(args) -> str:
    """Return the parameter the page's search box shows: `_search`, or, on a page that
    searches columns only, the last of their `_search_<column>` (Datasette fills the box
    with the last)."""
    columns = [key for key in args.keys() if key.startswith("_search_")]
    return columns[-1] if columns and "_search" not in args else "_search"


def without(pairs, name: str) -> list[tuple[str, str]]:
    """Return the form's hidden (name, value) pairs without `name`."""
    return [(key, value) for key, value in pairs if key != name]


def box_searching(html, parameter: str) -> Markup:
    """Return the rendered page with its search box named `parameter` and labelled with
    the column it searches."""
    if parameter == "_search":
        return Markup(html)
    column = parameter.removeprefix("_search_")
    box = (f'<label for="_search">Search {Markup.escape(column)}:</label>'
           f'<input id="_search" type="search" name="{Markup.escape(parameter)}"')
    return Markup(str(html).replace(BOX, box))


@hookimpl
def prepare_jinja2_environment(env):
    env.filters["search_box"] = search_box
    env.filters["without"] = without
    env.filters["box_searching"] = box_searching
