"""The notebooks run top to bottom against a freshly built database, and are committed clean."""

from __future__ import annotations

import html as html_module
import json
import re
import shutil
import sys

import nbformat
import pytest

from neuroai_papers.notebooks import NOTEBOOKS, execute_notebook
from neuroai_papers.uris import read_only_uri

PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_the_two_notebooks():
    assert [p.name for p in PATHS] == ["explore.ipynb", "maintain.ipynb"]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    assert all(not cell.get("outputs") and not cell.get("execution_count")
               for cell in cells if cell["cell_type"] == "code")


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_notebook_runs_without_error_against_a_fresh_database(path, real_db):
    executed = execute_notebook(path, real_db)
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, "every notebook draws at least one plot"


def test_rendered_html_has_the_plots_and_the_topic_scores(rendered_notebooks):
    html = (rendered_notebooks / "explore.html").read_text()
    assert sorted(p.name for p in rendered_notebooks.iterdir()) == ["explore.html", "maintain.html"]
    assert html.count("data:image/png") >= 4
    # The scores table's overall row: labels, predictions, true positives, precision, recall.
    overall = re.search(r"<th>overall</th>\s*<td>(\d+)</td>\s*<td>(\d+)</td>\s*<td>(\d+)</td>"
                        r"\s*<td>(0\.\d+)</td>\s*<td>(0\.\d+)</td>", html)
    assert overall, "the topic scores are not in the page"
    labels, predicted, hits, precision, recall = overall.groups()
    assert float(precision) == pytest.approx(int(hits) / int(predicted), abs=1e-6)
    assert float(recall) == pytest.approx(int(hits) / int(labels), abs=1e-6)
    for page in rendered_notebooks.iterdir():  # nothing loaded from elsewhere (a CDN)
        assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']?(https?:)?//", page.read_text())


def test_every_chart_has_its_cells_text_alternative(rendered_notebooks):
    """Each image of a rendered notebook says what its chart shows: the `alt` of its cell."""
    for page in ("explore", "maintain"):
        notebook = nbformat.read(NOTEBOOKS / f"{page}.ipynb", as_version=4)
        alts = [cell.metadata["alt"] for cell in notebook.cells if "alt" in cell.metadata]
        html = (rendered_notebooks / f"{page}.html").read_text()
        images = re.findall(r"<img\b[^>]*>", html)
        assert len(images) == len(alts) >= 1
        assert [html_module.unescape(re.search(r'alt="([^"]*)"', image).group(1))
                for image in images] == alts


def test_rendered_pages_are_titled_and_lead_back_to_the_site(rendered_notebooks):
    for page, heading in (("explore", "Exploring the NeuroAI papers database"),
                          ("maintain", "After adding a dump")):
        html = (rendered_notebooks / f"{page}.html").read_text()
        assert re.search(r"<title>(.*?)</title>", html).group(1) == heading
        # The site serves them at /notebooks/, and the Pages bundle in notebooks/: one level
        # down from the front page and the file either way.
        assert '<a href="../">← NeuroAI papers</a>' in html and 'href="../papers.db"' in html
        assert f"<code>{page}.ipynb</code>" in html


def test_explore_runs_for_someone_who_downloaded_only_the_file(real_db, tmp_path):
    """The tour is for a downloaded papers.db: without the repository, every section but
    the scoring of the topic rules (which needs the hand labels) runs, and that one says why
    it shows nothing."""
    download = tmp_path / "download"
    download.mkdir()
    db = download / "papers.db"
    db.write_bytes(real_db.read_bytes())
    executed = execute_notebook(NOTEBOOKS / "explore.ipynb", db, root=download, folder=download)
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "No hand labels at" in text
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == 3  # not the scores


def test_explore_highlights_search_matches_in_escaped_text(rendered_notebooks):
    html = (rendered_notebooks / "explore.html").read_text()
    assert "<mark>brain computation</mark>" in html or "<mark>decoding</mark>" in html
    assert "\x02" not in html and "\x03" not in html


def search_helper_of_explore():
    """The notebook's `fts_query`, defined as its search cell defines it."""
    notebook = json.loads((NOTEBOOKS / "explore.ipynb").read_text())
    cell = next("".join(c["source"]) for c in notebook["cells"]
                if "def fts_query" in "".join(c["source"]))
    namespace: dict = {}
    exec(cell.split("def search")[0], namespace)
    return namespace["fts_query"]


@pytest.mark.parametrize("query", ["decoding fmri", "brain-computer", "EEG-to-fMRI", '"spiking net',
                                   '"neural decoding" fmri', "AND", "-", "a  b", 'x ""', "naïve"])
def test_the_notebooks_search_quotes_words_as_the_site_does(query):
    from datasette.utils import escape_fts

    assert search_helper_of_explore()(query) == escape_fts(query)


