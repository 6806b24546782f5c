"""How the site is served: the one place that holds Datasette's options.

`python -m neuroai_papers.site serve` builds papers.db if it is missing or older than
its inputs, then runs Datasette on http://127.0.0.1:8001. The tests and the publish
step take their options from `datasette_options()` too, so the served site, the
tested site and the published site are the same.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .build import ROOT
from .build import main as build_main

DEFAULT_DB = ROOT / "papers.db"

# Limits that keep a public site up under hostile SQL; see README "Read-only and safe".
SETTINGS = {
    "sql_time_limit_ms": 1500,
    "max_returned_rows": 1000,
    "facet_time_limit_ms": 400,
    "facet_suggest_time_limit_ms": 100,
    "suggest_facets": "off",
    "default_page_size": 50,
    "allow_download": "on",
    "allow_facet": "on",
    "default_cache_ttl": 300,
    "num_sql_threads": 3,
}


def site_paths(root: Path = ROOT) -> dict[str, Path]:
    return {
        "metadata": root / "metadata.yml",
        "plugins": root / "plugins",
        "templates": root / "templates",
        "static": root / "static",
    }


def datasette_options(root: Path = ROOT) -> list[str]:
    """Return the Datasette command-line options (everything but the database and port)."""
    paths = site_paths(root)
    options = ["--metadata", str(paths["metadata"]), "--plugins-dir", str(paths["plugins"])]
    if paths["templates"].is_dir():
        options += ["--template-dir", str(paths["templates"])]
    if paths["static"].is_dir():
        options += ["--static", f"static:{paths['static']}"]
    for name, value in SETTINGS.items():
        options += ["--setting", name, str(value)]
    return options


def serve_command(db: Path, host: str = "127.0.0.1", port: int = 8001) -> list[str]:
    """Return the full command that serves `db` read-only (immutable)."""
    return ["datasette", "serve", "-i", str(db), "--host", host, "--port", str(port),
            *datasette_options()]


def inputs_newer_than(db: Path) -> bool:
    """True if papers.db is missing or older than a dump, the metadata or the build code."""
    if not db.exists():
        return True
    built = db.stat().st_mtime
    inputs = [*ROOT.joinpath("dumps").iterdir(), ROOT / "metadata.yml",
              *ROOT.joinpath("neuroai_papers").glob("*.py")]
    return any(path.stat().st_mtime > built for path in inputs if path.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neuroai_papers.site")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    if args.db == DEFAULT_DB and inputs_newer_than(args.db):
        status = build_main(["--out", str(args.db)])
        if status != 0:
            return status
    command = serve_command(args.db, args.host, args.port)
    executable = Path(sys.executable).with_name("datasette")
    print(f"serving {args.db.name} on http://{args.host}:{args.port}/", flush=True)
    os.execv(executable, [str(executable), *command[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
