"""Markup, script and template syntax in the dumps render as text on every page that shows them.

A small database is built here from dumps whose titles, abstracts, organization lines,
file names and unreadable lines carry the payloads, with a reference file whose
organization name, city and country carry them too (so they reach the map's popups).
Each page is opened in Debian's headless Chromium against the real server: no dialog
may fire, no injected element may exist, and the payload must be visible as text.
The static mounts are then asked for files outside them with raw HTTP requests.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from urllib.parse import quote

import httpx
import pytest
import yaml
from datasette.utils import tilde_encode

from conftest import (ABSTRACT_A, ABSTRACT_C, ROOT, blank_separated, rows, run_build, running_site,
                      screenshot)
from rawhttp import raw_get

pytestmark = pytest.mark.browser

IMG = '<img src=x onerror=alert("img")>'
SVG = '<svg onload=alert("svg")>'
SCRIPT = '<script>alert("script")</script>'
LINK = "<a href=\"javascript:alert('link')\">click</a>"
TEMPLATE = "{{ 7*7 }} {% if 1 %}yes{% endif %}"
TITLE = f"{SCRIPT} Decoding fMRI {IMG} {TEMPLATE}"
VARIANT = TITLE + "."  # merged into TITLE: shown in the paper's merges
ABSTRACT = (
    f"We decode visual stimuli from fMRI recordings {IMG} and {LINK}. {SCRIPT} Reconstructions "
    f"follow {TEMPLATE} the seen images of six subjects through a diffusion model. The decoder "
    "is trained per subject and evaluated on held-out sessions, and it keeps working when the "
    "scanner changes, which the earlier decoders did not manage."
)
NEW_TITLE = f"{SVG} EEG transformer {TEMPLATE}"
PLACED_WRITTEN = f"evilorg {IMG}"  # matched to the reference by its handle
PLACED_NAME = f"{IMG} Evil {SCRIPT}"
UNPLACED = f"{SCRIPT} Lab"
CITY, COUNTRY = TEMPLATE, LINK
FIRST_DUMP = f"001_{IMG}.txt"
NEWEST_DUMP = f"002_{SVG}.txt"
PROBLEM = f"{SCRIPT} cut off {IMG}"
NORMAL_TITLE = "A normal paper about decoding visual stimuli from fMRI"

# No attribute that runs script, no javascript: link, no script that calls alert.
INJECTED_ELEMENTS = "[onerror], [onload], [onmouseover], a[href^='javascript:' i], img[src='x']"
SCRIPT_WITH_ALERT = "() => [...document.scripts].some(s => s.textContent.includes('alert('))"


@pytest.fixture(scope="module")
def injection_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("injection")
    dumps = folder / "dumps"
    dumps.mkdir()
    (dumps / FIRST_DUMP).write_text(blank_separated(
        (TITLE, ABSTRACT, [PLACED_WRITTEN, "·", "Mar 3, 2024 5"]),
        (NORMAL_TITLE, ABSTRACT_A, [UNPLACED, "·", "Mar 4, 2024"]),
    ) + PROBLEM + "\n")
    (dumps / NEWEST_DUMP).write_text(blank_separated((VARIANT, ABSTRACT), (NEW_TITLE, ABSTRACT_C)))
    reference = folder / "organizations.yml"
    reference.write_text(yaml.safe_dump({"organizations": [{
        "id": "evil", "name": PLACED_NAME, "handles": ["evilorg"], "aliases": [],
        "city": CITY, "country": COUNTRY, "latitude": 48.85, "longitude": 2.35}]}))
    out = folder / "papers.db"
    result = run_build(dumps, out, "--reference", str(reference))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def injection_site(injection_db):
    with running_site(injection_db) as base:
        yield base


def paper_id(db, title: str) -> str:
    return rows(db, "select id from papers where title = ?", (title,))[0][0]


def visible_text(page) -> str:
    return page.locator("body").inner_text()


def assert_nothing_injected(page, where: str) -> None:
    assert page.locator(INJECTED_ELEMENTS).count() == 0, where
    assert not page.evaluate(SCRIPT_WITH_ALERT), where
    assert page.dialogs == [], where


PAGES = {
    "front page": ("/", [NEWEST_DUMP]),
    "papers table": ("/papers/papers", [TITLE, PLACED_NAME, UNPLACED, IMG, NEW_TITLE]),
    "papers search": ("/papers/papers?_search=fmri", [TITLE, NORMAL_TITLE]),
    "papers search echoing a payload": (f"/papers/papers?_search={quote(SCRIPT)}", [SCRIPT]),
    "papers filtered by a payload": (f"/papers/papers?organization={quote(UNPLACED)}",
                                     [UNPLACED, NORMAL_TITLE]),
    "facets": ("/papers/papers?_facet=organization&_facet=first_seen_dump&_facet_array=dumps",
               [PLACED_NAME, UNPLACED, FIRST_DUMP, NEWEST_DUMP]),
    "canned search": ("/papers/search?q=fmri", [TITLE, IMG]),
    "canned search echoing a payload": (f"/papers/search?q={quote(IMG)}", []),
    "newest dump papers": ("/papers/newest_dump_papers", [NEW_TITLE]),
    "most seen": ("/papers/most_seen", [TITLE, json.dumps(FIRST_DUMP)]),  # in a JSON array
    "papers per organization": ("/papers/papers_per_organization", [PLACED_NAME, CITY, COUNTRY]),
    "unplaced organizations": ("/papers/unplaced_organizations", [UNPLACED]),
    "fuzzy title": ("/papers/fuzzy_title?title=" + quote(TITLE), [TITLE]),
    "sql editor": ("/papers?sql=" + quote("select title, abstract from papers"), [TITLE, ABSTRACT]),
    "sightings": ("/papers/sightings", [TITLE, PLACED_WRITTEN, FIRST_DUMP]),
    "organizations": ("/papers/organizations", [PLACED_NAME, PLACED_WRITTEN, CITY, COUNTRY]),
    "organization row": ("/papers/organizations/evil", [PLACED_NAME, CITY, COUNTRY]),
    "dumps": ("/papers/dumps", [FIRST_DUMP, NEWEST_DUMP]),
    "dump row": (f"/papers/dumps/{tilde_encode(FIRST_DUMP)}", [FIRST_DUMP]),
    "merges": ("/papers/merges", [VARIANT]),
    "problems": ("/papers/problems", [PROBLEM]),
    "missing paper": (f"/papers/papers/{tilde_encode(SCRIPT)}", []),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_payloads_render_as_text(page, injection_site, name):
    path, literals = PAGES[name]
    page.goto(injection_site + path)
    assert_nothing_injected(page, name)
    text = visible_text(page)
    for literal in literals:  # TEMPLATE is in most: Jinja did not evaluate it
        assert literal in text, (name, literal)


def test_paper_page_shows_every_payload_as_text(page, injection_site, injection_db):
    page.goto(f"{injection_site}/papers/papers/{tilde_encode(paper_id(injection_db, TITLE))}")
    assert_nothing_injected(page, "paper page")
    assert page.title() == TITLE
    assert page.locator("h1.paper-title").inner_text() == TITLE
    assert page.locator("p.abstract").inner_text() == ABSTRACT
    text = visible_text(page)
    for literal in (PLACED_NAME, PLACED_WRITTEN, VARIANT, FIRST_DUMP, NEWEST_DUMP):
        assert literal in text, literal
    assert set(page.locator("ol.related li a").all_inner_texts()) == {NORMAL_TITLE, NEW_TITLE}
    screenshot(page, "injection-paper-page")


def test_related_panel_shows_a_hostile_title_as_text(page, injection_site, injection_db):
    normal_id = paper_id(injection_db, NORMAL_TITLE)
    page.goto(f"{injection_site}/papers/papers/{tilde_encode(normal_id)}")
    assert_nothing_injected(page, "related panel")
    assert page.locator("ol.related li a").all_inner_texts() == [TITLE]
    assert UNPLACED in visible_text(page)
    page.locator("ol.related li a").first.click()
    page.wait_for_selector("h1.paper-title")
    assert page.locator("h1.paper-title").inner_text() == TITLE
    assert_nothing_injected(page, "related paper, followed")


def test_map_popup_shows_the_organization_as_text(page, injection_site):
    page.goto(injection_site + "/papers/organization_map")
    marker = page.locator(".leaflet-marker-icon").first
    marker.wait_for(timeout=15000)
    marker.click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    assert PLACED_NAME in text and CITY in text and COUNTRY in text
    assert popup.locator("a").get_attribute("href").startswith(
        "/papers/papers?_where=id+in+(select+paper_id+from+sightings+where+organization_id+%3D+%27")
    assert_nothing_injected(page, "map popup")


def test_atom_feed_carries_the_payloads_as_text(page, injection_site):
    feed = httpx.get(injection_site + "/papers/feed.atom", timeout=30)
    root = ET.fromstring(feed.text)  # well-formed: nothing broke out of its element
    atom = "{http://www.w3.org/2005/Atom}"
    titles = [entry.find(atom + "title").text for entry in root.iter(atom + "entry")]
    assert set(titles) == {TITLE, NORMAL_TITLE, NEW_TITLE}
    assert {element.tag.split("}")[-1] for element in root.iter()} <= {
        "feed", "title", "id", "updated", "link", "entry", "content", "generator", "author",
        "name"}
    page.goto(injection_site + "/papers/feed.atom")
    assert page.dialogs == []


TRAVERSALS = [
    "/static/../pyproject.toml", "/static/../../../../../etc/passwd",
    "/static/..%2fpyproject.toml", "/static/%2e%2e/pyproject.toml",
    "/static/%2e%2e%2fpyproject.toml", "/static/%252e%252e%252fpyproject.toml",
    "/static/..%5cpyproject.toml", "/static/%2e%2e%5cpyproject.toml",
    "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/....//....//pyproject.toml",
    "/static/%c0%ae%c0%ae/pyproject.toml", "/static/..%00/pyproject.toml",
    "/static/~2E~2E/pyproject.toml", "/static/.%2e/.%2e/etc/passwd",
    "/-/static/../../pyproject.toml", "/-/static/..%2f..%2fpyproject.toml",
    "/-/static-plugins/datasette_cluster_map/..%2f..%2f..%2f..%2fpyproject.toml",
    "/notebooks/../pyproject.toml", "/notebooks/%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/papers/..%2f..%2fpyproject.toml", "//etc/passwd",
]
OUTSIDE_CONTENT = (b"[project]", b"root:x:0:0", b"requires-python")


@pytest.mark.parametrize("target", TRAVERSALS)
def test_static_routes_refuse_paths_outside_their_folder(injection_site, target):
    status, body = raw_get(injection_site, target)
    assert status in (302, 400, 404), (status, body[:200])
    assert not any(marker in body for marker in OUTSIDE_CONTENT), target
    if status == 302:  # Datasette's redirect of %-encoded paths: follow it
        response = httpx.get(injection_site + target, timeout=20, follow_redirects=True)
        assert response.status_code in (400, 404), (target, response.url)
        assert not any(marker in response.content for marker in OUTSIDE_CONTENT), target


def test_static_files_inside_the_mount_are_served(injection_site):
    status, body = raw_get(injection_site, "/static/site.css")
    assert status == 200 and (ROOT / "static" / "site.css").read_bytes().strip() in body