def test_jupyterlab_saves_notebooks_without_outputs(real_db, tmp_path):
    """`make lab` saves through strip_outputs: a notebook run and saved in JupyterLab stays
    as it is committed (JupyterLab autosaves; a commit with outputs would fail the tests)."""
    from jupyter_server.services.contents.filemanager import FileContentsManager

    from neuroai_papers.notebooks import strip_outputs

    executed = execute_notebook(NOTEBOOKS / "maintain.ipynb", real_db)
    assert any(cell.get("outputs") for cell in executed.cells if cell.cell_type == "code")
    # What JupyterLab itself writes into a notebook it saves: its kernel's name and Python
    # version, and the timing of each cell it ran.
    executed.metadata.kernelspec.display_name = "Python 3 (ipykernel)"
    executed.metadata.language_info.update(version="3.11.7", mimetype="text/x-python")
    for cell in executed.cells:
        cell.metadata["execution"] = {"iopub.status.idle": "2026-12-06T07:00:00.000Z"}
    manager = FileContentsManager(root_dir=str(tmp_path),
                                  pre_save_hook="neuroai_papers.notebooks.strip_outputs")
    assert manager.pre_save_hook is strip_outputs
    manager.save({"type": "notebook", "format": "json", "content": executed}, "saved.ipynb")
    saved = json.loads((tmp_path / "saved.ipynb").read_text())
    code = [cell for cell in saved["cells"] if cell["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)
    # Saved as committed: a save after `make lab` leaves `git diff` empty.
    assert saved == json.loads((NOTEBOOKS / "maintain.ipynb").read_text())


def test_explore_search_escapes_titles_and_abstracts_before_marking_matches(dumps_dir, tmp_path):
    """The notebook's search() renders HTML: text from the dumps is escaped, and only the
    matches become <mark>."""
    from conftest import ABSTRACT_A, blank_separated, run_build

    abstract = ABSTRACT_A.replace("We decode", "We decode <script>alert(1)</script> & <b>more</b>", 1)
    (dumps_dir / "a.txt").write_text(blank_separated(("Decoding <b>bold</b> brains", abstract)))
    db = tmp_path / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    conn, search = explore_search(db)
    shown = search("decoding").to_html()
    conn.close()
    assert "Decoding &lt;b&gt;bold&lt;/b&gt; brains" in shown
    assert "&lt;script&gt;" in shown and "<script>" not in shown and "<b>" not in shown
    assert "<mark>decode</mark>" in shown


def test_a_notebook_without_its_database_says_where_it_looked(tmp_path):
    """A missing file stops the first cell with the full path tried and what to do, not
    SQLite's "unable to open database file"."""
    from nbclient.exceptions import CellExecutionError

    missing = tmp_path / "nowhere" / "papers.db"
    with pytest.raises(CellExecutionError) as failure:
        execute_notebook(NOTEBOOKS / "maintain.ipynb", missing)
    assert f"no papers.db at {missing}: build it with `make build`" in str(failure.value)
    assert not missing.parent.exists()


def test_a_notebook_saved_beside_a_downloaded_papers_db_opens_it(real_db, tmp_path, monkeypatch):
    """A download of the notebook and papers.db into one folder, no repository and no
    variable set: the notebook stopped at its first cell, "no papers.db at" the folder above."""
    from nbclient.exceptions import CellExecutionError

    download = tmp_path / "Downloads"
    download.mkdir()
    for name in ("explore.ipynb", "maintain.ipynb"):
        (download / name).write_bytes((NOTEBOOKS / name).read_bytes())
    monkeypatch.delenv("PAPERS_DB", raising=False)  # restored after the test
    monkeypatch.delenv("NEUROAI_ROOT", raising=False)
    with pytest.raises(CellExecutionError) as failure:  # nothing there yet: both paths named
        execute_notebook(download / "maintain.ipynb", None, root=None)
    assert (f"no papers.db at {tmp_path / 'papers.db'} nor at {download / 'papers.db'}: "
            in str(failure.value))
    (download / "papers.db").write_bytes(real_db.read_bytes())
    text = stream_text(execute_notebook(download / "explore.ipynb", None, root=None))
    assert text.startswith("papers.db built ") and f"No hand labels at {tmp_path}" in text
    assert (download / "papers.db").read_bytes() == real_db.read_bytes()


def test_a_notebook_opens_a_file_whose_path_holds_uri_characters_read_only(real_db, tmp_path):
    """'#' and '?' in the path: the notebook opens that file, read-only (a URI made by
    pasting the path in opened, and created, a writable file named `x`)."""
    folder = tmp_path / "x#y?z"
    folder.mkdir()
    db = folder / "papers.db"
    db.write_bytes(real_db.read_bytes())
    executed = execute_notebook(NOTEBOOKS / "maintain.ipynb", db)
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]
    assert db.read_bytes() == real_db.read_bytes()


def explore_search(db):
    """Return a read-only connection to `db` and explore.ipynb's search(), defined on it."""
    import sqlite3

    import pandas as pd

    conn = sqlite3.connect(read_only_uri(db), uri=True)
    namespace = {"sql": lambda sql, **params: pd.read_sql_query(sql, conn, params=params)}
    notebook = json.loads((NOTEBOOKS / "explore.ipynb").read_text())
    cell = next("".join(c["source"]) for c in notebook["cells"]
                if "def fts_query" in "".join(c["source"]))
    exec(cell.rsplit("\nsearch(", 1)[0], namespace)
    return conn, namespace["search"]


@pytest.mark.parametrize("query", ['"', " ", '""'])
def test_explore_search_for_nothing_finds_nothing(real_db, query):
    """Input with no word to search for is no rows, as on the site, not an FTS5 syntax error."""
    conn, search = explore_search(real_db)
    try:
        assert search(query).data.empty
        assert not search("decoding").data.empty
    finally:
        conn.close()


def test_explore_search_puts_the_best_matches_first_even_for_a_common_word(real_db):
    """search() orders by bm25 itself: rounded to 2 places, a word most papers hold scores
    -0.00 for every paper, and the matches came in file order instead of best first."""
    conn, search = explore_search(real_db)
    try:
        shown = list(search("neural", limit=5).data.title)
        best = [title for (title,) in conn.execute(
            "select papers.title from papers_fts join papers on papers.rowid = papers_fts.rowid "
            "where papers_fts match 'neural' order by bm25(papers_fts, 10.0, 1.0) limit 5")]
    finally:
        conn.close()
    assert shown == best


def test_explore_search_scores_its_matches_as_the_sites_search_does(real_db):
    """The notebook's search showed bm25 itself as "rank" (-7.23 first, lower is better);
    the site's search calls the place rank and shows bm25 negated as the score, higher
    better. The notebook shows the site's scores, best first."""
    import sqlite3

    import yaml
    from datasette.utils import escape_fts

    from neuroai_papers.build import ROOT

    canned = yaml.safe_load((ROOT / "metadata.yml").read_text())["databases"]["papers"][
        "queries"]["search"]["sql"]
    site = sqlite3.connect(read_only_uri(real_db), uri=True)
    site.create_function("escape_fts", 1, escape_fts)
    conn, search = explore_search(real_db)
    try:
        for words in ("brain-computer decoding", "neural"):
            shown = search(words, limit=5).data
            best = site.execute(canned, {"q": words, "page": 1}).fetchmany(5)
            assert "rank" not in shown.columns
            assert list(shown.title) == [row[2] for row in best]
            assert list(shown.score) == [row[-1] for row in best]
            assert (shown.score > 0).all() and shown.score.is_monotonic_decreasing
    finally:
        conn.close()
        site.close()


def test_explore_says_which_inferred_capture_years_are_only_the_earliest(tmp_path):
    """An `inferred` capture year is pinned by a paper another dump dates with its year; only
    `inferred_earliest` is the earliest year the evidence allows (the prose said every
    inferred year was)."""
    from conftest import ABSTRACT_A, ABSTRACT_B, blank_separated, rows, run_build

    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "a.txt").write_text(blank_separated(("Pinned paper", ABSTRACT_A, ["·", "Feb 25"])))
    (dumps / "b.txt").write_text(blank_separated(
        ("Pinned paper", ABSTRACT_A, ["·", "Feb 25, 2024"]), ("Other", ABSTRACT_B, ["·", "Mar 1, 2025"])))
    db = tmp_path / "papers.db"
    assert run_build(dumps, db).returncode == 0
    assert rows(db, "select name, capture_year, capture_method from dumps") == [
        ("a.txt", 2024, "inferred"), ("b.txt", 2026, "inferred_earliest")]
    prose = " ".join("".join(cell["source"]) for cell in
                     json.loads((NOTEBOOKS / "explore.ipynb").read_text())["cells"]
                     if cell["cell_type"] == "markdown")
    assert "an inferred year is the earliest" not in prose
    assert "`inferred_earliest` when it is only the earliest year" in prose


