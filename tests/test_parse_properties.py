"""Properties of the parser on arbitrary text and on mutated real dumps.

Whatever it is given, the parser either refuses the file with a one-line DumpError naming
it (and the line at fault, when one is), or accounts for every line exactly once: blank,
furniture, part of a record, or a reported problem. Parsing is a pure function of the
bytes. (The parser has no renderer of its own, so there is no round trip to check.)
Runs are reproducible: derandomized, no example database.
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REAL_DUMPS
from neuroai_papers.parse import (DumpError, ParsedDump, is_furniture, line_claims, parse_dump,
                                  read_dump)

BOUNDED = settings(max_examples=200, deadline=None, derandomize=True, database=None)

REAL_BYTES = {path.name: path.read_bytes() for path in sorted(REAL_DUMPS.glob("*.txt"))}
REAL_LINES = sorted({line for data in REAL_BYTES.values() for line in data.decode().split("\n")})
# Lines the parser has a rule for, and near misses of those rules.
TRICKY_LINES = [
    "", " ", "\t", "\u00a0", "\u3000", "\ufeff", "\u200b", "new", "Subscribe", "Daily Papers",
    "byAK and the research community", "Get trending papers in your email inbox!",
    "SubscribeVideoChat: Chat-Centric Video Understanding", "Subscribers of the brain", "newt",
    "Apr 17", "Apr 17, 2024", "Sep 30, 2025 28", "Feb 25 2", "Feb 25 2025", "Feb 30",
    "Foo 12", "Sept. 3", "December 31, 1999 999999", "• 5 authors", "· 1 author", "12 authors", "• many authors",
    "•", "·", "*", "SakanaAI Sakana AI", "Korea University", "A title: with a colon",
    "A sentence. Another one! And a third? Yes.", "x" * 300, "\x00", "\x07bell", "\r",
]
LINE_BREAKS = ["\n", "\r\n", "\r"]
JUNK_LINES = st.one_of(st.sampled_from(TRICKY_LINES), st.text(max_size=80),
                       st.binary(max_size=40).map(lambda b: b.decode("latin-1")))


# --- arbitrary text -------------------------------------------------------------------------

def line_like_text() -> st.SearchStrategy[str]:
    """Texts made of lines the parser cares about, real lines and noise, with any line breaks."""
    line = st.one_of(st.sampled_from(REAL_LINES), st.sampled_from(TRICKY_LINES), st.text(max_size=60))
    return st.builds(lambda lines, brk, end: brk.join(lines) + end,
                     st.lists(line, max_size=40), st.sampled_from(LINE_BREAKS),
                     st.sampled_from(["", *LINE_BREAKS]))


ANY_TEXT = st.one_of(st.text(max_size=400), line_like_text())


# --- mutated real dumps ---------------------------------------------------------------------

def delete_line(draw, lines: list[bytes]) -> list[bytes]:
    index = draw(st.integers(0, len(lines) - 1))
    return lines[:index] + lines[index + 1:]


def duplicate_line(draw, lines: list[bytes]) -> list[bytes]:
    index = draw(st.integers(0, len(lines) - 1))
    return lines[:index + 1] + lines[index:]


def swap_lines(draw, lines: list[bytes]) -> list[bytes]:
    first, second = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    lines = list(lines)
    lines[first], lines[second] = lines[second], lines[first]
    return lines


def insert_junk_line(draw, lines: list[bytes]) -> list[bytes]:
    index = draw(st.integers(0, len(lines)))
    junk = draw(JUNK_LINES).encode("utf-8")
    return lines[:index] + [junk] + lines[index:]


def truncate(draw, lines: list[bytes]) -> list[bytes]:
    data = b"\n".join(lines)
    return data[:draw(st.integers(0, len(data)))].split(b"\n")


def flip_byte(draw, lines: list[bytes]) -> list[bytes]:
    data = bytearray(b"\n".join(lines))
    if data:
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data).split(b"\n")


MUTATIONS = [delete_line, duplicate_line, swap_lines, insert_junk_line, truncate, flip_byte]


@st.composite
def mutated_real_dump(draw) -> bytes:
    """A real dump with one to six random line or byte mutations."""
    lines = REAL_BYTES[draw(st.sampled_from(sorted(REAL_BYTES)))].split(b"\n")
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            break
        lines = draw(st.sampled_from(MUTATIONS))(draw, lines)
    return b"\n".join(lines)


# --- what must hold -------------------------------------------------------------------------

def editor_lines(text: str) -> list[str]:
    """Return the lines of a text as an editor shows them: any line break, none after the last."""
    lines = re.split(r"\r\n|\r|\n", text)
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


def assert_every_line_taken_exactly_once(parsed: ParsedDump, text: str) -> None:
    assert parsed.line_count == len(editor_lines(text))
    for problem in parsed.problems:
        assert 1 <= problem.line <= parsed.line_count and problem.text and problem.reason
    for record in parsed.records:
        assert 1 <= record.line <= record.end_line <= parsed.line_count
        assert record.title and record.abstract
    badly_claimed = {n: c for n, c in line_claims(parsed).items() if len(c) != 1}
    assert badly_claimed == {}


def byte_lines(data: bytes) -> list[bytes]:
    return re.split(rb"\r\n|\r|\n", data)


def is_unreadable_line(line: bytes, number: int) -> bool:
    """True if this line alone holds a NUL or is not UTF-8 (a BOM opens line 1 harmlessly)."""
    if number == 1 and line.startswith(b"\xef\xbb\xbf"):
        line = line[3:]
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return b"\x00" in line


def assert_refusal_names_file_and_line(error: DumpError, path, data: bytes) -> None:
    message = str(error)
    assert "\n" not in message
    match = re.match(rf"{re.escape(str(path))}(?::(\d+))?: (.+)$", message)
    assert match, message
    line, reason = match[1], match[2]
    if line is None:  # refusals of the whole file: nothing in it to point at
        if reason == "empty file (no papers)":
            assert data.strip() == b""
        else:
            assert reason in ("no papers found (only page furniture)",
                              "no papers found (only blank lines)"), message
            parsed = parse_dump(path.name, data.decode("utf-8-sig"))
            assert parsed.records == [] and parsed.problems == []
        return
    number = int(line)
    lines = byte_lines(data)
    assert 1 <= number <= len(lines), message
    if reason.startswith("not UTF-8 text"):
        assert is_unreadable_line(lines[number - 1], number), message
    elif reason.startswith("another page's header"):
        parsed = parse_dump(path.name, data.decode("utf-8-sig"))
        assert parsed.second_page.number == number and is_furniture(parsed.second_page.text)
    else:
        assert reason.startswith("no papers found"), message
        parsed = parse_dump(path.name, data.decode("utf-8-sig"))
        assert parsed.records == [] and parsed.problems[0].line == number


def check_read(path, data: bytes) -> None:
    """Read `data` as a dump file: a refusal must be a DumpError naming file and line,
    a success must account for every line, and a second read must give the same result."""
    path.write_bytes(data)
    try:
        parsed = read_dump(path)
    except DumpError as error:
        assert_refusal_names_file_and_line(error, path, data)
        with pytest.raises(DumpError, match=re.escape(str(error))):
            read_dump(path)
        return
    assert_every_line_taken_exactly_once(parsed, data.decode("utf-8-sig"))
    assert read_dump(path) == parsed


@pytest.fixture(scope="module")
def dump_path(tmp_path_factory):
    return tmp_path_factory.mktemp("properties") / "001_mutated.txt"


@BOUNDED
@given(text=ANY_TEXT)
def test_any_text_parses_without_raising_and_every_line_is_taken_once(text):
    parsed = parse_dump("x.txt", text)
    assert_every_line_taken_exactly_once(parsed, text)
    assert parse_dump("x.txt", text) == parsed


@BOUNDED
@given(data=st.one_of(st.binary(max_size=600), ANY_TEXT.map(lambda t: t.encode("utf-8"))))
def test_any_bytes_are_read_or_refused_with_file_and_line(dump_path, data):
    check_read(dump_path, data)


@BOUNDED
@given(data=mutated_real_dump())
def test_mutated_real_dumps_are_read_or_refused_with_file_and_line(dump_path, data):
    check_read(dump_path, data)



@BOUNDED
@given(st.lists(st.sampled_from([" ", "  ", "\t", "\u00a0", "\u200b", "\x07", "a", "é", "\n"]),
                max_size=60).map("".join))
def test_normalizing_collapses_every_run_of_spaces_as_the_regex_would(text):
    """normalize_text collapses runs with str.find; the result must be the regex's."""
    from neuroai_papers.parse import (CONTROL, INVISIBLE, ODD_SPACES, RUN_OF_SPACES,
                                      normalize_text)
    expected = RUN_OF_SPACES.sub(" ", CONTROL.sub("", ODD_SPACES.sub(" ", INVISIBLE.sub("", text))))
    assert normalize_text(text) == expected


