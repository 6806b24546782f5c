"""Publish the site: the live Datasette on Cloud Run, and a static bundle for GitHub Pages.

    python -m neuroai_papers.publish cloudrun --dry-run DIR   # write the deploy bundle, call no cloud
    python -m neuroai_papers.publish cloudrun --service NAME  # datasette publish cloudrun
    python -m neuroai_papers.publish pages --out DIR          # papers.db, notebooks, landing page

Both start by building papers.db (incrementally when a previous papers.db, for example the
one last published, allows it) and rendering the notebooks.
Cloud Run goes through `datasette publish cloudrun`, the route Datasette documents. The
dry run calls the very function that command uses to lay out what it uploads
(`temporary_docker_directory`), with the same arguments, and copies the result: the
database, metadata, plugins, templates, static files and the generated Dockerfile. Only
the signing secret differs: the dry run writes a placeholder, a real publish a random one.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import tomllib
from contextlib import contextmanager
from pathlib import Path

import yaml
from datasette.sql_functions import prepare_connection
from datasette.utils import temporary_docker_directory

from .build import ROOT, commit_label, git_commit
from .site import prepare, setting_options, site_paths
from .uris import read_only_uri
from .write import copy_database

DB = ROOT / "papers.db"
SERVICE = "neuroai-papers"
# What the published site needs on top of Datasette, pinned as pyproject.toml pins them.
SITE_PACKAGES = ("datasette", "datasette-cluster-map", "datasette-atom", "rapidfuzz", "numpy")
DRY_RUN_SECRET = "dry-run-placeholder-not-a-secret"
SKIPPED_FILES = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def pinned_requirements() -> list[str]:
    """Return the requirements of pyproject.toml for the packages the site needs, shell-quoted.

    Datasette pastes them unquoted into the Dockerfile's `RUN pip install` line, where a bare
    `<` or `>` would be a redirection.
    """
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    by_name = {re.split(r"[<>=!~ ]", requirement, maxsplit=1)[0].lower(): requirement
               for requirement in declared}
    return [shlex.quote(by_name[name]) for name in SITE_PACKAGES]


def extra_options() -> str:
    """Return Datasette's settings as `datasette publish --extra-options` takes them."""
    # force_https_urls: what publish cloudrun adds itself
    return " ".join([*setting_options(), "--setting", "force_https_urls", "on"])


@contextmanager
def clean_sources(notebooks: Path):
    """Yield copies of the site's folders without caches or hidden files, to publish from."""
    paths = {**site_paths(), "notebooks": notebooks}
    with tempfile.TemporaryDirectory() as tmp:
        copies = {}
        for name in ("plugins", "templates", "static", "notebooks"):
            copies[name] = Path(tmp) / name
            shutil.copytree(paths[name], copies[name], ignore=SKIPPED_FILES)
        yield copies


def publish_arguments(db: Path, sources: dict[str, Path]) -> dict:
    """Return what is published, in the terms of temporary_docker_directory."""
    return {
        "files": [str(db)],
        "name": SERVICE,
        "metadata_path": site_paths()["metadata"],
        "extra_options": extra_options(),
        "template_dir": str(sources["templates"]),
        "plugins_dir": str(sources["plugins"]),
        "static": [("static", str(sources["static"])), ("notebooks", str(sources["notebooks"]))],
        "install": pinned_requirements(),
        "version_note": f"commit {commit_label(git_commit())}",
    }


# What the two bundles hold: a folder holding anything else is not one this wrote.
BUNDLE_NAMES = {"Dockerfile", "metadata.json", "notebooks", "papers.db", "plugins", "static",
                "templates", "index.html", ".nojekyll"}


def replaceable_folder(out: Path) -> Path:
    """Return `out` as an absolute path (the Docker folder below changes the working folder,
    and a relative one was written there and deleted with it); raise SystemExit unless it is
    missing, empty or a bundle written before: it is deleted and written anew."""
    out = out.resolve()
    if out == ROOT or out in ROOT.parents:
        raise SystemExit(f"refusing to write a bundle over {out}: it holds the repository")
    if out.exists() and (not out.is_dir()
                         or not {p.name for p in out.iterdir()} <= BUNDLE_NAMES):
        raise SystemExit(f"refusing to replace {out}: it holds files that are not a bundle's; "
                         f"choose a new or empty folder")
    return out


def write_bundle(arguments: dict, out: Path) -> Path:
    """Write the exact folder `datasette publish cloudrun` would upload to `out`."""
    out = replaceable_folder(out)
    with open(arguments["metadata_path"]) as metadata, temporary_docker_directory(
        arguments["files"], arguments["name"], metadata, arguments["extra_options"], None,
        arguments["template_dir"], arguments["plugins_dir"], arguments["static"],
        arguments["install"], False, arguments["version_note"], DRY_RUN_SECRET, {}, {},
    ) as folder:
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(folder, out)
    return out


