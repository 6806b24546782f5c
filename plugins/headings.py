"""Heading levels of Datasette's own pages: no level skipped below the h1.

Datasette's table, query and database pages put h3 headings (a table's row count, a query's
heading, its parameters, the database's SQL form) right under their h1, so a screen reader's
outline of the page skips a level. templates/table.html, query.html and database.html pass
their content through the `h3_as_h2` filter, which makes those headings h2, styled as
Datasette's h3 (its `header3` class).
"""

from datasette import hookimpl
from markupsafe import Markup


def h3_as_h2(html, only: str | None = None) -> Markup:
    """Return a template block's rendered HTML (escaped already: values in it cannot hold a
    tag) with its h3 headings made h2 of class header3; with `only`, just the heading
    whose whole text that is."""
    text = str(html)
    if only is None:
        text = text.replace("<h3>", '<h2 class="header3">').replace("</h3>", "</h2>")
    else:
        text = text.replace(f"<h3>{only}</h3>", f'<h2 class="header3">{only}</h2>')
    return Markup(text)


@hookimpl
def prepare_jinja2_environment(env):
    env.filters["h3_as_h2"] = h3_as_h2
