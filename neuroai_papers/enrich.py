"""Turn parsed dumps and deduplicated papers into the rows of every table.

Dates are the subtle part. A date line such as `Feb 25` has no year: on the live
page, dates in the current year are shown without one, so it belongs to the year
the dump was captured in. That year is not written in the dump either, so it is
taken, in order of trust, from:

1. `dumps/manifest.yml`, where a maintainer states it (method `stated`);
2. the page's own date line, if it shows a year (method `page`);
3. a paper on this page shown without a year (`May 21`) whose date another dump
   shows with one (`May 21, 2025`), or without one on a page whose year is known by
   1. or 2.: that pins the year (method `inferred`; an inferred year pins nothing);
4. the earliest year the evidence allows (method `inferred_earliest`): every
   explicit year on the page is earlier than the capture year, and the page cannot
   be older than any paper it lists that some dump dates as in 3.

Without any of these the capture year stays unknown, and so do the yearless dates
of that page. Every date carries the method that produced it.
"""

from __future__ import annotations

import calendar
import json
import re
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime
from pathlib import Path
from typing import Iterator, Mapping

from .dedupe import Deduplicator, Paper, Sighting
from .organizations import OrganizationIndex
from .parse import DumpDate, DumpError, ParsedDump, Problem, is_a_day
from .texts import DiskList
from .yamlfiles import YamlDocument, read_yaml_document

MANIFEST = "manifest.yml"

# How a date was obtained; documented for users in metadata.yml.
READ = "read"  # the dump shows the full date
FROM_STATED_YEAR = "year_from_stated_capture"
FROM_INFERRED_YEAR = "year_from_inferred_capture"
YEAR_UNKNOWN = "year_unknown"
INVALID = "invalid_date"
# Which resolved date a paper takes from its sightings (choose_date): the higher, the more trusted.
DATE_TRUST = {READ: 3, FROM_STATED_YEAR: 2, FROM_INFERRED_YEAR: 1}
INVALID_DATE_REASON = "impossible date (kept as written, not as a date)"
LATER_THAN_PAGE_REASON = ("a date without a year later in the year than the page's own date: "
                          "in the capture year it would follow the capture (kept as written, "
                          "not as a date)")
READ_AFTER_PAGE_REASON = ("a date after the page's own date: the page cannot show it (kept as "
                          "written, not as a date)")
PAGE_DATE_NOT_IN_YEAR_REASON = ("the page's own date is not in the capture year other dumps "
                                "give it (Feb 29 of a year without one; kept as written, not as "
                                "a date)")
DATE_REASONS = (INVALID_DATE_REASON, LATER_THAN_PAGE_REASON, READ_AFTER_PAGE_REASON,
                PAGE_DATE_NOT_IN_YEAR_REASON)


@dataclass
class Capture:
    """When a dump was captured, and how that is known."""

    text: str | None
    line: int | None
    date: str | None
    year: int | None
    method: str
    year_min: int | None = None
    year_max: int | None = None
    page: DumpDate | None = None  # the page's own date line, read (not stored: `text` is)

    @property
    def stated(self) -> bool:
        return self.method in ("stated", "page")


@dataclass
class Corpus:
    """The small tables, and what the streamed ones (sightings, papers) are made from."""

    dumps: list[dict]
    organizations: list[dict]
    problems: list[dict]
    merges: list[dict]
    lookalikes: list[dict]
    order: dict[str, int]  # dump name -> position in name order
    organization_names: dict[str, str]
    sightings: list[Sighting]  # every sighting, in dump order then page order


class Manifest(dict):
    """The capture dates or years stated in a manifest, by dump name; `path` names the
    manifest's file, so that a refusal can name it and the dump with their folder."""

    def __init__(self, path: Path, captures: dict[str, date | int] | None = None):
        super().__init__(captures or {})
        self.path = path

    def where(self, name: str) -> Path:
        """The path of the dump `name`, beside the manifest."""
        return self.path.with_name(name)


