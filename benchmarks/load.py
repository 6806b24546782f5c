"""Load test: concurrent clients against a real server on loopback, mixing what visitors do.

    python -m benchmarks.load                        # 32 clients for 60 s on papers.db
    python -m benchmarks.load --clients 8 --seconds 10 --db other.db
    python -m benchmarks.load --write-results        # also write "## Load test" in RESULTS.md

The server is started here with the project's own options (neuroai_papers.site); the
database is built with `build_db.py` first if it is missing. Each client sends one request
after another, cycling through the kinds below with paths drawn from the database (seeded),
until the time is up. The clients run on the same machine as the server, so they share its
cores. Exit status 1 if any request got a 5xx or no answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
from datasette.utils import tilde_encode

from benchmarks.run import commit
from benchmarks.run import percentile as run_percentile
from neuroai_papers.site import free_port, serve_command, wait_until_up
from neuroai_papers.uris import read_only_uri

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
HEADING = "## Load test"
KINDS = ("search", "facet", "paper", "sql", "json", "csv")
REQUEST_TIMEOUT = 30
SEARCH_WORDS = 40
SAMPLE_PAPERS = 200


@dataclass
class Outcomes:
    """What the clients saw, per request kind."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    statuses: dict[str, Counter] = field(default_factory=lambda: {k: Counter() for k in KINDS})
    connection_errors: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def record(self, kind: str, status: int, seconds: float) -> None:
        self.statuses[kind][status] += 1
        self.latencies[kind].append(seconds)

    def server_errors(self, kind: str | None = None) -> int:
        kinds = [kind] if kind else KINDS
        return sum(n for k in kinds for status, n in self.statuses[k].items() if status >= 500)

    def requests(self, kind: str | None = None) -> int:
        kinds = [kind] if kind else KINDS
        return sum(sum(self.statuses[k].values()) + self.connection_errors[k] for k in kinds)


def search_words(conn: sqlite3.Connection) -> list[str]:
    """Return frequent and rare title words, so searches range from broad to narrow."""
    counts = Counter(word.lower() for (title,) in conn.execute("select title from papers")
                     for word in title.split() if word.isalpha() and len(word) > 4)
    ranked = [word for word, _ in counts.most_common()]
    return ranked[:SEARCH_WORDS // 2] + ranked[-SEARCH_WORDS // 2:]


def request_paths(db: Path, seed: int = 1) -> dict[str, list[str]]:
    """Return, per kind, the paths the clients pick from."""
    conn = sqlite3.connect(read_only_uri(db), uri=True)
    try:
        ids = [paper_id for (paper_id,) in conn.execute("select id from papers order by id")]
        words = search_words(conn)
        (year,) = conn.execute("select max(published_year) from papers").fetchone()
    finally:
        conn.close()
    ids = random.Random(seed).sample(ids, min(SAMPLE_PAPERS, len(ids)))
    sql = [
        "select published_year, count(*) as n from papers group by 1 order by 1 desc",
        "select title, published from papers where title like '%brain%' order by published desc",
        "select dump, count(*) from sightings group by dump",
    ]
    return {
        "search": [f"/papers/papers?_search={quote(word)}" for word in words],
        "facet": ["/papers/papers?_facet=organization&_facet=published_year",
                  "/papers/papers?_facet_array=topics&_facet=dumps_seen",
                  f"/papers/papers?published_year={year}&_facet=authors",
                  "/papers/sightings?_facet=dump&_facet=match_method"],
        "paper": [f"/papers/papers/{tilde_encode(paper_id)}" for paper_id in ids],
        "sql": ["/papers?" + urlencode({"sql": query}) for query in sql],
        "json": ["/papers/papers.json?_size=100&_shape=objects",
                 *(f"/papers/search.json?q={quote(word)}&_shape=array" for word in words[:10]),
                 *(f"/papers/papers/{tilde_encode(paper_id)}.json" for paper_id in ids[:20])],
        "csv": ["/papers/papers.csv?_stream=on&_size=max", "/papers/sightings.csv?_size=200",
                "/papers.csv?" + urlencode({"sql": sql[0]})],
    }


async def client(number: int, http: httpx.AsyncClient, paths: dict[str, list[str]],
                 deadline: float, outcomes: Outcomes) -> None:
    """Send requests one after another, cycling through the kinds, until the deadline."""
    pick = random.Random(number)
    turn = number
    while time.monotonic() < deadline:
        kind = KINDS[turn % len(KINDS)]
        turn += 1
        started = time.monotonic()
        try:
            response = await http.get(pick.choice(paths[kind]))
        except httpx.TransportError:
            outcomes.connection_errors[kind] += 1
            continue
        outcomes.record(kind, response.status_code, time.monotonic() - started)


async def run_load(base: str, paths: dict[str, list[str]], clients: int,
                   seconds: float) -> Outcomes:
    outcomes = Outcomes()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    # trust_env=False: straight to the server, not through the proxy of http_proxy.
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT, limits=limits,
                                 trust_env=False) as http:
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(client(n, http, paths, deadline, outcomes)
                               for n in range(clients)))
        outcomes.seconds = time.monotonic() - started
    return outcomes