def test_explore_runs_on_a_database_whose_pages_showed_no_dates_nor_authors(dumps_dir, tmp_path):
    """Pages of the blank-lines layout show no metadata: no paper has a year or an author
    count. The tour says so instead of failing on a chart with nothing to draw."""
    from conftest import ABSTRACT_A, ABSTRACT_B, blank_separated, run_build

    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Decoding speech from EEG", ABSTRACT_A), ("Spiking networks", ABSTRACT_B)))
    download = tmp_path / "download"
    download.mkdir()
    db = download / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    executed = execute_notebook(NOTEBOOKS / "explore.ipynb", db, root=download, folder=download)
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "0 of 2 papers have a year" in text and "0 papers with an author count, 2 without" in text


def test_new_hand_labels_render_the_notebooks_again(tmp_path):
    """explore.ipynb scores the topic rules against tests/topic_labels.csv: `make serve`
    kept showing the old figures after the labels changed."""
    from neuroai_papers.site import ROOT, notebook_inputs

    assert ROOT / "tests" / "topic_labels.csv" in notebook_inputs(tmp_path / "papers.db")


def test_explore_on_a_database_of_other_dumps_says_the_labelled_papers_are_absent(dumps_dir,
                                                                                   tmp_path):
    """The hand labels are there (the repository) but the papers they label are not (a
    database built from other dumps): the scoring stopped with an AssertionError. It says so
    and scores nothing, in words that fit none of them being there (it said "72 of the 72
    hand-labelled papers are not in this database")."""
    from conftest import ABSTRACT_A, blank_separated, run_build
    from neuroai_papers.build import ROOT
    from neuroai_papers.topics import load_labels

    (dumps_dir / "a.txt").write_text(blank_separated(("Decoding speech from EEG", ABSTRACT_A)))
    db = tmp_path / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    executed = execute_notebook(NOTEBOOKS / "explore.ipynb", db)
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    labels = len(load_labels(ROOT / "tests" / "topic_labels.csv"))
    assert (f"This database holds none of the {labels} hand-labelled papers (built from other "
            "dumps?), e.g. ") in text
    assert "the rules are not scored" in text and " are not in this database" not in text


