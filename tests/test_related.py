"""Related papers (plugins/related_papers.py): found from the full-text index when asked for,
bounded, explained by shared words, and finding the obvious neighbour."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys

import pytest

from conftest import ABSTRACT_A, ABSTRACT_B, ABSTRACT_C, ROOT, blank_separated, rows, run_build


def load_plugin():
    spec = importlib.util.spec_from_file_location("related_papers", ROOT / "plugins" / "related_papers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("related_papers", module)
    spec.loader.exec_module(module)
    return module


related = load_plugin()


def build(tmp_path, dumps_dir, *papers) -> sqlite3.Connection:
    (dumps_dir / "a.txt").write_text(blank_separated(*papers), encoding="utf-8")
    out = tmp_path / "p.db"
    result = run_build(dumps_dir, out)
    assert result.returncode == 0, result.stderr
    return sqlite3.connect(f"file:{out}?mode=ro", uri=True)


def ids_and_words(conn, paper_id):
    return [(r["id"], r["shared_words"]) for r in related.similar_papers(conn, paper_id)]


def test_the_paper_on_the_same_subject_is_the_closest(tmp_path, dumps_dir):
    conn = build(tmp_path, dumps_dir,
                 ("Reconstructing images from fMRI with diffusion", ABSTRACT_A),
                 ("Diffusion priors for fMRI image reconstruction", ABSTRACT_A.replace("six", "eight")),
                 ("Surrogate gradients for spiking networks", ABSTRACT_B),
                 ("EEG transformers for motor imagery", ABSTRACT_C),
                 ("Spiking networks on neuromorphic chips", ABSTRACT_B + " Loihi chips."))
    first = ids_and_words(conn, "reconstructing-images-from-fmri-with-diffusion")[0]
    assert first[0] == "diffusion-priors-for-fmri-image-reconstruction"
    assert {"fmri", "diffusion"} <= set(first[1].split(", "))
    assert ids_and_words(conn, "surrogate-gradients-for-spiking-networks")[0][0] == \
        "spiking-networks-on-neuromorphic-chips"
    assert related.similar_papers(conn, "no-such-paper") == []


def test_words_in_most_papers_do_not_make_papers_related(tmp_path, dumps_dir):
    conn = build(tmp_path, dumps_dir, *[(f"Neural network study {i}", f"A neural network result, case {i}.")
                                        for i in range(30)])
    assert all(related.similar_papers(conn, pid) == [] for (pid,) in conn.execute("select id from papers"))


def test_real_related_papers_are_bounded_ranked_and_explained(real_db):
    conn = sqlite3.connect(f"file:{real_db}?mode=ro", uri=True)
    some = [pid for (pid,) in conn.execute("select id from papers order by rowid limit 60")]
    found = {pid: related.similar_papers(conn, pid) for pid in some}
    assert sum(1 for papers in found.values() if papers) > 50
    for pid, papers in found.items():
        assert len(papers) <= related.PER_PAPER
        assert pid not in {p["id"] for p in papers}
        assert [p["rank"] for p in papers] == list(range(1, len(papers) + 1))
        assert [p["score"] for p in papers] == sorted((p["score"] for p in papers), reverse=True)
        mine = " ".join(conn.execute("select title, abstract from papers where id = ?", (pid,)).fetchone()).lower()
        for paper in papers:
            words = paper["shared_words"].split(", ")
            assert len(words) >= related.MIN_SHARED
            theirs = " ".join(conn.execute("select title, abstract from papers where id = ?",
                                           (paper["id"],)).fetchone()).lower()
            # A shared word is written in this paper; the other holds the same index term.
            assert all(word in mine for word in words)
            assert all(conn.execute("select count(*) from papers_fts where rowid = "
                                    "(select rowid from papers where id = ?) and papers_fts match ?",
                                    (paper["id"], f'"{word}"')).fetchone()[0] == 1 for word in words), theirs[:80]


def test_terms_count_the_papers_holding_each_index_term(real_db):
    for word, term in [("decoding", "decod"), ("spiking", "spike"), ("fMRI", "fmri")]:
        (held,) = rows(real_db, "select papers from terms where term = ?", (term,))[0]
        (matching,) = rows(real_db, "select count(*) from papers_fts where papers_fts match ?", (word,))[0]
        assert held == matching > 0
    assert rows(real_db, "select count(*) from terms where papers < 1") == [(0,)]


def test_the_sql_function_gives_what_the_python_gives(real_db):
    conn = sqlite3.connect(f"file:{real_db}?mode=ro", uri=True)
    related.prepare_connection(conn, "papers")
    pid = conn.execute("select id from papers order by rowid limit 1 offset 7").fetchone()[0]
    assert json.loads(conn.execute("select related_papers(?)", (pid,)).fetchone()[0]) == \
        related.similar_papers(conn, pid) != []


@pytest.mark.parametrize("title", ["Drop table papers; --", 'Quote " and \'single\'', "a AND b OR NOT c NEAR(d)"])
def test_query_syntax_in_a_paper_is_read_as_words(tmp_path, dumps_dir, title):
    conn = build(tmp_path, dumps_dir, (title + " fmri diffusion", ABSTRACT_A),
                 ("Diffusion fmri " + title, ABSTRACT_A.replace("six", "eight")), ("Other", ABSTRACT_C))
    ids = [pid for (pid,) in conn.execute("select id from papers order by rowid")]
    assert [p["id"] for p in related.similar_papers(conn, ids[0])][:1] == [ids[1]]
