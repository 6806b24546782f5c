"""The site as a visitor sees it: a real Datasette server on loopback, a real headless Chromium."""

from __future__ import annotations

import csv
import io
import re
import sqlite3

import pytest

from conftest import rows, screenshot

pytestmark = pytest.mark.browser


def count_in_heading(page) -> int:
    """Return the row count Datasette prints above a table ("12 rows where ...")."""
    text = page.locator("h2.header3").first.inner_text()
    return int(re.match(r"([\d,]+) rows?", text).group(1).replace(",", ""))


def test_front_page_introduces_the_corpus(page, site, real_db):
    page.goto(site + "/")
    (papers,) = rows(real_db, "select count(*) from papers")[0]
    assert f"{papers} papers from 5 dumps" in page.locator(".facts").inner_text()
    assert page.get_by_role("link", name="Download papers.db").is_visible()
    screenshot(page, "front-page")


def test_search_shows_ranked_highlighted_results(page, site):
    page.goto(site + "/papers/papers")
    page.fill("#_search", "decoding fmri")
    page.press("#_search", "Enter")
    page.wait_for_selector(".ranked")
    first = page.locator(".ranked .ranked-title").first.inner_text().lower()
    assert "decoding" in first and "fmri" in first  # both words in the title rank first
    highlighted = {t.lower() for t in page.locator(".ranked .snippet strong").all_inner_texts()}
    assert highlighted & {"decoding", "decode", "decoded", "fmri"}
    assert count_in_heading(page) > 0
    # The table shows the papers' columns, but not search_rowid (plumbing; static/site.css).
    assert page.locator("table.rows-and-columns th.col-title").is_visible()
    assert page.locator("table.rows-and-columns th.col-search_rowid").count() == 1
    assert not page.locator("table.rows-and-columns th.col-search_rowid").is_visible()
    screenshot(page, "search-ranked")
    # A visitor's own SQL shows every column it selects, search_rowid included.
    page.goto(site + "/papers?sql=select+id,+search_rowid+from+papers+limit+3")
    assert page.locator("table.rows-and-columns th.col-search_rowid").is_visible()


def test_the_dump_links_of_a_paper_page_open_the_dumps_rows(page, site, real_db):
    """Dump names hold a dot (`004_x.txt`): their row addresses must be tilde-encoded as
    Datasette writes its own links, or Datasette reads `.txt` as a format (a 404)."""
    (paper_id,) = rows(real_db, "select id from papers order by dumps_seen desc, id limit 1")[0]
    page.goto(site + f"/papers/papers/{paper_id}")
    names = page.locator(".sightings a[href^='/papers/dumps/']").all_inner_texts()
    assert len(names) > 1
    for name in names:
        with page.expect_navigation():
            page.locator(f".sightings a[href^='/papers/dumps/']:text-is('{name}')").first.click()
        assert page.locator("h1").inner_text().strip().endswith(name)
        page.go_back()
    page.goto(site + "/")
    page.locator("a[href^='/papers/dumps/']").first.click()
    page.wait_for_load_state()
    assert "dumps" in page.url and page.locator("h1").inner_text().strip().endswith(".txt")


def test_clicking_a_facet_narrows_the_count(page, site):
    page.goto(site + "/papers/papers")
    before = count_in_heading(page)
    item = page.locator('.facet-info[data-column="published_year"] li').first
    label = item.inner_text()
    expected = int(re.search(r"([\d,]+)\s*$", label).group(1).replace(",", ""))
    item.locator("a").first.click()
    page.wait_for_url(re.compile(r"published_year="))
    after = count_in_heading(page)
    assert 0 < after < before and after == expected, label
    screenshot(page, "facet-narrowed")


def test_paper_page_shows_sightings_and_related_papers(page, site, real_db):
    paper_id, seen = rows(real_db, "select id, dumps_seen from papers where title like 'Neuroformer:%'")[0]
    page.goto(f"{site}/papers/papers/{paper_id}")
    assert page.locator("h1.paper-title").inner_text().startswith("Neuroformer")
    assert page.locator("table.sightings tbody tr").count() == seen
    related = page.locator("ol.related li a")
    assert related.count() > 0
    related.first.click()
    page.wait_for_selector("h1.paper-title")
    assert page.url != f"{site}/papers/papers/{paper_id}"
    screenshot(page, "paper-page")


