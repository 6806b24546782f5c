"""Publishing: valid workflows that fire on new dumps, and a deploy bundle that serves the site."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import OUTPUT, ROOT, rows
from neuroai_papers.publish import (
    DRY_RUN_SECRET,
    clean_sources,
    cloudrun_command,
    landing_page,
    publish_arguments,
    publish_pages,
    write_bundle,
)
from neuroai_papers.site import free_port, wait_until_up
from rawhttp import raw_get

WORKFLOWS = ROOT / ".github" / "workflows"


def load_workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML reads the bare key `on` as true
    return data


def github_glob(pattern: str) -> re.Pattern:
    """Return a regex for a GitHub Actions path filter (`**` crosses folders, `*` does not)."""
    regex = ""
    for part in re.split(r"(\*\*/?|\*)", pattern):
        if part.startswith("**"):
            regex += ".*"
        elif part == "*":
            regex += "[^/]*"
        else:
            regex += re.escape(part)
    return re.compile(regex + r"\Z")


def triggers_publish(path: str) -> bool:
    push = load_workflow("publish.yml")["on"]["push"]
    return any(github_glob(pattern).match(path) for pattern in push["paths"])


def test_every_workflow_passes_actionlint():
    actionlint = Path(sys.executable).with_name("actionlint")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    result = subprocess.run([str(actionlint), *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(files) == 2


@pytest.mark.parametrize("path, expected", [
    ("dumps/005_new_page.txt", True),
    ("dumps/manifest.yml", True),
    ("metadata.yml", True),
    ("plugins/cells.py", True),
    ("templates/index.html", True),
    ("reference/organizations.yml", True),
    ("tests/topic_labels.csv", True),  # the published explore notebook scores rules on them
    ("README.md", False),
    ("tests/test_build.py", False),
])
def test_a_new_dump_triggers_publishing_and_docs_do_not(path, expected):
    assert triggers_publish(path) is expected


def test_publishing_runs_on_main_by_hand_one_at_a_time_and_only_after_tests():
    workflow = load_workflow("publish.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in workflow["on"]
    # Per branch: a run that joins a group cancels the one waiting in it, and a test-only
    # run started by hand on another branch cancelled main's waiting publish.
    assert workflow["concurrency"]["group"] == "publish-${{ github.ref }}"
    assert workflow["concurrency"]["cancel-in-progress"] is False
    jobs = workflow["jobs"]
    assert any(step.get("run") == ".ci/run" for step in jobs["test"]["steps"])
    assert jobs["cloudrun"]["needs"] == "test" and jobs["pages"]["needs"] == "test"
    steps = json.dumps(jobs["cloudrun"]["steps"])
    assert "GCP_SA_KEY" in steps and "skipped" in steps


def test_test_workflow_runs_the_readme_command_with_debian_chromium():
    workflow = load_workflow("test.yml")
    job = workflow["jobs"]["test"]
    assert job["container"].endswith("bookworm")
    # The workflows run the CI entry point, which runs README's test command as it is.
    assert any(step.get("run") == ".ci/run" for step in job["steps"])
    (command,) = re.findall(r"^(make test)\b", (ROOT / "README.md").read_text().split("\n## ")[0],
                            re.M)
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == command


def older_pythons() -> list[str]:
    """Pythons on PATH older than 3.11 that run (a pyenv shim of a version not selected does
    not), for the set-up's check."""
    import shutil

    found = []
    for minor in range(6, 11):
        path = shutil.which(f"python3.{minor}")
        if path and subprocess.run([path, "-c", ""], capture_output=True).returncode == 0:
            found.append(path)
    return found[-1:]


