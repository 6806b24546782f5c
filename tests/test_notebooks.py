"""The notebooks run top to bottom against a freshly built database, and are committed clean."""

from __future__ import annotations

import json

import pytest

from neuroai_papers.notebooks import NOTEBOOKS, execute_notebook

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
    assert "overall" in html and "precision" in html