def test_sql_editor_runs_a_query_and_shows_the_result(page, site):
    page.goto(site + "/papers")
    page.click(".CodeMirror")  # the CodeMirror editor, as a person would
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(
        "select published_year, count(*) as n from papers where published_year = 2023 group by 1")
    page.locator("form.sql input[type=submit], form.sql button[type=submit]").first.click()
    page.wait_for_selector("table.rows-and-columns")
    cells = page.locator("table.rows-and-columns tbody tr").first.locator("td").all_inner_texts()
    assert cells[0].strip() == "2023" and int(cells[1]) > 0
    screenshot(page, "sql-editor")


def test_canned_query_runs_from_its_page(page, site):
    page.goto(site + "/papers/most_seen")
    first_row = page.locator("table.rows-and-columns tbody tr").first
    assert first_row.locator("td.col-dumps_seen").inner_text().strip() == "5"
    first_row.locator("td.col-paper_id a").click()
    page.wait_for_selector("h1.paper-title")
    screenshot(page, "canned-query")


def test_download_gives_the_database_file(page, site, real_db, tmp_path):
    page.goto(site + "/")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download papers.db").click()
    saved = tmp_path / "downloaded.db"
    download_info.value.save_as(saved)
    assert saved.read_bytes() == real_db.read_bytes()
    conn = sqlite3.connect(saved)
    assert conn.execute("select count(*) from papers").fetchone()[0] > 0
    conn.close()


def test_map_page_renders_a_marker_per_organization_offline(page, site, real_db):
    """With every request off the loopback refused (the map's tiles), each placed
    organization is on the map: a marker, or counted in a cluster's number."""
    refused = []
    page.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]).*"),
               lambda route: (refused.append(route.request.url), route.abort()))
    page.goto(site + "/papers/organization_map")
    page.wait_for_selector(".leaflet-marker-icon, .marker-cluster", timeout=15000)
    (placed,) = rows(real_db, "select count(*) from organizations where latitude is not null")[0]
    markers = page.locator(".leaflet-marker-icon:not(.marker-cluster)").count()
    in_clusters = sum(int(text) for text in page.locator(".marker-cluster").all_inner_texts())
    assert placed > 1 and markers + in_clusters == placed
    page.locator(".leaflet-marker-icon").first.click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert "paper" in popup.inner_text()
    screenshot(page, "map")


def test_write_statement_is_refused_in_the_browser(page, site, real_db):
    before = rows(real_db, "select count(*) from papers")
    page.goto(site + "/papers?sql=delete+from+papers")
    assert "Statement must be a SELECT" in page.content()
    assert rows(real_db, "select count(*) from papers") == before


UNNAMED_CONTROLS = """() => [...document.querySelectorAll("input, select, textarea")]
    .filter((c) => c.type !== "hidden" && c.type !== "submit" && c.getClientRects().length)
    .filter((c) => !(c.labels.length || c.getAttribute("aria-label")
                     || c.getAttribute("aria-labelledby") || c.title))
    .map((c) => c.name || c.id || c.outerHTML)"""


@pytest.mark.parametrize("path", [
    "/", "/papers", "/papers/papers", "/papers/papers?_search=brain&topics=decoding",
    "/papers/papers?_sort=title", "/papers/sightings", "/papers/search?q=brain",
    # Hidden inputs in the filter form (Datasette keeps _size, _facet, _where there).
    "/papers/papers?_size=5&_facet=published_year&_where=authors+>+2",
])
def test_pages_state_their_language_and_name_every_control(page, site, path):
    """A screen reader needs the page's language and a name for each form control;
    Datasette's filter and sort controls have none of their own (static/site.js)."""
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(site + path)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.evaluate(UNNAMED_CONTROLS) == []
    assert errors == []


