"""Names for Datasette's filter and sort controls, in the page itself.

Datasette's table page gives its filter rows (column, operator, value) and its sort menu no
label: a screen reader announces each as "combo box" or "edit text". static/site.js named
them, so without JavaScript they had no name. templates/table.html passes the page through
`named_controls`, which gives each the name site.js gave it ("Filter 1: column", "New filter:
operator", "Sort by column"); site.js leaves a control that has one alone.
"""

import re

from datasette import hookimpl
from markupsafe import Markup

CONTROL = re.compile(
    r'<(select|input)((?:(?!aria-label)[^>])*?) name="(_filter_(column|op|value)(?:_(\d+))?|_sort)"')
PARTS = {"column": "column", "op": "operator", "value": "value"}


def aria_label(match) -> str:
    tag, before, name, part, row = match.groups()
    if name == "_sort":
        label = "Sort by column"
    else:
        label = f"{f'Filter {row}' if row else 'New filter'}: {PARTS[part]}"
    return f'<{tag}{before} aria-label="{label}" name="{name}"'


def named_controls(html) -> Markup:
    """Return a table page's rendered HTML (escaped already) with its filter and sort
    controls named."""
    return Markup(CONTROL.sub(aria_label, str(html)))


@hookimpl
def prepare_jinja2_environment(env):
    env.filters["named_controls"] = named_controls