def load_manifest(dumps_dir: Path, dump_names: set[str]) -> Manifest:
    """Return the capture dates or years a maintainer stated in dumps/manifest.yml; raise
    DumpError naming the file and the line at fault if it is not what the build expects."""
    path = dumps_dir / MANIFEST
    if not (path.exists() or path.is_symlink()):  # a broken link is refused, not ignored
        return Manifest(path)
    manifest = read_yaml_document(path)
    data = manifest.data or {}
    if not isinstance(data, dict):
        raise manifest.error("expected a `captures:` mapping of dump file name to date")
    for key in data:
        if key not in MANIFEST_KEYS:  # a misspelled `captures:` would state nothing
            raise manifest.error(f"unknown key `{key}` (expected `captures:`)", key, key=True)
    captures = data.get("captures") or {}
    if not isinstance(captures, dict):
        raise manifest.error("expected a `captures:` mapping of dump file name to date",
                             "captures")
    captures = {name: unquoted(value) for name, value in captures.items()}
    for name, value in captures.items():
        refuse_stated_capture(manifest, name, value, dumps_dir, dump_names)
    return Manifest(path, captures)


def unquoted(value):
    """Return a date or year written in quotes ("2026-11-20", "2026") as YAML reads it
    unquoted; any other value as it is (refuse_stated_capture says what is wrong with it)."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}", value.strip()):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        with suppress(ValueError):  # 2026-02-30: refused as written
            return date.fromisoformat(value.strip())
    return value


MANIFEST_KEYS = ("captures",)


def refuse_stated_capture(manifest: YamlDocument, name, value, dumps_dir: Path,
                          dump_names: set[str]) -> None:
    """Raise DumpError, naming the manifest's line, unless `name: value` states the capture
    of a dump in `dumps_dir` as a date or a plausible year."""
    if name not in dump_names:
        raise manifest.error(f"`{name}` is not a dump in {dumps_dir}", "captures", name, key=True)
    if isinstance(value, datetime):
        raise manifest.error(f"`{name}`: expected YYYY-MM-DD or a year, without a time; got "
                             f"{value.isoformat()}", "captures", name)
    # bool is an int to Python: `true` is no year.
    year = isinstance(value, int) and not isinstance(value, bool) and 1990 <= value <= 2100
    if not (isinstance(value, date) or year):
        raise manifest.error(f"`{name}`: expected YYYY-MM-DD or a year from 1990 to 2100, got "
                             f"{value!r}", "captures", name)


def make_date(year: int, when: DumpDate) -> date | None:
    try:
        return date(year, when.month, when.day)
    except ValueError:
        return None


def read_dates_by_paper(papers: list[Paper],
                        known: Mapping[str, Capture]) -> dict[str, list[date]]:
    """Return, per paper id, its dates that some dump gives with a year known without any
    inference (evidence_date): the evidence for other dumps' capture years."""
    dates: dict[str, list[date]] = {}
    for paper in papers:
        for sighting in paper.sightings:
            if (full := evidence_date(sighting, known[sighting.dump])) is not None:
                dates.setdefault(paper.id, []).append(full)
    return dates


def evidence_date(sighting: Sighting, known: Capture) -> date | None:
    """Return a sighting's date if it is firm enough to date its paper for other dumps: shown
    with its year, or without one on a page whose year is stated or on its date line (`known`
    is its dump's stated_capture). A date its own page cannot show (resolve_date refuses it)
    is evidence of nothing, and a year inferred from other dumps is no evidence of its own."""
    when = sighting.record.date
    if when is None or not (when.year or known.year):
        return None  # no year: most yearless dates end here, cheaply
    published, method = resolve_date(when, known)
    return date.fromisoformat(published) if method in (READ, FROM_STATED_YEAR) else None


def stated_capture(parsed: ParsedDump, stated: date | int | None) -> Capture:
    """Return a dump's capture as far as it is known before any is inferred: as the manifest
    states it (`stated`), in the year of the page's own date line (`page`), or `unknown`."""
    page = parsed.capture
    capture = Capture(parsed.capture_text, parsed.capture_line, None, None, "unknown",
                      page=page)
    if isinstance(stated, date):
        capture.date, capture.year, capture.method = stated.isoformat(), stated.year, "stated"
        return capture
    if isinstance(stated, int):
        capture.year, capture.method = stated, "stated"
    elif page and page.year:
        capture.year, capture.method = page.year, "page"
    date_capture_from_page(capture)
    return capture