def cloudrun_command(arguments: dict, service: str) -> list[str]:
    """Return the `datasette publish cloudrun` command for the same arguments."""
    command = ["datasette", "publish", "cloudrun", *arguments["files"], "--service", service,
               "--name", arguments["name"], "--metadata", str(arguments["metadata_path"]),
               "--template-dir", arguments["template_dir"],
               "--plugins-dir", arguments["plugins_dir"],
               "--extra-options", arguments["extra_options"],
               "--version-note", arguments["version_note"]]
    for mount, path in arguments["static"]:
        command += ["--static", f"{mount}:{path}"]
    for requirement in arguments["install"]:
        command += ["--install", requirement]
    return command


def publish_cloudrun(service: str, dry_run: Path | None) -> int:
    with clean_sources(site_paths()["notebooks"]) as sources:
        arguments = publish_arguments(DB, sources)
        if dry_run:
            written = write_bundle(arguments, dry_run)
            print(f"wrote the deploy bundle to {written} (nothing was uploaded)")
            return 0
        executable = Path(sys.executable).with_name("datasette")
        command = [str(executable), *cloudrun_command(arguments, service)[1:]]
        return subprocess.run(command, check=False).returncode


def landing_page(info: dict[str, str], live_url: str | None, notebooks: list[str]) -> str:
    """Return the GitHub Pages landing page (every value escaped)."""
    e = html.escape
    live = (f'<p><a href="{e(live_url)}">Open the live site</a>: search, facets, a page per '
            f"paper, the map of organizations, SQL.</p>" if live_url else
            "<p>The live site is not configured for this build.</p>")
    links = "".join(f'<li><a href="notebooks/{e(n)}.html">{e(n)} notebook</a></li>'
                    for n in notebooks)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>NeuroAI papers</title>
