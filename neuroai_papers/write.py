"""Write the corpus into papers.db: shape, rows, full-text search, documentation, checks.

The database's shape is declared once, as data (`TABLES`, `INDEXES`, `FTS`), and
applied by `ensure_db_shape`. Column descriptions live in metadata.yml, the same
file Datasette reads; `load_docs` copies them into the database so that a person
who downloads only papers.db can still read what every table and column means.

The build is atomic: everything is written to a temporary file next to the target,
checked, and only then renamed over it. A failed or interrupted build leaves the
previous papers.db as it was.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import suppress
from pathlib import Path

import sqlite_utils
import yaml

from .enrich import Corpus

DATABASE = "papers"  # the database's name in Datasette's URLs and in metadata.yml

# Table -> (columns in order, primary key, foreign keys as column -> (table, column)).
TABLES: dict[str, tuple[dict[str, type], str | tuple[str, ...], dict[str, tuple[str, str]]]] = {
    "dumps": (
        {"name": str, "position": int, "sha256": str, "bytes": int, "lines": int,
         "layout": str, "capture_text": str, "capture_line": int, "capture_date": str,
         "capture_year": int, "capture_method": str, "capture_year_min": int,
         "capture_year_max": int, "records": int, "new_papers": int, "problems": int},
        "name", {},
    ),
    "organizations": (
        {"id": str, "name": str, "handle": str, "written": str, "papers": int, "city": str,
         "country": str, "latitude": float, "longitude": float, "location_method": str,
         "location_score": float},
        "id", {},
    ),
    "papers": (
        {"id": str, "title": str, "abstract": str, "published": str, "published_year": int,
         "date_method": str, "date_text": str, "authors": int, "organization": str,
         "organization_id": str, "comments": int, "first_seen_dump": str,
         "last_seen_dump": str, "dumps_seen": int, "dumps": str, "topics": str,
         "title_key": str},
        "id",
        {"organization_id": ("organizations", "id"), "first_seen_dump": ("dumps", "name"),
         "last_seen_dump": ("dumps", "name")},
    ),
    "sightings": (
        {"id": int, "paper_id": str, "dump": str, "position": int, "line": int,
         "end_line": int, "title": str, "authors": int, "organization": str,
         "organization_id": str, "date_text": str, "comments": int, "published": str,
         "date_method": str, "match_method": str},
        "id",
        {"paper_id": ("papers", "id"), "dump": ("dumps", "name"),
         "organization_id": ("organizations", "id")},
    ),
    "merges": (
        {"id": int, "paper_id": str, "dump": str, "line": int, "title": str,
         "paper_title": str, "method": str, "title_score": float, "abstract_score": float},
        "id", {"paper_id": ("papers", "id"), "dump": ("dumps", "name")},
    ),
    "lookalikes": (
        {"id": int, "paper_id": str, "other_paper_id": str, "dump": str, "line": int,
         "title_score": float, "abstract_score": float},
        "id",
        {"paper_id": ("papers", "id"), "other_paper_id": ("papers", "id"),
         "dump": ("dumps", "name")},
    ),
    "topics": (
        {"id": str, "label": str, "topic_group": str, "description": str, "rules": str,
         "papers": int},
        "id", {},
    ),
    "paper_topics": (
        {"paper_id": str, "topic": str, "field": str, "rule": str, "matched": str, "hits": int},
        ("paper_id", "topic", "field", "rule"),
        {"paper_id": ("papers", "id"), "topic": ("topics", "id")},
    ),
    "related": (
        {"paper_id": str, "related_id": str, "rank": int, "score": float, "shared_terms": str},
        ("paper_id", "rank"),
        {"paper_id": ("papers", "id"), "related_id": ("papers", "id")},
    ),
    "problems": (
        {"id": int, "dump": str, "line": int, "text": str, "reason": str},
        "id", {"dump": ("dumps", "name")},
    ),
    "build_info": ({"key": str, "value": str}, "key", {}),
    "table_docs": ({"table_name": str, "description": str}, "table_name", {}),
    "column_docs": (
        {"table_name": str, "column_name": str, "description": str},
        ("table_name", "column_name"), {},
    ),
}

# Every column that the site filters or facets on gets an index.
INDEXES = {
    "papers": [["published_year"], ["organization"], ["organization_id"], ["authors"],
               ["first_seen_dump"], ["last_seen_dump"], ["dumps_seen"], ["date_method"],
               ["published"], ["title_key"]],
    "sightings": [["paper_id"], ["dump", "position"], ["organization_id"]],
    "merges": [["paper_id"], ["dump"]],
    "lookalikes": [["paper_id"], ["other_paper_id"]],
    "problems": [["dump", "line"]],
    "related": [["related_id"]],
    "paper_topics": [["topic", "paper_id"]],
    "organizations": [["papers"], ["country"]],
}

# The porter stemmer makes `decoding` find `decode`; unicode61 folds case and accents.
FTS = {"papers": (["title", "abstract"], "porter unicode61 remove_diacritics 2")}


class BuildCheckError(Exception):
    """The freshly written database failed a check; it was not put in place."""


class WriteError(OSError):
    """SQLite could not write the temporary file (a full disk, a file-size limit, an I/O error)."""


def load_metadata(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def table_descriptions(metadata: dict) -> dict:
    return metadata["databases"][DATABASE]["tables"]


def ensure_db_shape(db: sqlite_utils.Database) -> None:
    """Create every table, with primary and foreign keys, if it does not exist yet."""
    for name, (columns, pk, foreign_keys) in TABLES.items():
        if not db[name].exists():
            db[name].create(
                columns,
                pk=pk,
                foreign_keys=[(col, table, other) for col, (table, other) in foreign_keys.items()],
            )


def create_indexes_and_search(db: sqlite_utils.Database) -> None:
    """Index what the site filters on and build the full-text index (after the bulk load)."""
    for table, indexes in INDEXES.items():
        for columns in indexes:
            db[table].create_index(columns, if_not_exists=True)
    for table, (columns, tokenize) in FTS.items():
        db[table].enable_fts(columns, fts_version="FTS5", tokenize=tokenize, replace=True)
        db[f"{table}_fts"].optimize()


def load_rows(db: sqlite_utils.Database, corpus: Corpus) -> None:
    """Insert the corpus, parents before children so foreign keys hold as rows arrive.

    The tables already exist with their declared columns, so rows go in through one plain
    executemany per table: sqlite-utils' insert_all would inspect every batch again.
    """
    for table in ("dumps", "organizations", "topics", "papers", "sightings", "merges",
                  "lookalikes", "problems", "related", "paper_topics"):
        rows = getattr(corpus, table)
        if table in ("merges", "lookalikes", "problems"):
            rows = [{"id": number, **row} for number, row in enumerate(rows, 1)]
        columns = list(TABLES[table][0])
        names = ", ".join(f"[{column}]" for column in columns)
        db.conn.executemany(
            f"insert into [{table}] ({names}) values ({', '.join('?' * len(columns))})",
            (tuple(row[column] for column in columns) for row in rows),
        )


def load_docs(db: sqlite_utils.Database, metadata: dict, build_info: dict[str, str]) -> None:
    """Copy the table and column descriptions of metadata.yml, and the build facts, into the file."""
    tables = table_descriptions(metadata)
    db["table_docs"].insert_all(
        {"table_name": name, "description": table.get("description", "")}
        for name, table in tables.items()
    )
    db["column_docs"].insert_all(
        {"table_name": name, "column_name": column, "description": text}
        for name, table in tables.items()
        for column, text in (table.get("columns") or {}).items()
    )
    db["build_info"].insert_all({"key": k, "value": str(v)} for k, v in build_info.items())


def check_database(path: Path, expected: dict[str, int]) -> None:
    """Raise BuildCheckError unless the file is sound and holds the expected row counts."""
    conn = sqlite3.connect(path)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise BuildCheckError(f"integrity_check: {result}")
        violations = conn.execute("PRAGMA foreign_key_check").fetchall()
        if violations:
            raise BuildCheckError(f"foreign keys broken: {violations[:3]}")
        for table in FTS:
            conn.execute(
                f"INSERT INTO {table}_fts({table}_fts, rank) VALUES ('integrity-check', 1)"
            )
        for table, count in expected.items():
            found = conn.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0]
            if found != count:
                raise BuildCheckError(f"{table}: {found} rows written, {count} expected")
    except sqlite3.DatabaseError as error:
        raise BuildCheckError(str(error)) from None
    finally:
        conn.close()


def temporary_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.tmp-{os.getpid()}")


def remove_temporary(tmp: Path) -> None:
    """Delete a temporary database and the side files SQLite may have made next to it."""
    for path in (tmp, *(tmp.with_name(tmp.name + side) for side in ("-journal", "-wal", "-shm"))):
        with suppress(FileNotFoundError):
            path.unlink()


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def remove_stale_temporaries(out: Path) -> None:
    """Delete temporary files that interrupted builds left next to the target.

    A temporary file names the process that writes it; one whose process still runs belongs
    to a build in progress and is left alone.
    """
    for stale in out.parent.glob(f".{out.name}.tmp-*"):
        pid = stale.name[len(f".{out.name}.tmp-"):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and process_exists(int(pid)):
            continue
        with suppress(OSError):
            stale.unlink()


def write_database(out: Path, corpus: Corpus, metadata: dict, build_info: dict[str, str]) -> None:
    """Write the corpus to `out` atomically: a temporary file, checked, then renamed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    tmp = temporary_path(out)
    db = None
    try:
        db = sqlite_utils.Database(tmp)
        # Nothing needs a journal: a failed build throws the whole temporary file away.
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        ensure_db_shape(db)
        with db.atomic():
            load_rows(db, corpus)
            load_docs(db, metadata, build_info)
        create_indexes_and_search(db)
        db.execute("PRAGMA journal_mode = DELETE")
        db.execute("ANALYZE")
        db.close()
        expected = {t: len(getattr(corpus, t)) for t in
                    ("dumps", "papers", "sightings", "organizations", "merges", "problems",
                 "related", "topics", "paper_topics")}
        expected["papers_fts"] = len(corpus.papers)
        check_database(tmp, expected)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except sqlite3.Error as error:
        # SQLite reports a full disk or a file-size limit as its own error, not as OSError.
        raise WriteError(f"cannot write {tmp}: {error}") from None
    finally:
        if db is not None:
            db.close()  # an error may have left it open, holding the file and its journal
        remove_temporary(tmp)
