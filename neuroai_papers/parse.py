"""Parse one dump (text copied from a Hugging Face "Daily Papers" page) into records.

A dump is read line by line. Each line is one of: blank, page furniture, the page's
own date (the capture date), a metadata line (`• N authors`, `·`, a date line, an
organization line), or text (a title or an abstract). A small state machine turns
the sequence into records: title, abstract, then optional metadata. Every line that
is neither blank, furniture nor part of a record becomes a `Problem`, so nothing is
dropped silently; `line_claims` says what became of each line.

The parser is pure: it takes text and gives back plain dataclasses. Reading files
and refusing bad ones is `read_dump`'s job; it raises `DumpError`, one line naming
the file.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field, fields
from datetime import date
from itertools import repeat
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

# Lines of the page around the list of papers. Compared after normalization.
FURNITURE = ("new", "Subscribe", "Daily Papers", "byAK and the research community")
FURNITURE_PREFIX = "Get trending papers"

# arXiv caps abstracts at 1,920 characters and titles are far shorter: a longer line is
# not one (a paste gone wrong). The site refuses a value or a row over 32 kB
# (plugins/sql_limits.py), which it counts in bytes: the cap is in bytes of UTF-8 too (10,000
# characters of math letters such as 𝐱 are 40 kB, and made the paper's page, every search
# that found it and the feed fail). A problem line is stored as its start and its length.
MAX_LINE_BYTES = 10_000
PROBLEM_PREVIEW_CHARS = 1_000

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}

# `Sep 30, 2025 28`: month, day, optional `, year`, optional trailing count (comments), which
# may be written with a thousands separator (`Sep 30, 2025 1,234`), as the authors' count.
# `Feb 25 2025` (no comma, four digits) is read as a year: comment counts stay far below.
DATE_LINE = re.compile(
    r"^(?P<month>[A-Za-z]{3,9})\.? (?P<day>\d{1,2})"
    r"(?:(?:, ?| )(?P<year>(?:19|20)\d\d)(?!\d))?"
    r"(?: (?P<count>\d{1,3}(?:,\d{3})+|\d{1,6}))?$"
)
# The count may be written with a thousands separator (`• 1,234 authors`).
AUTHORS_LINE = re.compile(r"^(?:[•·*-] ?)?(?P<n>\d{1,2},\d{3}|\d{1,5}) authors?$", re.IGNORECASE)
SEPARATOR_LINE = re.compile(r"^[·•]$")
# The pages bullet only their metadata: a short bulleted line no pattern reads (`• many
# authors`) is metadata that could not be read, not a title.
BULLET = "•"
UNREADABLE_METADATA = "unreadable metadata"
UNREADABLE_METADATA_REASON = "unreadable metadata line (bulleted, but not `• N authors`)"
# A line with no letter (`28`, `1,234`) where the organization goes, before the `·`: a count
# (an upvote count pasted in), never a name. Taken as one, it made an organization `28`.
LETTERLESS_METADATA_REASON = ("unreadable metadata line (no letter: a count, not an "
                              "organization's name)")
# Problems of lines inside a record's metadata block: the block goes on after them.
METADATA_PROBLEM_REASONS = (UNREADABLE_METADATA_REASON, LETTERLESS_METADATA_REASON)
# A sentence boundary: end punctuation, optional closing quote or bracket, space, capital.
SENTENCE_BREAK = re.compile(r"[.!?][\"')\]]? +[A-Z(\"]")
# Spaces a copy-paste brings in: no-break, narrow, figure, ideographic and the like, and the
# Unicode line and paragraph separators and NEL (U+2028, U+2029, U+0085): lines are numbered
# by their \n, \r\n or \r as an editor numbers them, so inside a line these are a space.
ODD_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\t\u0085\u2028\u2029]")
# Invisible characters: zero-width spaces and joiners, word joiner, BOM, soft hyphen, and the
# bidirectional marks and controls a copy from a page brings in (LRM, RLM, ALM, embeddings,
# overrides, isolates). Kept, they split the word they sit in: `Trans\u200eformers` had the
# title key `trans formers` and became a second paper of the same title and abstract, and an
# override (U+202E) shows the rest of the title backwards on the site.
INVISIBLE = re.compile(r"[\u200b-\u200f\u2060\ufeff\u00ad\u061c\u202a-\u202e\u2066-\u2069]")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
RUN_OF_SPACES = re.compile(r" {2,}")
# Any character of the three classes above (their union, made from them): most dumps hold
# none, and one search costs a third of the three substitutions.
NOISE = re.compile("[" + "".join(p.pattern[1:-1] for p in (ODD_SPACES, INVISIBLE, CONTROL)) + "]")
# The bytes of printable ASCII characters and line breaks (see rare_characters).
COMMON_BYTES = bytes(range(0x20, 0x7f)) + b"\n"

# No metadata line is longer: `• 99,999 authors` (16), `·` (1), `September. 30, 2025 999999`
# (26). Any longer line is text without trying the three patterns (a test holds the bound).
LONGEST_METADATA_LINE = 26

LEAP_YEAR = 2000  # a day that is in no leap year (Feb 30, Apr 31) is in no year
# The page's own date line kept as written, not as the capture date (split_header).
NO_SUCH_PAGE_DATE_REASON = ("the page's own date is a day no year has (kept as written, not as "
                            "the capture date)")

LAYOUT_NO_BLANK_LINES = "no_blank_lines"
LAYOUT_BLANK_LINES = "blank_lines"
LAYOUT_BLANK_LINES_METADATA = "blank_lines_with_metadata"


class DumpError(Exception):
    """A dump that cannot be read at all; the message is one line naming the file."""


@dataclass(frozen=True, slots=True)
class DumpDate:
    """A date as a dump writes it: month and day always, year only when shown."""

    month: int
    day: int
    year: int | None

    def __reduce__(self):
        # Pickled as its fields, as Record is: a frozen slots dataclass pickles its state
        # through Python functions (1.3 us to pickle a date and 1.2 to load it; 0.4 and 0.5).
        return DumpDate, (self.month, self.day, self.year)


@dataclass(slots=True)
class Record:
    """One paper as one dump shows it."""

    position: int
    line: int
    title: str
    abstract: str
    end_line: int
    authors: int | None = None
    organization: str | None = None
    date_text: str | None = None
    date: DumpDate | None = None
    comments: int | None = None
    has_separator: bool = False

    def __reduce__(self):
        # Pickled as its fields in order (the reader sends a million records to the build):
        # dataclasses' own state functions for slots look the fields up each time, which
        # took 4.3 us to pickle a record and 3.3 to load it (1.0 and 0.7 this way).
        return Record, RECORD_FIELDS(self)

    @property
    def has_metadata(self) -> bool:
        return any(
            value is not None
            for value in (self.authors, self.organization, self.date_text)
        ) or self.has_separator


RECORD_FIELDS = attrgetter(*(field.name for field in fields(Record)))  # in __init__'s order


@dataclass(frozen=True)
class Problem:
    """A line that is not furniture and could not become part of a record."""

    line: int
    text: str
    reason: str


@dataclass
class ParsedDump:
    """Everything one dump says: its records, its problems and its page header."""

    name: str
    layout: str
    line_count: int
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    furniture_lines: list[int] = field(default_factory=list)
    blank_lines: list[int] = field(default_factory=list)
    capture_text: str | None = None
    capture_line: int | None = None
    capture: DumpDate | None = None
    second_page: Line | None = None  # the first furniture line after the header (read_dump)
    sha256: str = ""
    bytes: int = 0


class Line(NamedTuple):
    """A line of a dump: its number as an editor counts it, and its text, stripped.

    A named tuple, not a frozen dataclass: a dump of 60 papers has some 500 lines, and a
    frozen dataclass sets each field through object.__setattr__ (four times as slow)."""

    number: int
    text: str


def read_dump(path: Path) -> ParsedDump:
    """Return the parsed dump at `path`; raise DumpError if it is not a UTF-8 text dump."""
    if path.is_dir():
        raise DumpError(f"{path}: is a directory, not a dump file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DumpError(f"{path}: cannot be read ({error.strerror or error})") from None
    text = decode_dump(path, data)
    parsed = parse_dump(path.name, text)
    if parsed.second_page:
        # Two pages pasted into one file: the second page's date line became the date of
        # the paper before it, and its glued furniture part of the next title. A dump is
        # one page, with one capture date.
        raise DumpError(f"{path}:{parsed.second_page.number}: another page's header "
                        f"({parsed.second_page.text[:60]!r}) after the first page's papers: a "
                        f"dump holds one page (one capture date); put each page in a dump of "
                        f"its own")
    parsed.sha256 = hashlib.sha256(data).hexdigest()
    parsed.bytes = len(data)
    if not parsed.records:
        raise DumpError(no_papers_message(path, parsed))
    return parsed


def decode_dump(path: Path, data: bytes) -> str:
    """Return the text of a dump's bytes; refuse anything that is not UTF-8 text."""
    if not data.strip():
        raise DumpError(f"{path}: empty file (no papers)")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = line_number_at(data, nul)
        raise DumpError(f"{path}:{line}: not UTF-8 text (NUL byte; binary or UTF-16 file?)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = line_number_at(data, error.start)
        raise DumpError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start}; save the dump as UTF-8)"
        ) from None


