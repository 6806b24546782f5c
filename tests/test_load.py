"""The load test (benchmarks/load.py), bounded: 32 clients for 5 s, no 5xx, no dropped request."""

from __future__ import annotations

from benchmarks import load
from conftest import ROOT

CLIENTS = 32
SECONDS = 5


def test_the_site_serves_32_clients_without_errors(real_db):
    outcomes = load.measure(real_db, CLIENTS, SECONDS)
    assert outcomes.server_errors() == 0, load.table(outcomes)
    assert sum(outcomes.connection_errors.values()) == 0, load.table(outcomes)
    for kind in load.KINDS:
        assert outcomes.requests(kind) >= CLIENTS // len(load.KINDS), (kind, load.table(outcomes))
        assert set(outcomes.statuses[kind]) == {200}, (kind, outcomes.statuses[kind])
    assert outcomes.requests() / outcomes.seconds > 10, load.table(outcomes)


def test_every_kind_has_paths_from_the_database(real_db):
    paths = load.request_paths(real_db)
    assert set(paths) == set(load.KINDS)
    assert all(paths[kind] for kind in load.KINDS)
    assert len(paths["paper"]) == min(load.SAMPLE_PAPERS, 332)
    assert any("_stream=on" in path for path in paths["csv"])


def test_results_section_replaces_its_last_run_and_keeps_the_benchmark_sections(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nIntro.\n\n## 20,000 records\n\nBuild.\n\n"
                       "## Where the targets stand (issue: scale)\n\n- 1M records\n")
    load.write_results("## Load test\n\nfirst run\n", results)
    load.write_results("## Load test\n\nsecond run\n", results)
    text = results.read_text()
    assert text.count("## Load test") == 1 and "second run" in text and "first run" not in text
    assert text.index("## 20,000 records") < text.index("## Load test") < text.index(
        "## Where the targets stand")
    assert "Intro." in text and "- 1M records" in text


def test_a_benchmark_run_keeps_the_load_test_section(tmp_path, monkeypatch):
    from benchmarks import run

    results = tmp_path / "RESULTS.md"
    results.write_text((ROOT / "benchmarks" / "RESULTS.md").read_text())
    load.write_results("## Load test\n\nthe figures\n", results)
    monkeypatch.setattr(run, "RESULTS", results)  # write to the copy, not the real file
    run.write_results(20_000, "## 20,000 records, 1 dumps -> 1 papers\n\nnew figures\n")
    text = results.read_text()
    assert "## Load test\n\nthe figures" in text and "new figures" in text


def test_the_load_tests_percentiles_are_nearest_rank_as_the_suites():
    """Of 100 requests, p99 is the 99th fastest and p50 the 50th (not the 100th and 51st)."""
    values = [float(v) for v in range(100, 0, -1)]
    assert (load.percentile(values, 0.99), load.percentile(values, 0.5)) == (99.0, 50.0)
    assert load.percentile([], 0.5) == 0.0