def ensure_database(db: Path) -> None:
    if not db.exists():
        subprocess.run([sys.executable, str(ROOT / "build_db.py"), "--out", str(db)], check=True)


def measure(db: Path, clients: int, seconds: float) -> Outcomes:
    """Start the site on a free loopback port, run the load against it, stop it."""
    ensure_database(db)
    port = free_port()
    command = serve_command(db, "127.0.0.1", port)
    command[0] = str(Path(sys.executable).with_name("datasette"))
    with tempfile.TemporaryFile("w+") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base, server)
            return asyncio.run(run_load(base, request_paths(db), clients, seconds))
        except RuntimeError:
            log.seek(0)
            sys.stderr.write(log.read()[-3000:])
            raise
        finally:
            server.terminate()
            server.wait(timeout=20)


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile, as the suite's (run.percentile); 0 of no values."""
    return run_percentile(values, share) if values else 0.0


def table(outcomes: Outcomes) -> str:
    """Return the figures as a Markdown table, one row per kind and one for all."""
    lines = ["| kind | requests | req/s | p50 | p99 | statuses | 5xx | connection errors |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for kind in (*KINDS, None):
        latencies = (outcomes.latencies[kind] if kind else
                     [value for k in KINDS for value in outcomes.latencies[k]])
        statuses = outcomes.statuses[kind] if kind else sum(outcomes.statuses.values(), Counter())
        errors = outcomes.connection_errors[kind] if kind else sum(
            outcomes.connection_errors.values())
        requests = outcomes.requests(kind)
        lines.append(
            f"| {kind or '**all**'} | {requests:,} | {requests / outcomes.seconds:.1f} "
            f"| {percentile(latencies, 0.50) * 1000:.0f} ms "
            f"| {percentile(latencies, 0.99) * 1000:.0f} ms "
            f"| {', '.join(f'{s}: {n:,}' for s, n in sorted(statuses.items())) or '-'} "
            f"| {outcomes.server_errors(kind)} | {errors} |")
    return "\n".join(lines)


def section(outcomes: Outcomes, db: Path, clients: int, seconds: float) -> str:
    conn = sqlite3.connect(read_only_uri(db), uri=True)
    (papers,) = conn.execute("select count(*) from papers").fetchone()
    conn.close()
    return (
        f"{HEADING}\n\n"
        f"`python -m benchmarks.load --clients {clients} --seconds {seconds:g} --write-results`: "
        f"{clients} clients, each sending its next request as soon as the last one is answered, "
        f"for {seconds:g} s against the site on loopback ({db.name}, {papers:,} papers), with the "
        f"project's settings. The kinds take turns: ranked search, facets, paper pages, the SQL "
        f"editor, JSON and CSV exports (one streamed). The clients run on the same machine. "
        f"Not a ratio to a floor, unlike the suite's figures: what one server answers under "
        f"this load, on this machine, that day.\n\n"
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{date.today().isoformat()}, commit {commit()}.\n\n{table(outcomes)}\n")


def write_results(text: str, path: Path = RESULTS) -> None:
    """Put the load test's section into RESULTS.md, replacing the last one, keeping the rest.

    benchmarks/run.py replaces only its own "## N records" sections, so this one survives it.
    """
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    parts = current.split("\n## ")
    head, sections = parts[0], ["## " + part for part in parts[1:]]
    kept = [s for s in sections if not s.startswith(HEADING)]
    last = [i for i, s in enumerate(kept) if s.startswith(("## Not measured yet", "## Where the targets stand"))]
    kept.insert(last[0] if last else len(kept), text)
    path.write_text("\n".join([head.rstrip() + "\n", *(s.rstrip() + "\n" for s in kept)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load")
    parser.add_argument("--db", type=Path, default=ROOT / "papers.db")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--write-results", action="store_true",
                        help=f"write the figures to {RESULTS.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    outcomes = measure(args.db, args.clients, args.seconds)
    text = section(outcomes, args.db, args.clients, args.seconds)
    print(text)
    if args.write_results:
        write_results(text)
    failed = outcomes.server_errors() + sum(outcomes.connection_errors.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