@pytest.mark.parametrize("python", ["python3-not-installed", *older_pythons()])
def test_make_setup_names_a_python_it_cannot_use_and_makes_no_venv(python, tmp_path):
    """README's commands start with `make setup`: a python3 missing (or too old) was told to
    install python3-venv, and an old one got a .venv of its own before pip refused it."""
    for name in ("Makefile", "pyproject.toml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    result = subprocess.run(["make", "setup", f"PYTHON={python}"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"{python} is not Python 3.11 or later" in result.stdout
    assert "python3-venv" not in result.stdout
    assert not (tmp_path / ".venv").exists()


@pytest.fixture(scope="module")
def bundle(real_db, rendered_notebooks, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "neuroai-papers"
    with clean_sources(rendered_notebooks) as sources:
        arguments = publish_arguments(real_db, sources)
        write_bundle(arguments, out)
        command = cloudrun_command(arguments, "neuroai-papers")
    return out, arguments, command


def dockerfile_lines(folder: Path) -> dict[str, str]:
    lines = {}
    for line in (folder / "Dockerfile").read_text().splitlines():
        keyword, _, rest = line.partition(" ")
        lines.setdefault(keyword, [])
        lines[keyword].append(rest)
    return lines


def test_bundle_holds_exactly_what_the_site_needs(bundle, real_db):
    folder, _, _ = bundle
    assert sorted(p.name for p in folder.iterdir()) == [
        "Dockerfile", "metadata.json", "notebooks", "papers.db", "plugins", "static", "templates"]
    everything = [p.relative_to(folder) for p in folder.rglob("*")]
    assert not [p for p in everything if p.name.startswith(".") or "__pycache__" in p.parts
                or p.suffix in (".pyc", ".env", ".key", ".pem")]
    assert (folder / "papers.db").read_bytes() == real_db.read_bytes()
    assert sorted(p.name for p in (folder / "plugins").iterdir()) == sorted(
        p.name for p in (ROOT / "plugins").glob("*.py"))
    assert json.loads((folder / "metadata.json").read_text())["title"] == "NeuroAI papers"


REPOSITORY_ONLY = {".git", ".github", ".venv", "tests", "dumps", "reference", "benchmarks",
                   "neuroai_papers", "__pycache__", "node_modules", "test-output", ".ci"}
SECRET_NAMES = re.compile(r"(^\.env|\.(key|pem|p12|pfx|crt)$|^id_(rsa|ed25519|ecdsa)|credential|"
                          r"secret|token|service[-_]?account|\.netrc$|\.pypirc$)", re.IGNORECASE)


def machine_paths(tmp_path_factory) -> list[bytes]:
    """Paths of this machine that a published file must not carry."""
    paths = [ROOT, tmp_path_factory.getbasetemp(), Path.home()]
    return [str(path).encode() for path in paths if len(path.parts) > 2]


def files_under(folder: Path) -> list[Path]:
    return [path for path in sorted(folder.rglob("*")) if path.is_file()]


def assert_only_published_files(folder: Path, tmp_path_factory) -> None:
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        assert not REPOSITORY_ONLY & set(relative.parts), relative
        assert not SECRET_NAMES.search(path.name), relative
    for path in files_under(folder):
        data = path.read_bytes()
        assert b"PRIVATE KEY" not in data, path.name
        for machine_path in machine_paths(tmp_path_factory):
            assert machine_path not in data, (path.relative_to(folder), machine_path)


def test_cloudrun_bundle_carries_no_repository_files_secrets_or_machine_paths(
        bundle, tmp_path_factory):
    folder, _, _ = bundle
    assert_only_published_files(folder, tmp_path_factory)
    assert sorted(p.name for p in (folder / "notebooks").iterdir()) == [
        "explore.html", "maintain.html"]
    assert sorted(p.name for p in (folder / "static").iterdir()) == sorted(
        p.name for p in (ROOT / "static").iterdir() if not p.name.startswith("."))


def test_pages_bundle_carries_no_repository_files_secrets_or_machine_paths(
        real_db, rendered_notebooks, tmp_path, tmp_path_factory):
    out = tmp_path / "site"
    publish_pages(out, None, real_db, rendered_notebooks)
    assert sorted(p.name for p in out.iterdir()) == [
        ".nojekyll", "index.html", "metadata.json", "notebooks", "papers.db"]
    assert_only_published_files(out, tmp_path_factory)


def test_dockerfile_installs_the_pinned_packages_and_no_real_secret(bundle):
    folder, _, command = bundle
    lines = dockerfile_lines(folder)
    (install,) = [line for line in lines["RUN"] if line.startswith("pip install")]
    packages = shlex.split(install)[3:]
    declared = (ROOT / "pyproject.toml").read_text()
    assert {"datasette-cluster-map==0.18.2", "datasette-atom==0.9"} <= set(packages)
    assert all(p == "datasette" or f'"{p}"' in declared for p in packages)
    assert f"DATASETTE_SECRET '{DRY_RUN_SECRET}'" in lines["ENV"]
    assert command[:3] == ["datasette", "publish", "cloudrun"]
    assert command.count("--install") == len(packages) - 1


def test_bundle_serves_the_site_with_the_command_the_service_runs(bundle, real_db):
    folder, _, _ = bundle
    lines = dockerfile_lines(folder)
    inspect = [line for line in lines["RUN"] if line.startswith("datasette inspect")][0]
    datasette = str(Path(sys.executable).with_name("datasette"))
    subprocess.run([datasette, *shlex.split(inspect)[1:]], cwd=folder, check=True, timeout=120)
    port = free_port()
    command = shlex.split(lines["CMD"][0].replace("$PORT", str(port)))
    command[command.index("--host") + 1] = "127.0.0.1"  # loopback only in tests
    command[0] = datasette
    OUTPUT.mkdir(exist_ok=True)
    log = OUTPUT / "bundle-datasette.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(command, cwd=folder, stdout=log_file, stderr=subprocess.STDOUT,
                                  env={**os.environ, "PORT": str(port)})
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base, server)

            def get(path):
                with urllib.request.urlopen(base + path, timeout=20) as response:
                    return response.status, response.read()

            status, front = get("/")
            assert status == 200 and b"Download papers.db" in front
            status, found = get("/papers/search.json?q=spiking&_shape=array")
            assert status == 200 and len(json.loads(found)) > 5
            status, fuzzy = get("/papers.json?sql=select+title_similarity('a-b','A+B')+as+s&_shape=array")
            assert json.loads(fuzzy) == [{"s": 100.0}]
            status, downloaded = get("/papers.db")
            assert downloaded == real_db.read_bytes()
            status, notebook = get("/notebooks/explore.html")
            assert status == 200 and b"data:image/png" in notebook
            assert_mounts_refuse_the_files_beside_them(base)
        finally:
            server.terminate()
            server.wait(timeout=20)


