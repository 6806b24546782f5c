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


def test_a_private_disk_list_keeps_other_connections_out_and_a_shared_one_lets_them_read(
        tmp_path):
    import sqlite3

    for private in (True, False):
        path = tmp_path / f"scratch-{private}"
        with DiskList(path, private=private) as stored:
            for n in range(12):
                stored.append(f"fingerprint {n}")
            stored.flush()
            assert [stored[n] for n in (11, 0, 5)] == ["fingerprint 11", "fingerprint 0",
                                                       "fingerprint 5"]
            other = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0)
            try:
                if private:  # the list holds the file's lock until it is closed
                    with pytest.raises(sqlite3.OperationalError, match="locked"):
                        other.execute("select count(*) from items").fetchone()
                else:
                    assert other.execute("select count(*) from items").fetchone() == (12,)
            finally:
                other.close()
            stored.append("fingerprint 12")  # and it goes on being a list
            assert len(stored) == 13 and stored[12] == "fingerprint 12"
        assert not path.exists()
