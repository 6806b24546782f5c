"""The benchmark generator: realistic dumps the parser reads cleanly, with a truth to score against."""

from __future__ import annotations

import json
import shutil

from benchmarks.generate import generate_corpus
from conftest import rows, run_build
from neuroai_papers.parse import read_dump


def test_generated_corpus_is_repeatable_parses_cleanly_and_dedupes_to_the_truth(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    generate_corpus(first, 1500, seed=7)
    generate_corpus(second, 1500, seed=7)
    names = sorted(p.name for p in first.glob("*.txt"))
    assert names == sorted(p.name for p in second.glob("*.txt"))
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)

    truth = json.loads((tmp_path / "a-truth.json").read_text())
    layouts = set()
    records = 0
    for path in sorted(first.glob("*.txt")):
        parsed = read_dump(path)
        assert parsed.problems == [], path.name
        layouts.add(parsed.layout)
        records += len(parsed.records)
    assert records == truth["records"] == 1500
    assert layouts == {"blank_lines", "blank_lines_with_metadata", "no_blank_lines"}
    assert any(kind == "typo" for _, kind in truth["variants"]) and truth["lookalikes"]

    out = tmp_path / "papers.db"
    assert run_build(first, out).returncode == 0
    assert rows(out, "select count(*) from papers")[0][0] == truth["papers"]


def test_facets_missing_from_the_json_are_the_ones_that_timed_out():
    from benchmarks.run import default_facets, timed_out_facets

    expected = default_facets()
    assert {"published_year", "organization", "topics", "dumps"} <= set(expected)
    page = {"facet_results": {name: {} for name in expected if name != "topics"}}
    assert timed_out_facets(page, expected) == ["topics"]
    assert timed_out_facets({"facet_results": {}}, expected) == expected


def test_site_figures_of_a_kept_database(real_db, tmp_path, capsys):
    """`--site DB` times the site alone on a database built before, under any file name."""
    from benchmarks.run import QUERIES, main

    kept = tmp_path / "kept-1m.db"  # not papers.db: the run serves it under that name
    shutil.copyfile(real_db, kept)
    assert main(["--site", str(kept), "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    papers = rows(real_db, "select count(*) from papers")[0][0]
    assert printed.startswith(f"Site figures of kept-1m.db, {papers:,} papers.")
    assert "| ours: none | stock: none |" in printed
    assert printed.count("(the site's) | none |") == 1
    for query in QUERIES:
        assert f"\n| {query} | " in printed