def line_number_at(data: bytes, offset: int) -> int:
    """Return the line of the byte at `offset`, counting line breaks as `split_lines` does."""
    before = data[:offset]
    return before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1


def no_papers_message(path: Path, parsed: ParsedDump) -> str:
    """Return why a dump gave no records, naming its first unreadable line if it has one (the
    page's own date line, a problem of the header, is no line of a paper)."""
    unread = [p for p in parsed.problems if p.reason != NO_SUCH_PAGE_DATE_REASON]
    if unread:
        first = unread[0]
        lines = "1 line" if len(unread) == 1 else f"{len(unread)} lines"
        return (f"{path}:{first.line}: no papers found ({lines} could not be read as papers, "
                f"the first: {first.reason})")
    if parsed.furniture_lines:
        return f"{path}: no papers found (only page furniture)"
    return f"{path}: no papers found (only blank lines)"


def normalize_text(raw: str) -> str:
    """Return text with copy-paste noise removed: odd spaces, invisible and control
    characters (never a line break), runs of spaces. Lines are not stripped."""
    return collapse_runs_of_spaces(without_noise(raw))


def without_noise(raw: str) -> str:
    """Return text in NFC without odd spaces, invisible and control characters (never a
    line break): normalize_text but for the runs of spaces."""
    text, rare = raw, rare_characters(raw)
    if not in_nfc(rare):
        text = unicodedata.normalize("NFC", raw)
        rare = rare_characters(text)
    if NOISE.search(rare):
        text = INVISIBLE.sub("", text)
        text = ODD_SPACES.sub(" ", text)
        text = CONTROL.sub("", text)
    return text


