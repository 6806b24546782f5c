"""The benchmark suite: every figure is a ratio to a floor measured in the same run.

    python -m benchmarks.run                      # default size: 25-45 s on 2 cores, more when busy
    python -m benchmarks.run --records 100000     # larger sizes on request
    python -m benchmarks.run --write-results      # also write benchmarks/RESULTS.md
    python -m benchmarks.run --builds 2           # build and floors twice, in turn: the fastest

1. build: build_db.py's wall time against a floor that does the least the same output
   needs: read and split the same files, insert the same rows (every row of every table
   the build writes) with one raw executemany per table in one transaction, and build the
   same FTS5 index. Also against the narrower floor of earlier runs, which inserts the
   papers rows alone, and peak memory (PSS).
2. dedup: recall/precision of the whole build against the generator's known duplicates
   and look-alikes; and on a sample (the first records, where the duplicates of each
   other sit), the project's blocked deduplication against exhaustive all-pairs rapidfuzz:
   time and recall.
3. incremental build: adding the last dump to a database of all the others
   (`build_db.py --incremental`, which must update, not fall back to a full build)
   against the full build of those others. (Tests hold an update equal to a full build.)
4. search and facets through Datasette, over loopback: the papers table with a search
   term, ranked matches, snippets and the default facets, against stock Datasette's own
   unranked search page on the same file, with the site's settings (no suggested facets,
   time limits) and no plugins, asked for as many rows as the site's page shows; p50/p95
   per query, common to rare words. Stock lists the matches in its own order (rowid); the
   site's page lists them newest first and ranks the best ten above them.
   The two servers are asked in turn, request by request.
   A ranked page that gives up ranking counts as failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import math
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path

import yaml
from rapidfuzz import fuzz, process

from benchmarks.generate import generate_corpus
from neuroai_papers.dedupe import (ABSTRACT_MIN_SCORE, TITLE_MIN_SCORE, Sighting,
                                   abstract_score, deduplicate, title_key)
from neuroai_papers.parse import read_dump
from neuroai_papers.site import DIRECT, SETTINGS, free_port, serve_command, setting_options, wait_until_up
from neuroai_papers.uris import read_only_uri
from neuroai_papers.write import PAGE_BYTES, build_search_index

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
DATASETTE_FACET_LIMIT_MS = 200  # Datasette's own default facet_time_limit_ms
QUERIES = ["neural", "brain", "spiking", "fmri decoding", "kolmogorov", "hippocampus replay"]
# Pages a visitor reaches by clicking a facet, with and without a search (for the facets only).
FILTERED_PAGES = ["_search=brain&published_year=2025",
                  "_search=neural&topics__arraycontains=biological-plausibility",
                  "topics__arraycontains=brain-encoding", "dumps_seen=2"]
# Pages of Datasette's other filters (and of values few or no papers have), for the facets
# and the page's own success only: at a million papers the facets of `__isnull`, `__in`,
# `__arraynotcontains` ... gave up, and a topic no paper carries failed the whole page.
FILTER_KIND_PAGES = ["date_method__isnull=1", "_search=neural&date_method__notblank=1",
                     "topics__arraynotcontains=EEG", "_search=brain&dumps_seen__in=1,2",
                     "_search=neural&topics__arraycontains=no-such-topic",
                     "_search=neural&date_method=no-such-method", "published__date=2025-06-01"]
# Those with a search are timed too, ranked within the filter: the ranked box's filter once
# made every filtered search at a million papers give up ranking, which no unfiltered search
# showed.
FILTERED_SEARCHES = [page for page in FILTERED_PAGES if page.startswith("_search=")]
# Listings a visitor pages through, reached by a column's sort menu or a click in the topics
# facet, and the page after each (its "Next page" link, `_next=`): at a million papers the
# date oldest first (half the papers have none, and come first) and page 2 of a descending
# sort by id or by last dump failed, every page 2 took 2-3.7 s (plugins/stable_pages.py,
# plugins/facets.py), and a topic two papers in three carry 1.8-2.0 s (search_plan.py).
LISTINGS = ["", "_sort=published", "_sort=authors", "_sort=organization", "_sort=title",
                   "_sort_desc=id", "_sort_desc=last_seen_dump", "_sort_desc=comments",
                   "topics__arraycontains=biological-plausibility"]


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def run_build(dumps: Path, out: Path, *extra: str, expect: str = "") -> tuple[float, float, str]:
    """Return (seconds, peak MiB, stage times) of the real build command, in a fresh process;
    stop if its output lacks `expect`.

    Peak memory is the largest total proportional set size (PSS) of the build and any child
    process, sampled every 0.2 s in a thread (getrusage would count a spawned child's
    inherited pages); the clock stops when the build ends, not at the sampler's next tick.
    A build whose output says "building everything" fell back to a full build: an
    `expect`ed update that does so stops the run too.
    """
    command = [PYTHON, str(ROOT / "build_db.py"), "--dumps", str(dumps), "--out", str(out), *extra]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
                                   text=True)
        peak = [0]
        sampler = threading.Thread(target=sample_peak, args=(process, peak), daemon=True)
        sampler.start()
        process.wait()
        seconds = time.perf_counter() - started
        sampler.join()
        log.seek(0)
        stderr = log.read()
    peak_kib = peak[0]
    fell_back = "--incremental" in extra and "building everything" in stderr
    if process.returncode != 0 or expect not in stderr or fell_back:
        raise SystemExit(f"build failed, did not say {expect!r} or fell back to a full "
                         f"build:\n{stderr[-2000:]}")
    stages = next((line.split(":", 1)[1].strip() for line in stderr.splitlines()
                   if line.startswith("stages:")), "")
    return seconds, peak_kib / 1024, stages


def sample_peak(process: subprocess.Popen, peak: list[int]) -> None:
    """Keep in peak[0] the largest PSS of `process` and its children until it ends."""
    while process.poll() is None:
        peak[0] = max(peak[0], pss_kib(process.pid))
        time.sleep(0.2)


def pss_kib(pid: int) -> int:
    """Return the PSS of a process and its children, in KiB (0 once it is gone)."""
    total = 0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    except OSError:
        return total
    return total + sum(pss_kib(int(child)) for child in children)


def split_last_dump(dumps: Path, scratch: Path) -> tuple[Path, Path]:
    """Return a folder of every dump but the last (the existing corpus) and the last dump."""
    existing = scratch / "existing"
    existing.mkdir()
    *earlier, last = sorted(dumps.glob("*.txt"))
    for path in earlier:
        os.link(path, existing / path.name)
    return existing, last


def written_tables(built: Path) -> list[str]:
    """Return the tables the build writes rows into itself (not FTS5's own or SQLite's)."""
    conn = sqlite3.connect(built)
    try:
        return [name for (name,) in conn.execute(
            "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' "
            "and name not like 'papers_fts%' order by name")]
    finally:
        conn.close()


def floor(dumps: Path, built: Path, scratch: Path, tables: list[str]) -> float:
    """Return the floor's seconds: read and split the dumps, insert the rows `tables` hold in
    the built database with one raw executemany each in one transaction, and build the same
    FTS5 index (write.build_search_index: the build's declaration and write buffer, in one
    pass over the table), merged into one segment (`optimize`) as the build merges it.

    The file has the build's pages (write.PAGE_BYTES) and, as the build while it writes,
    no journal and no syncing. Its tables have no keys, indexes or WITHOUT ROWID: the least
    the rows need. The rows are fetched from the built database before each insert, outside
    the timing: the floor stands for a program that has them already.
    """
    scratch.unlink(missing_ok=True)
    started = time.perf_counter()
    lines = 0
    for path in sorted(dumps.glob("*.txt")):
        lines += len(path.read_bytes().decode("utf-8").split("\n"))
    seconds = time.perf_counter() - started
    source = sqlite3.connect(built)
    conn = sqlite3.connect(scratch, isolation_level=None)
    conn.execute(f"pragma page_size = {PAGE_BYTES}")
    conn.execute("pragma journal_mode = off")
    conn.execute("pragma synchronous = off")
    conn.execute("begin")
    for table in tables:
        columns = [f"[{row[1]}]" for row in source.execute(f"pragma table_info([{table}])")]
        rows = source.execute(f"select * from [{table}]").fetchall()
        started = time.perf_counter()
        conn.execute(f"create table [{table}] ({', '.join(columns)})")
        conn.executemany(f"insert into [{table}] values ({', '.join('?' * len(columns))})", rows)
        seconds += time.perf_counter() - started
        del rows
    source.close()
    started = time.perf_counter()
    conn.execute("commit")
    build_search_index(conn, "papers")
    conn.execute("insert into papers_fts(papers_fts) values ('optimize')")
    conn.commit()
    conn.close()
    return seconds + time.perf_counter() - started


def incremental_figures(existing: Path, built: Path, new_dump: Path,
                        scratch: Path) -> tuple[float, int, str]:
    """Return the seconds to add one new dump to the built database (it must be an update,
    not a fallback to a full build), the dump's records and the update's stage times."""
    out = scratch / "incremental.db"
    shutil.copyfile(built, out)  # the built file stays as it is, for the site's figures
    # On disk before the clock starts: the update commits with fsync, which would otherwise
    # write the whole fresh copy out (a papers.db that CI restores or that a build left
    # earlier is long on disk). It took the update from about 6 to 14.5 s at 1M.
    with open(out, "rb+") as handle:
        os.fsync(handle.fileno())
    os.link(new_dump, existing / new_dump.name)
    try:
        seconds, _, stages = run_build(existing, out, "--incremental",
                                       expect="incremental: adding 1 new dump to")
    finally:
        (existing / new_dump.name).unlink()
        out.unlink()
    return seconds, len(read_dump(new_dump).records), stages


def sample_sightings(dumps: Path, size: int) -> list[Sighting]:
    sightings = []
    for path in sorted(dumps.glob("*.txt")):
        parsed = read_dump(path)
        sightings += [Sighting(parsed.name, record) for record in parsed.records]
        if len(sightings) >= size:
            break
    return sightings[:size]


def all_pairs(sightings: list[Sighting]) -> set[tuple[int, int]]:
    """Return the pairs of sample records that exhaustive rapidfuzz would merge."""
    keys = [title_key(s.record.title) for s in sightings]
    scores = process.cdist(keys, keys, scorer=fuzz.ratio, score_cutoff=TITLE_MIN_SCORE,
                           workers=-1)
    pairs = set()
    for i, j in zip(*scores.nonzero()):
        if i < j and abstract_score(sightings[i].record.abstract,
                                    sightings[j].record.abstract) >= ABSTRACT_MIN_SCORE:
            pairs.add((int(i), int(j)))
    return pairs


def same_paper_pairs(groups: list[int]) -> set[tuple[int, int]]:
    by_group: dict[int, list[int]] = {}
    for index, group in enumerate(groups):
        by_group.setdefault(group, []).append(index)
    return {pair for members in by_group.values() for pair in combinations(members, 2)}


def quality(papers: list, truth: dict) -> dict:
    """Return recall and precision of record pairs put in one paper, against the truth
    (the generator's paper of each record), and the look-alikes merged by mistake: a
    look-alike record is merged by mistake if its paper holds any record of the paper it
    imitates. `papers` holds the paper given to each record, in the truth's order."""
    true_groups = truth["sightings"][:len(papers)]
    project = same_paper_pairs(papers)
    true_pairs = same_paper_pairs(true_groups)
    papers_of_group: dict[int, set] = {}
    for group, paper in zip(true_groups, papers):
        papers_of_group.setdefault(group, set()).add(paper)
    lookalikes = [(index, original) for index, original in truth["lookalikes"]
                  if index < len(papers)]
    merged = sum(1 for index, original in lookalikes
                 if papers[index] in papers_of_group.get(original, ()))
    return {"recall": len(project & true_pairs) / len(true_pairs) if true_pairs else 1.0,
            "precision": len(project & true_pairs) / len(project) if project else 1.0,
            "records": len(papers), "lookalikes": len(lookalikes), "lookalikes_merged": merged}


def one_column(db: Path, sql: str) -> list:
    """Return the values of a one-column query of the built file, read only."""
    conn = sqlite3.connect(read_only_uri(db), uri=True)
    try:
        return [value for (value,) in conn.execute(sql)]
    finally:
        conn.close()


def built_papers(db: Path) -> list[str]:
    """Return the paper of every record of the built file, in dump order then page order
    (the truth's order)."""
    return one_column(db, "select paper_id from sightings join dumps on dumps.name = "
                          "sightings.dump order by dumps.position, sightings.position")


def records_of_each_dump(db: Path) -> list[int]:
    """Return the number of records (sightings) of each dump of the built file, in order."""
    return one_column(db, "select (select count(*) from sightings where sightings.dump = "
                          "dumps.name) from dumps order by position")


def build_quality(db: Path, truth: dict) -> dict:
    """Return quality() of the built file against the truth, once sure that the build read
    as many records of each dump as the generator wrote: the scores pair the n-th record
    of the build with the truth's n-th, and one record missing would pair every later one
    with another record's paper."""
    built = records_of_each_dump(db)
    written = truth["dump_records"][:len(built)]
    if built != written:
        dump = next(n for n, (a, b) in enumerate(zip(built, written)) if a != b)
        raise SystemExit(f"dedup quality: the build read {built[dump]} records of dump "
                         f"{dump + 1}, the generator wrote {written[dump]}: its records "
                         f"cannot be scored against the truth")
    return quality(built_papers(db), truth)


def dedup_figures(dumps: Path, truth: dict, size: int, db: Path) -> dict:
    """The whole build's quality against the truth, and on the first `size` records (where
    the repeats of a paper sit close together) the project's matching against all pairs."""
    sightings = sample_sightings(dumps, size)
    exhaustive_seconds, exhaustive = timed(all_pairs, sightings)
    project_seconds, dedup = timed(deduplicate, sightings)
    paper_of = {id(s): s.paper_id for p in dedup.papers for s in p.sightings}
    sample_papers = [paper_of[id(s)] for s in sightings]
    project = same_paper_pairs(sample_papers)
    return {
        "sample": len(sightings),
        "project_seconds": project_seconds, "all_pairs_seconds": exhaustive_seconds,
        "recall_vs_all_pairs": len(project & exhaustive) / len(exhaustive) if exhaustive else 1.0,
        "sample_quality": quality(sample_papers, truth),
        "build_quality": build_quality(db, truth),
    }


GAVE_UP_RANKING = "matches too many papers to rank"  # templates/table-papers-papers.html


def timed_request(base: str, path: str) -> tuple[float, str | None]:
    """Return a request's seconds and, if it failed, why. A page that fails (Datasette
    answers 400 when a query outlasts its SQL time limit; no answer in 60 s; a ranked page
    that gave up ranking) is timed too."""
    failure = None
    started = time.perf_counter()
    try:  # straight to the server (site.DIRECT): urlopen would go through http_proxy's proxy
        with DIRECT.open(base + path, timeout=60) as response:
            if GAVE_UP_RANKING in response.read().decode("utf-8", "replace"):
                failure = f"{path}: gave up ranking"
    except urllib.error.HTTPError as error:
        error.read()
        failure = f"{path}: HTTP {error.code}"
    except (urllib.error.URLError, TimeoutError) as error:
        failure = f"{path}: {error}"
    return time.perf_counter() - started, failure


def search_latencies(ours_base: str, stock_base: str,
                     repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]], str, str]:
    """Return the times of the site's ranked search pages and of stock's unranked ones, per
    query, and each side's failures (describe_failures)."""
    quote = urllib.parse.quote_plus
    size = papers_page_size()  # the site's page of papers holds fewer than its default
    return paired_latencies(ours_base, lambda q: f"/papers/papers?_search={quote(q)}",
                            stock_base, lambda q: f"/papers/papers?_search={quote(q)}&_size={size}",
                            QUERIES, repeats)