BESIDE_THE_MOUNTS = ["Dockerfile", "metadata.json", "inspect-data.json", "plugins/cells.py"]


def assert_mounts_refuse_the_files_beside_them(base: str) -> None:
    """The bundle's static folders sit next to the Dockerfile, the metadata and the plugins."""
    for mount in ("static", "notebooks"):
        for name in BESIDE_THE_MOUNTS:
            for up in ("../", "..%2f", "%2e%2e/", "%2e%2e%2f", "%252e%252e%252f", "..%5c"):
                target = f"/{mount}/{up}{name}"
                status, body = raw_get(base, target)
                if status == 302:  # Datasette's redirect of %-encoded paths: follow it
                    response = httpx.get(base + target, timeout=20, follow_redirects=True)
                    status, body = response.status_code, response.content
                assert status in (400, 404), (target, status)
                assert b"DATASETTE_SECRET" not in body and b"hookimpl" not in body
                assert b'"databases"' not in body


def test_pages_bundle_has_the_file_the_notebooks_and_a_datasette_lite_link(
        real_db, rendered_notebooks, tmp_path):
    out = tmp_path / "site"
    publish_pages(out, "https://example.org/?a=1&b=<2>", real_db, rendered_notebooks)
    page = (out / "index.html").read_text()
    assert (out / "papers.db").read_bytes() == real_db.read_bytes()
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == ["explore.html", "maintain.html"]
    assert 'href="https://example.org/?a=1&amp;b=&lt;2&gt;"' in page
    assert "lite.datasette.io" in page and 'href="papers.db"' in page
    assert json.loads((out / "metadata.json").read_text())["databases"]["papers"]["queries"]
    assert "not configured" in landing_page({}, None, [])