def rare_characters(text: str) -> str:
    """Return the characters of `text` other than printable ASCII and line breaks, in order.

    In UTF-8 the bytes of those others are all above 127 (or control bytes): deleting the
    common bytes leaves the rare characters whole, a few hundred bytes in a dump of 90,000
    characters. No NOISE character is common, so searching these finds any noise: a dump
    mostly holds some non-ASCII character (`•`), and str.isprintable would look each of its
    characters up in the Unicode database (1,500 dumps: 0.38 s for that check, 0.16 s for
    this one)."""
    rest = text.encode("utf-8", "surrogatepass").translate(None, COMMON_BYTES)
    return rest.decode("utf-8", "surrogatepass")


def in_nfc(rare: str) -> bool:
    """Return whether a text whose rare characters (rare_characters) are `rare` is in NFC.

    It is if `rare` is in NFC and all its characters are of canonical combining class 0
    (none reorders): a common character is of class 0 too and takes part in no composition
    with such a character (a test holds it), so NFC finds nothing to reorder or compose in
    the text but what it finds in `rare` alone. Rare characters that a common one separates
    may compose in `rare` alone: the text is then normalized, as any other that fails this.
    Normalizing a dump looks each of its characters up, 0.14 s for 1,500 dumps; this takes
    0.003 s."""
    return (unicodedata.is_normalized("NFC", rare)
            and not any(map(unicodedata.combining, set(rare))))


def collapse_runs_of_spaces(text: str) -> str:
    """Return text with each run of spaces as one space (what RUN_OF_SPACES.sub(" ") does).

    A dump has a few dozen such runs in 100,000 characters: `str.find` jumps from one to
    the next in C, and the text is copied once, in pieces. `str.replace` counts the
    matches first, with a slower search than find's that stops at every single space
    (1,500 dumps: 0.63 s with str.replace, 0.40-0.46 s with the regex, 0.28 s here)."""
    found = text.find("  ")
    if found < 0:
        return text
    pieces, start = [], 0
    while found >= 0:
        pieces.append(text[start:found + 1])  # up to the run's first space
        start = found + 2
        while text.startswith(" ", start):
            start += 1
        found = text.find("  ", start)
    pieces.append(text[start:])
    return "".join(pieces)