def filtered_search_latencies(ours_base: str, stock_base: str, repeats: int):
    """As search_latencies, for the FILTERED_SEARCHES pages (a search within a facet's
    filter): the site's ranked within the filter, stock's unranked with the same filter."""
    size = papers_page_size()
    return paired_latencies(ours_base, lambda page: f"/papers/papers?{page}",
                            stock_base, lambda page: f"/papers/papers?{page}&_size={size}",
                            FILTERED_SEARCHES, repeats)


def next_cursor(base: str, page: str) -> str | None:
    """Return the `_next` of a listing's first page on one server (untimed), or None."""
    size = papers_page_size()
    try:
        with DIRECT.open(f"{base}/papers/papers.json?_size={size}&{page}", timeout=120) as response:
            return json.loads(response.read()).get("next")
    except urllib.error.HTTPError as error:  # the first page failed: timed below as failed
        error.read()
        return None


def listing_latencies(ours_base: str, stock_base: str, repeats: int):
    """As search_latencies, for the LISTINGS and the page after each: each side's
    page 2 starts after its own page 1 (stock orders a first page's ties as SQLite reads
    them, the site by id, so their cursors may differ)."""
    size = papers_page_size()
    pages = [f"{page} (page {n})" for page in LISTINGS for n in (1, 2)]
    cursors = {base: {page: next_cursor(base, page) for page in LISTINGS}
               for base in (ours_base, stock_base)}

    def path_for(base: str, extra: str):
        def path(name: str) -> str:
            page, n = name.rsplit(" (page ", 1)
            cursor = cursors[base][page] if n == "2)" else None
            later = f"&_next={urllib.parse.quote(cursor)}" if cursor else ""
            return f"/papers/papers?{page}{extra}{later}"
        return path

    return paired_latencies(ours_base, path_for(ours_base, ""), stock_base,
                            path_for(stock_base, f"&_size={size}"), pages, repeats)