def test_published_database_records_its_commit_and_dumps(real_db):
    info = dict(rows(real_db, "select key, value from build_info"))
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    expected = os.environ.get("GITHUB_SHA") or (
        head.stdout.strip() + ("-dirty" if dirty else "") if head.returncode == 0 else "unknown")
    assert info["git_commit"] == expected
    listed = rows(real_db, "select name, sha256 from dumps order by position")
    digest = hashlib.sha256("".join(f"{name}\0{sha}\n" for name, sha in listed).encode())
    assert info["dumps"] == (f"{len(listed)} dumps, {listed[0][0]} to {listed[-1][0]}; "
                             f"sha256 of their names and sha256s: {digest.hexdigest()}")


def test_a_relative_dry_run_folder_is_written_where_it_was_asked(real_db, rendered_notebooks,
                                                                 tmp_path, monkeypatch):
    """Datasette's Docker folder changes the working folder: a relative `--dry-run deploy/`
    was written inside it, deleted with it, and reported as written."""
    with clean_sources(rendered_notebooks) as sources:
        arguments = publish_arguments(real_db, sources)
        monkeypatch.chdir(tmp_path)
        written = write_bundle(arguments, Path("deploy"))
        assert written == tmp_path / "deploy" and (tmp_path / "deploy" / "Dockerfile").exists()
        (tmp_path / "deploy" / "Dockerfile").write_text("stale")
        write_bundle(arguments, Path("deploy"))  # a bundle written before is replaced
        assert (tmp_path / "deploy" / "Dockerfile").read_text().startswith("FROM ")


