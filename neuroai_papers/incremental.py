"""Add new dumps to the previous papers.db instead of building everything again.

`build_db.py --incremental` adds the new dumps to the previous database in one transaction
(write.DatabaseUpdate; a copy renamed into place while a server holds the file). The result
equals a full build of all the dumps, row for row with the same ids (tests hold them equal),
because a full build is itself incremental in dump order, and every step of it can be redone
for the new rows only:

- matching: a new record meets the previous papers through the database (title keys, the
  `title_blocks` table, their abstracts), exactly as it would have met them in memory;
- topics: a paper's topics depend on its own title and abstract only;
- related papers are not stored (they are computed when asked for), and the `terms` counts
  of the full-text index grow by the terms of the new papers;
- dates: a new dump's capture year is inferred as in a full build; an older dump whose
  capture year was inferred is inferred again if a new dump dates one of its papers (shows
  it with a year, or without one on a page whose year is stated or on its date line), and
  its sightings and papers are updated if the year changes;
- summaries: the papers that gained a sighting are summarized again from all of them, and
  the organizations they name are counted again.

So the work is proportional to the new dumps (and the hashing of the old ones). What cannot be
redone this way falls back to a full build, saying why: no previous database, other build
code, topic rules, organization reference or version of Python's Unicode database, rapidfuzz
or SQLite than the previous build's (build.row_shaping_versions), an old dump that
changed, went missing or had its capture stated differently in dumps/manifest.yml, a new
dump that sorts before an old one, or a new dump that turns an old date into an impossible
one (problems are numbered in file order, so that would renumber them).

The update is checked where it changed (row counts, the links of every new or changed row);
the whole-file checks of a full build (quick_check, the foreign keys, the full-text
index) take some 15 s at a million records, several times what the rest of the update
takes, and the file passed them when it was built.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Iterator

from .dedupe import (BLOCK_CANDIDATES, AbstractHashes, Deduplicator, Paper, RecordKeys,
                     Sighting, abstract_fingerprint)
from .enrich import (INVALID, Capture, capture_columns, date_problem, dated_after, dump_row,
                     evidence_date, infer_capture, make_organization_rows, page_date_problems,
                     paper_row, problem_row, read_dates_by_paper,
                     refuse_capture_the_page_contradicts, resolve_date, sighting_row,
                     stated_capture)
from .organizations import OrganizationIndex
from .parse import ParsedDump, Record, is_a_day, parse_date
from .topics import Topic, topics_of_papers
from .uris import file_uri
from .write import FTS, TABLES, WITHOUT_ROWID, BuildCheckError, check_search_rowids


FTS_TABLE = "papers_fts"
# A table stored WITHOUT ROWID has no rowids that tell an update's rows from the others: its
# rows of the update are those of the new papers (what a paper alone determines is made once,
# when the paper is new). The parameters are the last rowids before the update (last_rowids).
NEW_ROWS_WITHOUT_ROWID = {
    "paper_topics": "paper_id in (select id from papers where rowid > :papers)",
    "title_blocks": "paper_rowid > :papers",
}


class CannotUpdate(Exception):
    """The previous database cannot be updated in place; the message says why."""


def manifest_entries(manifest: dict[str, date | int]) -> dict[str, str]:
    """Return the manifest as the build stores it in build_info (JSON-friendly)."""
    return {name: value.isoformat() if isinstance(value, date) else str(value)
            for name, value in sorted(manifest.items())}


ANY_INPUT = ("the build code, the topic rules, the organization reference or the version of "
             "Python's Unicode database, rapidfuzz or SQLite")
SHA256 = re.compile(r"[0-9a-f]{64}")


def changed_inputs(stored: dict[str, str], now: dict[str, str]) -> str:
    """Return which parts of build.reusable_inputs differ ("enrich.py, rapidfuzz 3.14.5 ->
    3.14.6"): a file by its name, a version with both; "" if the previous build kept none."""
    if not stored:
        return ""
    changed = []
    for name in sorted(stored.keys() | now.keys()):
        before, after = stored.get(name), now.get(name)
        if before == after:
            continue
        if SHA256.fullmatch(before or after or ""):
            note = " (new)" if before is None else " (gone)" if after is None else ""
            changed.append(name + note)
        else:
            changed.append(f"{name} {before} -> {after}")
    return ", ".join(changed)


def new_dumps(db: Path, paths: list[Path], fingerprint: str,
              manifest: dict[str, date | int], inputs: dict[str, str]) -> list[Path]:
    """Return the dumps to add to the previous database at `db`; raise CannotUpdate if it
    cannot take them (the message says why)."""
    if not db.exists():
        raise CannotUpdate(f"no previous database at {db}")
    try:
        # mode=rw, though it only reads: a read-only connection cannot play back the journal
        # of an update in place that was interrupted, and refuses to read.
        conn = sqlite3.connect(file_uri(db, "rw"), uri=True, timeout=60)
        try:
            info = dict(conn.execute("select key, value from build_info"))
            previous = conn.execute("select name, sha256 from dumps order by position").fetchall()
            conn.execute("select 1 from title_blocks limit 1")  # it exists
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise CannotUpdate(f"the previous database cannot be read ({error})") from None
    if info.get("reusable_inputs_sha256") != fingerprint:
        stored = json.loads(info.get("reusable_inputs") or "{}")
        raise CannotUpdate(f"{changed_inputs(stored, inputs) or ANY_INPUT} changed since the "
                           "previous build")
    # Before the order: a renamed dump is a gone one (and a new one that may sort anywhere).
    present = {path.name for path in paths}
    gone = [name for name, _ in previous if name not in present]
    if gone:
        raise CannotUpdate(f"{named(gone)}, which the previous database holds, "
                           f"{'is' if len(gone) == 1 else 'are'} gone")
    stated_before = json.loads(info.get("manifest", "{}"))
    stated_now = manifest_entries(manifest)
    for (name, sha), path in zip(previous, paths):
        if path.name != name:
            raise CannotUpdate(f"{path.name} sorts before {name}, which the previous database "
                               "already holds")
        # Hashed one after another: two threads took longer (1.9-2.5 s against 1.5-1.8 s
        # for the 16,656 dumps of a million records), the files being small and many.
        if hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            raise CannotUpdate(f"{name} changed since the previous build")
        if stated_before.get(name) != stated_now.get(name):
            raise CannotUpdate(f"the capture of {name} in dumps/manifest.yml changed")
    return paths[len(previous):]


# Build facts about the run that wrote the file rather than about what it holds.
RUN_FACTS = ("built_at", "git_commit")


def nothing_new(db: Path, facts_for, docs: tuple[list[tuple], list[tuple]]) -> bool:
    """True if an update of `db` that adds no dump would write nothing but RUN_FACTS: then
    the build leaves the file alone, byte for byte, rather than rewrite it as new.

    Called once new_dumps has found no new dump, which also means that the build code, topic
    rules, organization reference, the versions that shape the rows, every old dump and its
    capture in the manifest are as the previous build saw them (else it raised
    CannotUpdate). What an update would still rewrite is the documentation and the build
    facts, so the file is up to date only if:

    - table_docs and column_docs equal what metadata.yml gives now (a changed description
      must reach the file, as an update writes it today);
    - every build fact but RUN_FACTS equals what this build would store (`facts_for(dumps)`
      with the file's dumps as (name, sha256)): the sqlite-utils version, for one, is no
      reusable input, and an update records the new one.

    built_at and git_commit are left as they were: they say when and from which commit the
    rows were made, which stays true; stamping them anew on unchanged rows would make a
    file that differs from the previous one in nothing but its date, and a download, a
    publish or a served site that changes for nothing.
    """
    try:
        conn = sqlite3.connect(file_uri(db, "ro"), uri=True, timeout=60)
        try:
            dumps = conn.execute("select name, sha256 from dumps order by position").fetchall()
            stored = dict(conn.execute("select key, value from build_info"))
            stored_docs = (conn.execute("select table_name, description from table_docs "
                                        "order by rowid").fetchall(),
                           conn.execute("select table_name, column_name, description from "
                                        "column_docs order by rowid").fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        return False  # the update that follows reports what is wrong with the file
    expected = {key: str(value) for key, value in facts_for(dumps).items()}
    return stored_docs == docs and without_run_facts(stored) == without_run_facts(expected)


def without_run_facts(facts: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in facts.items() if key not in RUN_FACTS}


def named(names: list[str], at_most: int = 3) -> str:
    """Return the first names, and how many more there are."""
    more = len(names) - at_most
    return ", ".join(names[:at_most]) + (f" and {more} more" if more > 0 else "")


class StoredFingerprints:
    """Abstract fingerprints by paper number: the stored papers' read from the database."""

    def __init__(self, conn: sqlite3.Connection, first_new: int):
        self.conn, self.first_new, self.new = conn, first_new, []

    def __getitem__(self, number: int) -> str:
        if number >= self.first_new:
            return self.new[number - self.first_new]
        (abstract,) = self.conn.execute("select abstract from papers where rowid = ?",
                                        (number + 1,)).fetchone()
        return abstract_fingerprint(abstract)

    def append(self, fingerprint: str) -> None:
        self.new.append(fingerprint)


class StoredAbstracts(AbstractHashes):
    """AbstractHashes of an update: a stored paper's abstract is read from the database."""

    def __init__(self, conn: sqlite3.Connection):
        super().__init__(conn.execute("select count(*) from papers").fetchone()[0])
        self.conn = conn

    def same(self, number: int, abstract: str) -> bool:
        if number >= self.first_number:
            return super().same(number, abstract)
        (stored,) = self.conn.execute("select abstract from papers where rowid = ?",
                                      (number + 1,)).fetchone()
        return stored == abstract


class StoredDeduplicator(Deduplicator):
    """Matching that meets the papers already in the database as a full build would.

    `papers` holds the new papers only (numbered after the stored ones); a stored paper
    that a new record joins is loaded once, and kept in `touched`.
    """

    def __init__(self, conn: sqlite3.Connection):
        stored = conn.execute("select count(*) from papers").fetchone()[0]
        super().__init__(StoredFingerprints(conn, stored))
        self.conn = conn
        self.first_number = stored
        self.loaded: dict[int, Paper] = {}
        self.touched: dict[int, Paper] = {}

    def stored_paper(self, rowid: int) -> Paper:
        if rowid not in self.loaded:
            paper_id, key, title = self.conn.execute(
                "select id, title_key, title from papers where rowid = ?", (rowid,)).fetchone()
            self.loaded[rowid] = Paper(paper_id, key, title, rowid - 1)
        return self.loaded[rowid]

    def papers_with_key(self, key: str) -> list[Paper]:
        # The newest BLOCK_CANDIDATES, as Deduplicator.papers_with_key: the stored ones first.
        stored = [self.stored_paper(rowid) for (rowid,) in self.conn.execute(
            "select rowid from papers where title_key = ? order by rowid desc limit ?",
            (key, BLOCK_CANDIDATES))]
        return (stored[::-1] + super().papers_with_key(key))[-BLOCK_CANDIDATES:]

    def candidate_numbers(self, blocks: list[int]) -> list[int]:
        # Only the newest candidates of a block are compared: the stored ones come first.
        numbers: list[int] = []
        for block in blocks:
            stored = [rowid - 1 for (rowid,) in self.conn.execute(
                "select paper_rowid from title_blocks where block = ? order by paper_rowid "
                "desc limit ?", (block, BLOCK_CANDIDATES))]
            numbers += (stored[::-1] + self.blocks.holders_of(block))[-BLOCK_CANDIDATES:]
        return numbers

    def paper_numbered(self, number: int) -> Paper:
        if number < self.first_number:
            return self.stored_paper(number + 1)
        return super().paper_numbered(number)

    def id_taken(self, paper_id: str) -> bool:
        return super().id_taken(paper_id) or self.conn.execute(
            "select 1 from papers where id = ?", (paper_id,)).fetchone() is not None

    def pair_recorded(self, pair: tuple[str, str]) -> bool:
        return super().pair_recorded(pair) or self.conn.execute(
            "select 1 from lookalikes where paper_id = ? and other_paper_id = ?", pair
        ).fetchone() is not None

    def add(self, sighting: Sighting, keys: RecordKeys | None = None) -> Paper:
        paper = super().add(sighting, keys)
        if paper.number < self.first_number:
            self.touched[paper.number] = paper
        return paper


def record_of(row: sqlite3.Row) -> Record:
    """Return the record a sighting row was made from (its abstract, if it differs from its
    paper's; else "", as read_and_match leaves it)."""
    parsed = parse_date(row["date_text"]) if row["date_text"] else None
    return Record(position=row["position"], line=row["line"], title=row["title"],
                  abstract=row["abstract"] or "",
                  end_line=row["end_line"], authors=row["authors"],
                  organization=row["organization"], date_text=row["date_text"],
                  date=parsed[0] if parsed else None, comments=row["comments"])


def stored_sighting(row: sqlite3.Row) -> Sighting:
    return Sighting(row["dump"], record_of(row), row["paper_id"], row["match_method"],
                    row["published"], row["date_method"])


def parsed_dump(row: sqlite3.Row) -> ParsedDump:
    """Return a stored dump's header (its records are in sightings)."""
    parsed = parse_date(row["capture_text"]) if row["capture_text"] else None
    return ParsedDump(name=row["name"], layout=row["layout"], line_count=row["lines"],
                      capture_text=row["capture_text"], capture_line=row["capture_line"],
                      capture=parsed[0] if parsed and is_a_day(parsed[0]) else None,
                      sha256=row["sha256"],
                      bytes=row["bytes"])


def stored_capture(row: sqlite3.Row) -> Capture:
    """Return a stored dump's capture as enrich.stated_capture gave it: as stored if the page
    or the manifest stated it; unknown if it was inferred (an inferred year is no evidence)."""
    capture = Capture(row["capture_text"], row["capture_line"], None, None, "unknown",
                      page=parsed_dump(row).capture)
    if row["capture_method"] in ("stated", "page"):
        capture.date, capture.year = row["capture_date"], row["capture_year"]
        capture.method = row["capture_method"]
    return capture


class StoredCaptures(dict):
    """Captures by dump name; a stored dump's is made by stored_capture when first asked for."""

    def __init__(self, stored_dumps: dict[str, sqlite3.Row]):
        super().__init__()
        self.stored_dumps = stored_dumps

    def __missing__(self, name: str) -> Capture:
        capture = self[name] = stored_capture(self.stored_dumps[name])
        return capture


@dataclass
class Update:
    """What the new dumps add to or change in the stored database."""

    conn: sqlite3.Connection
    dedup: StoredDeduplicator
    parsed: list[ParsedDump]  # the new dumps, in name order
    abstracts: list[str]  # the new papers' abstracts, in the order of dedup.papers

    def __post_init__(self):
        self.conn.row_factory = sqlite3.Row
        self.stored_dumps = {row["name"]: row for row in self.conn.execute(
            "select * from dumps order by position")}
        self.order = {name: row["position"] for name, row in self.stored_dumps.items()}
        for parsed in self.parsed:
            self.order[parsed.name] = len(self.order) + 1
        self.new_sightings = [s for paper in self.dedup.papers for s in paper.sightings]
        self.new_sightings += [s for paper in self.dedup.touched.values() for s in paper.sightings]
        self.new_sightings.sort(key=lambda s: (self.order[s.dump], s.record.position))
        self.new_ids = {paper.id for paper in self.dedup.papers}
        self.complete: dict[str, Paper] = {}  # papers with all their sightings, by id
        self.redates: dict[tuple[str, int], tuple] = {}  # (dump, position) -> new date, method
        self.added: dict[str, int] = {}  # rows inserted per table
        self.known: dict[str, Capture] | None = None  # known_captures, once asked for

    def max_id(self, table: str) -> int:
        return self.conn.execute(f"select coalesce(max(id), 0) from [{table}]").fetchone()[0]

    def with_all_sightings(self, paper: Paper) -> Paper:
        """Return the paper with its stored sightings before its new ones (cached)."""
        if paper.id not in self.complete:
            stored = [stored_sighting(row) for row in self.conn.execute(
                "select * from sightings where paper_id = ? order by id", (paper.id,))]
            paper.sightings[:0] = stored
            self.complete[paper.id] = paper
        return self.complete[paper.id]

    def stored_paper_by_id(self, paper_id: str) -> Paper:
        (rowid,) = self.conn.execute("select rowid from papers where id = ?", (paper_id,)).fetchone()
        return self.dedup.stored_paper(rowid)

    def read_dates(self, paper_ids: set[str], manifest: dict) -> dict[str, list[date]]:
        new = {paper.id: paper for paper in self.dedup.papers}
        papers = [new[pid] if pid in new else self.with_all_sightings(self.stored_paper_by_id(pid))
                  for pid in sorted(paper_ids)]
        return read_dates_by_paper(papers, self.known_captures(manifest))

    def known_captures(self, manifest: dict) -> dict[str, Capture]:
        """enrich.stated_capture of every dump (the same for every call of one update): for
        a stored one, the capture it stored if its page or the manifest stated it, read when
        first asked for (an update meets few of the stored dumps: reading all 16,656 of a
        million records took 0.15 s, some 5% of the update)."""
        if self.known is None:
            self.known = StoredCaptures(self.stored_dumps)
            self.known.update((parsed.name, stated_capture(parsed, manifest.get(parsed.name)))
                              for parsed in self.parsed)
        return self.known

    def new_captures(self, manifest: dict) -> dict[str, Capture]:
        by_dump = {parsed.name: [s for s in self.new_sightings if s.dump == parsed.name]
                   for parsed in self.parsed}
        for parsed in self.parsed:  # first, as in enrich.build_corpus
            if (stated := manifest.get(parsed.name)) is not None:
                refuse_capture_the_page_contradicts(parsed, by_dump[parsed.name], stated,
                                                    manifest)
        captures = {}
        for parsed in self.parsed:
            sightings = by_dump[parsed.name]
            dates = self.read_dates({s.paper_id for s in sightings}, manifest)
            captures[parsed.name] = infer_capture(parsed, sightings, dates, manifest)
        return captures

    def changed_captures(self, manifest: dict) -> dict[str, Capture]:
        """Return the stored dumps whose inferred capture the new read dates change; raise
        CannotUpdate if they date a paper of a dump after the capture the manifest states
        for it (a full build refuses the manifest then, saying where)."""
        known = self.known_captures(manifest)
        dated = {s.paper_id for s in self.new_sightings
                 if s.paper_id not in self.new_ids and evidence_date(s, known[s.dump])}
        if not dated:
            return {}
        marks = ", ".join("?" * len(dated))
        names = [name for (name,) in self.conn.execute(
            f"select distinct dump from sightings where paper_id in ({marks})", sorted(dated))]
        changed = {}
        for name in names:
            row = self.stored_dumps[name]
            if row["capture_method"] == "page":
                continue
            sightings = [stored_sighting(r) for r in self.conn.execute(
                "select * from sightings where dump = ? order by position", (name,))]
            dates = self.read_dates({s.paper_id for s in sightings}, manifest)
            if row["capture_method"] == "stated":
                if dated_after(sightings, dates, manifest[name]):
                    raise CannotUpdate(f"a new dump dates a paper of {name} after the capture "
                                       "dumps/manifest.yml states for it")
                continue
            capture = infer_capture(parsed_dump(row), sightings, dates, None)
            if capture_columns(capture) != {k: row[k] for k in capture_columns(capture)}:
                changed[name] = capture
        return changed


def date_new_sightings(update: Update, captures: dict[str, Capture]) -> list[dict]:
    """Date the new sightings; return their impossible dates as problems."""
    problems = []
    for sighting in update.new_sightings:
        record = sighting.record
        sighting.published, sighting.date_method = resolve_date(record.date, captures[sighting.dump])
        if sighting.date_method == INVALID:
            problems.append(date_problem(sighting, captures[sighting.dump]))
    return problems


def redate_stored_dump(update: Update, name: str, capture: Capture) -> tuple[list[tuple], set[str]]:
    """Return the changed (published, date_method, id) of a stored dump's sightings under its
    new capture, and the papers of those sightings; raise CannotUpdate if a date is
    impossible under the old capture or the new one (its problem row would appear, go, or
    change its reason)."""
    stored = update.stored_dumps[name]
    before = Capture(stored["capture_text"], stored["capture_line"], None, stored["capture_year"],
                     stored["capture_method"], page=parsed_dump(stored).capture)
    if page_date_problems(name, before) != page_date_problems(name, capture):
        raise CannotUpdate(f"a new dump changes the capture of {name}, whose own date (line "
                           f"{stored['capture_line']}) is or was not in its capture year, which "
                           "renumbers the problems")
    changes, papers = [], set()
    for row in update.conn.execute("select * from sightings where dump = ? order by position", (name,)):
        published, method = resolve_date(record_of(row).date, capture)
        # Both impossible: for the same reason whatever the year (date_problem), so the
        # problem row stays as it is.
        if INVALID in (method, row["date_method"]) and method != row["date_method"]:
            raise CannotUpdate(f"a new dump changes the capture of {name}, where the date of "
                               f"line {row['end_line']} is or was impossible, which renumbers "
                               "the problems")
        if (published, method) != (row["published"], row["date_method"]):
            papers.add(row["paper_id"])
            changes.append((published, method, row["id"]))
            update.redates[(name, row["position"])] = (published, method)
    return changes, papers


def apply_update(update: Update, manifest: dict, places: OrganizationIndex,
                 topics: list[Topic]) -> tuple[dict[str, int], set[str]]:
    """Write the new dumps' rows into the copy and update the rows they change.

    Returns the row counts the copy must now hold and the ids of the stored papers whose
    rows changed.
    """
    conn = update.conn
    dedup = update.dedup

    def insert(table, rows, first_id=None, rowids=None):
        update.added[table] = (update.added.get(table, 0)
                               + insert_rows(conn, table, rows, first_id, rowids))

    # Topics and their evidence: the new papers only.
    new_papers = list(zip(dedup.papers, update.abstracts, strict=True))
    texts = [{"id": p.id, "title": p.title, "abstract": abstract} for p, abstract in new_papers]
    evidence, new_topics = [], {}
    for paper, (assigned, rows) in zip(dedup.papers, topics_of_papers(texts, topics)):
        paper.topics = assigned
        evidence += rows
        for topic in json.loads(assigned):
            new_topics[topic] = new_topics.get(topic, 0) + 1
    insert("paper_topics", evidence)
    conn.executemany("update topics set papers = papers + ? where id = ?",
                     [(count, topic) for topic, count in new_topics.items()])

    # Dates: the new dumps' captures, then the stored dumps whose capture they change.
    # The stored dumps first: a stated capture contradicted there falls back, and the full
    # build refuses the first dump at fault, before any new one.
    changed = update.changed_captures(manifest)
    captures = update.new_captures(manifest)
    date_problems = date_new_sightings(update, captures)
    date_problems += [row for d in update.parsed for row in page_date_problems(d.name, captures[d.name])]
    redated: set[str] = set()
    for name, capture in changed.items():
        changes, papers = redate_stored_dump(update, name, capture)
        conn.executemany("update sightings set published = ?, date_method = ? where id = ?", changes)
        conn.execute(f"update dumps set {', '.join(f'{k} = ?' for k in capture_columns(capture))} "
                     "where name = ?", [*capture_columns(capture).values(), name])
        redated |= papers

    # Sightings, organizations, problems, merges and look-alikes: appended in file order.
    first_sighting = update.max_id("sightings") + 1
    insert("sightings", (sighting_row(number, s, places)
                         for number, s in enumerate(update.new_sightings, first_sighting)))
    organizations = make_organization_rows(update.new_sightings, places)
    stored_orgs = {org_id for (org_id,) in conn.execute("select id from organizations")}
    insert("organizations", [row for row in organizations if row["id"] not in stored_orgs])
    conn.executemany("""update organizations set papers = (select count(distinct paper_id)
        from sightings where organization_id = organizations.id) where id = ?""",
                     [(row["id"],) for row in organizations if row["id"] in stored_orgs])
    problems = [problem_row(d.name, p) for d in update.parsed for p in d.problems] + date_problems
    problems.sort(key=lambda row: (update.order[row["dump"]], row["line"]))
    insert("problems", problems, update.max_id("problems") + 1)
    insert("merges", [vars(m) for m in dedup.merges], update.max_id("merges") + 1)
    insert("lookalikes", [vars(l) for l in dedup.lookalikes], update.max_id("lookalikes") + 1)

    # The dumps.
    created = {}
    for sighting in update.new_sightings:
        if sighting.method == "new":
            created[sighting.dump] = created.get(sighting.dump, 0) + 1
    problem_count = {}
    for row in problems:
        problem_count[row["dump"]] = problem_count.get(row["dump"], 0) + 1
    insert("dumps", [dump_row(update.order[d.name], d, captures[d.name],
                              len({s.paper_id for s in update.new_sightings if s.dump == d.name}),
                              created.get(d.name, 0), problem_count.get(d.name, 0))
                     for d in update.parsed])

    # Papers: the new ones appended (rowid = number + 1), the others summarized again.
    names = dict(conn.execute("select id, name from organizations"))
    # A new paper's sightings are all new.
    insert("papers", [paper_row(p, abstract, update.order, names, places) for p, abstract in new_papers],
           rowids=[p.number + 1 for p in dedup.papers])
    conn.executemany(f"insert into {FTS_TABLE}(rowid, title, abstract) values (?, ?, ?)",
                     [(p.number + 1, p.title, abstract) for p, abstract in new_papers])
    again = {p.id: p for p in dedup.touched.values()}
    for paper_id in redated - update.new_ids:
        again.setdefault(paper_id, update.stored_paper_by_id(paper_id))
    for paper in again.values():
        resummarize(update, paper, names, places)
    insert("title_blocks", dedup.blocking_rows())
    add_terms(conn, [(p.number + 1, p.title, abstract) for p, abstract in new_papers])
    return expected_counts(conn, update), set(again)


def resummarize(update: Update, paper: Paper, names: dict, places: OrganizationIndex) -> None:
    """Write a stored paper's row again from all its sightings (stored, redated and new)."""
    conn = update.conn
    full = update.with_all_sightings(paper)
    stored = conn.execute("select abstract, topics from papers where id = ?", (paper.id,)).fetchone()
    for sighting in full.sightings:  # stored sightings of redated dumps: their new dates
        key = (sighting.dump, sighting.record.position)
        if key in update.redates:
            sighting.published, sighting.date_method = update.redates[key]
    full.topics = stored["topics"]
    row = paper_row(full, stored["abstract"], update.order, names, places)
    columns = [c for c in TABLES["papers"][0]
               if c not in ("id", "title", "abstract", "title_key", "search_rowid")]
    conn.execute(f"update papers set {', '.join(f'[{c}] = ?' for c in columns)} where id = ?",
                 [*(row[c] for c in columns), paper.id])


def add_terms(conn: sqlite3.Connection, papers: list[tuple[int, str, str]]) -> None:
    """Add the new papers' index terms to `terms` (papers holding each), as the index cuts them."""
    columns, tokenize = FTS["papers"]
    conn.execute(f"create virtual table temp.new_papers using fts5({', '.join(columns)}, "
                 f"tokenize='{tokenize}')")
    conn.execute("create virtual table temp.new_terms using fts5vocab(temp, new_papers, row)")
    conn.executemany("insert into temp.new_papers(rowid, title, abstract) values (?, ?, ?)", papers)
    conn.execute("""insert into terms (term, papers) select term, doc from temp.new_terms where true
        on conflict (term) do update set papers = papers + excluded.papers""")
    conn.execute("drop table temp.new_terms")
    conn.execute("drop table temp.new_papers")


def expected_counts(conn: sqlite3.Connection, update: Update) -> dict[str, int]:
    """Return the row counts the copy must hold, from the stored counts and what was added."""
    stored = update.stored_dumps
    return {
        "dumps": len(stored) + len(update.parsed),
        "sightings": sum(row["records"] for row in stored.values())
        + sum(len(d.records) for d in update.parsed),
        "papers": update.dedup.first_number + len(update.dedup.papers),
    }


def new_rows(table: str) -> str:
    """Return the condition that picks the rows the update added to `table`."""
    return NEW_ROWS_WITHOUT_ROWID[table] if table in WITHOUT_ROWID else f"rowid > :{table}"


def changed_row_links(conn: sqlite3.Connection, since: dict[str, int],
                      added: dict[str, int]) -> Iterator[str]:
    """Yield a description of every new row whose foreign key points nowhere, and of every
    table stored WITHOUT ROWID that does not hold, among the new papers' rows, all the rows
    the update added to it (`added`: a row written for another paper would escape the rest)."""
    for table, (_, _, foreign_keys) in TABLES.items():
        for column, (other, other_column) in foreign_keys.items():
            (broken,) = conn.execute(
                f"select count(*) from [{table}] where {new_rows(table)} and [{column}] is not "
                f"null and [{column}] not in (select [{other_column}] from [{other}])",
                since).fetchone()
            if broken:
                yield f"{table}.{column}: {broken} new rows point nowhere"
    for table in sorted(WITHOUT_ROWID):
        (found,) = conn.execute(f"select count(*) from [{table}] where {new_rows(table)}",
                                since).fetchone()
        if found != added.get(table, 0):
            yield f"{table}: {found} rows of the new papers, {added.get(table, 0)} added"


def insert_rows(conn: sqlite3.Connection, table: str, rows, first_id: int | None = None,
                rowids: list[int] | None = None) -> int:
    """Append rows (dicts with the table's columns); `first_id` numbers them, `rowids` places
    them. Return how many."""
    columns = list(TABLES[table][0])
    rows = list(rows)
    if first_id is not None:
        rows = [{**row, "id": number} for number, row in enumerate(rows, first_id)]
    values = [tuple(row[c] for c in columns) for row in rows]
    if rowids is not None:
        columns, values = ["rowid", *columns], [(r, *v) for r, v in zip(rowids, values, strict=True)]
    names = ", ".join(f"[{c}]" for c in columns)
    conn.executemany(f"insert into [{table}] ({names}) values ({', '.join('?' * len(columns))})", values)
    return len(values)


def last_rowids(conn: sqlite3.Connection) -> dict[str, int]:
    """Return each table's last rowid (see new_rows; tables WITHOUT ROWID have none)."""
    return {table: conn.execute(f"select coalesce(max(rowid), 0) from [{table}]").fetchone()[0]
            for table in TABLES if table not in WITHOUT_ROWID}


def check_update(conn: sqlite3.Connection, since: dict[str, int], expected: dict[str, int],
                 changed_papers: set[str], added: dict[str, int]) -> None:
    """Raise BuildCheckError unless the rows the update wrote are sound (see the module's doc)."""
    broken = list(changed_row_links(conn, since, added))
    marks = ", ".join("?" * len(changed_papers))
    (orphans,) = conn.execute(
        f"select count(*) from papers where id in ({marks}) and organization_id is not null "
        "and organization_id not in (select id from organizations)", sorted(changed_papers)).fetchone()
    if orphans:
        broken.append(f"papers.organization_id: {orphans} updated rows point nowhere")
    if broken:
        raise BuildCheckError("; ".join(broken))
    check_search_rowids(conn)
    for table, count in expected.items():
        (found,) = conn.execute(f"select count(*) from [{table}]").fetchone()
        if found != count:
            raise BuildCheckError(f"{table}: {found} rows after the update, {count} expected")
