"""Related papers: bounded, explained by shared words, and finding the obvious neighbour."""

from __future__ import annotations

from conftest import ABSTRACT_A, ABSTRACT_B, ABSTRACT_C, rows
from neuroai_papers.related import PER_PAPER, POSTINGS_CAP, related_rows, words


def paper(pid, title, abstract):
    return {"id": pid, "title": title, "abstract": abstract}


def test_the_paper_on_the_same_subject_is_the_closest():
    papers = [
        paper("a", "Reconstructing images from fMRI with diffusion", ABSTRACT_A),
        paper("b", "Diffusion priors for fMRI image reconstruction", ABSTRACT_A.replace("six", "eight")),
        paper("c", "Surrogate gradients for spiking networks", ABSTRACT_B),
        paper("d", "EEG transformers for motor imagery", ABSTRACT_C),
        paper("e", "Spiking networks on neuromorphic chips", ABSTRACT_B + " Loihi chips."),
    ]
    related = related_rows(papers)
    best = {row["paper_id"]: row["related_id"] for row in related if row["rank"] == 1}
    assert best["a"] == "b" and best["b"] == "a"
    assert best["c"] == "e"
    shared = next(r["shared_terms"] for r in related if r["paper_id"] == "a" and r["rank"] == 1)
    assert "fmri" in shared and "diffusion" in shared


def test_real_related_rows_are_bounded_scored_and_explained(real_db):
    per_paper = rows(real_db, "select max(n) from (select count(*) as n from related group by paper_id)")
    assert per_paper[0][0] <= PER_PAPER
    assert rows(real_db, "select count(*) from related where paper_id = related_id") == [(0,)]
    for paper_id, related_id, terms, score in rows(
            real_db, "select paper_id, related_id, shared_terms, score from related limit 200"):
        assert 0 < score <= 1
        texts = [set(words(" ".join(r))) for r in (
            rows(real_db, "select title, abstract from papers where id = ?", (pid,))[0]
            for pid in (paper_id, related_id))]
        assert all(term in texts[0] and term in texts[1] for term in terms.split(", "))


def test_common_words_do_not_make_papers_related():
    papers = [paper(str(i), f"Neural network study {i}", f"A neural network result number {i}.")
              for i in range(50)]
    assert related_rows(papers) == []
    assert POSTINGS_CAP >= PER_PAPER


def test_counted_words_equal_counting_the_filtered_words():
    from collections import Counter

    from neuroai_papers.related import counted_words
    texts = [ABSTRACT_A, ABSTRACT_B, ABSTRACT_C, "An a-b x2 q ab1 de-risk TO the THE 3d İstanbul ﬁne",
             "", "ok-", "co-op x-y-z mri fMRI fmri's"]
    for text in texts:
        assert counted_words(text) == Counter(words(text))


def test_the_worker_process_gives_the_rows_computed_in_place(tmp_path):
    """Large corpora get their related papers from a worker process: the same rows."""
    from benchmarks.generate import generate_corpus
    from conftest import run_build
    from neuroai_papers.parallel import WORKER_MIN_PAPERS

    dumps = tmp_path / "dumps"
    generate_corpus(dumps, 8_000, seed=5)
    out = tmp_path / "papers.db"
    result = run_build(dumps, out)
    assert result.returncode == 0, result.stderr
    assert "related in process" in result.stderr
    papers = [{"id": i, "title": t, "abstract": a}
              for i, t, a in rows(out, "select id, title, abstract from papers order by rowid")]
    assert len(papers) >= WORKER_MIN_PAPERS
    stored = rows(out, "select paper_id, related_id, rank, score, shared_terms from related "
                       "order by rowid")
    computed = [tuple(r.values()) for r in related_rows(papers)]
    assert stored == computed and len(stored) > len(papers)