def chart_labels_of_cell(notebook: str, marker: str, db, monkeypatch) -> list[str]:
    """Run the cell of `notebook` that holds `marker` against `db`, after the first cell as
    in JupyterLab, and return the labels of its chart's x axis (its `ax`)."""
    import matplotlib.pyplot as plt

    try:
        ax = run_cells(notebook, db, marker, monkeypatch=monkeypatch)["ax"]
        return [label.get_text() for label in ax.get_xticklabels()]
    finally:
        plt.close("all")


def test_the_charts_of_dumps_tell_apart_dumps_whose_names_start_alike(dumps_dir, tmp_path,
                                                                       monkeypatch):
    """maintain.ipynb's bar chart and explore.ipynb's heat map named each dump by the first
    three characters of its name: `004_a.txt` and `0045_b.txt` were both `004`."""
    from conftest import ABSTRACT_A, ABSTRACT_B, blank_separated, run_build

    (dumps_dir / "004_a.txt").write_text(blank_separated(("Decoding speech", ABSTRACT_A)))
    (dumps_dir / "0045_b.txt").write_text(blank_separated(("Spiking networks", ABSTRACT_B)))
    db = tmp_path / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    names = ["0045_b", "004_a"]  # in name order, as the build reads them
    assert chart_labels_of_cell("maintain.ipynb", "plot.bar", db, monkeypatch) == names
    assert chart_labels_of_cell("explore.ipynb", "imshow", db, monkeypatch) == names


@pytest.mark.parametrize("notebook", ["explore.ipynb", "maintain.ipynb"])
def test_the_notebooks_open_papers_db_of_neuroai_root_by_default_as_readme_says(
        notebook, real_db, tmp_path, monkeypatch):
    """README said the default was `../papers.db`; the first cell takes `papers.db` in
    NEUROAI_ROOT (which defaults to `..`)."""
    from neuroai_papers.build import ROOT

    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "Both read `PAPERS_DB` (default `$NEUROAI_ROOT/papers.db`" in readme
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "papers.db").write_bytes(real_db.read_bytes())
    monkeypatch.setenv("NEUROAI_ROOT", str(clone))
    monkeypatch.delenv("PAPERS_DB", raising=False)
    first = next("".join(c["source"]) for c in json.loads((NOTEBOOKS / notebook).read_text())[
        "cells"] if c["cell_type"] == "code")
    namespace: dict = {}
    exec(first, namespace)
    namespace["conn"].close()
    assert namespace["DB"] == clone / "papers.db"


def stream_text(notebook) -> str:
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


def test_the_notebooks_count_one_of_a_kind_in_the_singular(dumps_dir, tmp_path):
    """A database of one dated paper with an author count, and one unreadable line: the
    notebooks said "1 of 1 papers have a year", "1 papers with an author count" and
    "1 problems in a.txt"."""
    from conftest import ABSTRACT_A, blank_separated, run_build

    dump = blank_separated(("Decoding speech from EEG", ABSTRACT_A, ["• 1 author", "·", "Mar 3, 2025"]))
    # A bulleted line before any paper is a problem of its line.
    (dumps_dir / "a.txt").write_text(dump.replace("Apr 17\n", "Apr 17\n\n• many authors\n", 1))
    download = tmp_path / "download"
    download.mkdir()
    db = download / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    explore = stream_text(execute_notebook(NOTEBOOKS / "explore.ipynb", db, root=download,
                                           folder=download))
    assert "1 of 1 paper has a year" in explore
    assert "1 paper with an author count, 0 without" in explore
    assert "1 problem in a.txt" in stream_text(execute_notebook(NOTEBOOKS / "maintain.ipynb", db))
    assert not re.search(r"\b1 (papers|problems)\b", explore)