def related_latencies(ours_base: str, stock_base: str, sample: list[str]):
    """Return the times of the site's related papers of each paper of `sample` and of
    stock's JSON of the same paper's row (one primary-key lookup), and each side's failures."""
    quote = urllib.parse.quote_plus
    return paired_latencies(ours_base, lambda p: f"/papers/related.json?paper_id={quote(p)}",
                            stock_base, lambda p: f"/papers/papers/{quote(p)}.json", sample, 1)


def paired_latencies(ours_base: str, ours_path, stock_base: str, stock_path,
                     queries: list[str], repeats: int):
    """Return the request times of each query on both sides (timed_request), and each
    side's failures (describe_failures), as (ours, stock, ours failed, stock failed).

    The two sides take turns request by request, and which goes first alternates: the
    machine is shared and its load comes in bursts, which one side's block of requests
    after the other's would meet alone; and neither side always reads what the other has
    just brought into the page cache."""
    sides = [(ours_base, ours_path), (stock_base, stock_path)]
    timings: list[dict[str, list[float]]] = [{query: [] for query in queries} for _ in sides]
    failures: list[list[str]] = [[] for _ in sides]
    turn = 0
    for query in queries:
        for _ in range(repeats):
            for side in ((0, 1) if turn % 2 == 0 else (1, 0)):
                base, path_for = sides[side]
                seconds, failure = timed_request(base, path_for(query))
                timings[side][query].append(seconds)
                if failure:
                    failures[side].append(failure)
            turn += 1
    return (timings[0], timings[1], describe_failures(failures[0]),
            describe_failures(failures[1]))