def test_a_bundle_never_replaces_a_folder_it_did_not_write(real_db, rendered_notebooks, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("keep me")
    with clean_sources(rendered_notebooks) as sources:
        arguments = publish_arguments(real_db, sources)
        for write in (lambda: write_bundle(arguments, notes),
                      lambda: publish_pages(notes, None, real_db, rendered_notebooks),
                      lambda: publish_pages(ROOT, None, real_db, rendered_notebooks)):
            with pytest.raises(SystemExit, match="refusing to"):
                write()
    assert (notes / "mine.txt").read_text() == "keep me"


def test_only_main_is_ever_published_and_cloud_run_knows_its_region():
    jobs = load_workflow("publish.yml")["jobs"]
    for name in ("cloudrun", "pages"):
        assert jobs[name]["if"] == "github.ref == 'refs/heads/main'"
    assert "CLOUDSDK_RUN_REGION" in jobs["cloudrun"]["env"]


def test_documentation_changes_run_the_tests_that_read_it():
    assert "paths-ignore" not in json.dumps(load_workflow("test.yml")["on"])


def facet_counts(base: str) -> dict[str, list]:
    """The papers page's facets: name -> [(value, count)] as the server counts them."""
    page = httpx.get(f"{base}/papers/papers.json?_size=0&_facet_size=50", timeout=60).json()
    return {name: [(item["value"], item["count"]) for item in facet["results"]]
            for name, facet in page["facet_results"].items()}


def test_stock_datasette_with_the_pages_metadata_shows_the_sites_facets(
        real_db, rendered_notebooks, tmp_path, site):
    """Datasette Lite has none of the site's plugins: with the metadata.json it is given,
    stock Datasette shows every facet of the papers page, with the site's counts (the
    site's own facet types, unknown to it, gave no facet at all)."""
    out = tmp_path / "site"
    publish_pages(out, None, real_db, rendered_notebooks)
    metadata = json.loads((out / "metadata.json").read_text())
    declared = metadata["databases"]["papers"]["tables"]["papers"]["facets"]
    assert not [f for f in declared if isinstance(f, dict) and {"indexed", "list"} & f.keys()]
    expected = facet_counts(site)
    assert len(expected) == len(declared) == 7
    with stock_datasette(out) as base:
        assert facet_counts(base) == expected


@contextlib.contextmanager
def stock_datasette(bundle: Path):
    """Serve the Pages bundle's papers.db with its metadata.json on stock Datasette (none
    of the site's plugins, as Datasette Lite runs it) on loopback; yield its base URL.
    Datasette 0.65 still loads the installed plugin packages (datasette-atom among them,
    which Lite lacks): a test cannot ask it for Lite's 404 of a feed."""
    port = free_port()
    datasette = str(Path(sys.executable).with_name("datasette"))
    server = subprocess.Popen([datasette, "serve", "-i", str(bundle / "papers.db"), "--metadata",
                               str(bundle / "metadata.json"), "--host", "127.0.0.1", "--port",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, server)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


CONTAINER_JOBS = [(name, job) for name in ("test.yml", "publish.yml")
                  for job, settings in load_workflow(name)["jobs"].items() if "container" in settings]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as the container runs, to give the "
                    "checkout another owner")
@pytest.mark.parametrize("workflow, job_name", CONTAINER_JOBS)
def test_container_jobs_let_git_read_the_checkout_the_runners_user_owns(workflow, job_name,
                                                                         tmp_path):
    """The container runs as root over a checkout the runner's user owns: git refused it
    (dubious ownership) once actions/checkout's own exception was gone, and the clone of
    test_a_build_from_files_not_committed_says_so_in_its_commit failed in every CI run.
    The job's steps before its first `make` are run here as Actions runs them."""
    workspace = tmp_path / "workspace"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(workspace)], check=True, timeout=120)
    for path in [workspace, *workspace.rglob("*")]:
        os.lchown(path, 1001, 1001)
    home = tmp_path / "home"  # /github/home: the job's HOME, kept from step to step
    home.mkdir()
    environment = {**os.environ, "HOME": str(home), "GITHUB_WORKSPACE": str(workspace),
                   "GIT_CONFIG_NOSYSTEM": "1"}
    for step in load_workflow(workflow)["jobs"][job_name]["steps"]:
        if "make" in step.get("run", ""):
            break
        if "run" in step:
            subprocess.run(["bash", "-e", "-c", step["run"]], cwd=workspace, env=environment,
                           check=True, timeout=60)
    cloned = subprocess.run(["git", "clone", "-q", str(workspace), str(tmp_path / "clone")],
                            env=environment, capture_output=True, text=True, timeout=120)
    assert cloned.returncode == 0, cloned.stderr
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=workspace, env=environment,
                          capture_output=True, text=True, timeout=60)
    assert head.returncode == 0, head.stderr


def test_a_build_from_files_not_committed_says_so_in_its_commit(tmp_path):
    """A clone builds with its commit; a dump added and not committed yet marks it -dirty,
    and the front page and the Pages landing page say so."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True,
                          text=True, check=True).stdout.strip()
    environment = {key: value for key, value in os.environ.items() if key != "GITHUB_SHA"}

    def built_commit() -> str:
        subprocess.run([sys.executable, str(clone / "build_db.py"), "--out",
                        str(tmp_path / "papers.db")], cwd=clone, env=environment, check=True,
                       capture_output=True, timeout=300)
        return dict(rows(tmp_path / "papers.db", "select key, value from build_info"))["git_commit"]

    assert built_commit() == head
    dump = sorted((clone / "dumps").glob("*.txt"))[-1]
    (clone / "dumps" / "999_new.txt").write_bytes(dump.read_bytes())
    assert built_commit() == head + "-dirty"
    page = landing_page({"git_commit": head + "-dirty"}, None, [])
    assert f"<code>{head[:12]} with changes not committed</code>" in page


def test_publishing_to_cloud_run_by_hand_without_gcloud_fails_before_building(tmp_path):
    """It said "skipped" and exited 0, as if the publish had worked, after building."""
    environment = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no gcloud there
    result = subprocess.run([sys.executable, "-m", "neuroai_papers.publish", "cloudrun"],
                            cwd=tmp_path, env=environment, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: cannot publish to Cloud Run: gcloud (the Google "
                                    "Cloud SDK) is not installed")
    assert "built" not in result.stderr and "rendered" not in result.stderr


def run_fetch_step(base_url: str, folder: Path) -> subprocess.CompletedProcess:
    """Run the pages job's step that fetches the published papers.db, as Actions runs it."""
    steps = load_workflow("publish.yml")["jobs"]["pages"]["steps"]
    (step,) = [step for step in steps if "papers.db" in step.get("run", "")
               and "curl" in step["run"]]
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=folder, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PAGES_URL": base_url})