def test_explore_counts_one_hand_label_in_the_singular(dumps_dir, tmp_path, monkeypatch):
    """With the hand labels of a clone: one labelled paper missing from the database "is"
    not in it, and the scores' chart of one labelled paper is titled on "1 hand-labelled
    paper"."""
    import matplotlib.pyplot as plt

    from conftest import ABSTRACT_A, blank_separated, run_build
    from neuroai_papers.build import ROOT

    (dumps_dir / "a.txt").write_text(blank_separated(("Decoding speech from EEG", ABSTRACT_A)))
    db = tmp_path / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    clone = tmp_path / "clone"
    (clone / "tests").mkdir(parents=True)
    (clone / "neuroai_papers").symlink_to(ROOT / "neuroai_papers")
    labels = clone / "tests" / "topic_labels.csv"
    labels.write_text("paper_id,topics,note\ndecoding-speech-from-eeg,EEG,\nabsent-paper,EEG,\n")
    text = stream_text(execute_notebook(NOTEBOOKS / "explore.ipynb", db, root=clone))
    assert "1 of the 2 hand-labelled papers is not in this database" in text
    # One label, of a paper the database holds: the scoring cell and its chart, as run.
    labels.write_text("paper_id,topics,note\ndecoding-speech-from-eeg,EEG,\n")
    monkeypatch.setenv("NEUROAI_ROOT", str(clone))
    monkeypatch.setenv("PAPERS_DB", str(db))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the scoring cell puts the clone first
    cells = ["".join(c["source"]) for c in json.loads((NOTEBOOKS / "explore.ipynb").read_text())[
        "cells"] if c["cell_type"] == "code"]
    namespace: dict = {}
    try:
        for cell in (cells[0], cells[-2], cells[-1]):
            exec(cell.replace("plt.show()", ""), namespace)
        assert namespace["ax"].get_title().startswith("Topic rules on 1 hand-labelled paper\n")
    finally:
        plt.close("all")
        namespace["conn"].close()


def run_cells(notebook: str, db, *markers: str, monkeypatch) -> dict:
    """Run the first code cell of `notebook` on `db`, then the cells that hold `markers`,
    as JupyterLab would (their charts left open); return the namespace they ran in."""
    cells = ["".join(c["source"]) for c in json.loads((NOTEBOOKS / notebook).read_text())[
        "cells"] if c["cell_type"] == "code"]
    monkeypatch.setenv("PAPERS_DB", str(db))
    namespace: dict = {}
    exec(cells[0], namespace)
    for marker in markers:
        exec(next(c for c in cells if marker in c).replace("plt.show()", ""), namespace)
    namespace["conn"].close()
    return namespace


def one_dated_paper(dumps_dir, tmp_path):
    """Build a database of one paper, dated with its year and with an author count."""
    from conftest import ABSTRACT_A, blank_separated, run_build

    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Decoding speech from EEG", ABSTRACT_A, ["• 3 authors", "·", "Mar 3, 2025"])))
    db = tmp_path / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    return db


def test_explore_draws_the_papers_of_a_single_year_on_whole_years_and_whole_papers(
        dumps_dir, tmp_path, monkeypatch):
    """Every dated paper of one year: the chart of papers per year spanned 1925 to 2125,
    and its one paper sat among ticks of 0.96 to 1.04 papers."""
    import matplotlib.pyplot as plt

    db = one_dated_paper(dumps_dir, tmp_path)
    try:
        axes = run_cells("explore.ipynb", db, "by_year = sql", monkeypatch=monkeypatch)["axes"]
        for ax in axes:
            low, high = ax.get_xlim()
            assert low < 2025 < high and high - low <= 2
            assert [t for t in ax.get_xticks() if low <= t <= high] == [2025]
            bottom, top = ax.get_ylim()
            assert bottom == 0 and 1 < top
            shown = [t for t in ax.get_yticks() if bottom <= t <= top]
            assert 1 in shown and all(t == int(t) for t in shown)
            assert not len(ax.yaxis.get_minorticklocs())
    finally:
        plt.close("all")


def test_explore_draws_no_empty_chart_of_papers_per_year(dumps_dir, tmp_path, monkeypatch,
                                                           capsys):
    """No paper with a topic has a year (pages without dates): three empty panels, their
    axes running 0 to 1, were drawn; it says why there is no chart instead."""
    import matplotlib.pyplot as plt

    from conftest import ABSTRACT_A, blank_separated, run_build

    (dumps_dir / "a.txt").write_text(blank_separated(("Decoding speech from EEG", ABSTRACT_A)))
    db = tmp_path / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    try:
        run_cells("explore.ipynb", db, "by_year = sql", monkeypatch=monkeypatch)
        assert not plt.get_fignums()
    finally:
        plt.close("all")
    shown = capsys.readouterr().out
    assert "No paper with a topic has a year: there is no chart of papers per year." in shown
    assert "0 of 1 paper has a year" in shown  # not "have": of one paper


def whole_ticks(axis, low, high) -> list[float]:
    """The ticks of `axis` (an Axis) between `low` and `high`."""
    return [t for t in axis.get_ticklocs() if low <= t <= high]


def test_the_charts_of_one_paper_count_whole_papers(dumps_dir, tmp_path, monkeypatch):
    """One paper, one record: the authors' chart (untitled), the dumps' bar chart and the heat
    map's colour bar counted in fractions: ticks of 0.2, 0.4 ... papers, 0.9 to 1.1 papers."""
    import matplotlib.pyplot as plt

    db = one_dated_paper(dumps_dir, tmp_path)
    try:
        authors = run_cells("explore.ipynb", db, "authors = sql", monkeypatch=monkeypatch)["ax"]
        assert authors.get_title() == "Papers by number of authors"
        heat_map = run_cells("explore.ipynb", db, "imshow", monkeypatch=monkeypatch)["image"]
        dumps = run_cells("maintain.ipynb", db, "plot.bar", monkeypatch=monkeypatch)["ax"]
        colour_bar = heat_map.colorbar
        for axis, (low, high) in ((authors.yaxis, authors.get_ylim()),
                                  (dumps.yaxis, dumps.get_ylim()),
                                  (colour_bar.ax.yaxis, (colour_bar.vmin, colour_bar.vmax))):
            ticks = whole_ticks(axis, low, high)
            assert 1 in ticks and all(t == int(t) for t in ticks), ticks
    finally:
        plt.close("all")