def split_lines(text: str) -> list[Line]:
    """Return the normalized lines of a text, numbered as an editor numbers them.

    The whole text is normalized at once (each step keeps line breaks and works within a
    line), which is the same as normalizing each line and four times faster. Runs of spaces
    are collapsed line by line once the lines are stripped, which gives the same lines:
    nearly all of a dump's runs are the indentation of its metadata lines, which stripping
    removes, so the text is not copied piece by piece around them (1,500 dumps: 1.15 s,
    0.65 s with this, the checks of without_noise and the one for a carriage return)."""
    if "\r" in text:  # seldom: spares two copies of the text
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    stripped = [line.strip() for line in without_noise(text).split("\n")]
    texts = [collapse_runs_of_spaces(line) if "  " in line else line for line in stripped]
    # Line(number, text) without the named tuple's __new__, a Python function, per line.
    return list(map(tuple.__new__, repeat(Line), enumerate(texts, 1)))


def parse_date(text: str) -> tuple[DumpDate, int | None] | None:
    """Return the date and trailing comment count of a date line, or None if it is not one."""
    match = DATE_LINE.match(text)
    if not match:
        return None
    month = MONTHS.get(match["month"].lower())
    day = int(match["day"])
    if month is None or not 1 <= day <= 31:
        return None
    year = int(match["year"]) if match["year"] else None
    count = int(match["count"].replace(",", "")) if match["count"] else None
    return DumpDate(month, day, year), count


def is_a_day(when: DumpDate) -> bool:
    """Return whether a calendar has the date: in its year if it shows one, else in some
    year (Feb 29 is, in leap years; Feb 30 and Apr 31 are in none)."""
    try:
        date(when.year or LEAP_YEAR, when.month, when.day)
    except ValueError:
        return False
    return True


def too_long(text: str) -> bool:
    """Return whether the line is over MAX_LINE_BYTES of UTF-8 (encoded only when it may be:
    a character is at most 4 bytes)."""
    return len(text) * 4 > MAX_LINE_BYTES and len(text.encode()) > MAX_LINE_BYTES


def is_furniture(text: str) -> bool:
    return text in FURNITURE or text.startswith(FURNITURE_PREFIX)


def strip_glued_furniture(text: str) -> str:
    """Return a header line without furniture glued to its front (`SubscribeVideoChat: ...`)."""
    while True:
        if text.startswith(FURNITURE_PREFIX) and "!" in text:
            rest = text[text.index("!") + 1 :]
        else:
            word = next((w for w in FURNITURE if text.startswith(w)), None)
            rest = text[len(word) :] if word else ""
            if not (rest[:1].isupper() or rest[:1].isdigit()):
                return text  # `Subscribers ...` or `newt` are words, not glued furniture
        if not rest.strip():
            return text
        text = rest.strip()


def looks_like_abstract(text: str) -> bool:
    """True for prose: long, or at least two sentence breaks. Titles are neither."""
    return len(text) >= 300 or (len(text) >= 100 and len(SENTENCE_BREAK.findall(text)) >= 2)


def looks_like_organization(text: str) -> bool:
    """True for a short name line (`Korea University`, `Acme Inc.`), not a sentence, nor a
    bulleted item: the pages bullet their metadata (`• 3 authors`), never an organization,
    so a bulleted line no pattern reads (`• many authors`) is a problem, not a name."""
    return (len(text) <= 80 and not ends_a_sentence(text) and not text.startswith("•")
            and line_kind(text) == "text")


def ends_a_sentence(text: str) -> bool:
    """True if `text` ends as a sentence does: with `!`, `?` or a period that does not end an
    abbreviation. A name may end in one (`Acme Inc.`, `Foo Ltd.`, `Bar S.A.`, `Baz e.V.`):
    taken for a sentence, the line was a problem, and the paper's `·` and date after it
    problems too ("no paper before it"), the paper left without its date."""
    if text.endswith(("!", "?")):
        return True
    if not text.endswith("."):
        return False
    word = text.rsplit(" ", 1)[-1][:-1]  # the last word, without its period
    return not (is_initials(word) or (word[:1].isupper() and word.isalpha() and len(word) <= 4))


def is_initials(word: str) -> bool:
    """True for letters with periods between them (`S.A`, `e.V`, `U.S`), a period cut off."""
    parts = word.split(".")
    return len(parts) > 1 and all(len(part) == 1 and part.isalpha() for part in parts)


def has_letter(text: str) -> bool:
    return any(char.isalpha() for char in text)


