"""Site pages served by a real Datasette server on loopback, on databases built from small
dumps written here: what a visitor reads for odd but plausible addresses and small corpora."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from conftest import (ABSTRACT_A, ABSTRACT_B, ABSTRACT_C, blank_separated, made_up_words, run_build,
                      running_site)


def built_site(folder, *records):
    """Build papers.db in `folder` from one dump of `records`; return its path."""
    (folder / "dumps").mkdir()
    (folder / "dumps" / "a.txt").write_text(blank_separated(*records))
    db = folder / "papers.db"
    result = run_build(folder / "dumps", db)
    assert result.returncode == 0, result.stderr
    return db


@pytest.fixture(scope="module")
def three_papers(tmp_path_factory):
    """A server of three papers, two of them from 2025."""
    db = built_site(tmp_path_factory.mktemp("three"),
                    ("Decoding seen images from fMRI", ABSTRACT_A, ["·", "Mar 3, 2025"]),
                    ("Surrogate gradients for spiking networks", ABSTRACT_B, ["·", "Feb 2, 2025"]),
                    ("Pretraining on EEG", ABSTRACT_C, ["·", "Jan 5, 2024"]))
    with running_site(db) as base:
        yield base


def get(base: str, path: str) -> httpx.Response:
    # Straight to the server: a proxy set for the machine must not answer for it.
    return httpx.get(base + path, timeout=30, trust_env=False)


def without_timing(page: str) -> str:
    return re.sub(r"Queries took [0-9.]+ms", "", page)


@pytest.mark.parametrize("empty, plain", [
    ("_search=", ""),
    ("_search=&published_year=2025", "published_year=2025"),
    ("published_year=2025&_search_title=", "published_year=2025"),
    ("_search=&_searchmode=raw", "_searchmode=raw"),
    ("_search", ""),
    ("_search=+", ""),
    ("_search=%20%20&published_year=2025", "published_year=2025"),
    ("_search_title=+&_searchmode=raw", "_searchmode=raw"),
    ("_search=%E2%80%8B", ""),  # a zero-width space
    ("_search=%EF%BB%BF+%E2%80%8F&published_year=2025", "published_year=2025"),  # BOM, RLM
])
def test_an_empty_search_in_the_address_lists_the_rows_as_no_search_does(three_papers, empty, plain):
    """`?_search=` searched for the empty string: search_plan.py's escape_fts made it the
    empty phrase, which matches nothing, and the page listed no rows (stock Datasette 0.65
    answers a 400, "fts5: syntax error"). It is the page without a search: every row, the
    facets, no ranked box. So is a search of spaces alone, which the ranked box already read
    as none while the table below it listed no row."""
    page, expected = get(three_papers, f"/papers/papers?{empty}"), get(three_papers, f"/papers/papers?{plain}")
    assert page.status_code == expected.status_code == 200
    assert without_timing(page.text) == without_timing(expected.text)
    assert 'class="ranked"' not in page.text and 'id="facet-published_year"' in page.text
    data = get(three_papers, f"/papers/papers.json?{empty}&_shape=objects").json()
    assert len(data["rows"]) == (2 if "2025" in plain else 3)
    assert data["filtered_table_rows_count"] == len(data["rows"])


def test_a_search_of_one_column_beside_an_empty_search_of_all_is_that_search(three_papers):
    """Datasette reads `_search` before any `_search_<column>`: an empty one hid the title
    search beside it."""
    data = get(three_papers, "/papers/papers.json?_search=&_search_title=spiking&_shape=objects").json()
    assert [row["title"] for row in data["rows"]] == ["Surrogate gradients for spiking networks"]


def front_page_facts(base: str) -> str:
    page = get(base, "/").text
    (facts,) = re.findall(r'<section class="facts">(.*?)</section>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", "", facts).split())


@pytest.mark.parametrize("records", [
    [("Decoding seen images from fMRI", ABSTRACT_A, ["·", "Mar 3, 2025"])],
    [("Decoding seen images from fMRI", ABSTRACT_A, ["·", "Mar 3, 2025"]),
     ("Surrogate gradients for spiking networks", ABSTRACT_B, ["·", "Mar 3, 2025"])],
], ids=["one paper", "one date"])
def test_the_front_page_gives_one_date_when_the_papers_share_it(tmp_path, records):
    """It said "dated 2025-03-03 to 2025-03-03"."""
    with running_site(built_site(tmp_path, *records)) as base:
        facts = front_page_facts(base)
    assert "dated 2025-03-03, 0 organizations" in facts and " to 2025" not in facts


def test_the_front_page_gives_the_range_of_dates_of_papers_of_several(three_papers):
    assert "dated 2024-01-05 to 2025-03-03, 0 organizations" in front_page_facts(three_papers)


def ranked_note(base: str, query: str) -> str:
    page = get(base, f"/papers/papers?{query}").text
    (note,) = re.findall(r'<p class="ranked">(.*?)</p>', page, re.S)
    return " ".join(note.split())


def test_a_search_without_matches_names_filters_only_on_a_filtered_page(three_papers):
    """It said "within these filters" on a page with none."""
    assert ranked_note(three_papers, "_search=zzzqqq") == "No paper matches “zzzqqq”."
    assert ranked_note(three_papers, "_search=spiking&published_year=2024") == (
        "No paper matches “spiking” within these filters.")


def test_the_front_page_writes_every_count_with_thousands_separators(tmp_path):
    """Papers and sightings were "1,200"; the other counts "1200"."""
    dump = blank_separated(("Decoding seen images from fMRI", ABSTRACT_A, ["·", "Mar 3, 2025"]))
    # A bulleted line before any paper is a problem of its line: 1,200 of them.
    (tmp_path / "dumps").mkdir()
    (tmp_path / "dumps" / "a.txt").write_text(
        dump.replace("Apr 17\n", "Apr 17\n" + "\n• many authors\n" * 1200, 1))
    db = tmp_path / "papers.db"
    assert run_build(tmp_path / "dumps", db).returncode == 0
    with running_site(db) as base:
        assert "1,200 unreadable lines kept in problems" in front_page_facts(base)


def test_the_front_page_writes_the_newest_dumps_new_papers_with_thousands_separators(tmp_path):
    """A first dump of 1,050 papers: its new papers were "1050" beside "1,050 papers"."""
    db = built_site(tmp_path, *[(made_up_words(f"title {n}", 5).capitalize(),
                                 made_up_words(f"abstract {n}", 16) + ".") for n in range(1050)])
    with running_site(db) as base:
        facts = front_page_facts(base)
    assert "1,050 papers from 1 dump" in facts and "with 1,050 new papers." in facts


def test_the_front_page_says_how_many_papers_its_dates_cover(tmp_path):
    """"3 papers ..., dated 2024-01-05 to 2025-03-03" read as every paper dated; most real
    papers have no date the pages give."""
    db = built_site(tmp_path,
                    ("Decoding seen images from fMRI", ABSTRACT_A, ["·", "Mar 3, 2025"]),
                    ("Surrogate gradients for spiking networks", ABSTRACT_B, ["·", "Jan 5, 2024"]),
                    ("Pretraining on EEG", ABSTRACT_C))
    with running_site(db) as base:
        facts = front_page_facts(base)
    assert "3 papers from 1 dump (3 sightings), 2 of them dated 2024-01-05 to 2025-03-03," in facts


def test_a_capture_date_says_when_its_year_was_inferred(tmp_path):
    """The front page's newest dump and a paper's sightings gave "2026-04-17" whether a
    maintainer stated the capture or the build inferred its year (for the real dumps, the
    earliest year possible: here the year after the page's "Mar 3, 2025"): the date now
    says so, and says nothing more when stated."""
    record = ("Decoding seen images from fMRI", ABSTRACT_A, ["·", "Mar 3, 2025"])
    (tmp_path / "inferred").mkdir()
    (tmp_path / "stated").mkdir()
    inferred = built_site(tmp_path / "inferred", record)
    (tmp_path / "stated" / "dumps").mkdir()
    (tmp_path / "stated" / "dumps" / "a.txt").write_text(blank_separated(record))
    (tmp_path / "stated" / "dumps" / "manifest.yml").write_text("captures:\n  a.txt: 2026-04-17\n")
    stated = tmp_path / "stated" / "papers.db"
    assert run_build(tmp_path / "stated" / "dumps", stated).returncode == 0
    for db, shown in ((inferred, "2026-04-17 (earliest possible year)"), (stated, "2026-04-17")):
        with running_site(db) as base:
            # Not "(2026-04-17 (earliest possible year), 1 new paper)": no nested brackets.
            assert f"newest dump a.txt, captured {shown}, with 1 new paper." in front_page_facts(base)
            page = get(base, "/papers/papers/decoding-seen-images-from-fmri").text
            assert f'<td data-label="Captured">{shown}</td>' in page


def test_related_papers_of_an_id_no_paper_has_say_so_and_link_the_title_lookup(three_papers):
    """`/papers/related?paper_id=<no paper's id>` listed "0 results", as for a paper with
    no related papers: it answers 404 with the page of an unknown paper and its link to
    papers whose titles are like the id's words; its JSON carries the error as Datasette's
    own 404s do (its CSV as text); a paper's id, or none, is the query as before."""
    page = get(three_papers, "/papers/related?paper_id=decoding-seen-images-from-mri")
    assert page.status_code == 404
    assert "No paper has the id “decoding-seen-images-from-mri”" in page.text
    assert ('<a href="/papers/fuzzy_title?title=decoding%20seen%20images%20from%20mri">'
            in page.text)
    answer = get(three_papers, "/papers/related.json?paper_id=decoding-seen-images-from-mri")
    assert answer.status_code == 404
    unknown_row = get(three_papers, "/papers/papers/decoding-seen-images-from-mri.json")
    assert unknown_row.status_code == 404 and answer.json().keys() == unknown_row.json().keys()
    assert answer.json() == {
        "ok": False, "status": 404, "title": None,
        "error": 'No paper has the id "decoding-seen-images-from-mri" (ids are made from '
                 'titles: /papers/fuzzy_title?title=decoding+seen+images+from+mri finds '
                 'papers by an approximate title)'}
    bad_shape = "/papers/related.json?paper_id=decoding-seen-images-from-mri&_shape=object"
    assert get(three_papers, bad_shape).status_code == 400  # wrong whatever the id
    as_csv = get(three_papers, "/papers/related.csv?paper_id=decoding-seen-images-from-mri")
    assert as_csv.status_code == 404
    assert as_csv.text.startswith('Not Found: No paper has the id "decoding-seen-images-from-mri"')
    for known in ("decoding-seen-images-from-fmri", ""):
        assert get(three_papers, f"/papers/related?paper_id={known}").status_code == 200
        assert get(three_papers, f"/papers/related.json?paper_id={known}").json()["ok"]


def test_an_organizations_page_says_what_each_of_its_counts_of_papers_counts(tmp_path):
    """A paper a later dump showed under another organization: the organization's page said
    `papers` 2, "1 row from organization_id in papers" and "3 rows from organization_id in
    sightings", and nothing about why. It says what each counts, and links the papers that
    `papers` counts."""
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    sakana, korea = (["SakanaAI Sakana AI", "·", "May 8, 2025"],
                     ["Korea University", "·", "May 8, 2025"])
    (dumps / "a.txt").write_text(blank_separated(("Moved", ABSTRACT_A, sakana),
                                                 ("Stayed", ABSTRACT_B, sakana)))
    (dumps / "b.txt").write_text(blank_separated(("Moved", ABSTRACT_A, korea),
                                                 ("Stayed", ABSTRACT_B, sakana)))
    db = tmp_path / "papers.db"
    assert run_build(dumps, db).returncode == 0
    with running_site(db) as base:
        page = " ".join(get(base, "/papers/organizations/sakana-ai").text.split())
        assert re.search(r'<td class="col-papers[^"]*">2</td>', page)
        assert "1 row</a> from organization_id in papers" in page
        assert "3 rows</a> from organization_id in sightings" in page
        note = re.search(r'<p class="count-note">(.*?)</p>', page).group(1)
        assert "every paper any dump showed under this organization" in note
        assert "a paper a later dump showed under another organization is not among them" in note
        link = html.unescape(re.search(r'<a href="(/papers/papers\?_where=[^"]+)">', note).group(1))
        listed = get(base, link.replace("/papers/papers?", "/papers/papers.json?_shape=array&"))
        assert sorted(paper["title"] for paper in listed.json()) == ["Moved", "Stayed"]