def luminance(rgb) -> float:
    red, green, blue = rgb[:3]
    return 0.299 * red + 0.587 * green + 0.114 * blue


def test_the_overlap_heat_map_writes_its_counts_legibly_on_every_cell(real_db, monkeypatch):
    """Every count was written in white, also on viridis' yellow cells: the largest dump's
    own count, the brightest cell, could hardly be read."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    try:
        namespace = run_cells("explore.ipynb", real_db, "pairs = sql", monkeypatch=monkeypatch)
        image, texts = namespace["image"], namespace["ax"].texts
        assert len(texts) == namespace["matrix"].size
        for text in texts:
            cell = image.to_rgba(int(text.get_text()))
            assert abs(luminance(cell) - luminance(to_rgb(text.get_color()))) > 0.45, text
    finally:
        plt.close("all")


def html_of_cell(notebook, marker: str) -> str:
    """The HTML a cell of an executed notebook shows (its tables)."""
    cell = next(c for c in notebook.cells if c.cell_type == "code" and marker in c.source)
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)


def test_the_notebooks_show_whole_texts_and_every_row_to_audit(real_db, monkeypatch):
    """pandas cut every text at 50 characters ("One row per paper, merged from every dump
    that..."): the documentation inside the file, and the two titles of a merge to compare;
    and maintain.ipynb showed the first and last five of a dump's 167 new papers."""
    from conftest import REAL_DUMPS, rows

    documented = rows(real_db, "select description from column_docs where table_name = 'papers'")
    explore = execute_notebook(NOTEBOOKS / "explore.ipynb", real_db)
    docs = html_of_cell(explore, "from column_docs")
    assert all(html_module.escape(text, quote=False) in docs for (text,) in documented)
    assert "...</td>" not in docs

    dump = sorted(p.name for p in REAL_DUMPS.glob("*.txt"))[1]
    (added,), = rows(real_db, "select new_papers from dumps where name = ?", (dump,))
    assert added > 60
    monkeypatch.setenv("DUMP", dump)
    maintain = execute_notebook(NOTEBOOKS / "maintain.ipynb", real_db)
    papers = html_of_cell(maintain, "where first_seen_dump = :dump")
    assert papers.split("<tbody>")[1].count("<tr>") == added
    assert "...</td>" not in papers


def test_maintain_takes_a_dump_named_as_its_chart_names_it_and_refuses_an_unknown_one(
        dumps_dir, tmp_path, monkeypatch):
    """DUMP named as the chart of dumps names it (without `.txt`), or misspelt: every table
    was empty and the notebook said "0 problems in 004_a" of a dump with a problem."""
    from conftest import ABSTRACT_A, ABSTRACT_B, blank_separated, run_build

    dump = blank_separated(("Decoding speech", ABSTRACT_A))
    (dumps_dir / "004_a.txt").write_text(dump.replace("Apr 17\n", "Apr 17\n\n• many authors\n", 1))
    (dumps_dir / "005_b.txt").write_text(blank_separated(("Spiking networks", ABSTRACT_B)))
    db = tmp_path / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    monkeypatch.setenv("DUMP", "004_a")
    namespace = run_cells("maintain.ipynb", db, "problems = sql", monkeypatch=monkeypatch)
    assert namespace["DUMP"] == "004_a.txt" and len(namespace["problems"]) == 1
    monkeypatch.setenv("DUMP", "004_b")
    with pytest.raises(ValueError, match=r"no dump named '004_b' in .*: it holds 004_a.txt, 005_b.txt"):
        run_cells("maintain.ipynb", db, monkeypatch=monkeypatch)


@pytest.mark.parametrize("notebook", ["explore.ipynb", "maintain.ipynb"])
def test_the_notebooks_take_a_path_from_the_home_folder(notebook, real_db, tmp_path, monkeypatch):
    """`%env PAPERS_DB=~/Downloads/papers.db` sets the variable to the path as written: the
    first cell looked for notebooks/~/Downloads/papers.db and stopped."""
    from neuroai_papers.build import ROOT

    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "`~` is your home folder, as in `%env PAPERS_DB=~/Downloads/papers.db`" in readme
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    (downloads / "papers.db").write_bytes(real_db.read_bytes())
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(NOTEBOOKS)
    namespace = run_cells(notebook, "~/Downloads/papers.db", monkeypatch=monkeypatch)
    assert namespace["DB"] == downloads / "papers.db"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_the_notebooks_write_counts_with_thousands_separators_as_the_build_does(path):
    """A large database's counts read "12,345 papers", as in the build's own summary."""
    import ast

    from neuroai_papers.build import counted as build_counted

    cells = nbformat.read(path, as_version=4).cells
    (definition,) = [node for cell in cells if cell.cell_type == "code"
                     for node in ast.parse(cell.source).body
                     if isinstance(node, ast.FunctionDef) and node.name == "counted"]
    namespace: dict = {}
    exec(compile(ast.Module([definition], type_ignores=[]), str(path), "exec"), namespace)
    for count in (0, 1, 2, 999, 1000, 12345, 1234567):
        assert namespace["counted"](count, "paper") == build_counted(count, "paper")
    assert namespace["counted"](12345, "paper") == "12,345 papers"


@pytest.mark.parametrize("notebook", ["explore.ipynb", "maintain.ipynb"])
def test_the_notebooks_take_an_empty_variable_as_unset(notebook, real_db, tmp_path, monkeypatch):
    """`%env PAPERS_DB=` (or NEUROAI_ROOT=) clears a variable in JupyterLab: the first cell
    took the empty path for the notebook's own folder and stopped at "no papers.db at
    .../notebooks". Empty is unset, as in the shell (and as maintain.ipynb's DUMP)."""
    clone = tmp_path / "clone"
    (clone / "notebooks").mkdir(parents=True)
    (clone / "papers.db").write_bytes(real_db.read_bytes())
    monkeypatch.chdir(clone / "notebooks")
    monkeypatch.setenv("NEUROAI_ROOT", "")
    namespace = run_cells(notebook, "", monkeypatch=monkeypatch)
    assert namespace["ROOT"] == clone and namespace["DB"] == clone / "papers.db"


def test_explore_documents_the_tables_and_columns_in_their_order(real_db, monkeypatch):
    """The documentation of papers' columns came sorted by name (abstract, authors,
    comments, ...: the order of column_docs' key), not in the table's order (id, title,
    abstract, ...); the tables come as metadata.yml lists them, papers first."""
    from conftest import rows

    cells = ["".join(c["source"]) for c in json.loads((NOTEBOOKS / "explore.ipynb").read_text())[
        "cells"] if c["cell_type"] == "code"]
    monkeypatch.setenv("PAPERS_DB", str(real_db))
    namespace: dict = {}
    exec(cells[0], namespace)
    try:
        tables = eval(next(c for c in cells if "from table_docs" in c), namespace)
        columns = eval(next(c for c in cells if "from column_docs" in c), namespace)
    finally:
        namespace["conn"].close()
    assert list(columns.column_name) == [name for (name,) in rows(
        real_db, "select name from pragma_table_info('papers')")]
    assert list(tables.table_name)[:3] == ["papers", "sightings", "dumps"]


def test_maintain_counts_the_merges_and_look_alikes_of_the_dump(dumps_dir, tmp_path):
    """The merges and look-alikes of a dump were bare tables, empty ones a header with no
    row ("Empty DataFrame" in a console): it counts them, as it counts problems."""
    from conftest import ABSTRACT_A, ABSTRACT_B, blank_separated, run_build

    (dumps_dir / "a.txt").write_text(blank_separated(("Decoding speech from EEG", ABSTRACT_A),
                                                     ("Spiking networks on chips", ABSTRACT_B)))
    (dumps_dir / "b.txt").write_text(blank_separated(("Decoding speech from the EEG", ABSTRACT_A),
                                                     ("Spiking networks on chips", ABSTRACT_A)))
    db = tmp_path / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    text = stream_text(execute_notebook(NOTEBOOKS / "maintain.ipynb", db))
    assert "1 merge of a differing title in b.txt" in text
    assert "1 look-alike kept apart in b.txt" in text


@pytest.mark.parametrize("notebook", ["explore.ipynb", "maintain.ipynb"])
def test_a_notebook_given_a_file_that_is_not_papers_db_says_so(notebook, tmp_path):
    """A failed download saved as papers.db (an error page), or another SQLite database:
    the first cell stopped at "Execution failed on sql ...: file is not a database" or
    "no such table: build_info". It names the file and what to do."""
    import sqlite3

    from nbclient.exceptions import CellExecutionError

    page = tmp_path / "page" / "papers.db"
    page.parent.mkdir()
    page.write_text("<html><body>502 Bad Gateway</body></html>\n")
    other = tmp_path / "other" / "papers.db"
    other.parent.mkdir()
    with sqlite3.connect(other) as conn:
        conn.execute("create table notes (text)")
    conn.close()
    for db, error in ((page, "file is not a database"), (other, "no such table: build_info")):
        with pytest.raises(CellExecutionError) as failure:
            execute_notebook(NOTEBOOKS / notebook, db)
        assert f"{db} is not a papers.db made by build_db.py ({error}): download it again" in str(
            failure.value)


def twenty_five_dumps(dumps_dir, tmp_path):
    """Build a database of 25 dumps, 000_d.txt to 024_d.txt, of two papers each."""
    from conftest import blank_separated, made_up_words, run_build

    for number in range(25):
        papers = [(f"Paper {made_up_words(f'title {n}', 3)}", made_up_words(f"text {n}", 30))
                  for n in (number, number + 1)]
        (dumps_dir / f"{number:03d}_d.txt").write_text(blank_separated(*papers))
    db = tmp_path / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    return db


def test_the_charts_of_dumps_show_at_most_twenty_dumps(dumps_dir, tmp_path, monkeypatch):
    """Past a few dozen dumps the overlap heat map drew a cell and a count for every pair
    (150 dumps: 22,500 labels run together, half a minute) and the bars of maintain.ipynb
    ran together: each shows 20 dumps, the newest or those up to DUMP, and says so."""
    import matplotlib.pyplot as plt

    db = twenty_five_dumps(dumps_dir, tmp_path)
    names = [f"{number:03d}_d.txt" for number in range(25)]
    try:
        explore = run_cells("explore.ipynb", db, "pairs = sql", monkeypatch=monkeypatch)
        assert list(explore["matrix"].index) == list(explore["matrix"].columns) == names[5:]
        assert explore["ax"].get_title() == "Papers shared by two dumps, the 20 newest of 25"
        assert len(explore["ax"].texts) == 400
        assert [explore["matrix"].iloc[i, i] for i in range(20)] == [2] * 20
        monkeypatch.setenv("DUMP", "021_d")
        maintain = run_cells("maintain.ipynb", db, "counts = sql", monkeypatch=monkeypatch)
        shown = [label.get_text() for label in maintain["ax"].get_xticklabels()]
        assert shown == [name.removesuffix(".txt") for name in names[2:22]]
        assert maintain["ax"].get_title() == (
            "Records and new papers per dump, the 20 up to 021_d.txt (of 25)")
    finally:
        plt.close("all")


def test_rendering_the_notebooks_without_a_database_says_so_in_one_error(tmp_path):
    """`python -m neuroai_papers.notebooks --db <missing>` ended in nbclient's traceback of
    the kernel and the cell; it says which notebook failed and the cell's own message."""
    import subprocess

    from neuroai_papers.build import ROOT

    missing = tmp_path / "papers.db"
    result = subprocess.run([sys.executable, "-m", "neuroai_papers.notebooks", "--db",
                             str(missing), "--out", str(tmp_path / "html")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert (f"error: the notebooks could not be rendered: explore.ipynb: FileNotFoundError: "
            f"no papers.db at {missing}") in result.stderr
    assert "Traceback" not in result.stderr and "CellExecutionError" not in result.stderr
    assert not list((tmp_path / "html").glob("*.html"))


def test_make_serve_renders_every_missing_page_and_says_what_it_reuses(tmp_path):
    """What `make serve` runs before serving (`python -m neuroai_papers.site prepare`), in a
    copy of the repository: a second run said nothing about the file it did not rebuild, and
    a page missing after a render stopped halfway was never rendered again (only the first
    notebook's page was looked at)."""
    import subprocess

    from conftest import repository_copy

    repo = repository_copy(tmp_path / "repo")

    def prepare() -> str:
        result = subprocess.run([sys.executable, "-m", "neuroai_papers.site", "prepare"],
                                cwd=repo, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stderr

    first = prepare()
    assert "built " in first and "rendered maintain.ipynb" in first
    assert "WARNING" not in first  # ipykernel's, of every render, on the kernel's transport
    (repo / "build" / "notebooks" / "maintain.html").unlink()  # a render stopped after explore
    second = prepare()
    assert "papers.db is up to date" in second and "built " not in second
    assert "rendered maintain.ipynb" in second
    assert (repo / "build" / "notebooks" / "maintain.html").exists()
    third = prepare()
    assert "papers.db is up to date" in third
    assert "notebooks' pages in build/notebooks/ are up to date" in third
    assert "rendered explore.ipynb" not in third and "rendered maintain.ipynb" not in third


def test_a_render_that_fails_writing_leaves_the_previous_pages_whole(real_db, rendered_notebooks,
                                                                     tmp_path):
    """Each page was written in place: a render that failed while writing (a full disk,
    here a file-size limit below a page's size) left it emptied or cut short, and the
    site served that. It goes through a temporary file renamed over the page; neither it
    nor a temporary a killed render left behind stays in the folder the site serves."""
    import subprocess

    from neuroai_papers.build import ROOT
    from test_faults import limit_file_size

    out = tmp_path / "html"
    shutil.copytree(rendered_notebooks, out)
    before = {page.name: page.read_bytes() for page in out.iterdir()}
    (out / ".explore.html.killed.tmp").write_text("<html>half a page")  # a killed render's
    limit = min(len(page) for page in before.values()) // 2  # the kernel's own files fit
    result = subprocess.run([sys.executable, "-m", "neuroai_papers.notebooks", "--db",
                             str(real_db), "--out", str(out)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, preexec_fn=limit_file_size(limit))
    assert {page.name: page.read_bytes() for page in out.iterdir()} == before
    assert result.returncode == 1, result.stderr
    assert "error: the notebooks' pages could not be written: " in result.stderr
    assert "Traceback" not in result.stderr
