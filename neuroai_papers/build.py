"""The build command: dumps/*.txt -> papers.db, with progress and a closing summary.

Exit codes (documented in README.md):
  0  built (parse problems are reported as warnings and stored in `problems`)
  2  a dump or dumps/manifest.yml was refused (bad input); papers.db untouched
  3  the written database failed its checks or could not be written; papers.db untouched
  130, 143  stopped by Ctrl-C (SIGINT) or SIGTERM; papers.db untouched (see stopping.py)
  141  stopped because its output was closed (`| head`), as SIGPIPE would; papers.db untouched
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from importlib.metadata import version
from pathlib import Path

import rapidfuzz

from . import __version__
from .blocks import PAIR_SHIFT
from .dedupe import AbstractHashes, Deduplicator, Sighting
from .enrich import (DATE_REASONS, MANIFEST, build_corpus, load_manifest, paper_rows,
                     sighting_rows)
from .files import special_file_kind
from .incremental import (CannotUpdate, StoredAbstracts, StoredDeduplicator, Update,
                          apply_update, check_update, last_rowids, manifest_entries, new_dumps,
                          nothing_new)
from .organizations import OrganizationIndex, load_reference
from .parallel import DumpReader, NewPapers, large_corpus
from .parse import DumpError, ParsedDump, Record
from .stopping import Interrupted, stop_for_closed_output, stop_signals_handled, stoppable
from .texts import DiskList
from .topics import load_topics, topic_rows
from .uris import read_only_uri
from .write import (BuildCheckError, DatabaseUpdate, DatabaseWriter, WriteError, docs_rows,
                    load_metadata, update_lock)

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "organizations.yml"
TOPICS = ROOT / "reference" / "topics.yml"
# The tables the build fills before it needs the topics (full_build).
WRITTEN_BEFORE_TOPICS = ("dumps", "organizations", "merges", "lookalikes", "problems",
                         "sightings", "title_blocks")
DIRTY = "-dirty"  # after build_info's git_commit, as `git describe --dirty` marks it
EXIT_BAD_INPUT = 2
EXIT_BUILD_FAILED = 3
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


class Progress:
    """Running counts: rewritten in place on a terminal; in a log (CI), a plain line now and then."""

    LOG_EVERY = 10.0  # seconds between running counts in a log

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.live = stream.isatty()
        self.last = time.monotonic()

    def update(self, message: str, final: bool = False) -> None:
        """Show a running count; `final` marks the last one of a stage, always shown."""
        now = time.monotonic()
        if self.live and (final or now - self.last > 0.1):
            self.write(f"\r\033[K{message}" + ("\n" if final else ""))
            self.last = now
        elif not self.live and (final or now - self.last > self.LOG_EVERY):
            self.line(message)
            self.last = now

    def line(self, message: str) -> None:
        self.write(("\r\033[K" if self.live else "") + message + "\n")

    def write(self, text: str) -> None:
        """Write and flush `text`. Once the reader of the output has gone (`| head` has its
        lines), the output is pointed at /dev/null, so that nothing more fails to reach it
        (Python's own flush at exit included, whose failure is exit code 120), and the
        build stops as at a signal (stopping.stop_for_closed_output)."""
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            discard_output(self.stream)
            stop_for_closed_output()


def discard_output(stream) -> None:
    """Point the file under `stream` at /dev/null, with what it still buffers."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


@dataclass
class Summary:
    dumps: int
    records: int
    papers: int
    merges: int
    lookalikes: int
    problems: int
    organizations: int
    seconds: float
    written: bool = True  # False: an incremental build found nothing new and kept the file

    def text(self, out: Path) -> str:
        return (
            f"{'built' if self.written else 'kept'} {out}: {counted(self.dumps, 'dump')}, "
            f"{counted(self.records, 'record')} -> "
            f"{counted(self.papers, 'paper')} ({counted(self.records - self.papers, 'repeat sighting')}, "
            f"{counted(self.merges, 'title variant')} merged, "
            f"{counted(self.lookalikes, 'look-alike')} kept apart), "
            f"{counted(self.organizations, 'organization')}, {counted(self.problems, 'problem')}, "
            f"{self.seconds:.1f}s"
        )


def counted(number: int, noun: str) -> str:
    """Return `number` with thousands separators and `noun`, in the plural unless it is 1."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def list_dumps(dumps_dir: Path) -> list[Path]:
    """Return the dump files in name order; the order is part of the paper ids' stability.

    Raise DumpError, before anything is read, for a dump whose name the database cannot
    hold or that is not a regular file (see files.py: a named pipe would hang the build).
    """
    if not dumps_dir.is_dir():
        raise DumpError(f"{dumps_dir}: no such folder of dumps")
    paths = sorted((path for path in dumps_dir.glob("*.txt") if not is_hidden(path)),
                   key=lambda p: p.name)
    if not paths:
        raise DumpError(f"{dumps_dir}: no *.txt dumps to build from")
    for path in paths:
        refuse_name_not_utf8(path)
        refuse_name_with_control_characters(path)
        refuse_special_file(path)
    return paths


def refuse_output_not_a_database(out: Path) -> None:
    """Raise WriteError, before anything is built, if `out` exists and is not a regular file
    (a folder, a named pipe: the build would read all the dumps and only fail at the end,
    saying that it could not open its own temporary file), or is a file that holds
    something else than an SQLite database: the build replaces `out`, and a typo in --out
    (a dump's name) would destroy that file. An empty file may be replaced."""
    if not out.exists():
        return
    if (kind := special_file_kind(out)) is not None:
        raise WriteError(f"{out}: is {kind}, not a database file (--out names the file to "
                         f"write)")
    with out.open("rb") as file:
        start = file.read(len(SQLITE_HEADER))
    if start and start != SQLITE_HEADER:
        raise WriteError(f"{out}: is not an SQLite database, and the build would replace it "
                         f"(--out names the database to write; delete the file first if it "
                         f"is to go)")


def is_hidden(path: Path) -> bool:
    """Hidden files are never dumps, as for the shell's `dumps/*.txt`: an editor's lock file
    (`.#005.txt`, a link to nowhere) made the build fail, and a `.old.txt` became the first
    dump, whose papers take the ids."""
    return path.name.startswith(".")


def hidden_dumps(dumps_dir: Path) -> list[Path]:
    """Return the hidden *.txt files of `dumps_dir` that are regular files, which a
    maintainer must hear are not read (an editor's lock, a link to nowhere, is left out)."""
    return sorted((path for path in dumps_dir.glob("*.txt") if is_hidden(path) and path.is_file()),
                  key=lambda p: p.name)


def files_not_read(dumps_dir: Path) -> list[Path]:
    """Return what else `dumps_dir` holds besides the dumps (*.txt) and the manifest, hidden
    files left out: a dump saved as `.TXT`, `.md` or with no extension is not read, and a
    maintainer must hear of it rather than find its papers missing."""
    return sorted((path for path in dumps_dir.iterdir()
                   if path.suffix != ".txt" and path.name != MANIFEST
                   and not is_hidden(path)), key=lambda p: p.name)


def refuse_special_file(path: Path) -> None:
    """Raise DumpError if `path` is not a regular file once links are followed, or cannot be
    looked at; it is not opened (opening a named pipe waits for a writer)."""
    try:
        kind = special_file_kind(path)
    except OSError as error:
        raise DumpError(f"{path}: cannot be read ({error.strerror or error})") from None
    if kind is not None:
        raise DumpError(f"{path}: is {kind}, not a dump file")


def refuse_name_not_utf8(path: Path) -> None:
    """Raise DumpError if the file name is not UTF-8: the database stores dump names as text,
    and SQLite cannot take the stray bytes Python keeps of such a name (surrogate escapes)."""
    raw = os.fsencode(path.name)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        printable = raw.decode("utf-8", "backslashreplace")  # the byte as \xff
        raise DumpError(f"{path.parent / printable}: file name is not UTF-8 (byte "
                        f"0x{raw[error.start]:02x}): rename the dump") from None


def refuse_name_with_control_characters(path: Path) -> None:
    """Raise DumpError if the file name holds a control character (a line break, a tab, an
    escape): every message names the dump as `file:line`, on one line, and a name holding
    `\n` split each of its warnings in two, while an escape sequence in it recoloured the
    terminal. The name is shown with such characters escaped (`\n`)."""
    controls = [char for char in path.name if unicodedata.category(char) == "Cc"]
    if controls:
        shown = "".join(char.encode("unicode_escape").decode() if char in controls else char
                        for char in path.name)
        raise DumpError(f"{path.parent / shown}: file name holds a control character "
                        f"(U+{ord(controls[0]):04X}): rename the dump")


def read_and_match(paths: list[Path], dedup: Deduplicator, abstracts: DiskList | list[str],
                   first_copies: AbstractHashes, progress: Progress, stages: "Stages",
                   new_papers: NewPapers | None = None,
                   known: dict[str, str] | None = None) -> list[ParsedDump]:
    """Parse the dumps one at a time and match each record as it comes (streaming).

    Only a few dumps' lines are in memory at once (see parallel.DumpReader, which parses
    ahead in a second process on a large corpus). A new paper's abstract goes to
    `abstracts` (and its hash to `first_copies`); a later copy keeps its own only if it
    differs: matching reads the papers' fingerprints instead.
    Each dump's new papers also go to `new_papers`, which may start on them at once.
    `known` maps the sha256 of each dump already in the database to its name.
    """
    first_with_bytes = dict(known or {})
    parsed = []
    records = 0
    shared: dict = {}
    with DumpReader(paths) as reader:
        if reader.process is not None:
            progress.line(f"reading the dumps {reader.where}, matching here")
        dumps = iter(reader)
        for number, path in enumerate(paths, 1):
            with stages.timed("parse"):  # or, with a reader process, waiting for it
                dump, keys = next(dumps)
            for problem in dump.problems:
                progress.line(f"warning: {path}:{problem.line}: {problem.reason}: "
                              f"{problem.text[:80]!r}")
            report_copy(path, dump.sha256, first_with_bytes, progress)
            with stages.timed("dedupe"):
                share_repeated_values(dump.records, shared)
                created = []
                for record, record_keys in zip(dump.records, keys, strict=True):
                    sighting = Sighting(dump.name, record)
                    paper = dedup.add(sighting, record_keys)
                    if sighting.method == "new":
                        abstracts.append(record.abstract)
                        first_copies.append(record.abstract)
                        created.append((dedup.papers[-1], record.abstract))
                        record.abstract = ""  # the paper keeps it, in `abstracts`
                    elif first_copies.same(paper.number, record.abstract):
                        record.abstract = ""  # the sighting's row says: as the paper's
            if new_papers is not None:
                new_papers.add(created)
            parsed.append(dump)
            records += len(dump.records)
            progress.update(f"parsed {number:,}/{len(paths):,} {path.name}: "
                            f"{counted(len(dump.records), 'record')}, "
                            f"{counted(len(dump.problems), 'problem')}, layout {dump.layout} (so "
                            f"far {counted(records, 'record')}, "
                            f"{counted(len(dedup.papers), 'new paper')})",
                            final=number == len(paths))
    return parsed


def report_copy(path: Path, sha256: str, first_with_bytes: dict[str, str],
                progress: Progress) -> None:
    """Warn when the dump has the same bytes as an earlier one (a file copied by mistake):
    both are read, as two captures of the same page, and every paper of it is counted as
    seen twice. Two real captures of a page differ at least in their upvotes and comments,
    so the copy is kept and named rather than refused."""
    if sha256 in first_with_bytes:
        progress.line(f"warning: {path}: the same bytes as {first_with_bytes[sha256]}: read "
                      f"as a second capture, every paper of it seen twice (delete one copy if "
                      f"it is a mistake)")
    else:
        first_with_bytes[sha256] = path.name


def share_repeated_values(records: list[Record], shared: dict) -> None:
    """Make the records that show the same organization, date or line number hold one
    object for it, kept in `shared`.

    Every record arrives with copies of its own (parsed from its own line, or unpickled from
    the reader), and all records stay in memory until the rows are written: the copies of
    these few thousand distinct values cost 6.5 MiB at 100,000 records (tracemalloc), about
    65 MiB at a million.
    """
    for record in records:
        record.organization = shared.setdefault(record.organization, record.organization)
        record.date_text = shared.setdefault(record.date_text, record.date_text)
        record.date = shared.setdefault(record.date, record.date)
        record.line = shared.setdefault(record.line, record.line)
        record.end_line = shared.setdefault(record.end_line, record.end_line)


def git_commit() -> str:
    """Return the commit the build runs from (CI sets GITHUB_SHA), or 'unknown'; with DIRTY
    after it when the working tree differs from that commit (a file changed, or a new one
    git does not ignore, such as a dump not committed yet): the file was not built from the
    commit alone."""
    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    head = run_git("rev-parse", "HEAD")
    if not head:
        return "unknown"
    return head + DIRTY if run_git("status", "--porcelain") else head


def run_git(*arguments: str) -> str | None:
    """Return what a git command printed in the repository, stripped; None if it failed."""
    try:
        result = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def commit_label(commit: str) -> str:
    """Return the commit as pages show it: its first 12 digits, and whether it was dirty."""
    return commit[:12] + (" with changes not committed" if commit.endswith(DIRTY) else "")


def build_time() -> str:
    """Return the build time; SOURCE_DATE_EPOCH pins it for reproducible files."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return moment.replace(microsecond=0).isoformat()


def dumps_fact(dumps: list[tuple[str, str]]) -> str:
    """Return build_info's `dumps`: how many, the first and last, and one sha256 of every
    (name, sha256) in order. Bounded: the list itself grew by 55 bytes a dump and would
    outgrow the site's 32 kB cap on a value (plugins/sql_limits.py) at about 600 dumps; the
    `dumps` table has every name and hash."""
    digest = hashlib.sha256("".join(f"{name}\0{sha}\n" for name, sha in dumps).encode())
    span = (f", {dumps[0][0]}" + (f" to {dumps[-1][0]}" if len(dumps) > 1 else "")) if dumps else ""
    names = "its name and sha256" if len(dumps) == 1 else "their names and sha256s"
    return f"{counted(len(dumps), 'dump')}{span}; sha256 of {names}: {digest.hexdigest()}"


def make_build_info(dumps: list[tuple[str, str]], reference: Path,
                    manifest: dict) -> dict[str, str]:
    """Return the build facts; `dumps` are (name, sha256) in name order."""
    return {
        "built_at": build_time(),
        "neuroai_papers_version": __version__,
        "git_commit": git_commit(),
        "dumps": dumps_fact(dumps),
        "sqlite_utils_version": version("sqlite-utils"),
        "reusable_inputs_sha256": reusable_inputs_fingerprint(reference),
        "reusable_inputs": json.dumps(reusable_inputs(reference)),
        "manifest": json.dumps(manifest_entries(manifest)),
    }


def reusable_inputs_fingerprint(reference: Path) -> str:
    """Return a hash of what a database's rows depend on besides the dumps (reusable_inputs).

    An incremental build updates a previous database only if this is unchanged: rows made
    by another version would sit beside rows made by this one, where a full build would
    have made them all alike.
    """
    parts = json.dumps(reusable_inputs(reference), sort_keys=True)
    return hashlib.sha256(parts.encode()).hexdigest()


def reusable_inputs(reference: Path) -> dict[str, str]:
    """Return each part of what the rows depend on besides the dumps, with its sha256 (a
    file) or its version: the build code's modules, the topic rules, the organization
    reference, and what shapes the rows from outside the code (row_shaping_versions).
    build_info keeps them, so that a full build in place of an update can say which changed."""
    def sha256(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    return {**{path.name: sha256(path) for path in build_code()},
            "the topic rules": sha256(TOPICS), "the organization reference": sha256(reference),
            **row_shaping_versions()}


# Modules of the package that make no row: a change to serving, publishing or rendering the
# notebooks must not make the publish job build everything again.
NOT_BUILD_CODE = {"site.py", "publish.py", "notebooks.py"}


def build_code() -> list[Path]:
    """Return the package's modules that make the rows, in name order."""
    return [path for path in sorted(ROOT.joinpath("neuroai_papers").glob("*.py"))
            if path.name not in NOT_BUILD_CODE]


def row_shaping_versions() -> dict[str, str]:
    """Return the versions, outside the build code, that the rows depend on:

    - Python's Unicode database: title keys and abstract fingerprints (NFKD, combining
      marks, casefold, `\\W`) follow it, and another Python may give a title another key,
      so other matches and ids;
    - rapidfuzz: its scores decide merges and look-alikes, and pyproject.toml allows a range
      of versions, so a new install may bring another;
    - SQLite (the library Python links): its FTS5 tokenizer makes the full-text index and
      the `terms` counts, and the stored papers' index would not be redone.
    """
    return {"Python's Unicode database": unicodedata.unidata_version,
            "rapidfuzz": rapidfuzz.__version__, "SQLite": sqlite3.sqlite_version}


def report_date_problems(problems: list[dict], paths: list[Path], progress: Progress) -> None:
    """Warn about each date found impossible (Feb 29 of a year that has none, a date after
    the page's own), as about a line the parser could not read: both are problems of a
    dump's line."""
    where = {path.name: path for path in paths}
    for row in problems:
        if row["reason"] in DATE_REASONS:
            progress.line(f"warning: {where.get(row['dump'], row['dump'])}:{row['line']}: "
                          f"{row['reason']}: {row['text'][:80]!r}")


def report_unplaced(places: OrganizationIndex, reference: Path, progress: Progress) -> None:
    for line in places.unplaced():
        progress.line(f"warning: organization not on the map: {line!r} (add it to {reference})")


@dataclass
class Inputs:
    """What every build reads besides the dumps."""

    paths: list[Path]
    manifest: dict
    topics: list
    places: OrganizationIndex
    reference: Path
    metadata: dict


@contextmanager
def cycle_collection_paused():
    """Pause Python's cycle collector for the block (reference counting still frees
    everything that is not in a cycle).

    The records, sightings and papers stay in memory until the rows are written, and the
    collector walks all of them again and again as they grow: 7.6 s of a 300,000-record
    build (matching a million records alone: 47.6 -> 43.5 s). The build makes almost no
    cycles (the collector finds about 800 objects to free after a whole 300,000-record
    build, and the peak memory is the same), so there is nothing for it to do."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@cycle_collection_paused()
def build(dumps_dir: Path, out: Path, metadata_path: Path, reference: Path,
          progress: Progress, incremental: bool = False) -> Summary:
    """Build `out` from the dumps in `dumps_dir` (or, `incremental`, add the new dumps to it
    when it allows: see incremental.py); return what was done."""
    started = time.monotonic()
    refuse_output_not_a_database(out)
    if dumps_dir.is_dir():  # before the dumps are listed: a folder of `.TXT` dumps has none
        for path in files_not_read(dumps_dir):
            progress.line(f"warning: {path}: not read: only files named *.txt are dumps "
                          f"(rename it if it is one)")
        for path in hidden_dumps(dumps_dir):
            progress.line(f"warning: {path}: not read: a hidden file is not a dump (rename it "
                          f"if it is one)")
    paths = list_dumps(dumps_dir)
    inputs = Inputs(paths, load_manifest(dumps_dir, {p.name for p in paths}), load_topics(TOPICS),
                    OrganizationIndex(load_reference(reference)), reference,
                    load_metadata(metadata_path))
    if incremental:
        try:
            new = new_dumps(out, paths, reusable_inputs_fingerprint(reference), inputs.manifest,
                            reusable_inputs(reference))
            if not new and nothing_new(out, partial(make_build_info, reference=reference,
                                                    manifest=inputs.manifest),
                                       docs_rows(inputs.metadata)):
                progress.line(f"{out.name} is up to date: {counted(len(paths), 'dump')}, "
                              f"nothing new")
                return summary_of_counts(table_counts(out), started, written=False)
            progress.line(f"incremental: adding {counted(len(new), 'new dump')} to {out.name} "
                          f"({len(paths) - len(new):,} already in it)")
            return update_database(out, new, inputs, progress, started)
        except CannotUpdate as why:
            progress.line(f"incremental: {why}; building everything")
    return full_build(out, inputs, progress, started)


def full_build(out: Path, inputs: Inputs, progress: Progress, started: float) -> Summary:
    """Build `out` from all the dumps. Rows stream into the temporary database as each stage
    makes them; see write.DatabaseWriter."""
    stages = Stages()
    with ExitStack() as stack:
        writer = stack.enter_context(DatabaseWriter(out))
        abstracts = stack.enter_context(DiskList(writer.scratch_path("abstracts")))
        fingerprints = stack.enter_context(DiskList(writer.scratch_path("fingerprints"),
                                                    private=True))  # matching's alone
        dedup = Deduplicator(fingerprints)
        new_papers = stack.enter_context(NewPapers(
            inputs.topics, TOPICS, writer.scratch_path("new-papers"), worker=large_corpus(inputs.paths)))
        progress.line(f"topics: {new_papers.where}")
        parsed = read_and_match(inputs.paths, dedup, abstracts, AbstractHashes(), progress,
                                stages, new_papers)
        new_papers.all_sent()
        # Matching is done: its keys become the title_blocks rows, and their memory goes to
        # the rows (72 MB of packed pairs instead of the index's 201 MB at a million records).
        title_blocks = dedup.blocks.packed_pairs()
        dedup.blocks.clear()
        abstracts.flush()  # the index, and the topics without a worker, read the file
        # The full-text index needs the papers' texts only: it is built in a thread
        # (write.SearchIndexBuild) from here on, beside the rows. Started after the topics,
        # it was still running when the rows were done, and the build waited for it with a
        # core idle (a million records: write stage 62-68 s, 36 s when started here).
        writer.start_search_index([paper.title for paper in dedup.papers], abstracts.path)
        progress.line("dates, organizations, sightings")
        with stages.timed("rows"):  # first the rows that need no topics
            corpus = build_corpus(parsed, dedup, inputs.manifest, inputs.places)
            report_date_problems(corpus.problems, inputs.paths, progress)
            report_unplaced(inputs.places, inputs.reference, progress)
            for table in ("dumps", "organizations"):  # WRITTEN_BEFORE_TOPICS
                writer.insert(table, getattr(corpus, table))
            for table in ("merges", "lookalikes", "problems"):
                writer.insert(table, getattr(corpus, table), numbered=True)
            writer.insert("sightings", sighting_rows(corpus, inputs.places))
            # The index held every (blocking key, paper) pair: no key is computed again.
            writer.insert_packed_pairs("title_blocks", title_blocks, PAIR_SHIFT)
            del title_blocks
            if new_papers.process is not None:  # the worker is still busy: index meanwhile
                writer.index(WRITTEN_BEFORE_TOPICS)
        progress.line(f"topics of {counted(len(dedup.papers), 'paper')}, then the papers")
        with stages.timed("topics"):  # with a worker: what is left of its work
            new_papers.assign(dedup, abstracts, writer)
            writer.insert("topics", topic_rows(inputs.topics, papers_per_topic(dedup.papers)))
        with stages.timed("rows"), writer.cache_for_random_inserts():
            writer.insert("papers", paper_rows(corpus, dedup, abstracts, inputs.places))
        with stages.timed("topics"):  # the worker has sorted its rows meanwhile
            new_papers.copy_rows(writer)
        records = sum(len(dump.records) for dump in parsed)
        summary = Summary(
            dumps=len(parsed), records=records, papers=len(dedup.papers),
            merges=len(corpus.merges), lookalikes=len(corpus.lookalikes),
            problems=len(corpus.problems), organizations=len(corpus.organizations), seconds=0.0)
        expected = {"dumps": len(parsed), "papers": len(dedup.papers), "sightings": records,
                    "merges": len(dedup.merges), "lookalikes": len(dedup.lookalikes)}
        info = make_build_info([(d.name, d.sha256) for d in parsed], inputs.reference,
                               inputs.manifest)
        # Every row is in the file now: hand the records' memory back before SQLite builds
        # the indexes, so the peak of the build is not the sum of the two.
        del parsed, dedup, corpus
        progress.line(f"writing indexes, adding the full-text index (built meanwhile), "
                      f"then checking {writer.tmp.name}")
        with stages.timed("write"):
            writer.finish(inputs.metadata, info, expected=expected)
    progress.line(f"stages: {stages}")
    summary.seconds = time.monotonic() - started
    return summary


def update_database(out: Path, new: list[Path], inputs: Inputs, progress: Progress,
                    started: float) -> Summary:
    """Add the dumps `new` to `out` in one transaction, or, while a server holds `out`, to a
    copy put in place afterwards (see incremental.py and write.update_lock)."""
    stages = Stages()
    with ExitStack() as stack:
        if stack.enter_context(update_lock(out)):
            writer = stack.enter_context(DatabaseUpdate(out))
        else:
            # Only `site serve` holds that lock, and it restarts on the new file by itself:
            # "the server keeps the file it opened" read as if the site needed a restart.
            progress.line(f"{out.name} is being served: updating a copy, which replaces it "
                          "when done; the server starts again on it by itself within a few "
                          "seconds")
            with stages.timed("copy"):
                writer = stack.enter_context(DatabaseWriter(out, copy_of=out))
        conn = writer.conn
        try:  # SQLite's errors here (a full disk, a reader holding the file) end in one line
            since = last_rowids(conn)
            dedup = StoredDeduplicator(conn)
            abstracts: list[str] = []
            stored = {sha256: name for sha256, name in conn.execute(  # the first copy's name last
                "select sha256, name from dumps order by position desc")}
            parsed = read_and_match(new, dedup, abstracts, StoredAbstracts(conn), progress,
                                    stages, known=stored)
            with stages.timed("rows"):
                update = Update(conn, dedup, parsed, abstracts)
                expected, changed = apply_update(update, inputs.manifest, inputs.places,
                                                 inputs.topics)
                dumps = [(row["name"], row["sha256"]) for row in conn.execute(
                    "select name, sha256 from dumps order by position")]
            report_date_problems(
                [{"dump": dump, "line": line, "text": text, "reason": reason}
                 for dump, line, text, reason in conn.execute(
                     "select dump, line, text, reason from problems where rowid > ? order by rowid",
                     [since["problems"]])],
                inputs.paths, progress)
        except sqlite3.Error as error:
            raise writer.error(error) from None
        report_unplaced(inputs.places, inputs.reference, progress)
        progress.line(f"writing {out.name}: checking what the update changed, then committing it")
        with stages.timed("write"):
            writer.finish_update(inputs.metadata, make_build_info(dumps, inputs.reference,
                                                                  inputs.manifest),
                                 lambda conn: check_update(conn, since, expected, changed,
                                                           update.added))
        totals = table_counts(out)
    progress.line(f"stages: {stages}")
    return summary_of_counts(totals, started)


def summary_of_counts(totals: dict[str, int], started: float, written: bool = True) -> Summary:
    """Return the summary of a whole file from its table_counts, as an incremental build
    leaves it (`written` False: left as it was)."""
    return Summary(dumps=totals["dumps"], records=totals["sightings"], papers=totals["papers"],
                   merges=totals["merges"], lookalikes=totals["lookalikes"],
                   problems=totals["problems"], organizations=totals["organizations"],
                   seconds=time.monotonic() - started, written=written)


def papers_per_topic(papers: list) -> Counter:
    """Return how many papers carry each topic (papers share a few topic lists: each list's
    JSON is read once)."""
    counts: Counter = Counter()
    for topics, papers_with_them in Counter(paper.topics for paper in papers).items():
        for topic in json.loads(topics):
            counts[topic] += papers_with_them
    return counts


def table_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(read_only_uri(db), uri=True)
    try:
        return {table: conn.execute(f"select count(*) from [{table}]").fetchone()[0]
                for table in ("dumps", "sightings", "papers", "merges", "lookalikes", "problems",
                              "organizations")}
    finally:
        conn.close()


class Stages:
    """Seconds spent in each stage of the build, for the closing lines and the benchmarks."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def timed(self, name: str):
        """Add the time spent in the block to the stage `name` (a stage may come back)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - started

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.seconds.items())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_db.py", description="Build papers.db from the dumps in dumps/."
    )
    parser.add_argument("--dumps", type=Path, default=ROOT / "dumps", help="folder of *.txt dumps")
    parser.add_argument("--out", type=Path, default=ROOT / "papers.db", help="database to write")
    parser.add_argument("--metadata", type=Path, default=ROOT / "metadata.yml",
                        help="metadata.yml with the table and column descriptions")
    parser.add_argument("--incremental", action="store_true",
                        help="reuse the previous database at --out for the dumps it already "
                             "holds (same result as a full build)")
    parser.add_argument("--reference", type=Path, default=REFERENCE,
                        help="curated organizations with their locations")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    with stop_signals_handled():  # Ctrl-C and SIGTERM: see stopping.py
        args = parse_args(argv)
        progress = Progress()
        try:
            with stoppable():
                summary = build(args.dumps, args.out, args.metadata, args.reference, progress,
                                args.incremental)
        except DumpError as error:
            progress.line(f"error: {error}")
            progress.line(f"nothing written; {args.out} is unchanged")
            return EXIT_BAD_INPUT
        except (BuildCheckError, OSError) as error:
            progress.line(f"error: the database could not be built: {error}")
            progress.line(f"nothing written; {args.out} is unchanged")
            return EXIT_BUILD_FAILED
        except Interrupted as stop:
            progress.line(f"interrupted: nothing written; {args.out} is unchanged")
            return stop.exit_code
        progress.line(summary.text(args.out))
        return 0