def date_capture_from_page(capture: Capture) -> None:
    """Set the capture's date from the page's date line, once the year is known."""
    if capture.page and capture.year and (full := make_date(capture.year, capture.page)):
        capture.date = full.isoformat()


def infer_capture(
    parsed: ParsedDump, sightings: list[Sighting], read_dates: dict[str, list[date]],
    manifest: Manifest | None,
) -> Capture:
    """Return the capture date of one dump, with the method and the bounds on its year."""
    stated = manifest.get(parsed.name) if manifest else None
    if stated is not None:  # its page was checked before (refuse_capture_the_page_contradicts)
        refuse_dated_after(parsed, dated_after(sightings, read_dates, stated), stated, manifest)
    capture = stated_capture(parsed, stated)
    if capture.method == "unknown":
        bound_capture_year(capture, parsed.capture, sightings, read_dates)
        date_capture_from_page(capture)
    return capture


def refuse_capture_the_page_contradicts(parsed: ParsedDump, sightings: list[Sighting],
                                        stated: date | int, manifest: Manifest) -> None:
    """Raise DumpError if the page itself contradicts the capture the manifest states: its
    date line, or a paper it shows with its year after the capture. Asked of every stated
    dump before any dump's dates are evidence (build_corpus, Update.new_captures): a stated
    capture that its own page refutes would date other dumps' papers, and a refusal would
    then name the dump those dates contradict instead of the one at fault."""
    page = parsed.capture
    year = stated if isinstance(stated, int) else stated.year
    shown = stated if isinstance(stated, int) else stated.isoformat()
    if page and ((page.year is not None and page.year != year) or (
            isinstance(stated, date) and (page.month, page.day) != (stated.month, stated.day))
            or make_date(year, page) is None):  # Feb 29 in a year without one
        raise DumpError(f"{manifest.where(parsed.name)}:{parsed.capture_line}: the page shows "
                        f"{parsed.capture_text} but {manifest.path} states {shown}")
    refuse_dated_after(parsed, dated_after(sightings, {}, stated), stated, manifest)


def refuse_dated_after(parsed: ParsedDump, found: tuple[Sighting, date, bool] | None,
                       stated: date | int, manifest: Manifest) -> None:
    """Raise DumpError for what dated_after found, if anything."""
    if found:
        sighting, later, here = found
        shown = stated if isinstance(stated, int) else stated.isoformat()
        where = "" if here else " in another dump"
        raise DumpError(f"{manifest.where(parsed.name)}:{sighting.record.line}: this paper "
                        f"is dated {later.isoformat()}{where}, after the capture "
                        f"{manifest.path} states ({shown})")


def dated_after(sightings: list[Sighting], read_dates: dict[str, list[date]],
                capture: date | int) -> tuple[Sighting, date, bool] | None:
    """Return the first sighting whose paper is dated after `capture` (a date, or a year),
    that date, and whether this sighting itself shows it; None if there is none."""
    def after(full: date) -> bool:
        return full.year > capture if isinstance(capture, int) else full > capture

    for sighting in sightings:
        when = sighting.record.date
        if when and when.year and (full := make_date(when.year, when)) and after(full):
            return sighting, full, True
        later = [seen for seen in read_dates.get(sighting.paper_id, ()) if after(seen)]
        if later:
            return sighting, max(later), False
    return None


def bound_capture_year(
    capture: Capture, page: DumpDate | None, sightings: list[Sighting],
    read_dates: dict[str, list[date]],
) -> None:
    """Set the capture year from the evidence of the page and of other dumps."""
    lower: list[int] = []
    pins: set[int] = set()
    for sighting in sightings:
        when = sighting.record.date
        if when and when.year:
            lower.append(when.year + 1)  # explicit years are never the capture year
        for seen in read_dates.get(sighting.paper_id, []):
            # The page is not older than a paper it lists: with its date line, a year later
            # if the paper's day comes after the page's in the year.
            later = page is not None and (page.month, page.day) < (seen.month, seen.day)
            lower.append(seen.year + 1 if later else seen.year)
            if when and not when.year and (when.month, when.day) == (seen.month, seen.day):
                pins.add(seen.year)
    capture.year_min = max(lower) if lower else None
    if len(pins) == 1 and (capture.year_min is None or min(pins) >= capture.year_min):
        capture.year = capture.year_min = capture.year_max = pins.pop()
        capture.method = "inferred"
    elif capture.year_min is not None:
        # A page that shows Feb 29 is a leap year's: the earliest year is the first leap
        # year from the bound. (A pinned year above wins over it: a paper's date read
        # elsewhere is firmer evidence, and a Feb 29 it contradicts is reported.)
        yearless = [s.record.date for s in sightings if s.record.date and not s.record.date.year]
        if any((when.month, when.day) == (2, 29) for when in [page, *yearless] if when):
            capture.year_min = next_leap_year(capture.year_min)
        capture.year, capture.method = capture.year_min, "inferred_earliest"