def test_filter_controls_are_named_by_their_row(page, site):
    page.goto(site + "/papers/papers?year__gte=2020")
    names = [page.get_attribute(f"[name={name}]", "aria-label") for name in
             ("_filter_column_1", "_filter_op_1", "_filter_value_1", "_filter_column")]
    assert names == ["Filter 1: column", "Filter 1: operator", "Filter 1: value",
                     "New filter: column"]


def test_a_long_abstract_opens_in_its_cell_with_the_keyboard(page, site, real_db):
    """The cell shows the first 260 characters; opening it shows the whole abstract, once."""
    page.goto(site + "/papers/papers?_size=5")
    cell = page.locator("td.col-abstract .abstract-preview").first
    summary = cell.locator("summary")
    shown = cell.inner_text()
    assert shown.endswith("… more") and not cell.locator(".rest").is_visible()
    summary.focus()
    page.keyboard.press("Enter")
    assert cell.locator(".rest").is_visible()
    whole = cell.inner_text()
    (full,) = rows(real_db, "select abstract from papers where abstract like ? || '%'",
                   (shown.removesuffix("… more").strip(),))[0]
    assert whole == full
    screenshot(page, "abstract-opened")


def test_open_abstracts_stay_open_and_menus_still_close(page, site):
    """Opening an abstract keeps the others open, and so does a click elsewhere on the page,
    as it keeps "What the columns mean" open (templates/_close_open_menus.html); a column
    menu, and Datasette's own <details> menus, still close on a click outside them."""
    page.goto(site + "/papers/papers?_size=5")
    toggle = page.locator("details.column-descriptions-toggle")
    toggle.locator("summary").click()
    abstracts = page.locator("td.col-abstract details.abstract-preview")
    abstracts.nth(0).locator("summary").click()
    abstracts.nth(1).locator("summary").click()
    page.locator("td.col-title").first.click()
    is_open = "details => details.open"
    assert [abstracts.nth(i).evaluate(is_open) for i in range(2)] == [True, True]
    assert toggle.evaluate(is_open)
    page.get_by_role("button", name="Options for column title", exact=True).click()
    menu = page.locator("body > .dropdown-menu")
    assert menu.is_visible()
    page.locator("td.col-title").first.click()
    assert not menu.is_visible()
    # A table actions menu, as Datasette writes it when a plugin gives the table actions.
    page.evaluate("""() => document.querySelector("h1").insertAdjacentHTML("afterend",
        '<details class="actions-menu-links" open><summary>Table actions</summary>'
        + '<div class="dropdown-menu"><a href="#">an action</a></div></details>')""")
    page.locator("td.col-title").first.click()
    assert not page.locator("details.actions-menu-links").evaluate(is_open)
    assert [abstracts.nth(i).evaluate(is_open) for i in range(2)] == [True, True]


def csv_ids(text: str) -> list[str]:
    return [row["id"] for row in csv.DictReader(io.StringIO(text))]


def test_csv_exports_from_a_later_page_cover_the_whole_filtered_result(page, site, real_db):
    """From page 2, the CSV link and "stream all rows" export every filtered paper, not the
    rows from the page's cursor on (and the stream is not refused for its `_next`)."""
    expected = [paper_id for (paper_id,) in rows(real_db, """select id from papers
        where exists (select 1 from json_each(topics) where value = 'EEG')""")]
    assert len(expected) > 5
    page.goto(site + "/papers/papers?topics__arraycontains=EEG&_size=5")
    page.get_by_role("link", name="Next page").click()
    page.wait_for_url("**_next=**")
    link = page.locator(".export-links a", has_text="CSV").get_attribute("href")
    assert sorted(csv_ids(page.request.get(site + link).text())) == sorted(expected)
    page.locator("#export input[name=_stream]").check()
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Export CSV").click()
    response = navigation.value
    assert response.status == 200, response.text()[:200]
    assert sorted(csv_ids(response.text())) == sorted(expected)