def settle(base: str) -> None:
    """Ask for one searched page and wait for it, untimed. The site loads its facets' values
    once, in a thread it starts with the server (plugins/facets.py; several seconds at a
    million papers), and a searched page waits for them: the timings are of the site as it
    then serves for weeks, not of its first seconds. The stock server gets the same page."""
    with DIRECT.open(f"{base}/papers/papers.json?_search=settle&_size=1",
                                timeout=600) as response:
        response.read()


def describe_failures(failures: list[str]) -> str:
    """Return the failed pages, each with how many of its requests failed, or 'none'."""
    counts: dict[str, int] = {}
    for failure in failures:
        counts[failure] = counts.get(failure, 0) + 1
    return "; ".join(f"{page} ({n}x)" for page, n in counts.items()) or "none"


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile: the smallest value with at least `share` of the
    values at or below it (of 10 requests, p50 is the 5th fastest and p95 the slowest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def serve(command: list[str]) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process


RELATED_SAMPLE = 50


def paper_sample(db: Path, size: int) -> list[str]:
    """Return the ids of `size` papers spread evenly over the file."""
    conn = sqlite3.connect(read_only_uri(db), uri=True)
    try:
        (count,) = conn.execute("select count(*) from papers").fetchone()
        step = max(1, count // size)
        return [pid for (pid,) in conn.execute(
            "select id from papers where (rowid - 1) % ? = 0 order by rowid limit ?",
            (step, size))]  # rowids 1, 1 + step, ...: every paper when step is 1
    finally:
        conn.close()


# Datasette loads the plugins of every installed package (pyproject's datasette-atom and
# datasette-cluster-map, and datasette-leaflet with it) as it is imported, and 0.65 has no
# option against it: stock starts through this script, which unregisters all but Datasette's
# own before its command line runs.
WITHOUT_INSTALLED_PLUGINS = """
from datasette.plugins import DEFAULT_PLUGINS, pm
for name, plugin in pm.list_name_plugin():
    if name not in DEFAULT_PLUGINS:
        pm.unregister(plugin)
from datasette.cli import cli
cli()
"""


def stock_command(db: Path, port: int) -> list[str]:
    """Return the command that serves `db` with stock Datasette: immutable, the site's
    settings, and no plugin, metadata or template of the site's or of installed packages."""
    return [PYTHON, "-c", WITHOUT_INSTALLED_PLUGINS, "serve", "-i", str(db),
            "--host", "127.0.0.1", "--port", str(port), *setting_options()]


def search_figures(db: Path, repeats: int) -> dict:
    datasette = str(Path(PYTHON).with_name("datasette"))
    ours_port, stock_port = free_port(), free_port()
    ours = serve([datasette, *serve_command(db, "127.0.0.1", ours_port)[1:]])
    # Stock: Datasette alone (no plugins, metadata or templates) with the site's settings,
    # so that both pages show as many rows, suggest no facets and have the same time limits.
    stock = serve(stock_command(db, stock_port))
    try:
        ours_base, stock_base = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{stock_port}"
        wait_until_up(ours_base, ours)
        wait_until_up(stock_base, stock)
        settle(ours_base)
        settle(stock_base)
        ranked, plain, ours_failed, stock_failed = search_latencies(ours_base, stock_base,
                                                                    repeats)
        filtered = filtered_search_latencies(ours_base, stock_base, repeats)
        listings = listing_latencies(ours_base, stock_base, max(1, repeats // 2))
        # Related papers are computed when a paper page asks: time them against the stock
        # JSON of the same paper's row (one primary-key lookup), for papers across the file.
        sample = paper_sample(db, RELATED_SAMPLE)
        related, row, *related_failed = related_latencies(ours_base, stock_base, sample)
        download = (download_seconds(ours_base, db), download_seconds(stock_base, db))
    finally:
        for process_ in (ours, stock):
            process_.terminate()
            process_.wait(timeout=20)
    timed_out = {limit: facets_that_timed_out(db, limit, QUERIES)
                 for limit in (SETTINGS["facet_time_limit_ms"], DATASETTE_FACET_LIMIT_MS)}
    rows = []
    for query in QUERIES:
        rows.append((query, percentile(ranked[query], 0.5), percentile(ranked[query], 0.95),
                     percentile(plain[query], 0.5), percentile(plain[query], 0.95)))
    filtered_ranked, filtered_plain = filtered[:2]
    for page in FILTERED_SEARCHES:
        rows.append((page, percentile(filtered_ranked[page], 0.5),
                     percentile(filtered_ranked[page], 0.95),
                     percentile(filtered_plain[page], 0.5), percentile(filtered_plain[page], 0.95)))
    every_ranked = [v for q in QUERIES for v in ranked[q]]
    every_plain = [v for q in QUERIES for v in plain[q]]
    every_filtered = [v for page in FILTERED_SEARCHES for v in filtered_ranked[page]]
    every_filtered_plain = [v for page in FILTERED_SEARCHES for v in filtered_plain[page]]
    every_related = [v for p in sample for v in related[p]]
    every_row = [v for p in sample for v in row[p]]
    return {"rows": rows, "facets_timed_out": timed_out, "failed": (ours_failed, stock_failed),
            "related_failed": tuple(related_failed),
            "download": (db.stat().st_size, *download),
            "related": (len(sample), percentile(every_related, 0.5), percentile(every_related, 0.95),
                        percentile(every_row, 0.5), percentile(every_row, 0.95)),
            "filtered_failed": filtered[2:],
            "listings_failed": listings[2:],
            "listings": [(page, *(percentile(side[page], share) for side in listings[:2]
                                  for share in (0.5, 0.95))) for page in listings[0]],
            "listing_ratios": (
                percentile([v for t in listings[0].values() for v in t], 0.5)
                / percentile([v for t in listings[1].values() for v in t], 0.5),
                percentile([v for t in listings[0].values() for v in t], 0.95)
                / percentile([v for t in listings[1].values() for v in t], 0.95)),
            "filtered_ratios": (
                percentile(every_filtered, 0.5) / percentile(every_filtered_plain, 0.5),
                percentile(every_filtered, 0.95) / percentile(every_filtered_plain, 0.95)),
            "p95_ratio": percentile(every_ranked, 0.95) / percentile(every_plain, 0.95),
            "p50_ratio": percentile(every_ranked, 0.5) / percentile(every_plain, 0.5)}


def download_seconds(base: str, db: Path) -> float:
    """Return the time one whole download of the file takes, read as a client reads it;
    raise if it is not the whole file."""
    received = 0
    started = time.perf_counter()
    with DIRECT.open(f"{base}/papers.db", timeout=3600) as response:
        while chunk := response.read(1 << 20):
            received += len(chunk)
    seconds = time.perf_counter() - started
    if received != db.stat().st_size:
        raise RuntimeError(f"{base}/papers.db: {received} of {db.stat().st_size} bytes")
    return seconds


def papers_page_size() -> int:
    """Return the rows a page of the papers table shows on the site (metadata.yml's `size`,
    else the default_page_size setting): stock, without the metadata, is asked for as many."""
    metadata = yaml.safe_load((ROOT / "metadata.yml").read_text(encoding="utf-8"))
    table = metadata["databases"]["papers"]["tables"]["papers"]
    return int(table.get("size") or SETTINGS["default_page_size"])


def default_facets() -> list[str]:
    """Return the papers table's default facets, as metadata.yml lists them."""
    metadata = yaml.safe_load((ROOT / "metadata.yml").read_text(encoding="utf-8"))
    facets = metadata["databases"]["papers"]["tables"]["papers"]["facets"]
    return [facet if isinstance(facet, str) else next(iter(facet.values())) for facet in facets]


def timed_out_facets(table_json: dict, expected: list[str]) -> list[str]:
    """Return the facets missing from a table page's JSON.

    Datasette 0.65 names the facets that gave up only in the HTML page's context; its JSON
    leaves them out of `facet_results`, so the ones missing are the ones that timed out.
    """
    return [facet for facet in expected if facet not in table_json.get("facet_results", {})]


def facets_that_timed_out(db: Path, limit_ms: int, queries: list[str]) -> dict[str, list[str]]:
    """Return, per query, the default facets that gave up on the site with `limit_ms` as
    its facet time limit (a setting, so a server of its own)."""
    datasette = str(Path(PYTHON).with_name("datasette"))
    port = free_port()
    server = serve([datasette, *serve_command(db, "127.0.0.1", port)[1:],
                    "--setting", "facet_time_limit_ms", str(limit_ms)])
    expected = default_facets()
    found = {}
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, server)
        settle(base)
        pages = {"(no search)": "", **{query: f"_search={urllib.parse.quote_plus(query)}"
                                       for query in queries},
                 **{page: page for page in FILTERED_PAGES + FILTER_KIND_PAGES}}
        for name, page in pages.items():
            try:
                with DIRECT.open(f"{base}/papers/papers.json?_size=1&{page}",
                                            timeout=120) as response:
                    found[name] = timed_out_facets(json.loads(response.read()), expected)
            except urllib.error.HTTPError as error:  # the page itself failed: no facets at all
                error.read()
                found[name] = [f"the whole page (HTTP {error.code})"]
    finally:
        server.terminate()
        server.wait(timeout=20)
    return found


def describe_timeouts(per_query: dict[str, list[str]]) -> str:
    gave_up = {query: facets for query, facets in per_query.items() if facets}
    return "; ".join(f"{query}: {', '.join(facets)}" for query, facets in gave_up.items()) or "none"


def best_of(runs: list[tuple[tuple, dict[str, float]]]) -> tuple[tuple, dict[str, float]]:
    """Return the fastest build of `runs` (its stages; the largest peak memory of all) and
    each floor's fastest time: (build, floors) pairs measured in turn, so that both sides
    get the machine's quiet moments alike."""
    fastest = min((build for build, _ in runs), key=lambda build: build[0])
    peak = max(build[1] for build, _ in runs)
    floors = {name: min(run[name] for _, run in runs) for name in runs[0][1]}
    return (fastest[0], peak, fastest[2]), floors


def report(records: int, dumps: int, build: tuple, floors: dict[str, float], papers: int,
           dedup: dict, search: dict | None, incremental: tuple[float, int, str],
           runs: list[tuple[tuple, dict[str, float]]] = ()) -> str:
    """Return the run's section of RESULTS.md; `build` and `floors` are the fastest of
    `runs` (best_of), which are listed too when there are several."""
    build_seconds, peak, stages = build
    built, sample = dedup["build_quality"], dedup["sample_quality"]
    builds = ", ".join(f"{seconds:.1f}" for (seconds, _, _), _ in runs)
    all_rows_floors = ", ".join(f"{run['all']:.1f}" for _, run in runs)
    lines = [
        f"## {records:,} records",
        "",
        f"Generated {records:,} records; the database is built from {dumps:,} dumps "
        f"({records - incremental[1]:,} records -> {papers:,} papers) and the last dump "
        f"({incremental[1]} records) is what the incremental build adds.",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(timezone.utc).date().isoformat()}, commit {commit()}.",
        "",
        "| figure | value | floor | ratio |",
        "| --- | --- | --- | --- |",
        f"| build (build_db.py, all stages) | {build_seconds:.1f} s | {floors['all']:.1f} s "
        f"(read+split, raw executemany of every row it writes, FTS5) | "
        f"{build_seconds / floors['all']:.2f}x |",
        f"| build, against the paper rows alone | {build_seconds:.1f} s | {floors['papers']:.1f} s "
        f"(read+split, raw executemany of the papers rows, FTS5) | "
        f"{build_seconds / floors['papers']:.2f}x |",
        *([f"| builds and floors, in turn (the fastest of each above) | {builds} s | "
           f"{all_rows_floors} s | |"] if len(runs) > 1 else []),
        f"| build stages | {stages} | | |",
        f"| build peak memory (PSS, sampled) | {peak:,.0f} MiB | | |",
        f"| incremental: add one new {incremental[1]}-record dump (an update: a fallback stops "
        f"the run) | {incremental[0]:.1f} s | "
        f"{build_seconds:.1f} s (full build of the other dumps) | {incremental[0] / build_seconds:.3f}x |",
        f"| incremental stages | {incremental[2]} | | |",
        f"| dedup of the whole build: recall / precision vs the generator's truth "
        f"({built['records']:,} records) | {built['recall']:.4f} / {built['precision']:.4f} | | |",
        f"| look-alikes merged by mistake, whole build | {built['lookalikes_merged']} of "
        f"{built['lookalikes']} | 0 | |",
        f"| dedup on the first {dedup['sample']:,} records | {dedup['project_seconds']:.2f} s | "
        f"{dedup['all_pairs_seconds']:.2f} s (all-pairs rapidfuzz) | "
        f"{dedup['project_seconds'] / dedup['all_pairs_seconds']:.2f}x |",
        f"| dedup recall vs all-pairs, first {dedup['sample']:,} records | "
        f"{dedup['recall_vs_all_pairs']:.4f} | 1 | |",
        f"| dedup recall / precision vs the truth, first {dedup['sample']:,} records | "
        f"{sample['recall']:.4f} / {sample['precision']:.4f}; look-alikes merged "
        f"{sample['lookalikes_merged']} of {sample['lookalikes']} | | |",
    ]
    if search:
        lines += search_lines(search)
    return "\n".join(lines) + "\n"


def search_lines(search: dict) -> list[str]:
    """Return the report's rows of the site's figures (search_figures)."""
    return [
        f"| ranked search page p50 / p95 vs stock unranked (stock: no plugins, the site's "
        f"settings, as many rows) | | | {search['p50_ratio']:.2f}x / {search['p95_ratio']:.2f}x |",
        f"| search pages that failed (HTTP status, a query over the SQL time limit gives 400; "
        f"or ranking given up) "
        f"| ours: {search['failed'][0]} | stock: {search['failed'][1]} | |",
        f"| ranked search within a facet's filter ({len(FILTERED_SEARCHES)} pages below) p50 / "
        f"p95 vs stock unranked with the same filter | | | {search['filtered_ratios'][0]:.2f}x / "
        f"{search['filtered_ratios'][1]:.2f}x |",
        f"| filtered search pages that failed (as above) "
        f"| ours: {search['filtered_failed'][0]} | stock: {search['filtered_failed'][1]} | |",
        f"| listings (sorted, or a topic's) and the page after each "
        f"({len(search['listings'])} pages below) p50 / p95 vs stock's same pages (no facets) "
        f"| | | {search['listing_ratios'][0]:.2f}x / "
        f"{search['listing_ratios'][1]:.2f}x |",
        f"| listing pages that failed (as above) "
        f"| ours: {search['listings_failed'][0]} | stock: {search['listings_failed'][1]} | |",
        "| related papers of {0} papers (/papers/related.json) p50 / p95 | {1:.0f} ms / {2:.0f} ms "
        "| {3:.0f} ms / {4:.0f} ms (stock row JSON) | {5:.2f}x / {6:.2f}x |".format(
            *(search["related"][0], *(v * 1000 for v in search["related"][1:])),
            search["related"][1] / search["related"][3], search["related"][2] / search["related"][4]),
        f"| related papers and stock rows that failed (HTTP status or no answer) "
        f"| ours: {search['related_failed'][0]} | stock: {search['related_failed'][1]} | |",
        "| download of the whole file, {0:,.0f} MB (/papers.db, plugins/download.py) | {1:.2f} s "
        "| {2:.2f} s (stock: Datasette's own download) | {3:.2f}x |".format(
            search["download"][0] / 1e6, search["download"][1], search["download"][2],
            search["download"][1] / search["download"][2]),
        *(f"| facets that gave up on "
          f"{1 + len(QUERIES) + len(FILTERED_PAGES) + len(FILTER_KIND_PAGES)} pages (none, "
          f"a search, a search or none with filters of each kind), facet limit {limit} ms{note} | "
          f"{describe_timeouts(search['facets_timed_out'][limit])} | | |"
          for limit, note in ((SETTINGS["facet_time_limit_ms"], " (the site's)"),
                              (DATASETTE_FACET_LIMIT_MS, " (Datasette's default)"))),
        "",
        "| query | ranked p50 | ranked p95 | stock p50 | stock p95 |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {q} | {a * 1000:.0f} ms | {b * 1000:.0f} ms | {c * 1000:.0f} ms | {d * 1000:.0f} ms |"
          for q, a, b, c, d in search["rows"]),
        "",
        "| listing | site p50 | site p95 | stock p50 | stock p95 |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {'newest first' + page if page.startswith(' (') else page} | {a * 1000:.0f} ms | "
          f"{b * 1000:.0f} ms | "
          f"{c * 1000:.0f} ms | {d * 1000:.0f} ms |" for page, a, b, c, d in search["listings"]),
    ]


