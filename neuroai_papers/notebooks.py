"""Execute the notebooks against a database and render them to HTML for the site.

    python -m neuroai_papers.notebooks [--db papers.db] [--out build/notebooks]

The notebooks in notebooks/ are committed without outputs. This runs each one top to
bottom (nbclient, in notebooks/ as its working folder, with PAPERS_DB pointing at the
database) and writes `<name>.html` (nbconvert), each through a temporary file renamed over
the page, so that a failed run leaves the previous page whole. Any error in any cell fails
the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import nbformat
from jinja2 import DictLoader
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

from .build import ROOT
from .site import remove_pages_being_written, write_page

NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "build" / "notebooks"
TIMEOUT = 600  # seconds per cell
# nbconvert's page loads require.js, MathJax and Mermaid from a CDN, for widgets, formulas
# and diagrams these notebooks do not have: offline (and on a site that should not call
# third parties) they only failed in the console. The template leaves them out.
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{#- A chart is an image: its text alternative is its cell's `alt` (cell metadata, which
    JupyterLab keeps and does not show); nbconvert writes none. -#}
{%- block data_png -%}
{{ super() | replace('<img src=', '<img alt="' ~ (cell.metadata.get('alt', '') | escape_html) ~ '" src=', 1) }}
{%- endblock data_png -%}
{%- block body_header -%}{{ super() }}
<p style="padding: 0 1em"><a href="../">← NeuroAI papers</a> ·
<a href="../papers.db">Download papers.db</a> · this page is the notebook
<code>{{ resources['metadata']['name'] }}.ipynb</code>, run on that file</p>
{%- endblock body_header -%}
"""


# The kernel's own log, below errors, is left out: every render printed ipykernel's warning
# that a kernel on TCP is unencrypted, twice per `make serve`, about a kernel that listens on
# loopback for this render alone and runs public data. A failing cell is reported as such.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def execute_notebook(path: Path, db: Path | None, root: Path | None = ROOT,
                     folder: Path | None = None) -> nbformat.NotebookNode:
    """Return the notebook at `path` executed against `db`, with `root` as the repository it
    may read (the hand labels) and `folder` as its working folder (its own by default);
    raise on the first failing cell. A `db` or `root` of None leaves PAPERS_DB or
    NEUROAI_ROOT unset, so that the notebook looks where it does by default."""
    notebook = nbformat.read(path, as_version=4)
    set_or_unset("PAPERS_DB", db and db.resolve())
    set_or_unset("NEUROAI_ROOT", root)
    client = NotebookClient(notebook, timeout=TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(folder or path.parent)}},
                            extra_arguments=KERNEL_ARGUMENTS)
    client.execute()
    return notebook


def set_or_unset(name: str, value: Path | None) -> None:
    """Set the environment variable `name` (which the kernel inherits), or unset it."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = str(value)


class NotebookFailed(Exception):
    """A notebook's cell raised while it was rendered: the notebook and the cell's error."""


def render_notebooks(db: Path, out: Path = OUT) -> list[Path]:
    """Execute every notebook and write its HTML to `out`; return the files written. Raise
    NotebookFailed, naming the notebook and its cell's error, if a cell fails."""
    out.mkdir(parents=True, exist_ok=True)
    remove_pages_being_written(out)
    written = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        exporter = HTMLExporter(extra_loaders=[DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})],
                                template_file="offline.html.j2")
        try:
            notebook = execute_notebook(path, db)
        except CellExecutionError as error:
            # The cell's own message is what a reader needs (the first cell says which file
            # it looked for); nbclient's traceback of the kernel and the cell was 60 lines.
            raise NotebookFailed(f"{path.name}: {error.ename}: {error.evalue}") from None
        notebook.metadata["title"] = notebook_title(notebook, path.stem)
        html, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": path.stem}})
        target = out / f"{path.stem}.html"
        write_page(target, html)
        written.append(target)
        print(f"rendered {path.name} -> {target}", file=sys.stderr)
    return written


def notebook_title(notebook: nbformat.NotebookNode, default: str) -> str:
    """The notebook's first heading: the rendered page's <title> (nbconvert's is "Notebook")."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return default


# The notebook metadata the notebooks are committed with. JupyterLab writes its own on save
# (the kernel's display name, the Python version it ran): a commit would carry that noise.
COMMITTED_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
RUN_METADATA = ("execution", "collapsed", "scrolled")  # per cell, what a run or a view adds


def strip_outputs(model: dict, **_) -> None:
    """JupyterLab's pre-save hook (`make lab`): save a notebook as the notebooks are
    committed: without outputs, execution counts, the metadata of a run, or JupyterLab's
    own notebook metadata. The open notebook keeps them on screen."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    content = model["content"]
    if isinstance(content.get("metadata"), dict):
        content["metadata"].update(json.loads(json.dumps(COMMITTED_METADATA)))
    for cell in content.get("cells", []):
        if isinstance(cell.get("metadata"), dict):
            for key in RUN_METADATA:
                cell["metadata"].pop(key, None)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neuroai_papers.notebooks")
    parser.add_argument("--db", type=Path, default=ROOT / "papers.db")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    try:
        render_notebooks(args.db, args.out)
    except NotebookFailed as failed:
        print(f"error: the notebooks could not be rendered: {failed}\n(open the notebook in "
              f"JupyterLab, `make lab`, to see the cell)", file=sys.stderr)
        return 1
    except OSError as error:  # a full disk: the previous pages are left whole (write_page)
        print(f"error: the notebooks' pages could not be written: {error} (a page not "
              f"written again is left as it was)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