PHONE = {"width": 375, "height": 667}  # the narrowest common phone


def test_pages_fit_a_phone_and_label_the_sightings_cards(page, site, real_db):
    """At phone width nothing scrolls sideways (long SQL, a table's schema, long URLs in
    abstracts), and the sightings table, shown as one card per row there, names each value."""
    page.set_viewport_size(PHONE)
    (paper,) = rows(real_db, "select id from papers where abstract like '%https://%' "
                             "order by length(abstract) desc limit 1")[0]
    for path in ("/", "/papers/most_seen", "/papers/unplaced_organizations", "/papers/search?q=brain",
                 "/papers/search?q=brain&_show_sql=1",
                 "/papers/papers", "/papers/papers?_search=brain", "/papers/sightings", "/papers",
                 "/papers/organization_map",
                 "/papers/papers_per_organization", f"/papers/papers/{paper}"):
        page.goto(site + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls {overflow} px sideways"
    cell = page.locator("table.sightings td").nth(1)
    label = cell.evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Captured"'
    screenshot(page, "paper-page-phone")


def test_the_first_tab_offers_to_skip_to_the_content(page, site):
    page.goto(site + "/papers/papers?_search=brain")
    page.keyboard.press("Tab")
    link = page.locator(".skip-link")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert link.is_visible()
    page.keyboard.press("Enter")
    assert page.url.endswith("#content")
    assert page.locator("main#content h1").count() == 1


def test_the_search_page_says_search_not_sql(page, site):
    page.goto(site + "/papers/search?q=brain")
    assert page.get_by_label("Search titles and abstracts").input_value() == "brain"
    page.get_by_label("Search titles and abstracts").fill("spiking")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**q=spiking**")
    assert page.locator("table.rows-and-columns tbody tr").count() > 0


def test_column_menus_open_and_close_with_the_keyboard(page, site):
    """Datasette's column menus (the cog in each header) are buttons a keyboard reaches:
    Enter opens the menu on its first choice, Escape closes it and goes back to the cog,
    and a choice taken by keyboard does what a click does (static/site.js)."""
    page.goto(site + "/papers/papers?_size=5")
    cog = page.get_by_role("button", name="Options for column title", exact=True)
    menu = page.locator("body > .dropdown-menu")
    cog.focus()
    page.keyboard.press("Enter")
    assert menu.is_visible()
    assert page.evaluate("document.activeElement.textContent") == "Sort ascending"
    page.keyboard.press("Escape")
    assert not menu.is_visible()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == \
        "Options for column title"
    page.keyboard.press(" ")
    assert menu.is_visible()
    page.keyboard.press("Enter")
    page.wait_for_url("**_sort=title**")
    titles = page.locator("table.rows-and-columns td.col-title").all_inner_texts()
    assert titles == sorted(titles)


def test_leaving_a_column_menu_by_keyboard_keeps_the_place_of_its_cog(page, site):
    """The menu is the page's last element, but for the keyboard it stands after its cog:
    Shift+Tab before its first choice goes back to the cog, Tab past its last goes on to
    what follows the cog (the next column's header), and Escape after a mouse's open goes
    back to the cog that was clicked."""
    page.goto(site + "/papers/papers?_size=5")
    menu = page.locator("body > .dropdown-menu")
    label = "document.activeElement.getAttribute('aria-label')"
    page.get_by_role("button", name="Options for column title", exact=True).focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Shift+Tab")
    assert not menu.is_visible() and page.evaluate(label) == "Options for column title"
    page.keyboard.press("Enter")
    choices = menu.locator("a:visible").count()
    assert choices >= 2
    for _ in range(choices):
        page.keyboard.press("Tab")
    assert not menu.is_visible()
    assert page.evaluate("document.activeElement.closest('th')?.dataset.column") == "abstract"
    assert page.evaluate("document.activeElement.tagName") == "A"  # its sort link
    page.get_by_role("button", name="Options for column title", exact=True).focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Options for column published", exact=True).click()
    assert menu.is_visible()
    page.keyboard.press("Escape")
    assert not menu.is_visible() and page.evaluate(label) == "Options for column published"

def test_a_column_menu_says_it_is_open_and_keeps_the_keyboard_when_the_mouse_opened_it(page, site):
    """A menu opened by mouse: Tab from its cog goes into it, the cog says it is expanded,
    a click on the menu's text keeps it open; and when its table scrolls (table.js then
    hides it), the focus goes back to the cog rather than to the top of the page."""
    page.set_viewport_size({"width": 700, "height": 800})
    page.goto(site + "/papers/papers?_size=5")
    menu = page.locator("body > .dropdown-menu")
    cog = page.get_by_role("button", name="Options for column title", exact=True)
    assert cog.get_attribute("aria-expanded") == "false"
    cog.click()
    assert menu.is_visible() and cog.get_attribute("aria-expanded") == "true"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Sort ascending"
    menu.locator(".dropdown-column-type").click()
    assert menu.is_visible()
    page.evaluate("document.querySelector('.table-wrapper').scrollLeft = 200")
    page.wait_for_function("document.querySelector('body > .dropdown-menu').style.display === 'none'")
    page.wait_for_function("document.activeElement.getAttribute('aria-label') === "
                           "'Options for column title'")
    assert cog.get_attribute("aria-expanded") == "false"


def test_a_column_menu_is_a_menu_the_arrows_move_along(page, site):
    page.goto(site + "/papers/papers?_size=5")
    page.get_by_role("button", name="Options for column title", exact=True).focus()
    page.keyboard.press("Enter")
    items = page.get_by_role("menuitem")
    visible = [items.nth(i).inner_text() for i in range(items.count()) if items.nth(i).is_visible()]
    assert visible[:2] == ["Sort ascending", "Sort descending"] and len(visible) >= 3, visible
    focused = "document.activeElement.textContent"
    scrolled = page.evaluate("window.scrollY")
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused) == visible[1]
    page.keyboard.press("End")
    assert page.evaluate(focused) == visible[-1]
    page.keyboard.press("ArrowDown")  # round to the first
    assert page.evaluate(focused) == visible[0]
    page.keyboard.press("ArrowUp")  # and back to the last
    assert page.evaluate(focused) == visible[-1]
    page.keyboard.press("Home")
    assert page.evaluate(focused) == visible[0]
    assert page.evaluate("window.scrollY") == scrolled  # the arrows moved the focus, not the page