def next_leap_year(year: int) -> int:
    """Return `year` if it is a leap year, else the next one."""
    while not calendar.isleap(year):
        year += 1
    return year


def resolve_date(when: DumpDate | None, capture: Capture) -> tuple[str | None, str | None]:
    """Return a sighting's ISO date and the method that gave it; INVALID for a date no page
    could show (date_problem says why), whether or not the capture year is known."""
    if when is None:
        return None, None
    if when.year:
        full = make_date(when.year, when)
        if full is None or (capture.date is not None and full.isoformat() > capture.date):
            return None, INVALID  # no such day, or after the page's own date
        return full.isoformat(), READ
    if not is_a_day(when) or later_in_the_year_than_the_page(when, capture):
        return None, INVALID  # no such day in any year, or after the capture in its year
    if capture.year is None:
        return None, YEAR_UNKNOWN
    full = make_date(capture.year, when)
    if full is None:
        return None, INVALID  # Feb 29 of a year without one
    return full.isoformat(), FROM_STATED_YEAR if capture.stated else FROM_INFERRED_YEAR


def later_in_the_year_than_the_page(when: DumpDate, capture: Capture) -> bool:
    """Return whether a date without a year falls after the capture's month and day (the
    page's own date line, or the date the manifest states): in the capture year, which it
    is in, it would follow the capture."""
    if capture.page is not None:
        return (when.month, when.day) > (capture.page.month, capture.page.day)
    if capture.date is not None:
        captured = date.fromisoformat(capture.date)
        return (when.month, when.day) > (captured.month, captured.day)
    return False


def date_problem(sighting: Sighting, capture: Capture) -> dict:
    """Return the problem row of a sighting whose date resolve_date found invalid."""
    record = sighting.record
    when = record.date
    if not is_a_day(when):
        reason = INVALID_DATE_REASON
    elif when.year:
        reason = READ_AFTER_PAGE_REASON
    elif later_in_the_year_than_the_page(when, capture):
        reason = LATER_THAN_PAGE_REASON
    else:
        reason = INVALID_DATE_REASON  # Feb 29 of a capture year without one
    return {"dump": sighting.dump, "line": record.end_line, "text": record.date_text,
            "reason": reason}


def build_corpus(
    parsed_dumps: list[ParsedDump], dedup: Deduplicator, manifest: Manifest,
    places: OrganizationIndex,
) -> Corpus:
    """Resolve every date and return the small tables (the topics table comes with the topics).

    Sets each sighting's `published` and `date_method` (the sightings table and the paper
    summaries read them); the big tables are then streamed by `sighting_rows` and `paper_rows`.
    """
    order = {d.name: index for index, d in enumerate(parsed_dumps)}
    in_order = sorted((s for paper in dedup.papers for s in paper.sightings),
                      key=lambda s: (order[s.dump], s.record.position))
    # Each dump's sightings in page order, as an update takes them: a refusal names the
    # first line of the page that contradicts the stated capture (not the first paper).
    by_dump: dict[str, list[Sighting]] = {d.name: [] for d in parsed_dumps}
    for sighting in in_order:
        by_dump[sighting.dump].append(sighting)
    for d in parsed_dumps:
        if (stated := manifest.get(d.name)) is not None:
            refuse_capture_the_page_contradicts(d, by_dump[d.name], stated, manifest)
    known = {d.name: stated_capture(d, manifest.get(d.name)) for d in parsed_dumps}
    read_dates = read_dates_by_paper(dedup.papers, known)
    captures = {
        d.name: infer_capture(d, by_dump[d.name], read_dates, manifest)
        for d in parsed_dumps
    }
    del by_dump, read_dates, known
    problems = [problem_row(d.name, p) for d in parsed_dumps for p in d.problems]
    problems += resolve_dates(dedup, captures)
    problems += [row for d in parsed_dumps for row in page_date_problems(d.name, captures[d.name])]
    problems.sort(key=lambda row: (order[row["dump"]], row["line"]))  # file order, not discovery
    organizations = make_organization_rows(in_order, places)
    return Corpus(
        dumps=make_dump_rows(parsed_dumps, order, captures, dedup, problems),
        organizations=organizations,
        problems=problems,
        merges=[vars(merge) for merge in dedup.merges],
        lookalikes=[vars(lookalike) for lookalike in dedup.lookalikes],
        order=order,
        organization_names={row["id"]: row["name"] for row in organizations},
        sightings=in_order,
    )