@BOUNDED
@given(st.lists(st.one_of(st.sampled_from([" ", "  ", "     ", "\n"]), st.text(max_size=8)),
                max_size=40).map("".join))
def test_runs_of_spaces_collapse_as_the_regex_collapses_them(text):
    """Runs at the start, at the end, next to each other across a line break, and in any
    script: collapse_runs_of_spaces must give what RUN_OF_SPACES.sub(" ") gives."""
    from neuroai_papers.parse import RUN_OF_SPACES, collapse_runs_of_spaces
    assert collapse_runs_of_spaces(text) == RUN_OF_SPACES.sub(" ", text)


def test_the_noise_gate_matches_exactly_the_characters_normalizing_removes_or_replaces():
    from neuroai_papers.parse import CONTROL, INVISIBLE, NOISE, ODD_SPACES, rare_characters
    for code in range(0x110000):
        char = chr(code)
        removed = any(p.fullmatch(char) for p in (CONTROL, INVISIBLE, ODD_SPACES))
        assert bool(NOISE.fullmatch(char)) == removed, hex(code)
        # without_noise searches only the rare characters: not printable ASCII, no line break
        assert bool(NOISE.search(rare_characters(char))) == removed, hex(code)


TRICKY_UNICODE = ["a", "e", "A", "=", " ", "\n", "\t", "•", "é", "e\u0301", "\u0301", "\u030a",
                  "\u0338", "\u212b", "\u1100", "\u1161", "\u11a8", "\uac00", "\u0f73", "\u0cbf",
                  "\u0cd5", "\u00a0", "\u200b", "\u2000", "\x07", "\u3000", "\ud800", "𝐱"]