@pytest.mark.parametrize("path", ["/papers/papers", "/papers/papers?_search=decoding", "/papers/feed"])
def test_the_abstract_column_is_wide_enough_to_read(page, site, path):
    """The papers table is wider than the window; its abstract column kept a readable width
    (it shrank to 91 px, a word a line, and each row of 25 was over 700 px tall); so does the
    feed query's column of abstracts."""
    page.goto(site + path)
    cell = page.locator("table.rows-and-columns td:has(.abstract-preview)").first
    width_in_em = cell.evaluate(
        "td => td.getBoundingClientRect().width / parseFloat(getComputedStyle(td).fontSize)")
    assert width_in_em >= 20, width_in_em
    heights = page.locator("table.rows-and-columns tbody tr").evaluate_all(
        "rows => rows.map(row => row.getBoundingClientRect().height)")
    assert max(heights) < 300, heights


@pytest.mark.parametrize("width", [600, 800, 1024])
def test_a_paper_page_fits_a_tablet_its_sightings_scroll_in_their_box(page, site, real_db, width):
    """Between a phone's cards and a wide screen, the sightings table's ten columns are wider
    than the window: they scroll in their own box, not the whole page sideways."""
    page.set_viewport_size({"width": width, "height": 800})
    (paper,) = rows(real_db, "select id from papers order by dumps_seen desc, id limit 1")[0]
    page.goto(site + f"/papers/papers/{paper}")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls {overflow} px sideways"