def page_date_problems(name: str, capture: Capture) -> list[dict]:
    """Return the problem of a page whose own yearless date is not in its capture year, if it
    has one: Feb 29 under a year other dumps pin (bound_capture_year; a stated year is refused
    instead). The capture then has no date, and the page's line says why."""
    page = capture.page
    if page is None or capture.year is None or make_date(capture.year, page) is not None:
        return []
    return [{"dump": name, "line": capture.line, "text": capture.text,
             "reason": PAGE_DATE_NOT_IN_YEAR_REASON}]


def resolve_dates(dedup: Deduplicator, captures: dict[str, Capture]) -> list[dict]:
    """Set every sighting's date from its dump's capture; return the impossible dates as problems."""
    problems = []
    for paper in dedup.papers:
        for sighting in paper.sightings:
            record = sighting.record
            sighting.published, sighting.date_method = resolve_date(
                record.date, captures[sighting.dump])
            if sighting.date_method == INVALID:
                problems.append(date_problem(sighting, captures[sighting.dump]))
    return problems


def assigned_topics(paper: Paper) -> str:
    if paper.topics is None:
        raise RuntimeError(f"paper {paper.id}: topics must be assigned before its row is made")
    return paper.topics


def problem_row(dump: str, problem: Problem) -> dict:
    return {"dump": dump, "line": problem.line, "text": problem.text, "reason": problem.reason}


def sighting_rows(corpus: Corpus, places: OrganizationIndex) -> Iterator[dict]:
    """Yield one row per record, in dump order then page order."""
    for number, sighting in enumerate(corpus.sightings, 1):
        yield sighting_row(number, sighting, places)


def sighting_row(number: int, sighting: Sighting, places: OrganizationIndex) -> dict:
    record = sighting.record
    return {
        "id": number,
        "paper_id": sighting.paper_id,
        "dump": sighting.dump,
        "position": record.position,
        "line": record.line,
        "end_line": record.end_line,
        "title": record.title,
        "abstract": record.abstract or None,  # None: the same as its paper's
        "authors": record.authors,
        "organization": record.organization,
        "organization_id": places.place(record.organization).id if record.organization else None,
        "date_text": record.date_text,
        "comments": record.comments,
        "published": sighting.published,
        "date_method": sighting.date_method,
        "match_method": sighting.method,
    }


def make_organization_rows(sightings: list[Sighting], places: OrganizationIndex) -> list[dict]:
    """Return one row per organization named in any dump, its location and its number of papers.

    `sightings` are in dump order: an organization is shown as first written.
    """
    rows: dict[str, dict] = {}
    papers: dict[str, set[str]] = {}
    for sighting in sightings:
        line = sighting.record.organization
        if not line:
            continue
        place = places.place(line)
        reference = place.reference or {}
        rows.setdefault(place.id, {
            "id": place.id, "name": place.name, "handle": place.handle, "written": line,
            "city": reference.get("city"), "country": reference.get("country"),
            "latitude": reference.get("latitude"), "longitude": reference.get("longitude"),
            "location_method": place.method, "location_score": place.score,
        })
        papers.setdefault(place.id, set()).add(sighting.paper_id)
    for org_id, row in rows.items():
        row["papers"] = len(papers[org_id])
    return sorted(rows.values(), key=lambda row: row["id"])


def latest(values: list) -> object:
    """Return the last value that is not None (sightings are in dump order)."""
    for value in reversed(values):
        if value is not None:
            return value
    return None


