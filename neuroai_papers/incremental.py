"""Reuse a previous papers.db so that adding a dump does not parse and match everything again.

`build_db.py --incremental` takes the previous database at `--out` as a record of the
work already done: when its dumps are exactly the first dumps of the folder (same names,
same sha256, nothing in between), their records, the deduplication state and the topics
of their papers are read back from it instead of being recomputed. Only the new dumps are
parsed and matched. Everything that depends on the whole corpus (capture years, paper
summaries, organizations, related papers) is computed again, and the file is written
the usual atomic way, so the result equals a full build: a test holds them equal.

Anything else (a changed or removed dump, a new dump that sorts before an old one, other
build code or topic rules than the previous build's) falls back to a full build, saying why.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .dedupe import Deduplicator, Lookalike, Merge, Paper, Sighting, abstract_fingerprint
from .enrich import INVALID_DATE_REASON
from .parse import ParsedDump, Problem, Record, parse_date
from .texts import DiskList


@dataclass
class PreviousBuild:
    """What a previous database already holds for the dumps it was built from."""

    parsed: list[ParsedDump]
    dedup: Deduplicator
    topics: KnownTopics


def reusable_dumps(conn: sqlite3.Connection, paths: list[Path]) -> list[str] | str:
    """Return the names of the dumps that can be reused, or why none can."""
    previous = conn.execute("select name, sha256 from dumps order by position").fetchall()
    if len(previous) > len(paths):
        return "the previous database has dumps that are gone"
    for (name, sha), path in zip(previous, paths):
        if path.name != name:
            return f"{path.name} sorts before {name}, which the previous database already holds"
        if hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            return f"{name} changed since the previous build"
    return [name for name, _ in previous]


def load_previous(db: Path, paths: list[Path], fingerprint: str, abstracts: DiskList,
                  fingerprints: DiskList) -> tuple[PreviousBuild | None, str]:
    """Return the reusable state of the previous build at `db`, or None and the reason.

    `fingerprint` identifies the build code and topic rules; results made by other ones
    are not reused. The previous papers' abstracts and their fingerprints go to `abstracts`
    and `fingerprints`, in paper order.
    """
    if not db.exists():
        return None, f"no previous database at {db}"
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            made_by = conn.execute(
                "select value from build_info where key = 'reusable_inputs_sha256'").fetchone()
            if made_by is None or made_by[0] != fingerprint:
                return None, "the build code or the topic rules changed since the previous build"
            names = reusable_dumps(conn, paths)
            if isinstance(names, str):
                return None, names
            return read_previous(conn, db, abstracts, fingerprints), f"reusing {len(names)} dumps from {db.name}"
        finally:
            conn.close()
    except (sqlite3.Error, KeyError, IndexError) as error:
        return None, f"the previous database cannot be reused ({error})"


def read_previous(conn: sqlite3.Connection, db: Path, abstracts: DiskList,
                  fingerprints: DiskList) -> PreviousBuild:
    parsed = [parsed_dump(row) for row in conn.execute("select * from dumps order by position")]
    by_name = {dump.name: dump for dump in parsed}
    for row in conn.execute("select * from problems order by id"):
        if row["reason"] != INVALID_DATE_REASON:
            by_name[row["dump"]].problems.append(Problem(row["line"], row["text"], row["reason"]))
    dedup = rebuild_deduplicator(conn, by_name, abstracts, fingerprints)
    return PreviousBuild(parsed, dedup, KnownTopics(db))


def parsed_dump(row: sqlite3.Row) -> ParsedDump:
    capture = parse_date(row["capture_text"])[0] if row["capture_text"] else None
    return ParsedDump(
        name=row["name"], layout=row["layout"], line_count=row["lines"],
        capture_text=row["capture_text"], capture_line=row["capture_line"], capture=capture,
        sha256=row["sha256"], bytes=row["bytes"],
    )


def record_of(row: sqlite3.Row) -> Record:
    """Return the record a sighting row was made from (its abstract lives in the paper)."""
    date = parse_date(row["date_text"])[0] if row["date_text"] else None
    return Record(position=row["position"], line=row["line"], title=row["title"], abstract="",
                  end_line=row["end_line"], authors=row["authors"],
                  organization=row["organization"], date_text=row["date_text"], date=date,
                  comments=row["comments"])


def rebuild_deduplicator(conn: sqlite3.Connection, dumps: dict[str, ParsedDump],
                         abstracts: DiskList, fingerprints: DiskList) -> Deduplicator:
    """Return the deduplicator in the state the previous build left it, without re-matching."""
    dedup = Deduplicator(fingerprints)
    papers: dict[str, Paper] = {}
    rows = conn.execute("""
        select sightings.*, papers.title as paper_title, papers.abstract, papers.title_key
        from sightings join papers on papers.id = sightings.paper_id
        join dumps on dumps.name = sightings.dump
        order by dumps.position, sightings.position
    """)
    for row in rows:
        record = record_of(row)
        dumps[row["dump"]].records.append(record)
        paper = papers.get(row["paper_id"])
        if paper is None:  # the first sighting created the paper, as in a full build
            paper = dedup.restore_paper(row["paper_id"], row["title_key"], row["paper_title"],
                                        abstract_fingerprint(row["abstract"]))
            abstracts.append(row["abstract"])
            papers[paper.id] = paper
        paper.sightings.append(Sighting(row["dump"], record, paper.id, row["match_method"]))
    dedup.merges = [Merge(**{k: row[k] for k in Merge.__dataclass_fields__})
                    for row in conn.execute("select * from merges order by id")]
    dedup.lookalikes = [Lookalike(**{k: row[k] for k in Lookalike.__dataclass_fields__})
                        for row in conn.execute("select * from lookalikes order by id")]
    dedup.lookalike_pairs = {(l.paper_id, l.other_paper_id) for l in dedup.lookalikes}
    return dedup


class KnownTopics:
    """The previous build's papers' topics, and their evidence rows read back in paper order.

    A paper's title and abstract never change, so neither do its topics. The evidence rows
    (several per paper: millions at scale) are not held in memory: they are read from the
    previous database as the build asks for each paper, in the order papers are kept,
    which is the order the rows were written in.
    """

    def __init__(self, db: Path):
        self.conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        self.conn.row_factory = sqlite3.Row
        self.topics = dict(self.conn.execute("select id, topics from papers"))
        self.rows = iter(self.conn.execute("select * from paper_topics order by rowid"))
        self.next_row = next(self.rows, None)

    def __contains__(self, paper_id: str) -> bool:
        return paper_id in self.topics

    def __getitem__(self, paper_id: str) -> tuple[str, list[dict]]:
        evidence = []
        while self.next_row is not None and self.next_row["paper_id"] == paper_id:
            evidence.append(dict(self.next_row))
            self.next_row = next(self.rows, None)
        if not evidence and self.topics[paper_id] != "[]":
            raise RuntimeError(f"evidence of {paper_id} asked for out of the previous order")
        return self.topics[paper_id], evidence

    def close(self) -> None:
        self.conn.close()
