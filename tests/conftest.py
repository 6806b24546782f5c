"""Shared fixtures: the real dumps, a database built from them, and small dumps written here."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL_DUMPS = ROOT / "dumps"
OUTPUT = ROOT / "test-output"  # screenshots and other artefacts a person may want to look at


def run_build(dumps: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run the real build command as a user would, and return its result."""
    return subprocess.run(
        [sys.executable, str(ROOT / "build_db.py"), "--dumps", str(dumps), "--out", str(out),
         *extra],
        capture_output=True, text=True, timeout=300,
    )


def rows(db: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(db)
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
