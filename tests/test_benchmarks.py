"""The benchmark generator: realistic dumps the parser reads cleanly, with a truth to score against."""

from __future__ import annotations

import json
import shutil

import pytest

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
    sizes = []
    for path in sorted(first.glob("*.txt")):
        parsed = read_dump(path)
        assert parsed.problems == [], path.name
        layouts.add(parsed.layout)
        sizes.append(len(parsed.records))
    assert sum(sizes) == truth["records"] == 1500
    # The last dump is the incremental benchmark's new one: 60 records, as the issue asks.
    assert sizes[-1] == 60 and all(40 <= size <= 80 for size in sizes)
    assert layouts == {"blank_lines", "blank_lines_with_metadata", "no_blank_lines"}
    assert any(kind == "typo" for _, kind in truth["variants"]) and truth["lookalikes"]

    out = tmp_path / "papers.db"
    assert run_build(first, out).returncode == 0
    assert rows(out, "select count(*) from papers")[0][0] == truth["papers"]
    from benchmarks.run import built_papers, quality

    scored = quality(built_papers(out), truth)
    assert (scored["recall"], scored["precision"], scored["lookalikes_merged"]) == (1.0, 1.0, 0)
    assert scored["records"] == 1500 and scored["lookalikes"] > 0


def test_facets_missing_from_the_json_are_the_ones_that_timed_out():
    from benchmarks.run import default_facets, timed_out_facets

    expected = default_facets()
    assert {"published_year", "organization", "topics", "dumps"} <= set(expected)
    page = {"facet_results": {name: {} for name in expected if name != "topics"}}
    assert timed_out_facets(page, expected) == ["topics"]
    assert timed_out_facets({"facet_results": {}}, expected) == expected


def test_site_figures_of_a_kept_database(real_db, tmp_path, capsys):
    """`--site DB` times the site alone on a database built before, under any file name."""
    from benchmarks.run import FILTERED_SEARCHES, QUERIES, LISTINGS, main

    kept = tmp_path / "kept-1m.db"  # not papers.db: the run serves it under that name
    shutil.copyfile(real_db, kept)
    assert main(["--site", str(kept), "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    papers = rows(real_db, "select count(*) from papers")[0][0]
    assert printed.startswith(f"Site figures of kept-1m.db, {papers:,} papers.")
    assert "| ours: none | stock: none |" in printed
    assert printed.count("(the site's) | none |") == 1
    megabytes = f"{kept.stat().st_size / 1e6:,.0f} MB"
    assert f"| download of the whole file, {megabytes} (/papers.db, plugins/download.py) |" in printed
    for query in QUERIES:
        assert f"\n| {query} | " in printed
    # Searches within a facet's filter, ranked within it, are timed and their failures named.
    assert FILTERED_SEARCHES and all(f"\n| {page} | " in printed for page in FILTERED_SEARCHES)
    assert "| filtered search pages that failed (as above) | ours: none | stock: none | |" in printed
    # Sorted listings and the page after each, on both servers.
    assert "| listing pages that failed (as above) | ours: none | stock: none | |" in printed
    assert "\n| newest first (page 2) | " in printed
    assert all(f"\n| {page} (page 2) | " in printed for page in LISTINGS if page)


def test_best_of_takes_the_fastest_build_with_its_stages_the_largest_peak_and_each_fastest_floor():
    from benchmarks.run import best_of

    runs = [((130.0, 1700.0, "parse 40s"), {"all": 52.0, "papers": 36.0}),
            ((120.0, 1650.0, "parse 35s"), {"all": 55.0, "papers": 35.0})]
    assert best_of(runs) == ((120.0, 1700.0, "parse 35s"), {"all": 52.0, "papers": 35.0})


def test_several_builds_take_turns_with_their_floors_and_the_report_lists_them(tmp_path, capsys):
    """`--builds 2` builds and measures the floors twice, in turn; the table's build and
    floor are the fastest of the runs it lists."""
    import re

    from benchmarks.run import main

    assert main(["--records", "600", "--builds", "2", "--skip-search", "--dedup-sample", "200",
                 "--work", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("building (") == 2 and "building (2 of 2) ..." in printed
    builds, floors = re.search(r"\| builds and floors, in turn \(the fastest of each above\) \| "
                               r"([\d., ]+) s \| ([\d., ]+) s \| \|", printed).groups()
    builds, floors = ([float(x) for x in listed.split(", ")] for listed in (builds, floors))
    assert len(builds) == len(floors) == 2
    build, floor = re.search(r"\| build \(build_db.py, all stages\) \| ([\d.]+) s \| ([\d.]+) s",
                             printed).groups()
    assert (float(build), float(floor)) == (min(builds), min(floors))


def test_quality_scores_pairs_against_the_truth_and_counts_merged_lookalikes():
    from benchmarks.run import quality

    # Records 0-1 are one paper, 2 another, 3 a look-alike of the first (its own paper).
    truth = {"sightings": [0, 0, 1, 2], "lookalikes": [[3, 0]]}
    assert quality(["a", "a", "b", "c"], truth) == {
        "recall": 1.0, "precision": 1.0, "records": 4, "lookalikes": 1, "lookalikes_merged": 0}
    # The look-alike merged into the paper it imitates: a wrong pair with each of its records.
    merged = quality(["a", "a", "b", "a"], truth)
    assert merged["lookalikes_merged"] == 1 and merged["precision"] == 1 / 3
    # A repeat kept apart: half of nothing found.
    assert quality(["a", "x", "b", "c"], truth)["recall"] == 0.0


def test_percentiles_are_nearest_rank_for_every_figure():
    from benchmarks.run import percentile

    values = [float(v) for v in range(10, 0, -1)]  # 10 requests, in any order
    assert percentile(values, 0.5) == 5.0 and percentile(values, 0.95) == 10.0
    assert percentile([3.0], 0.5) == percentile([3.0], 0.95) == 3.0


def test_an_incremental_build_that_falls_back_stops_the_run(tmp_path):
    """The incremental figure is of an update: a build that says it adds the dump and then
    builds everything after all (a fallback) must not be timed as one."""
    import pytest

    from benchmarks.run import run_build as timed_build
    from conftest import ABSTRACT_A, ABSTRACT_C, blank_separated

    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "a.txt").write_text(blank_separated(("Leap paper", ABSTRACT_C, ["·", "Feb 29"]),
                                                 ("Shared paper", ABSTRACT_A, ["·", "Mar 21"])))
    out = tmp_path / "papers.db"
    timed_build(dumps, out)
    (dumps / "b.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21, 2025"])))
    with pytest.raises(SystemExit, match="fell back to a full build"):
        timed_build(dumps, out, "--incremental", expect="incremental: adding 1 new dump to")


