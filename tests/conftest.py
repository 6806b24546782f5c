"""Shared fixtures: the real dumps, a database built from them, and small dumps written here."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from neuroai_papers.site import free_port
from neuroai_papers.uris import read_only_uri

ROOT = Path(__file__).resolve().parent.parent
REAL_DUMPS = ROOT / "dumps"
OUTPUT = ROOT / "test-output"  # screenshots and other artefacts a person may want to look at


def run_build(dumps: Path, out: Path, *extra: str, **options) -> subprocess.CompletedProcess:
    """Run the real build command as a user would, and return its result.

    `options` go to subprocess.run, e.g. a preexec_fn that sets resource limits.
    """
    return subprocess.run(
        [sys.executable, str(ROOT / "build_db.py"), "--dumps", str(dumps), "--out", str(out),
         *extra],
        capture_output=True, text=True, timeout=300, **options,
    )


def load_plugin(name: str):
    """Load plugins/<name>.py as Datasette does: by its path, not as part of a package."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def repository_copy(folder: Path) -> Path:
    """Copy what `python -m neuroai_papers.site` reads of the repository into `folder`, so
    that a test can build and serve its default papers.db there; return the copy."""
    for name in ("dumps", "neuroai_papers", "notebooks", "reference"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "metadata.yml", folder)
    (folder / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "topic_labels.csv", folder / "tests")
    return folder


def rows(db: Path, sql: str, params=()) -> list[tuple]:
    """Return a query's rows; read-only, so a missing file is an error, never a new one."""
    conn = sqlite3.connect(read_only_uri(db), uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="session")
def real_db(tmp_path_factory) -> Path:
    """papers.db built from the five real dumps, by the real command."""
    out = tmp_path_factory.mktemp("real") / "papers.db"
    result = run_build(REAL_DUMPS, out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def rendered_notebooks(real_db, tmp_path_factory) -> Path:
    """The notebooks executed against the real database and rendered to HTML."""
    from neuroai_papers.notebooks import render_notebooks

    out = tmp_path_factory.mktemp("notebooks")
    render_notebooks(real_db, out)
    return out


@pytest.fixture
def dumps_dir(tmp_path) -> Path:
    folder = tmp_path / "dumps"
    folder.mkdir()
    return folder


@pytest.fixture
def copy_real_dumps(dumps_dir) -> Path:
    for path in sorted(REAL_DUMPS.glob("*.txt")):
        shutil.copy(path, dumps_dir / path.name)
    return dumps_dir


def blank_separated(*records: str | tuple) -> str:
    """Return the text of a small dump in the blank-line layout, with the page header.

    Each record is (title, abstract) or (title, abstract, [metadata lines]).
    """
    lines = ["new", "", "Get trending papers in your email inbox!", "", "Subscribe", "",
             "Daily Papers", "", "byAK and the research community", "", "Apr 17", ""]
    for record in records:
        title, abstract, *meta = record
        lines += [title, "", abstract, ""]
        if meta:
            lines += [*meta[0], ""]
    return "\n".join(lines) + "\n"


def made_up_words(seed: str, count: int) -> str:
    """`count` pronounceable nonsense words drawn from `seed`: titles and abstracts that no
    two papers share, so that none is merged with another."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return " ".join("".join("bcdfghklmnprstvz"[int(c, 16)] + "aeiou"[int(c, 16) % 5]
                            for c in digest[4 * n:4 * n + 4]) for n in range(count))


ABSTRACT_A = (
    "We decode visual stimuli from fMRI recordings of six subjects. Our model maps voxels "
    "to the latent space of a diffusion model. Reconstructions match the seen images."
)
ABSTRACT_B = (
    "Spiking neural networks promise energy-efficient inference on neuromorphic chips. We "
    "train them with surrogate gradients. They reach the accuracy of conventional networks."
)
ABSTRACT_C = (
    "Electroencephalography signals are noisy and vary across subjects. We pretrain a "
    "transformer on ten thousand hours of EEG. It transfers to motor imagery tasks."
)


@contextlib.contextmanager
def running_site(db: Path):
    """Run the real Datasette server, with the project's own options, on a free loopback port."""
    from neuroai_papers.site import serve_command, wait_until_up

    port = free_port()
    command = serve_command(db, "127.0.0.1", port)
    command[0] = str(Path(sys.executable).with_name("datasette"))
    log = OUTPUT / f"datasette-{port}.log"
    OUTPUT.mkdir(exist_ok=True)
    with open(log, "w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_until_up(base, process)
            except RuntimeError as error:
                raise RuntimeError(f"{error}:\n{log.read_text()}") from None
            yield base
        finally:
            process.terminate()
            process.wait(timeout=20)


@pytest.fixture(scope="session")
def site(real_db):
    with running_site(real_db) as base:
        yield base


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright (never a downloaded browser).

    Module-scoped: Playwright's sync API keeps an event loop running while it is open,
    which the async in-process tests of other modules cannot share.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)
