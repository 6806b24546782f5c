"""How cells look: highlighted search snippets, short abstracts in tables, links to papers.

Titles and abstracts are untrusted text copied from web pages. Everything here
escapes the text first and only then turns the private markers that SQLite's
snippet() put around matching words into <strong> tags, so a `<script>` in a dump
stays literal text.
"""

import json
from urllib.parse import quote_plus

from datasette import hookimpl
from datasette.utils import tilde_encode
from markupsafe import Markup, escape

START, END = "[[hl]]", "[[/hl]]"
ABSTRACT_PREVIEW = 260  # characters of an abstract shown in a table cell


def highlight(text):
    """Return escaped text with the snippet markers turned into <strong> tags."""
    if text is None:
        return ""
    escaped = str(escape(text))
    return Markup(escaped.replace(START, "<strong>").replace(END, "</strong>"))


def preview(text, limit=ABSTRACT_PREVIEW):
    """Return escaped text cut at a word boundary, that opens to the whole abstract.

    A <details> element rather than a hover title: it opens with a click, a tap or the
    keyboard, and screen readers announce it. The summary is the cut; opening it adds the
    rest of the text after it, so the open cell reads as the abstract once, whole.
    """
    if text is None or len(text) <= limit:
        return None
    cut = text[:limit].rsplit(" ", 1)[0]
    return Markup('<details class="abstract-preview"><summary>{}<span class="more"> … more</span>'
                  '</summary><span class="rest">{}</span></details>').format(cut, text[len(cut):])


def paper_link(paper_id):
    """Return a link to the paper's page (query results carry no links of their own)."""
    return Markup('<a href="/papers/papers/{}">{}</a>').format(tilde_encode(paper_id), paper_id)


def popup_link(value):
    """Return a map popup's JSON (title, description, link) as a link, for the table under
    the map: the JSON text itself shows the link without letting anyone follow it. Only
    links within the site are made links."""
    try:
        popup = json.loads(value)
    except (ValueError, RecursionError):  # a visitor's SQL may name any text `popup`
        return None
    if not (isinstance(popup, dict) and str(popup.get("link", "")).startswith("/papers/")):
        return None
    return Markup('<a href="{}">{}</a> · {}').format(
        popup["link"], popup.get("title", "papers"), popup.get("description", ""))


def topic_papers_link(topic_id, count):
    """Return a topic's number of papers as a link to them: the topics table and a topic's
    page otherwise led only to paper_topics, a row per rule that matched, not the papers."""
    return Markup('<a href="/papers/papers?topics__arraycontains={}">{:,}</a>').format(
        quote_plus(str(topic_id)), count)


@hookimpl
def render_cell(row, value, column, table, database):
    if column == "snippet" and isinstance(value, str) and START in value:
        return highlight(value)
    if column == "abstract" and isinstance(value, str) and table is not None:
        return preview(value)
    if column == "atom_content" and isinstance(value, str):
        # The feed's page (metadata.yml's `feed`) lists 100 whole abstracts otherwise: a page
        # 79,000 px tall. The feed itself (.atom) carries them whole.
        return preview(value)
    if table is None and database == "papers" and column == "paper_id" and isinstance(value, str):
        return paper_link(value)
    if table is None and database == "papers" and column == "popup" and isinstance(value, str):
        return popup_link(value)
    if table == "topics" and database == "papers" and column == "papers" and isinstance(value, int):
        return topic_papers_link(row["id"], value)
    return None


@hookimpl
def prepare_jinja2_environment(env):
    env.filters["highlight"] = highlight
    # A row's address is its key tilde-encoded, as Datasette writes its own links: with
    # urlencode, `/papers/dumps/004_x.txt` asked for the row `004_x` as text (a 404).
    env.filters["tilde_encode"] = tilde_encode