# Each visible text whose colour on its background is under WCAG AA's 4.5:1 (3:1 from
# 24 px, or 18.66 px bold): background colours are stacked up the ancestors, over white.
LOW_CONTRAST_TEXT = """() => {
  const rgba = (css) => { const [r, g, b, a = 1] = css.match(/[\\d.]+/g).map(Number);
                          return {r, g, b, a}; };
  const over = (top, under) => ({r: top.r * top.a + under.r * (1 - top.a),
                                 g: top.g * top.a + under.g * (1 - top.a),
                                 b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const background = (element) => {
    const layers = [];
    for (let e = element; e && layers.at(-1)?.a !== 1; e = e.parentElement) {
      const colour = rgba(getComputedStyle(e).backgroundColor);
      if (colour.a > 0) layers.push(colour);
    }
    return layers.reduceRight((under, top) => over(top, under), {r: 255, g: 255, b: 255, a: 1});
  };
  const luminance = ({r, g, b}) => [r, g, b].map((v) => v / 255)
    .map((v) => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const low = [];
  const texts = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (texts.nextNode()) {
    const element = texts.currentNode.parentElement;
    const style = getComputedStyle(element);
    if (!texts.currentNode.textContent.trim() || !element.getClientRects().length
        || style.visibility === "hidden") continue;
    const back = background(element);
    const [a, b] = [luminance(over(rgba(style.color), back)), luminance(back)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    if (ratio < (size >= 24 || (bold && size >= 18.66) ? 3 : 4.5))
      low.push(`${ratio.toFixed(2)}: ${texts.currentNode.textContent.trim().slice(0, 40)}`);
  }
  return low;
}"""


@pytest.mark.parametrize("path", [
    "/", "/papers", "/papers/papers?_search=brain", "/papers/sightings", "/papers/search?q=brain",
    "/papers/papers/{paper}", "/papers/organization_map", "/papers/papers/no-such-paper",
    "/no-such-page",
])
def test_text_meets_the_contrast_wcag_aa_asks_of_body_text(page, site, real_db, path):
    """Datasette greys the id beside a foreign key's label (sightings.paper_id,
    papers.organization_id) at 2.2:1 and the SQL editor's line numbers at 2.9:1."""
    (paper,) = rows(real_db, "select id from papers where organization_id is not null limit 1")[0]
    page.goto(site + path.format(paper=paper))
    page.wait_for_load_state("networkidle")
    assert page.evaluate(LOW_CONTRAST_TEXT) == []


def test_each_map_marker_is_named_by_its_organization(page, site, real_db):
    """Tab reaches the markers, which datasette-cluster-map leaves with an empty alt: each
    is named by its popup (static/site.js), the organization's name first."""
    page.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]).*"), lambda route: route.abort())
    page.goto(site + "/papers/organization_map")
    page.wait_for_selector("img.leaflet-marker-icon", timeout=15000)
    names = page.eval_on_selector_all("img.leaflet-marker-icon", "(images) => images.map("
                                      "(image) => [image.tabIndex, image.alt])")
    placed = rows(real_db, "select name, papers, city, country from organizations "
                           "where latitude is not null")
    assert sorted(names) == sorted(
        [0, f"{name} {papers} paper{'' if papers == 1 else 's'} · {city}, {country}"]
        for name, papers, city, country in placed)


def test_a_map_control_reached_by_tab_shows_its_focus(page, site):
    """Leaflet writes `outline: none` into the style of a marker or zoom button as it gets
    the focus; site.css's focus outline must still show (an !important one)."""
    page.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]).*"), lambda route: route.abort())
    page.goto(site + "/papers/organization_map")
    page.wait_for_selector("img.leaflet-marker-icon", timeout=15000)
    outlines = {}
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const e = document.activeElement;
            return [e.className || e.tagName, e.closest('.leaflet-container') !== null,
                    getComputedStyle(e).outlineStyle]; }""")
        if focused[1]:
            outlines[focused[0].split()[0]] = focused[2]
    assert {"leaflet-marker-icon", "leaflet-control-zoom-in"} <= outlines.keys()
    assert set(outlines.values()) == {"solid"}, outlines