@pytest.mark.parametrize("cut", [False, True])
def test_a_published_database_cut_short_is_not_kept_for_the_update(tmp_path, cut):
    """The step said 'full build' when curl failed, but a download cut short left part of
    the file, which the build then took for the previous database."""
    import http.server
    import threading

    whole = b"SQLite format 3\0" + bytes(4000)

    class Published(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(whole)))
            self.end_headers()
            self.wfile.write(whole[:1000] if cut else whole)  # then the connection closes

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Published)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_fetch_step(f"http://127.0.0.1:{server.server_port}", tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    if cut:
        assert not (tmp_path / "papers.db").exists() and "full build" in result.stdout
    else:
        assert (tmp_path / "papers.db").read_bytes() == whole


def test_stock_datasette_with_the_pages_metadata_answers_every_query_it_lists(
        real_db, rendered_notebooks, tmp_path):
    """Datasette Lite lists the canned queries of the metadata.json it is given: each one
    answers there. Those that call an SQL function only the site's plugins define
    (related_papers, title_similarity) are left out: they answered "no such function"."""
    out = tmp_path / "site"
    publish_pages(out, None, real_db, rendered_notebooks)
    queries = json.loads((out / "metadata.json").read_text())["databases"]["papers"]["queries"]
    site = yaml.safe_load((ROOT / "metadata.yml").read_text())
    site_queries = site["databases"]["papers"]["queries"]
    assert set(queries) == set(site_queries) - {"related", "fuzzy_title"}
    paper = rows(real_db, "select id from papers order by rowid limit 1")[0][0]
    with stock_datasette(out) as base:
        for name, query in site_queries.items():  # the site's queries, as Lite would list them
            params = {p: paper if p == "paper_id" else "brain"
                      for p in re.findall(r"(?<!:):(\w+)", query["sql"]) if not p.startswith("_")}
            answer = httpx.get(f"{base}/papers/{name}.json", params=params, timeout=60)
            if name in queries:
                assert answer.status_code == 200 and answer.json()["ok"], (name, answer.text[:300])
            else:
                assert answer.status_code == 404, name  # not listed, not a failing page


@pytest.mark.parametrize("live_url", [None, "https://papers.example.org"])
def test_stock_datasette_with_the_pages_metadata_links_no_atom_feed_it_cannot_serve(
        real_db, rendered_notebooks, tmp_path, live_url):
    """Datasette Lite has no datasette-atom: the feed query's description linked
    /papers/feed.atom, which answered 404 there. The link goes to the live site when there
    is one, and is plain text otherwise; the query's rows are still there."""
    out = tmp_path / "site"
    publish_pages(out, live_url, real_db, rendered_notebooks)
    with stock_datasette(out) as base:
        page = httpx.get(f"{base}/papers/feed", params={"topic": ""}, timeout=60)
        assert page.status_code == 200
        (description,) = re.findall(r'<div class="metadata-description">(.*?)</div>',
                                    page.text, re.S)
        atom_links = re.findall(r'href="([^"]*\.atom[^"]*)"', description)
        if live_url:
            assert atom_links == [f"{live_url}/papers/feed.atom"]
        else:
            assert atom_links == []
            assert "<code>/papers/feed.atom</code> (on the live site" in description
        assert "urn:neuroai-papers:paper:" in page.text  # the feed's entries, as rows