def test_stock_is_asked_for_as_many_rows_as_the_sites_papers_page_shows(real_db):
    """Stock runs without metadata.yml, whose `size` makes the site's page shorter than
    Datasette's default: asked for papers_page_size() rows, it lists as many as the site."""
    import asyncio

    import yaml
    from datasette.app import Datasette

    from benchmarks.run import papers_page_size
    from neuroai_papers.site import SETTINGS, site_paths

    async def rows_shown(path, **options):
        ds = Datasette([], immutables=[str(real_db)], settings=SETTINGS, **options)
        return len((await ds.client.get(path)).json()["rows"])

    metadata = yaml.safe_load(site_paths()["metadata"].read_text())
    site = asyncio.run(rows_shown("/papers/papers.json?_search=brain", metadata=metadata))
    stock = asyncio.run(rows_shown(f"/papers/papers.json?_search=brain&_size={papers_page_size()}"))
    unasked = asyncio.run(rows_shown("/papers/papers.json?_search=brain"))
    assert site == stock < unasked


def test_stock_datasette_runs_without_any_plugin(real_db):
    """Stock, the search figures' floor, is Datasette alone: not even the plugins that
    installed packages register (datasette-atom, datasette-cluster-map), which the site loads."""
    from benchmarks.run import serve, stock_command
    from neuroai_papers.site import DIRECT, free_port, wait_until_up

    port = free_port()
    server = serve(stock_command(real_db, port))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, server)
        with DIRECT.open(f"{base}/-/plugins.json", timeout=30) as response:
            assert json.loads(response.read()) == []
        with DIRECT.open(f"{base}/papers/papers.json?_search=brain&_size=1", timeout=30) as response:
            assert len(json.loads(response.read())["rows"]) == 1
    finally:
        server.terminate()
        server.wait(timeout=20)