def line_kind(text: str) -> str:
    """Return the kind of a normalized, non-blank line: authors, separator, date, unreadable
    metadata (bulleted, but none of those) or text."""
    if len(text) > LONGEST_METADATA_LINE:  # titles and abstracts: no pattern to try
        return "text"
    if AUTHORS_LINE.match(text):
        return "authors"
    if SEPARATOR_LINE.match(text):
        return "separator"
    if parse_date(text):
        return "date"
    if text.startswith(BULLET):
        return UNREADABLE_METADATA
    return "text"


def split_header(lines: list[Line], parsed: ParsedDump) -> int:
    """Record the page header (furniture and capture date); return the index where papers start."""
    for index, line in enumerate(lines):
        if not line.text:
            continue
        if is_furniture(line.text):
            parsed.furniture_lines.append(line.number)
            continue
        found = parse_date(line.text)
        if found and found[1] is None and parsed.capture_line is None:
            take_page_date(line, found[0], parsed)
            continue
        unglued = strip_glued_furniture(line.text)
        if unglued != line.text:
            lines[index] = Line(line.number, unglued)
        return index
    return len(lines)


def take_page_date(line: Line, when: DumpDate, parsed: ParsedDump) -> None:
    """Take the page's own date line as its capture date, or, if no calendar has that day
    (`Feb 30`, `Feb 29, 2025`), keep it as written and report it: taken, it bounded the
    page's other dates and was stored as the capture's text with no word of it."""
    parsed.capture_text, parsed.capture_line = line.text, line.number
    if is_a_day(when):
        parsed.capture = when
        parsed.furniture_lines.append(line.number)
    else:
        parsed.problems.append(Problem(line.number, line.text, NO_SUCH_PAGE_DATE_REASON))


def parse_dump(name: str, text: str) -> ParsedDump:
    """Return the records and problems of a dump's text. Never raises on odd content."""
    lines = split_lines(text)
    if lines and lines[-1].text == "" and text.endswith(("\n", "\r")):
        lines.pop()  # the newline that ends the last line does not start another
    parsed = ParsedDump(name=name, layout=LAYOUT_BLANK_LINES, line_count=len(lines))
    parsed.blank_lines = [line.number for line in lines if not line.text]
    start = split_header(lines, parsed)
    body = [line for line in lines[start:] if line.text]
    furniture = [line for line in body if is_furniture(line.text)]
    parsed.furniture_lines.extend(line.number for line in furniture)
    parsed.second_page = furniture[0] if furniture else None
    content = [line for line in body if not is_furniture(line.text)]
    RecordAssembler(parsed).run(content)
    parsed.layout = detect_layout(lines[start:], parsed.records)
    return parsed


def line_claims(parsed: ParsedDump) -> dict[int, list[str]]:
    """Return, for every line of a freshly parsed dump, what took it: blank, furniture, record,
    problem. A sound parse gives each line exactly one claim. A record takes the non-blank,
    non-furniture lines from its title to its last metadata line, but an unreadable metadata
    line within its metadata block, which is a problem of its own.
    """
    claims: dict[int, list[str]] = {n: [] for n in range(1, parsed.line_count + 1)}
    for number in parsed.blank_lines:
        claims[number].append("blank")
    for number in parsed.furniture_lines:
        claims[number].append("furniture")
    for problem in parsed.problems:
        claims[problem.line].append("problem")
    unreadable = {p.line for p in parsed.problems if p.reason in METADATA_PROBLEM_REASONS}
    for record in parsed.records:
        for number in range(record.line, record.end_line + 1):
            if ("blank" not in claims[number] and "furniture" not in claims[number]
                    and number not in unreadable):
                claims[number].append(f"record {record.position}")
    return claims


def detect_layout(body: list[Line], records: list[Record]) -> str:
    """Return the page layout: blank lines between items or not, and metadata or not."""
    texts = [line.text for line in body]
    while texts and not texts[-1]:
        texts.pop()
    if texts and "" not in texts:
        return LAYOUT_NO_BLANK_LINES
    if any(record.has_metadata for record in records):
        return LAYOUT_BLANK_LINES_METADATA
    return LAYOUT_BLANK_LINES