def site_report(db: Path, repeats: int) -> str:
    """Return the site's figures on a database built before (a --keep file), as a table."""
    with tempfile.TemporaryDirectory() as tmp:
        served = Path(tmp) / "papers.db"  # Datasette names a database after its file
        served.symlink_to(db.resolve())
        search = search_figures(served, repeats)
    return "\n".join([f"Site figures of {db.name}, {papers_in(db):,} papers. Machine: "
                      f"{os.cpu_count()} cores, Python {platform.python_version()}, "
                      f"{datetime.now(timezone.utc).date().isoformat()}, commit {commit()}.", "",
                      "| figure | value | floor | ratio |", "| --- | --- | --- | --- |",
                      *search_lines(search)]) + "\n"


def commit() -> str:
    """Return the code's git commit (short), with `+changes` if the tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(  # RESULTS.md is what the runs write, not code
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
             ":!benchmarks/RESULTS.md"], cwd=ROOT, text=True, capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def papers_in(db: Path) -> int:
    conn = sqlite3.connect(read_only_uri(db), uri=True)
    try:
        return conn.execute("select count(*) from papers").fetchone()[0]
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dedup-sample", type=int, default=4_000)
    parser.add_argument("--repeats", type=int, default=10, help="requests per search query")
    parser.add_argument("--builds", type=int, default=1,
                        help="build, then measure the floors, this many times; the figures "
                             "take the fastest of each (the peak memory: the largest)")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--write-results", action="store_true", help=f"write {RESULTS.name}")
    parser.add_argument("--work", type=Path, help="folder for the scratch files (default: /tmp)")
    parser.add_argument("--keep", type=Path, help="copy the built database here")
    parser.add_argument("--site", type=Path, metavar="DB",
                        help="only time the site (search pages, facets) on DB, a database "
                             "built before (a --keep file); print its figures")
    args = parser.parse_args(argv)
    if args.builds < 1:
        parser.error("--builds: at least 1")
    if args.site:
        print(site_report(args.site, args.repeats))
        return 0
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        dumps = Path(tmp) / "dumps"
        dumps.mkdir()
        print(f"generating {args.records:,} records ...", flush=True)
        generated = generate_corpus(dumps, args.records, seed=args.seed)
        truth = json.loads((dumps.parent / f"{dumps.name}-truth.json").read_text())
        # The existing corpus is every dump but the last; the last is the new dump that the
        # incremental build adds to it.
        existing, new_dump = split_last_dump(dumps, Path(tmp))
        db = Path(tmp) / "papers.db"
        runs = []
        for run in range(1, args.builds + 1):  # build and floors take turns: the same machine
            print(f"building ({run} of {args.builds}) ...", flush=True)
            build = run_build(existing, db)
            print(f"built in {build[0]:.1f} s, peak {build[1]:,.0f} MiB ({build[2]})", flush=True)
            if args.keep and run == 1:  # kept at once: whatever fails later, the slow part is done
                shutil.copyfile(db, args.keep)
            print("floors ...", flush=True)
            runs.append((build, {
                "all": floor(existing, db, Path(tmp) / "floor.db", written_tables(db)),
                "papers": floor(existing, db, Path(tmp) / "floor.db", ["papers"])}))
        build, floors = best_of(runs)
        papers = papers_in(db)
        print("incremental build ...", flush=True)
        incremental = incremental_figures(existing, db, new_dump, Path(tmp))
        print("dedup against all pairs ...", flush=True)
        dedup = dedup_figures(dumps, truth, args.dedup_sample, db)
        search = None
        if not args.skip_search:
            print("search and facets over loopback ...", flush=True)
            search = search_figures(db, args.repeats)
        text = report(args.records, generated["dumps"] - 1, build, floors, papers, dedup,
                      search, incremental, runs)
    print(text)
    if args.write_results:
        write_results(args.records, text)
    return 0


def write_results(records: int, section: str) -> None:
    """Put this run's section into RESULTS.md, replacing the last run of the same size."""
    heading = f"## {records:,} records"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    parts = text.split("\n## ")
    head, sections = parts[0], ["## " + part for part in parts[1:]]
    replaced = [section.rstrip() + "\n" if s.startswith(heading) else s for s in sections]
    if replaced == sections:
        replaced.insert(0, section.rstrip() + "\n")
    RESULTS.write_text("\n".join([head.rstrip() + "\n", *(s.rstrip() + "\n" for s in replaced)]))


if __name__ == "__main__":
    sys.exit(main())