class LoopbackServers:
    """Plain HTTP servers on loopback, each answering every GET with 200 in a thread of its
    own, and the order in which the requests reached them (`arrivals`: each one's base)."""

    def __init__(self):
        self.servers, self.arrivals = [], []

    def start(self, status: int = 200) -> str:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from threading import Thread

        arrivals = self.arrivals

        class Answer(BaseHTTPRequestHandler):
            def do_GET(self):
                arrivals.append(f"http://127.0.0.1:{self.server.server_address[1]}")
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def stop(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def loopback():
    servers = LoopbackServers()
    yield servers
    servers.stop()


@pytest.fixture
def loopback_server(loopback):
    return loopback.start()


@pytest.fixture
def dead_proxy(monkeypatch):
    """Environment variables naming a proxy on a loopback port where nothing listens."""
    from neuroai_papers.site import free_port

    proxy = f"http://127.0.0.1:{free_port()}"
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_timed_requests_go_straight_to_loopback_whatever_proxy_the_machine_sets(
        loopback_server, dead_proxy):
    """The search figures time the servers on loopback, not a proxy named by http_proxy."""
    from benchmarks.run import search_latencies

    ranked, plain, ours_failed, stock_failed = search_latencies(loopback_server,
                                                                loopback_server, 1)
    assert (ours_failed, stock_failed) == ("none", "none")
    assert all(len(times) == 1 for times in [*ranked.values(), *plain.values()])


def test_load_test_goes_straight_to_loopback_whatever_proxy_the_machine_sets(
        loopback_server, dead_proxy):
    import asyncio

    from benchmarks import load

    paths = {kind: ["/"] for kind in load.KINDS}
    outcomes = asyncio.run(load.run_load(loopback_server, paths, 2, 0.5))
    assert sum(outcomes.connection_errors.values()) == 0 and outcomes.requests() > 0


def test_the_two_sides_of_the_search_figures_take_turns_request_by_request(loopback):
    """Ranked (site) and unranked (stock) pages are timed alternately, which goes first
    changing every time, not one server's block of requests after the other's."""
    from benchmarks.run import QUERIES, search_latencies

    ours, stock = loopback.start(), loopback.start()
    ranked, plain, ours_failed, stock_failed = search_latencies(ours, stock, 2)
    assert (ours_failed, stock_failed) == ("none", "none")
    assert all(len(ranked[q]) == len(plain[q]) == 2 for q in QUERIES)
    assert loopback.arrivals == [ours, stock, stock, ours] * len(QUERIES)


def test_the_related_papers_sample_is_spread_over_the_file_and_never_empty(real_db):
    """A small database (fewer than two papers per sampled one) is sampled whole, not
    skipped: an empty sample stopped small runs with an IndexError in the percentiles."""
    from benchmarks.run import paper_sample

    papers = rows(real_db, "select count(*) from papers")[0][0]
    everyone = paper_sample(real_db, papers + 10)
    assert len(everyone) == len(set(everyone)) == papers
    spread = paper_sample(real_db, papers // 3)
    assert len(spread) == papers // 3
    last = rows(real_db, "select max(rowid) from papers where id in "
                         f"({','.join('?' * len(spread))})", spread)[0][0]
    assert last > papers * 0.9  # up to the end of the file, not its first third


def test_a_build_that_read_other_records_than_the_generator_wrote_is_not_scored(tmp_path):
    """Quality pairs the build's n-th record with the truth's n-th: a dump whose records the
    build read differently (one lost) stops the run instead of scoring shifted pairs."""
    import pytest

    from benchmarks.run import dedup_figures

    dumps = tmp_path / "dumps"
    generate_corpus(dumps, 300, seed=4)
    truth = json.loads((tmp_path / "dumps-truth.json").read_text())
    out = tmp_path / "papers.db"
    assert run_build(dumps, out).returncode == 0
    assert dedup_figures(dumps, truth, 100, out)["build_quality"]["recall"] == 1.0
    # A record the generator wrote into dump 2 that the build did not read: cut the dump
    # before its last record (title and abstract), as a dump saved halfway would be.
    second = sorted(dumps.glob("*.txt"))[1]
    last = read_dump(second).records[-1]
    text = second.read_text(encoding="utf-8")
    second.write_text(text[:text.rindex(last.title)].rstrip() + "\n", encoding="utf-8")
    assert run_build(dumps, out).returncode == 0
    with pytest.raises(SystemExit, match="read .* records of dump 2, the generator wrote"):
        dedup_figures(dumps, truth, 100, out)


def test_related_papers_that_fail_are_reported_not_timed_as_answers(loopback):
    """A related-papers page that fails (here HTTP 500) is named in the report's failures,
    and the two sides take turns, whichever goes first alternating."""
    from benchmarks.run import related_latencies, search_lines

    ours, stock = loopback.start(status=500), loopback.start()
    related, row, ours_failed, stock_failed = related_latencies(ours, stock, ["p1", "p2"])
    assert ours_failed == ("/papers/related.json?paper_id=p1: HTTP 500 (1x); "
                           "/papers/related.json?paper_id=p2: HTTP 500 (1x)")
    assert stock_failed == "none" and len(related["p1"]) == len(row["p2"]) == 1
    assert loopback.arrivals == [ours, stock, stock, ours]
    search = {"p50_ratio": 1.0, "p95_ratio": 1.0, "failed": ("none", "none"),
              "filtered_ratios": (1.0, 1.0), "filtered_failed": ("none", "none"),
              "listing_ratios": (1.0, 1.0), "listings_failed": ("none", "none"), "listings": [],
              "related": (2, 0.01, 0.02, 0.001, 0.002), "related_failed": (ours_failed, "none"),
              "download": (1e6, 0.1, 0.2), "rows": [],
              "facets_timed_out": {400: {}, 200: {}}}
    assert (f"| related papers and stock rows that failed (HTTP status or no answer) "
            f"| ours: {ours_failed} | stock: none | |") in search_lines(search)