def paper_rows(corpus: Corpus, dedup: Deduplicator, abstracts: DiskList,
               places: OrganizationIndex) -> Iterator[dict]:
    """Yield one row per paper, summarizing its sightings (in dump order)."""
    for paper, abstract in zip(dedup.papers, abstracts, strict=True):
        yield paper_row(paper, abstract, corpus.order, corpus.organization_names, places)


def paper_row(paper: Paper, abstract: str, order: Mapping[str, int],
              organization_names: Mapping[str, str], places: OrganizationIndex) -> dict:
    """Return a paper's row: its first sighting's text, the latest of what its sightings show."""
    seen = paper.sightings
    if len(seen) > 1:  # three papers in four have one sighting: nothing to sort
        seen = sorted(seen, key=lambda s: (order[s.dump], s.record.position))
    dated = choose_date(seen)
    org_id = latest([places.place(s.record.organization).id if s.record.organization
                     else None for s in seen])
    dumps = [s.dump for s in seen]
    return {
        "id": paper.id,
        "title": paper.title,
        "abstract": abstract,
        "published": dated.published if dated else None,
        "published_year": int(dated.published[:4]) if dated and dated.published else None,
        "date_method": dated.date_method if dated else None,
        "date_text": dated.record.date_text if dated else None,
        "authors": latest([s.record.authors for s in seen]),
        "organization": organization_names.get(org_id),
        "organization_id": org_id,
        "comments": latest([s.record.comments for s in seen]),
        "first_seen_dump": dumps[0],
        "last_seen_dump": dumps[-1],
        "dumps_seen": len(set(dumps)),
        "dumps": dumps_json(tuple(dict.fromkeys(dumps))),
        "topics": assigned_topics(paper),
        "title_key": paper.key,
        "search_rowid": paper.number + 1,  # papers are rows 1, 2 ... in paper order
    }


@lru_cache(maxsize=65_536)
def dumps_json(dumps: tuple[str, ...]) -> str:
    """Return the `dumps` column: a JSON array of dump names (papers seen in the same dumps
    share it: encoded once, not per paper)."""
    return json.dumps(list(dumps))


def choose_date(sightings: list[Sighting]) -> Sighting | None:
    """Return the sighting whose date the paper takes, the most trusted first: a date read
    with its year, then a year from a stated capture, then one from an inferred capture
    (the first in dump order among equals), else a date shown but not resolved. A stated
    year is not passed over for an inferred one because an earlier dump had the paper."""
    best = None
    for sighting in sightings:
        trust = DATE_TRUST.get(sighting.date_method, 0) if sighting.published else 0
        if best is None or trust > best[0]:
            best = (trust, sighting)
    if best is not None and best[0]:
        return best[1]
    for sighting in sightings:
        if sighting.record.date_text is not None:
            return sighting
    return None


def make_dump_rows(parsed_dumps, order, captures, dedup: Deduplicator, problems) -> list[dict]:
    new_papers = Counter(
        min((s.dump for s in paper.sightings), key=order.__getitem__) for paper in dedup.papers)
    # Distinct papers per dump: the count the `dumps` facet of papers shows with no filter.
    papers_shown = Counter(dump for paper in dedup.papers for dump in {s.dump for s in paper.sightings})
    problem_count = Counter(problem["dump"] for problem in problems)
    return [dump_row(position, parsed, captures[parsed.name], papers_shown[parsed.name],
                     new_papers[parsed.name], problem_count[parsed.name])
            for position, parsed in enumerate(parsed_dumps, 1)]


def dump_row(position: int, parsed: ParsedDump, capture: Capture, papers: int, new_papers: int,
             problems: int) -> dict:
    return {
        "name": parsed.name,
        "position": position,
        "sha256": parsed.sha256,
        "bytes": parsed.bytes,
        "lines": parsed.line_count,
        "layout": parsed.layout,
        **capture_columns(capture),
        "records": len(parsed.records),
        "papers": papers,
        "new_papers": new_papers,
        "problems": problems,
    }


def capture_columns(capture: Capture) -> dict:
    return {
        "capture_text": capture.text,
        "capture_line": capture.line,
        "capture_date": capture.date,
        "capture_year": capture.year,
        "capture_method": capture.method,
        "capture_year_min": capture.year_min,
        "capture_year_max": capture.year_max,
    }