@settings(max_examples=2000, deadline=None, derandomize=True, database=None)
@given(st.one_of(st.lists(st.sampled_from(TRICKY_UNICODE), max_size=12).map("".join),
                 st.text(max_size=20)))
def test_noise_is_removed_from_the_text_in_nfc_as_the_regexes_remove_it(text):
    """without_noise normalizes only a text whose rare characters need it, and searches
    only those for noise."""
    from neuroai_papers.parse import CONTROL, INVISIBLE, ODD_SPACES, without_noise
    expected = unicodedata.normalize("NFC", text)
    expected = CONTROL.sub("", ODD_SPACES.sub(" ", INVISIBLE.sub("", expected)))
    assert without_noise(text) == expected


def test_common_characters_take_part_in_no_composition_with_a_character_of_class_0():
    """What in_nfc relies on: NFC composes two characters only if the second is a combining
    one (canonical class above 0), or if neither is common (printable ASCII, a line break),
    as Hangul jamo, which NFC composes without a decomposition in the table."""
    def common(char):
        return " " <= char <= "~" or char == "\n"
    for code in range(0x110000):
        parts = unicodedata.decomposition(chr(code)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            first, second = (chr(int(part, 16)) for part in parts)
            assert not common(second), hex(code)
            assert not common(first) or unicodedata.combining(second), hex(code)


@BOUNDED
@given(st.lists(st.one_of(st.sampled_from([" ", "  ", "\n", "\r", "\r\n", "\t", "\u00a0", "\u2028",
                                           "\x0c", "\x1f", "\u200b", "•", "é", "e\u0301"]),
                          st.text(max_size=6)),
                max_size=40).map("".join))
def test_lines_are_the_normalized_text_split_and_stripped(text):
    """split_lines collapses runs of spaces after stripping each line: the same lines as
    normalizing the whole text, then splitting and stripping it."""
    from neuroai_papers.parse import Line, normalize_text, split_lines
    whole = normalize_text(text.replace("\r\n", "\n").replace("\r", "\n"))
    expected = [Line(number, line.strip()) for number, line in enumerate(whole.split("\n"), 1)]
    lines = split_lines(text)
    assert lines == expected
    assert all(type(line) is Line for line in lines)
