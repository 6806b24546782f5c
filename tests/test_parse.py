"""The parser: every layout and copy-paste variant, and every line accounted for."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from conftest import ABSTRACT_A, ABSTRACT_B, ABSTRACT_C, REAL_DUMPS, blank_separated, rows, run_build
from neuroai_papers.parse import (
    LAYOUT_BLANK_LINES,
    LAYOUT_BLANK_LINES_METADATA,
    LAYOUT_NO_BLANK_LINES,
    DumpDate,
    DumpError,
    LONGEST_METADATA_LINE,
    Record,
    line_claims,
    line_kind,
    parse_dump,
    read_dump,
)

REAL = sorted(REAL_DUMPS.glob("*.txt"))


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_every_line_of_every_real_dump_is_accounted_for(path):
    parsed = read_dump(path)
    claims = line_claims(parsed)  # blank, furniture, a record or a problem: exactly one each
    assert len(claims) == len(path.read_bytes().splitlines())  # lines end as the parser ends them
    assert {number: c for number, c in claims.items() if len(c) != 1} == {}
    # Records do not overlap and each covers its own lines only.
    spans = sorted((r.line, r.end_line) for r in parsed.records)
    assert all(end < next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))


def test_real_dumps_give_the_records_their_pages_show():
    counts = {path.name[:3]: len(read_dump(path).records) for path in REAL}
    # Counted by hand: one title line per record in each file.
    assert counts == {"000": 61, "001": 189, "002": 64, "003": 62, "004": 49}
    assert all(not read_dump(path).problems for path in REAL)


def test_real_dumps_show_three_layouts():
    layouts = {path.name[:3]: read_dump(path).layout for path in REAL}
    assert layouts["000"] == LAYOUT_BLANK_LINES
    assert layouts["001"] == LAYOUT_NO_BLANK_LINES
    assert layouts["002"] == LAYOUT_BLANK_LINES_METADATA


def test_header_glued_to_first_title_is_stripped():
    parsed = read_dump(REAL_DUMPS / "001_be74241cc718eecc.txt")
    assert parsed.records[0].title == "VideoChat: Chat-Centric Video Understanding"
    assert parsed.records[0].line == 3
    assert parsed.capture is None


def test_page_date_near_the_top_is_the_capture_date_not_a_paper():
    parsed = read_dump(REAL_DUMPS / "002_c4aa379a21cff983.txt")
    assert parsed.capture == DumpDate(4, 17, None)
    assert parsed.capture_line == 11
    assert parsed.records[0].title.startswith("Efficient Continual Learning")


def test_metadata_block_with_authors_date_and_comment_count():
    parsed = read_dump(REAL_DUMPS / "002_c4aa379a21cff983.txt")
    first = parsed.records[0]
    assert (first.authors, first.date_text, first.date, first.comments) == (
        1, "Feb 25", DumpDate(2, 25, None), 2)
    second = parsed.records[1]
    assert (second.authors, second.date_text, second.comments) == (7, "Dec 12, 2023", None)
    assert second.date == DumpDate(12, 12, 2023)


def test_organization_line_replaces_authors_line():
    parsed = read_dump(REAL_DUMPS / "004_a2400baee32e0311.txt")
    by_title = {r.title: r for r in parsed.records}
    dragon = by_title["The Dragon Hatchling: The Missing Link between the Transformer and Models of the Brain"]
    assert (dragon.organization, dragon.authors, dragon.date_text, dragon.comments) == (
        "pathwaycom Pathway", None, "Sep 30, 2025", 28)
    assert by_title["Continuous Thought Machines"].organization == "SakanaAI Sakana AI"


def test_record_with_no_metadata_between_records_with_metadata():
    parsed = read_dump(REAL_DUMPS / "002_c4aa379a21cff983.txt")
    eeg = next(r for r in parsed.records if r.title.startswith("EEG Foundation Models"))
    assert (eeg.authors, eeg.date_text, eeg.organization) == (None, None, None)
    assert not eeg.has_metadata


def test_bom_crlf_nbsp_and_trailing_spaces_are_normalized():
    text = blank_separated(
        ("Brain\u00a0Decoding   with Diffusion  ", ABSTRACT_A + "  ",
         ["\u00a0 • 5 authors", "·", "Mar 3, 2024 7   "]),
    )
    crlf = "\ufeff" + text.replace("\n", "\r\n")
    parsed = parse_dump("x.txt", crlf)
    (record,) = parsed.records
    assert record.title == "Brain Decoding with Diffusion"
    assert record.abstract == ABSTRACT_A
    assert (record.authors, record.date_text, record.comments) == (5, "Mar 3, 2024", 7)
    assert parsed.problems == []
    assert parse_dump("x.txt", text).records[0].title == record.title


def test_bytes_with_bom_and_crlf_are_read(dumps_dir):
    path = dumps_dir / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + blank_separated(("T", ABSTRACT_A)).encode().replace(b"\n", b"\r\n"))
    parsed = read_dump(path)
    assert [r.title for r in parsed.records] == ["T"]


def test_no_blank_lines_layout_alternates_title_and_abstract():
    text = "Get trending papers in your email inbox!\nSubscribeFirst Paper\n" + "\n".join(
        [ABSTRACT_A, "Second Paper", ABSTRACT_B, "Third Paper", ABSTRACT_C])
    parsed = parse_dump("x.txt", text)
    assert [r.title for r in parsed.records] == ["First Paper", "Second Paper", "Third Paper"]
    assert parsed.layout == LAYOUT_NO_BLANK_LINES
    assert parsed.problems == []


def test_short_abstracts_still_alternate_by_position():
    text = "\n".join(["Title one", "Short abstract.", "Title two", "Another short one."])
    parsed = parse_dump("x.txt", text)
    assert [(r.title, r.abstract) for r in parsed.records] == [
        ("Title one", "Short abstract."), ("Title two", "Another short one.")]


def test_each_part_of_the_metadata_block_may_be_missing():
    text = blank_separated(
        ("Only authors", ABSTRACT_A, ["• 3 authors"]),
        ("Only a date with count", ABSTRACT_B, ["·", "Feb 25 2"]),
        ("Date without separator", ABSTRACT_C, ["Jan 5"]),
        ("Organization no date", ABSTRACT_A, ["Korea University", "·"]),
        ("No block at all", ABSTRACT_B),
    )
    parsed = parse_dump("x.txt", text)
    got = [(r.title, r.authors, r.organization, r.date_text, r.comments) for r in parsed.records]
    assert got == [
        ("Only authors", 3, None, None, None),
        ("Only a date with count", None, None, "Feb 25", 2),
        ("Date without separator", None, None, "Jan 5", None),
        ("Organization no date", None, "Korea University", None, None),
        ("No block at all", None, None, None, None),
    ]
    assert parsed.problems == []
    assert parsed.layout == LAYOUT_BLANK_LINES_METADATA


def test_full_month_names_and_year_without_comma():
    text = blank_separated(("A", ABSTRACT_A, ["·", "September 30, 2025 28"]),
                           ("B", ABSTRACT_B, ["·", "Feb 25 2025"]))
    a, b = parse_dump("x.txt", text).records
    assert (a.date, a.comments) == (DumpDate(9, 30, 2025), 28)
    assert (b.date, b.comments) == (DumpDate(2, 25, 2025), None)


def test_a_comment_count_with_a_thousands_separator_keeps_its_date():
    """`Sep 30, 2025 1,234` is a date and 1,234 comments, as `1,234 authors` is a count: the
    line was taken for a title, and the paper lost its date."""
    text = blank_separated(("A", ABSTRACT_A, ["·", "Sep 30, 2025 1,234"]),
                           ("B", ABSTRACT_B, ["·", "Feb 3 12,345"]))
    parsed = parse_dump("x.txt", text)
    a, b = parsed.records
    assert (a.date, a.date_text, a.comments) == (DumpDate(9, 30, 2025), "Sep 30, 2025", 1234)
    assert (b.date, b.date_text, b.comments) == (DumpDate(2, 3, None), "Feb 3", 12345)
    assert parsed.problems == []


def test_furniture_is_not_a_paper():
    parsed = parse_dump("x.txt", blank_separated(("Real paper", ABSTRACT_A)))
    assert [r.title for r in parsed.records] == ["Real paper"]
    assert len(parsed.furniture_lines) == 6  # five furniture lines and the page date


def test_title_with_no_abstract_is_a_problem_not_a_paper():
    text = blank_separated(("Lonely title", ABSTRACT_A))
    text = text.replace("Lonely title\n\n" + ABSTRACT_A, "Lonely title\n\nSecond title\n\n" + ABSTRACT_A)
    parsed = parse_dump("x.txt", text)
    assert [r.title for r in parsed.records] == ["Second title"]
    assert [(p.text, p.reason) for p in parsed.problems] == [
        ("Lonely title", "title with no abstract after it")]
    assert parsed.problems[0].line == 13


def test_truncated_last_record_is_reported_with_its_line():
    text = blank_separated(("Complete", ABSTRACT_A)) + "Cut off here\n"
    parsed = parse_dump("x.txt", text)
    assert [r.title for r in parsed.records] == ["Complete"]
    (problem,) = parsed.problems
    assert problem.text == "Cut off here"
    assert "truncated" in problem.reason
    assert problem.line == text.count("\n")


def test_metadata_with_no_record_is_reported():
    text = blank_separated(("Paper", ABSTRACT_A, ["• 2 authors", "·", "Jan 5, 2024"]))
    text += "\n• 4 authors\n·\nFeb 1, 2023\n"
    parsed = parse_dump("x.txt", text)
    assert len(parsed.records) == 1
    assert [p.reason for p in parsed.problems] == [
        "authors line with no paper before it",
        "separator line with no paper before it",
        "date line with no paper before it",
    ]


def test_abstract_with_no_title_is_reported():
    text = blank_separated(("Paper", ABSTRACT_A)) + "\n" + ABSTRACT_B + "\n"
    parsed = parse_dump("x.txt", text)
    assert [p.reason for p in parsed.problems] == ["abstract with no title before it"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"  \n\n \t\n", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text"),
        ("Caf\u00e9 neuronal\n\nR\u00e9sum\u00e9 long enough.\n".encode("latin-1"), "not UTF-8 text"),
        ("Title\n\nAbstract\n".encode("utf-16"), "not UTF-8 text"),
        (b"new\n\nSubscribe\n\nDaily Papers\n", "only page furniture"),
    ],
    ids=["empty", "whitespace", "binary", "latin-1", "utf-16", "furniture-only"],
)
def test_unreadable_dumps_are_refused_with_one_line_naming_the_file(dumps_dir, content, message):
    path = dumps_dir / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DumpError) as error:
        read_dump(path)
    text = str(error.value)
    assert str(path) in text and message in text and "\n" not in text


def test_latin1_error_names_the_line(dumps_dir):
    path = dumps_dir / "latin.txt"
    path.write_bytes(b"Title one\n\nAbstract\n\nCaf\xe9 title\n")
    with pytest.raises(DumpError, match=r"latin\.txt:5: not UTF-8"):
        read_dump(path)


def test_parsing_is_idempotent_on_its_own_output():
    parsed = read_dump(REAL_DUMPS / "002_c4aa379a21cff983.txt")
    again = parse_dump("x.txt", "\n\n".join(f"{r.title}\n\n{r.abstract}" for r in parsed.records))
    assert [(r.title, r.abstract) for r in again.records] == [
        (r.title, r.abstract) for r in parsed.records]


@pytest.mark.parametrize("line", [
    "• 99999 authors", "• 99,999 authors", "· 12 Authors", "99999 authors", "·", "•",
    "September. 30, 2025 999999", "September 30, 2025 999999", "Sept. 30, 2025 999999", "September 30 2025 999999",
    "Feb 25", "Feb 25 13",
])
def test_the_longest_metadata_lines_are_within_the_bound_line_kind_skips_above(line):
    """line_kind calls any line longer than LONGEST_METADATA_LINE text without trying the
    patterns: no metadata line may be longer."""
    assert line_kind(line) != "text"
    assert len(line) <= LONGEST_METADATA_LINE
    assert line_kind(line + " x" * 20) == "text"


def test_a_record_survives_pickling_field_for_field():
    """The reader process sends records to the build pickled (Record.__reduce__ lists the
    fields): every field must come back, whatever its position."""
    values = {"position": 7, "line": 11, "title": "A title", "abstract": "An abstract.",
              "end_line": 19, "authors": 4, "organization": "Some Lab",
              "date_text": "Feb 25, 2025", "date": DumpDate(2, 25, 2025), "comments": 3,
              "has_separator": True}
    assert [field.name for field in dataclasses.fields(Record)] == list(values)
    record = Record(**values)
    again = pickle.loads(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
    assert dataclasses.asdict(again) == dataclasses.asdict(record) == {
        **values, "date": {"month": 2, "day": 25, "year": 2025}}


def test_an_author_count_with_a_thousands_separator_is_read():
    parsed = parse_dump("x.txt", blank_separated(("Big", ABSTRACT_A, ["  • 1,234 authors", "·", "Feb 3"])))
    (record,) = parsed.records
    assert (record.authors, record.organization, record.date_text) == (1234, None, "Feb 3")
    assert parsed.problems == []


def test_a_bulleted_line_no_pattern_reads_is_an_unreadable_metadata_line_of_its_record():
    """`• many authors` before the separator is where an organization could stand, but the
    pages bullet only their metadata: the build reports it rather than invent a name. It was
    reported as a "title with no abstract after it", and the paper's `·` and date as two
    lines with no paper before them: the record keeps them, and the line is reported as
    what it is."""
    text = blank_separated(("Paper", ABSTRACT_A, ["  • many authors", "·", "Feb 3"]),
                           ("Next", ABSTRACT_B, ["• 2 authors", "·", "Feb 4"]))
    parsed = parse_dump("x.txt", text)
    first, second = parsed.records
    assert (first.organization, first.authors, first.date_text, first.has_separator) == (
        None, None, "Feb 3", True)
    assert (first.line, first.end_line) == (13, 19)
    assert [(p.line, p.text, p.reason) for p in parsed.problems] == [
        (17, "• many authors", "unreadable metadata line (bulleted, but not `• N authors`)")]
    assert (second.title, second.authors, second.date_text) == ("Next", 2, "Feb 4")
    claims = line_claims(parsed)
    assert {number: c for number, c in claims.items() if len(c) != 1} == {}
    assert claims[17] == ["problem"] and claims[18] == claims[19] == ["record 1"]


def test_a_bulleted_line_no_pattern_reads_with_no_paper_before_it_is_reported_as_such():
    text = blank_separated(("Paper", ABSTRACT_A, ["• 2 authors", "·", "Jan 5, 2024"]))
    text += "\n• many authors\n\nLonely title\n• et al.\n"
    parsed = parse_dump("x.txt", text)
    assert len(parsed.records) == 1
    assert [(p.text, p.reason) for p in parsed.problems] == [
        ("• many authors", "unreadable metadata line with no paper before it"),
        ("Lonely title", "title with no abstract after it"),
        ("• et al.", "unreadable metadata line with no paper before it")]


def test_unicode_line_separators_inside_a_line_are_spaces():
    text = blank_separated(("Brain\u2028decoding\u0085with\u2029spikes", ABSTRACT_A))
    (record,) = parse_dump("x.txt", text).records
    assert record.title == "Brain decoding with spikes"


def test_bidirectional_marks_are_invisible_characters_and_leave_no_second_paper(dumps_dir, tmp_path):
    """A copy whose title holds left-to-right, right-to-left or isolate marks inside its words
    (a copy from a page brings them) is the same paper, with the same title, as a clean copy:
    kept, they split the words and gave a second paper of the same title and abstract."""
    clean = "Spiking Transformers for Neuromorphic Vision"
    marked = "Spiking Trans\u200eformers for Neuro\u2066morphic\u2069 Vision\u200f \u202eEdge\u202c"
    (dumps_dir / "000_a.txt").write_text(blank_separated((clean + " Edge", ABSTRACT_B)))
    (dumps_dir / "001_b.txt").write_text(blank_separated((marked, ABSTRACT_B)))
    out = tmp_path / "papers.db"
    assert run_build(dumps_dir, out).returncode == 0
    assert rows(out, "select id, title from papers") == [
        ("spiking-transformers-for-neuromorphic-vision-edge", clean + " Edge")]
    assert rows(out, "select title from sightings order by dump") == [(clean + " Edge",)] * 2


def test_a_line_with_no_letter_where_the_organization_goes_is_no_organization(dumps_dir, tmp_path):
    """`28` or `1,234` between an abstract (or its authors line) and the `·` is a count pasted
    in, never a name: it was stored as the organization `28`, with a row in organizations.
    It is reported with its line, and the paper keeps its `·`, date and comment count."""
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("First paper", ABSTRACT_A, ["28", "·", "Feb 3"]),
        ("Second paper", ABSTRACT_B, ["• 4 authors", "1,234", "·", "Feb 4 3"]),
        ("Third paper", ABSTRACT_C, ["3D Vision Lab", "·", "Feb 5"])))
    out = tmp_path / "papers.db"
    result = run_build(dumps_dir, out)
    assert result.returncode == 0, result.stderr
    reason = "unreadable metadata line (no letter: a count, not an organization's name)"
    assert f"{dumps_dir / 'a.txt'}:17: {reason}: '28'" in result.stderr
    assert rows(out, "select line, text, reason from problems") == [
        (17, "28", reason), (26, "1,234", reason)]
    assert rows(out, "select title, end_line, authors, organization, date_text, comments "
                     "from sightings order by line") == [
        ("First paper", 19, None, None, "Feb 3", None),
        ("Second paper", 28, 4, None, "Feb 4", 3),
        ("Third paper", 36, None, "3D Vision Lab", "Feb 5", None)]
    assert rows(out, "select name from organizations") == [("3D Vision Lab",)]
    claims = line_claims(read_dump(dumps_dir / "a.txt"))
    assert claims[17] == claims[26] == ["problem"] and claims[18] == ["record 1"]


def test_a_dump_with_no_papers_is_refused_naming_a_paper_line_not_its_page_date(dumps_dir):
    """An impossible page date (`Feb 30`) is a problem of the header: the refusal of a dump
    with no papers names its first unreadable paper line, or says it holds only furniture."""
    header = blank_separated().replace("Apr 17", "Feb 30")
    (dumps_dir / "a.txt").write_text(header + "Lonely title\n")
    with pytest.raises(DumpError, match=r"a\.txt:13: no papers found \(1 line could not be "
                                        r"read as papers, the first: title with no abstract"):
        read_dump(dumps_dir / "a.txt")
    (dumps_dir / "a.txt").write_text(header)
    with pytest.raises(DumpError, match=r"a\.txt: no papers found \(only page furniture\)"):
        read_dump(dumps_dir / "a.txt")


@pytest.mark.parametrize("name", ["Acme Inc.", "Foo Research Ltd.", "Bar S.A.", "Baz e.V."])
def test_an_organization_whose_name_ends_in_an_abbreviation_is_the_papers(name):
    """A name ending in an abbreviation's period was taken for a sentence: the line was a
    problem, and the paper's `·` and date problems too, the paper left without its date.
    After a title alone, it was taken for the title's abstract."""
    text = blank_separated((f"Paper of {name}", ABSTRACT_A, [name, "·", "Feb 3, 2025"]),
                           ("Next paper", ABSTRACT_B))
    text += f"\nTitle whose abstract was lost\n\n{name}\n\n·\n\nFeb 4, 2025\n"
    parsed = parse_dump("x.txt", text)
    first, second = parsed.records
    assert (first.organization, first.date_text) == (name, "Feb 3, 2025")
    assert second.title == "Next paper" and second.organization is None
    assert [(p.text, p.reason) for p in parsed.problems] == [
        ("Title whose abstract was lost", "title with no abstract after it"),
        (name, "organization line with no paper before it"),
        ("·", "separator line with no paper before it"),
        ("Feb 4, 2025", "date line with no paper before it")]


@pytest.mark.parametrize("sentence", ["It works.", "We release the code.", "Done!", "Why?"])
def test_a_sentence_before_the_separator_is_no_organization(sentence):
    text = blank_separated(("Paper", ABSTRACT_A, [sentence, "·", "Feb 3, 2025"]))
    parsed = parse_dump("x.txt", text)
    assert all(record.organization is None for record in parsed.records)
    assert sentence in [problem.text for problem in parsed.problems]