<style>body {{ font-family: sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em;
line-height: 1.5 }} code {{ background: #eee; padding: 0 .2em }}</style></head>
<body>
<h1>NeuroAI papers</h1>
<p>Papers on NeuroAI from copies of Hugging Face "Daily Papers" pages, merged and documented
in one SQLite file. Built {e(info.get("built_at", "?"))} from commit
<code>{e(commit_label(info.get("git_commit", "unknown")))}</code>.</p>
{live}
<p><a id="lite" href="https://lite.datasette.io/">Open papers.db in Datasette Lite</a>: SQL in
your browser, no server, with Datasette's own facets. The live site's own additions are not
there: the papers page's ranked matches with highlighted snippets (the <code>search</code>
query runs, its matches marked <code>[[hl]]</code>), related papers and the fuzzy title
lookup (their SQL functions come from its plugins), its paper pages and its style.</p>
<p><a href="papers.db" download>Download papers.db</a> (every table and column is described
inside it, in <code>table_docs</code> and <code>column_docs</code>).</p>
<ul>{links}</ul>
<p>Built from: {e(info.get("dumps", ""))}</p>
<script>
// Datasette Lite needs the absolute address of the file, which depends on where Pages serves it.
const here = new URL(".", window.location.href);
const lite = new URL("https://lite.datasette.io/");
lite.searchParams.set("url", new URL("papers.db", here).href);
lite.searchParams.set("metadata", new URL("metadata.json", here).href);
lite.searchParams.append("install", "datasette-cluster-map");
document.getElementById("lite").href = lite.href;
</script>
</body></html>
"""


# The facet types of plugins/facets.py, and the stock Datasette facet that counts the same.
STOCK_FACETS = {"indexed": "column", "list": "array"}


def for_stock_datasette(metadata: dict, db: Path, live_url: str | None = None) -> dict:
    """Return the site's metadata for stock Datasette (Datasette Lite) serving `db`.

    Datasette Lite runs without the site's plugins, and stock Datasette drops a facet of a
    type it does not know without a word: the papers page there had no facet at all. Its
    column and array facets count the same values, only slower (plugins/facets.py). The
    canned queries that call an SQL function only the site's plugins define
    (`related_papers`, `title_similarity`) are left out: Lite listed them, and each answered
    "no such function" (the landing page says they are the live site's). A description's
    link to an Atom feed goes to the live site (see atom_links_to_live_site)."""
    stock = json.loads(json.dumps(metadata))  # a deep copy
    for database in (stock.get("databases") or {}).values():
        for table in (database.get("tables") or {}).values():
            if "facets" in table:
                table["facets"] = [stock_facet(facet) for facet in table["facets"]]
        if database.get("queries"):
            database["queries"] = queries_stock_datasette_runs(database["queries"], db)
            for query in database["queries"].values():
                if isinstance(query, dict) and query.get("description_html"):
                    query["description_html"] = atom_links_to_live_site(
                        query["description_html"], live_url)
    return stock


# A link of a description to one of the site's Atom feeds (datasette-atom's `.atom` pages).
ATOM_LINK = re.compile(r'<a href="(/[^"]*\.atom(?:\?[^"]*)?)">(.*?)</a>')


def atom_links_to_live_site(description: str, live_url: str | None) -> str:
    """Return `description` with its links to Atom feeds pointing at the live site.

    Datasette Lite has no datasette-atom: there /papers/feed.atom answered 404, and the
    query itself lists the feed's entries as rows. Without a live site the link becomes
    plain text that says where the feed is served."""
    def to_live_site(link: re.Match) -> str:
        path, text = link.group(1), link.group(2)
        if live_url:
            address = html.escape(live_url.rstrip("/") + path)
            return f'<a href="{address}">{text}</a> (on the live site)'
        return f"<code>{text}</code> (on the live site; Datasette Lite has no Atom feeds)"
    return ATOM_LINK.sub(to_live_site, description)


class AnyParameter(dict):
    """Parameters for preparing a query: every named parameter is null."""

    def __missing__(self, name):
        return None


def queries_stock_datasette_runs(queries: dict, db: Path) -> dict:
    """Return the canned queries that stock Datasette can prepare on `db`, with the SQL
    functions it defines itself (`escape_fts`) and none of the site's plugins."""
    conn = sqlite3.connect(read_only_uri(db), uri=True)
    prepare_connection(conn)
    kept = {}
    try:
        for name, query in queries.items():
            sql = query["sql"] if isinstance(query, dict) else query
            try:
                conn.execute(f"EXPLAIN {sql}", AnyParameter())
            except sqlite3.OperationalError as error:
                if str(error).startswith("no such function"):
                    continue
                raise
            kept[name] = query
    finally:
        conn.close()
    return kept


def stock_facet(facet):
    """`{indexed: c}` -> `c` (a column facet), `{list: c}` -> `{array: c}`; others as they are."""
    if isinstance(facet, dict) and len(facet) == 1:
        ((kind, column),) = facet.items()
        if kind in STOCK_FACETS:
            return column if STOCK_FACETS[kind] == "column" else {STOCK_FACETS[kind]: column}
    return facet


def build_info(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(read_only_uri(db), uri=True)
    try:
        return dict(conn.execute("select key, value from build_info"))
    finally:
        conn.close()


def publish_pages(out: Path, live_url: str | None, db: Path = DB,
                  notebooks_dir: Path | None = None) -> int:
    """Write the GitHub Pages bundle: papers.db, metadata.json, notebooks, landing page."""
    out = replaceable_folder(out)
    if out.exists():
        shutil.rmtree(out)
    (out / "notebooks").mkdir(parents=True)
    copy_database(db, out / "papers.db")  # one consistent version, even beside an update
    metadata = yaml.safe_load(site_paths()["metadata"].read_text())
    stock = for_stock_datasette(metadata, out / "papers.db", live_url)
    (out / "metadata.json").write_text(json.dumps(stock, indent=2))
    notebooks = sorted((notebooks_dir or site_paths()["notebooks"]).glob("*.html"))
    for page in notebooks:
        shutil.copyfile(page, out / "notebooks" / page.name)
    page = landing_page(build_info(db), live_url, [p.stem for p in notebooks])
    (out / "index.html").write_text(page, encoding="utf-8")
    (out / ".nojekyll").write_text("")
    print(f"wrote the GitHub Pages bundle to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neuroai_papers.publish")
    sub = parser.add_subparsers(dest="target", required=True)
    cloudrun = sub.add_parser("cloudrun", help="the live Datasette on Google Cloud Run")
    cloudrun.add_argument("--service", default=os.environ.get("CLOUD_RUN_SERVICE") or SERVICE)
    cloudrun.add_argument("--dry-run", type=Path, metavar="DIR",
                          help="write the deploy bundle to DIR instead of uploading it")
    pages = sub.add_parser("pages", help="the static GitHub Pages bundle")
    pages.add_argument("--out", type=Path, required=True)
    pages.add_argument("--live-url", default=os.environ.get("LIVE_SITE_URL") or None)
    args = parser.parse_args(argv)
    if args.target == "cloudrun" and not args.dry_run and not shutil.which("gcloud"):
        # Before the build: a publish that cannot happen says so at once, and fails (it said
        # "skipped" and exited 0, as if a publish by hand had worked). The publish job runs
        # this step only with the secrets, after setting gcloud up.
        print("error: cannot publish to Cloud Run: gcloud (the Google Cloud SDK) is not "
              "installed; install it and log in (README.md, Publishing), or write the bundle "
              "with --dry-run DIR", file=sys.stderr)
        return 1
    if (status := prepare(DB, always=True)) != 0:
        return status
    if args.target == "cloudrun":
        return publish_cloudrun(args.service, args.dry_run)
    return publish_pages(args.out, args.live_url)


if __name__ == "__main__":
    sys.exit(main())