class RecordAssembler:
    """Turns the content lines of a dump into records and problems, in one pass."""

    def __init__(self, parsed: ParsedDump):
        self.parsed = parsed
        self.title: Line | None = None  # a title still waiting for its abstract
        self.record: Record | None = None  # a complete record that may take metadata

    def run(self, content: list[Line]) -> None:
        # Each line's kind once: the state machine also asks for the next line's.
        kinds = [line_kind(line.text) for line in content] + [None]
        for index, line in enumerate(content):
            following = content[index + 1] if index + 1 < len(content) else None
            self.take(line, kinds[index], following, kinds[index + 1])
        self.finish()

    def take(self, line: Line, kind: str, following: Line | None, next_kind: str | None) -> None:
        """Take a line of kind `kind` (line_kind); `following` is the next line, if any, of
        kind `next_kind`."""
        if too_long(line.text):
            self.take_overlong(line)
            return
        if self.record is not None and self.take_metadata(line, kind, following, next_kind):
            return
        self.record = None
        if self.title is not None:
            self.take_abstract(line, kind, following, next_kind)
        else:
            self.take_title(line, kind)

    def take_title(self, line: Line, kind: str) -> None:
        if kind != "text":
            self.problem(line, f"{kind} line with no paper before it")
        elif looks_like_abstract(line.text):
            self.problem(line, "abstract with no title before it")
        else:
            self.title = line

    def take_abstract(self, line: Line, kind: str, following: Line | None,
                      next_kind: str | None) -> None:
        assert self.title is not None
        starts_new_title = (
            kind == "text"
            and not looks_like_abstract(line.text)
            and following is not None
            and next_kind == "text"
            and looks_like_abstract(following.text)
        )
        is_organization = (next_kind == "separator" and kind == "text"
                           and looks_like_organization(line.text))
        if kind != "text" or starts_new_title or is_organization:
            self.problem(self.title, "title with no abstract after it")
            self.title = None
            if is_organization:
                self.problem(line, "organization line with no paper before it")
            else:
                self.take_title(line, kind)
            return
        self.record = Record(
            position=len(self.parsed.records) + 1,
            line=self.title.number,
            title=self.title.text,
            abstract=line.text,
            end_line=line.number,
        )
        self.parsed.records.append(self.record)
        self.title = None

    def take_metadata(self, line: Line, kind: str, following: Line | None,
                      next_kind: str | None) -> bool:
        """Attach a metadata line to the open record; False if the line starts something else."""
        record = self.record
        assert record is not None
        if record.date_text is not None:
            return False  # the date closes the metadata block
        if kind == UNREADABLE_METADATA:
            # Reported, and the block goes on: its `·` and date are still the record's.
            self.problem(line, UNREADABLE_METADATA_REASON)
            return True
        if (kind == "text" and next_kind == "separator" and not record.has_separator
                and not has_letter(line.text)):
            self.problem(line, LETTERLESS_METADATA_REASON)  # as above: the block goes on
            return True
        if kind == "authors" and record.authors is None and not record.has_separator:
            record.authors = int(AUTHORS_LINE.match(line.text)["n"].replace(",", ""))
        elif (
            kind == "text"
            and record.organization is None
            and not record.has_separator
            and next_kind == "separator"
            and looks_like_organization(line.text)
        ):
            record.organization = line.text
        elif kind == "separator" and not record.has_separator:
            record.has_separator = True
        elif kind == "date":
            date, count = parse_date(line.text)
            record.date, record.comments = date, count
            record.date_text = strip_count(line.text, count)
        else:
            return False
        record.end_line = line.number
        return True

    def finish(self) -> None:
        if self.title is not None:
            self.problem(self.title, "title with no abstract after it (truncated record)")
            self.title = None

    def take_overlong(self, line: Line) -> None:
        """A line far longer than any title or abstract is not one: report it, end any record."""
        self.record = None
        if self.title is not None:
            self.problem(self.title, "title with no abstract after it")
            self.title = None
        size = len(line.text.encode())
        in_bytes = f" ({size:,} bytes of UTF-8)" if size != len(line.text) else ""
        self.problem(line, f"line of {len(line.text):,} characters{in_bytes}: too long for a "
                           f"title or an abstract (at most {MAX_LINE_BYTES:,} bytes)")

    def problem(self, line: Line, reason: str) -> None:
        self.parsed.problems.append(Problem(line.number, preview(line.text), reason))


def preview(text: str) -> str:
    """Return a problem line as stored: whole, or its start and its length if it is huge."""
    if len(text) <= PROBLEM_PREVIEW_CHARS:
        return text
    return f"{text[:PROBLEM_PREVIEW_CHARS]} … [{len(text):,} characters in all]"


def strip_count(text: str, count: int | None) -> str:
    """Return a date line without its trailing comment count."""
    if count is None:
        return text
    return text[: text.rfind(" ")]
