"""The build's scratch lists on disk behave as lists and leave nothing behind."""

from __future__ import annotations

import pytest

from neuroai_papers import texts
from neuroai_papers.texts import DiskList


def test_disk_list_reads_back_what_was_appended_across_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(texts, "BATCH", 3)  # small batches, so values live on both sides
    path = tmp_path / "scratch"
    values = [f"abstract {n} " + "é" * n for n in range(10)]
    with DiskList(path) as stored:
        for value in values:
            stored.append(value)
        assert len(stored) == 10 and stored.stored == 9 and stored.pending == [values[9]]
        assert [stored[n] for n in range(10)] == values
        assert list(stored) == values == list(stored)  # every pass reads everything again
        with pytest.raises(IndexError):
            stored[10]
        assert path.exists()
    assert not path.exists()
