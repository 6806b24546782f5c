"""Dates: yearless dates take the capture year, which is stated, pinned or inferred, never guessed silently."""

from __future__ import annotations

import os

import pytest

from conftest import ABSTRACT_A, ABSTRACT_B, ABSTRACT_C, blank_separated, rows, run_build


def build(dumps_dir, tmp_path):
    out = tmp_path / "papers.db"
    result = run_build(dumps_dir, out)
    assert result.returncode == 0, result.stderr
    return out


def test_yearless_date_takes_the_capture_year_inferred_from_explicit_years(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Old paper", ABSTRACT_A, ["• 2 authors", "·", "Oct 29, 2025"]),
        ("Recent paper", ABSTRACT_B, ["• 3 authors", "·", "Feb 25 2"]),
    ))
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select capture_date, capture_year, capture_method, capture_year_min, "
                    "capture_year_max from dumps") == [("2026-04-17", 2026, "inferred_earliest", 2026, None)]
    assert rows(db, "select title, published, published_year, date_method, comments from papers "
                    "order by title") == [
        ("Old paper", "2025-10-29", 2025, "read", None),
        ("Recent paper", "2026-02-25", 2026, "year_from_inferred_capture", 2),
    ]


def test_capture_year_is_pinned_by_a_paper_dated_with_a_year_elsewhere(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Shared paper", ABSTRACT_A, ["• 2 authors", "·", "Mar 21"]),
    ))
    (dumps_dir / "b.txt").write_text(blank_separated(
        ("Shared paper", ABSTRACT_A, ["• 2 authors", "·", "Mar 21, 2025"]),
        ("Other", ABSTRACT_B, ["·", "Jan 3, 2025"]),
    ))
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select name, capture_year, capture_method from dumps order by name") == [
        ("a.txt", 2025, "inferred"), ("b.txt", 2026, "inferred_earliest")]


def test_capture_year_is_unknown_without_evidence_and_dates_stay_unknown(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A, ["·", "Feb 25 2"])))
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select capture_date, capture_year, capture_method from dumps") == [
        (None, None, "unknown")]
    assert rows(db, "select published, published_year, date_method, date_text from papers") == [
        (None, None, "year_unknown", "Feb 25")]


def test_maintainer_states_the_capture_date_in_the_manifest(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A, ["·", "Feb 25 2"])))
    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2024-04-17\n")
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select capture_date, capture_method from dumps") == [("2024-04-17", "stated")]
    assert rows(db, "select published, date_method from papers") == [
        ("2024-02-25", "year_from_stated_capture")]


def test_manifest_may_state_only_the_year(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A, ["·", "Feb 25 2"])))
    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2023\n")
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select capture_date, capture_year, capture_method from dumps") == [
        ("2023-04-17", 2023, "stated")]


def test_manifest_that_contradicts_the_page_is_refused(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)))
    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2024-05-01\n")
    result = run_build(dumps_dir, tmp_path / "papers.db")
    assert result.returncode == 2
    # Both files are named with their folder, as every other refusal names its file.
    assert (f"{dumps_dir / 'a.txt'}:11: the page shows Apr 17 but {dumps_dir / 'manifest.yml'} "
            "states 2024-05-01") in result.stderr
    assert not (tmp_path / "papers.db").exists()


def test_manifest_naming_a_missing_dump_is_refused(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)))
    (dumps_dir / "manifest.yml").write_text("captures:\n  nope.txt: 2024\n")
    result = run_build(dumps_dir, tmp_path / "papers.db")
    assert result.returncode == 2 and "`nope.txt` is not a dump" in result.stderr


def test_impossible_date_is_kept_as_written_and_reported(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(("Odd", ABSTRACT_C, ["·", "Feb 30, 2024"])))
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select published, date_method, date_text from papers") == [
        (None, "invalid_date", "Feb 30, 2024")]
    assert rows(db, "select line, reason from problems") == [(18, "impossible date (kept as written, not as a date)")]


def test_real_dumps_capture_years_come_with_their_method(real_db):
    got = rows(real_db, "select substr(name, 1, 3), capture_date, capture_method from dumps order by name")
    assert got == [
        ("000", "2025-09-08", "inferred_earliest"),
        ("001", None, "inferred_earliest"),  # no date line: a year, from papers dated elsewhere
        ("002", "2026-04-17", "inferred_earliest"),
        ("003", "2025-08-11", "inferred_earliest"),
        ("004", "2026-02-09", "inferred_earliest"),
    ]
    # No date is presented as read unless the dump shows its year.
    assert rows(real_db, "select count(*) from sightings where date_method = 'read' "
                         "and date_text not like '%, ____'") == [(0,)]


def test_impossible_date_is_printed_as_a_warning_with_its_file_and_line(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(("Odd", ABSTRACT_C, ["·", "Feb 30, 2024"])))
    result = run_build(dumps_dir, tmp_path / "papers.db")
    assert result.returncode == 0, result.stderr
    assert (f"warning: {dumps_dir / 'a.txt'}:18: impossible date (kept as written, not as a "
            f"date): 'Feb 30, 2024'") in result.stderr


def test_a_page_showing_feb_29_takes_the_earliest_leap_year_the_evidence_allows(dumps_dir, tmp_path):
    """A yearless Feb 29 is itself evidence: the page was captured in a leap year. The
    earliest year the other papers allow (2025 here) has no Feb 29; 2028 is the first that
    has one, and the date is kept, not reported impossible."""
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Leap paper", ABSTRACT_A, ["·", "Feb 29"]),
        ("Old paper", ABSTRACT_B, ["·", "Jan 5, 2024"]),
    ).replace("Apr 17", "Mar 3"))
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select capture_date, capture_year, capture_method, capture_year_min "
                    "from dumps") == [("2028-03-03", 2028, "inferred_earliest", 2028)]
    assert rows(db, "select published, date_method from papers where title = 'Leap paper'") == [
        ("2028-02-29", "year_from_inferred_capture")]
    assert rows(db, "select count(*) from problems") == [(0,)]


def test_manifest_year_that_contradicts_the_pages_year_is_refused(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)).replace(
        "Apr 17", "Apr 17, 2025"))
    for stated in ("2024", "2024-04-17"):
        (dumps_dir / "manifest.yml").write_text(f"captures:\n  a.txt: {stated}\n")
        result = run_build(dumps_dir, tmp_path / "papers.db")
        assert result.returncode == 2, result.stderr
        assert (f"{dumps_dir / 'a.txt'}:11: the page shows Apr 17, 2025 but "
                f"{dumps_dir / 'manifest.yml'} states {stated}") in result.stderr
        assert not (tmp_path / "papers.db").exists()


def test_manifest_capture_before_a_dated_paper_on_the_page_is_refused(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Lone", ABSTRACT_A, ["·", "Feb 2, 2025"])).replace("Apr 17", "Jan 17"))
    for stated, shown in (("2020", "2020"), ("2025-01-17", "2025-01-17")):
        (dumps_dir / "manifest.yml").write_text(f"captures:\n  a.txt: {stated}\n")
        result = run_build(dumps_dir, tmp_path / "papers.db")
        assert result.returncode == 2, result.stderr
        assert (f"{dumps_dir / 'a.txt'}:13: this paper is dated 2025-02-02, after the "
                f"capture {dumps_dir / 'manifest.yml'} states ({shown})") in result.stderr


def test_manifest_capture_before_a_paper_dated_in_another_dump_is_refused(dumps_dir, tmp_path):
    """A page cannot show a paper before its date, wherever the date is read with its year:
    here the stated capture would have dated the paper's yearless copy a year early."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"])))
    (dumps_dir / "b.txt").write_text(blank_separated(
        ("Shared paper", ABSTRACT_A, ["·", "Mar 21, 2025"])))
    out = tmp_path / "papers.db"
    for stated in ("2024", "2024-04-17"):
        (dumps_dir / "manifest.yml").write_text(f"captures:\n  a.txt: {stated}\n")
        result = run_build(dumps_dir, out)
        assert result.returncode == 2, result.stderr
        assert (f"{dumps_dir / 'a.txt'}:13: this paper is dated 2025-03-21 in another dump, "
                f"after the capture {dumps_dir / 'manifest.yml'} "
                f"states ({stated})") in result.stderr
        assert not out.exists()
    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2025-04-17\n")
    assert rows(build(dumps_dir, tmp_path), "select dump, published, date_method from sightings") == [
        ("a.txt", "2025-03-21", "year_from_stated_capture"), ("b.txt", "2025-03-21", "read")]


def test_an_update_that_dates_a_paper_after_a_stated_capture_is_refused(dumps_dir, tmp_path):
    """The dump that contradicts an old dump's stated capture comes in an update: the update
    gives way to a full build, which refuses the manifest as it would have without the
    previous database, and leaves that database as it was."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"])))
    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2024-04-17\n")
    out = build(dumps_dir, tmp_path)
    before = out.read_bytes()
    (dumps_dir / "b.txt").write_text(blank_separated(
        ("Shared paper", ABSTRACT_A, ["·", "Mar 21, 2025"])))
    result = run_build(dumps_dir, out, "--incremental")
    assert result.returncode == 2, result.stderr
    assert ("incremental: a new dump dates a paper of a.txt after the capture "
            "dumps/manifest.yml states for it; building everything") in result.stderr
    assert "this paper is dated 2025-03-21 in another dump, after" in result.stderr
    assert out.read_bytes() == before


@pytest.mark.parametrize("manifest, message", [
    ("captures:\n  a.txt: 2025-02-30\n", "manifest.yml:2: not valid YAML (2025-02-30 is not a date"),
    ("captures:\n  a.txt: 2025-13-01\n", "manifest.yml:2: not valid YAML (2025-13-01 is not a date"),
    ("captures:\n  a.txt: 2024\n  a.txt: 2025\n", "manifest.yml:3: not valid YAML (`a.txt` is given twice)"),
    ("captures:\n  a.txt: [2024\n", "manifest.yml:3: not valid YAML ("),
    ("captures:\n  a.txt: 2025-03-03 10:00:00\n",
     "manifest.yml:2: `a.txt`: expected YYYY-MM-DD or a year, without a time"),
    ("captures:\n  a.txt: 1800\n",
     "manifest.yml:2: `a.txt`: expected YYYY-MM-DD or a year from 1990 to 2100, got 1800"),
    ("captures:\n  a.txt: 'Sep 8 2025'\n",
     "manifest.yml:2: `a.txt`: expected YYYY-MM-DD or a year from 1990 to 2100, got 'Sep 8 2025'"),
    ("# stated by hand\ncaptures:\n  a.txt: true\n",
     "manifest.yml:3: `a.txt`: expected YYYY-MM-DD or a year from 1990 to 2100, got True"),
    ("captures:\n  a.txt: 2025\n  999.txt: 2025-01-01\n", "manifest.yml:3: `999.txt` is not a dump in"),
    ("capture:\n  a.txt: 2025\n", "manifest.yml:1: unknown key `capture` (expected `captures:`)"),
    ("captures:\n  a.txt: 2025\nyears: {}\n", "manifest.yml:3: unknown key `years`"),
    ("captures: [2025]\n", "manifest.yml:1: expected a `captures:` mapping"),
    (b"captures:\n  # caf\xe9\n  a.txt: 2025\n",
     "manifest.yml:2: not UTF-8 text (byte 0xe9; save the file as UTF-8)"),
])
def test_a_bad_manifest_is_refused_with_its_file_and_line(dumps_dir, tmp_path, manifest, message):
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)))
    if isinstance(manifest, bytes):  # Latin-1
        (dumps_dir / "manifest.yml").write_bytes(manifest)
    else:
        (dumps_dir / "manifest.yml").write_text(manifest)
    result = run_build(dumps_dir, tmp_path / "papers.db")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "papers.db").exists()


@pytest.mark.parametrize("kind", ["directory", "named pipe", "broken link"])
def test_a_manifest_that_cannot_be_read_is_refused(dumps_dir, tmp_path, kind):
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A)))
    if kind == "directory":
        (dumps_dir / "manifest.yml").mkdir()
    elif kind == "named pipe":  # opened, it would wait for a writer forever
        os.mkfifo(dumps_dir / "manifest.yml")
    else:
        (dumps_dir / "manifest.yml").symlink_to(tmp_path / "gone.yml")
    result = run_build(dumps_dir, tmp_path / "papers.db")
    assert result.returncode == 2, result.stderr
    assert f"{dumps_dir / 'manifest.yml'}: cannot be read" in result.stderr


def test_a_yearless_date_after_the_pages_own_date_is_a_problem_not_a_later_date(dumps_dir, tmp_path):
    """A page of Jan 3 cannot show a paper of Dec 28 of its own year: in the capture year
    the date would follow the capture. It is kept as written and reported, not stored as a
    date the page never showed; the other yearless dates still get the capture year."""
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Late paper", ABSTRACT_A, ["·", "Dec 28"]),
        ("Early paper", ABSTRACT_B, ["·", "Jan 2"]),
        ("Old paper", ABSTRACT_C, ["·", "Mar 5, 2025"]),
    ).replace("Apr 17", "Jan 3"))
    result = run_build(dumps_dir, tmp_path / "papers.db")
    assert result.returncode == 0, result.stderr
    db = tmp_path / "papers.db"
    assert rows(db, "select title, published, date_method, date_text from papers order by title") == [
        ("Early paper", "2026-01-02", "year_from_inferred_capture", "Jan 2"),
        ("Late paper", None, "invalid_date", "Dec 28"),
        ("Old paper", "2025-03-05", "read", "Mar 5, 2025")]
    (problem,) = rows(db, "select line, text, reason from problems")
    assert problem[:2] == (18, "Dec 28") and "later in the year than the page's own date" in problem[2]
    assert f"warning: {dumps_dir / 'a.txt'}:18: a date without a year later" in result.stderr


def test_a_year_on_the_pages_own_date_line_is_its_capture_year(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Recent paper", ABSTRACT_A, ["·", "Feb 25"])).replace("Apr 17", "Apr 17, 2024"))
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select capture_date, capture_year, capture_method from dumps") == [
        ("2024-04-17", 2024, "page")]
    assert rows(db, "select published, date_method from papers") == [
        ("2024-02-25", "year_from_stated_capture")]


def test_a_read_date_after_the_pages_own_dated_line_is_a_problem(dumps_dir, tmp_path):
    """A page dated Apr 17, 2025 cannot show a paper of Dec 12, 2025: the date is kept as
    written and reported, as a yearless date after the page's is (and as a stated capture
    before it is refused)."""
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Late paper", ABSTRACT_A, ["·", "Dec 12, 2025"]),
        ("Early paper", ABSTRACT_B, ["·", "Mar 2, 2025"])).replace("Apr 17", "Apr 17, 2025"))
    out = tmp_path / "papers.db"
    result = run_build(dumps_dir, out)
    assert result.returncode == 0, result.stderr
    assert rows(out, "select title, published, date_method, date_text from papers order by title") == [
        ("Early paper", "2025-03-02", "read", "Mar 2, 2025"),
        ("Late paper", None, "invalid_date", "Dec 12, 2025")]
    reason = "a date after the page's own date: the page cannot show it (kept as written, not as a date)"
    assert rows(out, "select line, text, reason from problems") == [(18, "Dec 12, 2025", reason)]
    assert f"warning: {dumps_dir / 'a.txt'}:18: {reason}: 'Dec 12, 2025'" in result.stderr


def test_a_date_no_page_could_show_is_a_problem_even_while_the_year_is_unknown(dumps_dir, tmp_path):
    """Feb 30 is in no year, and May 20 follows the page's Apr 17 in any year: both are
    reported at once, not held as `year_unknown` until another dump pins the year."""
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("No such day", ABSTRACT_A, ["·", "Feb 30"]),
        ("After the page", ABSTRACT_B, ["·", "May 20 3"]),
        ("Leap day", ABSTRACT_C, ["·", "Feb 29"])))
    out = build(dumps_dir, tmp_path)
    assert rows(out, "select capture_year, capture_method from dumps") == [(None, "unknown")]
    assert rows(out, "select title, date_method from papers order by title") == [
        ("After the page", "invalid_date"), ("Leap day", "year_unknown"),
        ("No such day", "invalid_date")]
    assert rows(out, "select text, reason from problems order by line") == [
        ("Feb 30", "impossible date (kept as written, not as a date)"),
        ("May 20", "a date without a year later in the year than the page's own date: in the "
                   "capture year it would follow the capture (kept as written, not as a date)")]


def test_a_yearless_date_after_a_stated_capture_date_is_a_problem_without_a_page_date(
        dumps_dir, tmp_path):
    """No date line on the page: the manifest's date is the capture's month and day."""
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("After", ABSTRACT_A, ["·", "May 20"]), ("Before", ABSTRACT_B, ["·", "Apr 2"]),
    ).replace("Apr 17\n\n", ""))
    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2024-04-17\n")
    out = build(dumps_dir, tmp_path)
    assert rows(out, "select capture_text, capture_date from dumps") == [(None, "2024-04-17")]
    assert rows(out, "select title, published, date_method from papers order by title") == [
        ("After", None, "invalid_date"), ("Before", "2024-04-02", "year_from_stated_capture")]
    assert [reason for (reason,) in rows(out, "select reason from problems")] == [
        "a date without a year later in the year than the page's own date: in the capture "
        "year it would follow the capture (kept as written, not as a date)"]


@pytest.mark.parametrize("stated, expected", [('"2024-04-17"', ("2024-04-17", 2024)),
                                              ("'2024'", ("2024-04-17", 2024))])
def test_a_quoted_date_or_year_in_the_manifest_is_read_as_the_unquoted_one(dumps_dir, tmp_path,
                                                                         stated, expected):
    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A, ["·", "Feb 25 2"])))
    (dumps_dir / "manifest.yml").write_text(f"captures:\n  a.txt: {stated}\n")
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select capture_date, capture_year, capture_method from dumps") == [
        (*expected, "stated")]


def test_the_shipped_manifest_takes_an_entry_appended_as_readme_shows(dumps_dir, tmp_path):
    """README's step: add `  name: date` under `captures:` of dumps/manifest.yml."""
    from conftest import REAL_DUMPS

    (dumps_dir / "a.txt").write_text(blank_separated(("Lone", ABSTRACT_A, ["·", "Feb 25 2"])))
    shipped = (REAL_DUMPS / "manifest.yml").read_text()
    (dumps_dir / "manifest.yml").write_text(shipped + "  a.txt: 2024-04-17\n")
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select capture_date, capture_method from dumps") == [("2024-04-17", "stated")]


def test_a_date_refused_on_its_own_page_is_no_evidence_for_another_dumps_year(dumps_dir,
                                                                              tmp_path):
    """b.txt (Apr 17, 2025) shows a paper dated Dec 12, 2025, a date its page cannot show
    (a problem of its line). That date made a.txt's capture year 2026, and refused a
    manifest that states a.txt's true capture, blaming a.txt; it is evidence of nothing."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"])))
    (dumps_dir / "b.txt").write_text(blank_separated(
        ("Shared paper", ABSTRACT_A, ["·", "Dec 12, 2025"]),
        ("Other paper", ABSTRACT_B, ["·", "Mar 2, 2025"])).replace("Apr 17", "Apr 17, 2025"))
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select name, capture_year, capture_method from dumps order by name") == [
        ("a.txt", None, "unknown"), ("b.txt", 2025, "page")]
    assert rows(db, "select dump, published, date_method from sightings where title = "
                    "'Shared paper' order by dump") == [
        ("a.txt", None, "year_unknown"), ("b.txt", None, "invalid_date")]
    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2025-04-17\n")
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select dump, published from sightings where title = 'Shared paper' "
                    "order by dump") == [("a.txt", "2025-03-21"), ("b.txt", None)]


@pytest.mark.parametrize("how", ["manifest", "page"])
def test_a_yearless_date_on_a_page_of_known_year_pins_another_dumps_year(dumps_dir, tmp_path,
                                                                          how):
    """a.txt's year is stated (in the manifest, or on its date line), so its `Mar 21` is
    2025-03-21 as firmly as a date shown with its year: it pins b.txt's year as one would."""
    a = blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"]))
    if how == "page":
        a = a.replace("Apr 17", "Apr 17, 2025")
    else:
        (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2025\n")
    (dumps_dir / "a.txt").write_text(a)
    (dumps_dir / "b.txt").write_text(blank_separated(
        ("Shared paper", ABSTRACT_A, ["·", "Mar 21"]), ("Other", ABSTRACT_B, ["·", "Feb 2"])))
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select name, capture_year, capture_method from dumps order by name") == [
        ("a.txt", 2025, "stated" if how == "manifest" else "page"), ("b.txt", 2025, "inferred")]
    assert rows(db, "select dump, published, date_method from sightings order by id") == [
        ("a.txt", "2025-03-21", "year_from_stated_capture"),
        ("b.txt", "2025-03-21", "year_from_inferred_capture"),
        ("b.txt", "2025-02-02", "year_from_inferred_capture")]


@pytest.mark.parametrize("how", ["full", "update"])
def test_a_paper_takes_a_stated_years_date_over_an_inferred_ones(dumps_dir, tmp_path, how):
    """a.txt comes first and its year is inferred (b.txt's stated year pins it); b.txt gives
    the same paper's date from its stated year: the paper takes that one, the more trusted,
    not the first in dump order. An update that adds b.txt makes the same choice."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"])))
    b = blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"]))
    out = tmp_path / "papers.db"
    if how == "update":
        assert run_build(dumps_dir, out).returncode == 0
    (dumps_dir / "b.txt").write_text(b.replace("Mar 21", "Mar 21 4"))
    (dumps_dir / "manifest.yml").write_text("captures:\n  b.txt: 2025\n")
    result = run_build(dumps_dir, out, *(["--incremental"] if how == "update" else []))
    assert result.returncode == 0, result.stderr
    assert ("incremental: adding 1 new dump to" in result.stderr) == (how == "update")
    assert rows(out, "select name, capture_year, capture_method from dumps order by name") == [
        ("a.txt", 2025, "inferred"), ("b.txt", 2025, "stated")]
    assert rows(out, "select published, date_method, date_text, comments from papers") == [
        ("2025-03-21", "year_from_stated_capture", "Mar 21", 4)]


def test_an_inferred_year_is_no_evidence_for_another_dumps_year(dumps_dir, tmp_path):
    """b.txt's year is pinned by c.txt; a.txt shares another paper with b.txt only, so it
    stays unknown: an inferred year is not passed on from dump to dump."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Second", ABSTRACT_B, ["·", "Feb 2"])))
    (dumps_dir / "b.txt").write_text(blank_separated(
        ("First", ABSTRACT_A, ["·", "Mar 21"]), ("Second", ABSTRACT_B, ["·", "Feb 2"])))
    (dumps_dir / "c.txt").write_text(blank_separated(("First", ABSTRACT_A, ["·", "Mar 21, 2025"])))
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select name, capture_year, capture_method from dumps order by name") == [
        ("a.txt", None, "unknown"), ("b.txt", 2025, "inferred"),
        ("c.txt", 2026, "inferred_earliest")]


def test_two_stated_captures_that_date_one_paper_differently_are_refused(dumps_dir, tmp_path):
    """A paper has one date: `Mar 21` in a dump stated 2024-04-17 and in one stated 2025
    cannot both be right, so the manifest is refused, naming the earlier capture's line."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"])))
    (dumps_dir / "b.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A, ["·", "Mar 21"])))
    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2024-04-17\n  b.txt: 2025\n")
    result = run_build(dumps_dir, tmp_path / "papers.db")
    assert result.returncode == 2, result.stderr
    assert (f"{dumps_dir / 'a.txt'}:13: this paper is dated 2025-03-21 in another dump, after "
            f"the capture {dumps_dir / 'manifest.yml'} states (2024-04-17)") in result.stderr


def test_date_method_documentation_names_every_kind_of_invalid_date(real_db):
    """column_docs says when a date is invalid_date: a day in no year, a yearless date after
    the page's, and a date read with its year after the page's dated line (the test above)."""
    (description,) = rows(real_db, "select description from column_docs "
                                   "where table_name = 'papers' and column_name = 'date_method'")[0]
    text = " ".join(description.split())
    assert "does not exist" in text
    assert "shown without a year, would fall after the page's own date" in text
    assert "shown with its year, falls after the page's own date" in text


def test_a_refused_stated_capture_names_the_first_line_of_the_page_at_fault(dumps_dir, tmp_path):
    """b.txt's first record (a paper new in b.txt) and its second (a paper a.txt holds
    already) are both dated after the stated capture: the refusal names the first line of
    the page, in a full build as in an update (it named the first paper's, line 20)."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Y paper", ABSTRACT_A, ["·", "Mar 21"])))
    (dumps_dir / "b.txt").write_text(blank_separated(("X paper", ABSTRACT_B, ["·", "Mar 22"]),
                                                     ("Y paper", ABSTRACT_A, ["·", "Mar 21"])))
    (dumps_dir / "c.txt").write_text(blank_separated(
        ("X paper", ABSTRACT_B, ["·", "Mar 22"]), ("Y paper", ABSTRACT_A, ["·", "Mar 21"])
    ).replace("Apr 17", "Apr 17, 2025"))
    (dumps_dir / "manifest.yml").write_text("captures:\n  b.txt: 2024\n")
    result = run_build(dumps_dir, tmp_path / "papers.db")
    assert result.returncode == 2, result.stderr
    assert (f"{dumps_dir / 'b.txt'}:13: this paper is dated 2025-03-22 in another dump, after "
            f"the capture {dumps_dir / 'manifest.yml'} states (2024)") in result.stderr


@pytest.mark.parametrize("b_page, b_extra, b_stated, message", [
    ("Apr 17, 2024", (), "2025", "11: the page shows Apr 17, 2024 but {manifest} states 2025"),
    ("Apr 17", (("Q paper", ABSTRACT_B, ["·", "Feb 2, 2025"]),), "2024",
     "20: this paper is dated 2025-02-02, after the capture {manifest} states (2024)"),
])
def test_a_stated_capture_its_own_page_refutes_is_refused_before_it_dates_another_dump(
        dumps_dir, tmp_path, b_page, b_extra, b_stated, message):
    """b.txt's stated capture is refuted by b.txt itself (its date line, or a paper it shows
    with a later year). Taken as stated, it would date a.txt's paper in a later year than
    a.txt's stated capture; the build named a.txt, which is not at fault: it names b.txt."""
    (dumps_dir / "a.txt").write_text(blank_separated(("P paper", ABSTRACT_A, ["·", "Jan 5"])))
    (dumps_dir / "b.txt").write_text(blank_separated(
        ("P paper", ABSTRACT_A, ["·", "Jan 5"]), *b_extra).replace("Apr 17", b_page))
    (dumps_dir / "manifest.yml").write_text(f"captures:\n  a.txt: 2023\n  b.txt: {b_stated}\n")
    result = run_build(dumps_dir, tmp_path / "papers.db")
    assert result.returncode == 2, result.stderr
    expected = f"{dumps_dir / 'b.txt'}:" + message.format(manifest=dumps_dir / "manifest.yml")
    assert expected in result.stderr
    assert "a.txt" not in result.stderr.split("error:")[-1]


def test_a_page_without_a_date_line_is_not_older_than_the_papers_it_lists(dumps_dir, tmp_path):
    """a.txt shows no date at all, but lists a paper another dump dates 2025-03-21: it was
    captured in 2025 at the earliest (its year stayed unknown)."""
    (dumps_dir / "a.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A))
                                     .replace("Apr 17\n\n", ""))
    (dumps_dir / "b.txt").write_text(blank_separated(
        ("Shared paper", ABSTRACT_A, ["·", "Mar 21, 2025"])))
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select name, capture_text, capture_date, capture_year, capture_method, "
                    "capture_year_min from dumps order by name") == [
        ("a.txt", None, None, 2025, "inferred_earliest", 2025),
        ("b.txt", "Apr 17", "2026-04-17", 2026, "inferred_earliest", 2026)]


@pytest.mark.parametrize("page_date", ["Feb 30", "Apr 31", "Feb 29, 2025"])
def test_a_page_date_no_calendar_has_is_a_problem_not_the_capture(dumps_dir, tmp_path, page_date):
    """The page's own date line that is no day (in any year, or in the year it shows) is kept
    as written and reported with its line, as a paper's impossible date is; it neither dates
    the capture nor gives its year (`Feb 29, 2025`). Taken as the capture date, it was
    stored with no word of it. A full build and an update, which reads it again from the
    stored dump, agree."""
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Lone", ABSTRACT_A, ["·", "Feb 3"])).replace("Apr 17", page_date))
    db = build(dumps_dir, tmp_path)
    assert rows(db, "select dump, line, text, reason from problems") == [
        ("a.txt", 11, page_date, "the page's own date is a day no year has (kept as written, "
                                 "not as the capture date)")]
    assert rows(db, "select capture_text, capture_line, capture_date, problems from dumps") == [
        (page_date, 11, None, 1)]
    assert rows(db, "select date_text, date_method from papers") == [("Feb 3", "year_unknown")]
    # A dump that dates the paper: the update dates the first dump's papers again.
    (dumps_dir / "b.txt").write_text(blank_separated(("Lone", ABSTRACT_A, ["·", "Feb 3, 2023"])))
    result = run_build(dumps_dir, db, "--incremental")
    assert result.returncode == 0 and "incremental: adding 1 new dump" in result.stderr, result
    full = tmp_path / "full.db"
    assert run_build(dumps_dir, full).returncode == 0
    assert rows(db, "select capture_year, capture_method from dumps where name = 'a.txt'") == [
        (2023, "inferred")]
    for sql in ("select * from problems", "select * from dumps", "select * from sightings"):
        assert rows(db, sql) == rows(full, sql)


def test_a_stated_year_without_the_pages_feb_29_is_refused(dumps_dir, tmp_path):
    """A page dated Feb 29 was captured in a leap year: a manifest that states 2025 contradicts
    it, as it would contradict any other date line (it left the capture without a date)."""
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Lone", ABSTRACT_A, ["·", "Feb 3"])).replace("Apr 17", "Feb 29"))
    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2025\n")
    result = run_build(dumps_dir, tmp_path / "papers.db")
    assert result.returncode == 2, result.stderr
    assert (f"{dumps_dir / 'a.txt'}:11: the page shows Feb 29 but "
            f"{dumps_dir / 'manifest.yml'} states 2025") in result.stderr
    assert not (tmp_path / "papers.db").exists()
    (dumps_dir / "manifest.yml").write_text("captures:\n  a.txt: 2024\n")
    assert rows(build(dumps_dir, tmp_path), "select capture_date from dumps") == [("2024-02-29",)]


def test_a_page_dated_feb_29_in_a_year_other_dumps_pin_without_one_is_a_problem(dumps_dir,
                                                                                   tmp_path):
    """Another dump dates a paper of a page dated Feb 29 in 2025 (its yearless Feb 3 is of the
    capture year): the year wins, as it does over a paper's Feb 29, and the page's date line
    is reported with its line, not left a capture without a date and without a word. An
    update that adds either dump (the page, or the dump that dates it) gives what a full
    build gives."""
    page = blank_separated(("Lone", ABSTRACT_A, ["·", "Feb 3"])).replace("Apr 17", "Feb 29")
    dating = blank_separated(("Lone", ABSTRACT_A, ["·", "Feb 3, 2025"]))
    reason = ("the page's own date is not in the capture year other dumps give it (Feb 29 of a "
              "year without one; kept as written, not as a date)")
    for stored, added in ((page, dating), (dating, page)):
        folder = tmp_path / ("page-stored" if stored is page else "page-added")
        folder.mkdir()
        (folder / "a.txt").write_text(stored)
        update = folder.with_suffix(".update.db")
        assert run_build(folder, update).returncode == 0
        (folder / "b.txt").write_text(added)
        assert run_build(folder, update, "--incremental").returncode == 0
        full = folder.with_suffix(".full.db")
        result = run_build(folder, full)
        assert result.returncode == 0, result.stderr
        paged = "a.txt" if stored is page else "b.txt"
        assert f"{folder / paged}:11: {reason}: 'Feb 29'" in result.stderr
        assert rows(full, "select dump, line, text, reason from problems") == [
            (paged, 11, "Feb 29", reason)]
        assert rows(full, "select capture_date, capture_year, capture_method, problems from dumps "
                          "where name = ?", (paged,)) == [(None, 2025, "inferred", 1)]
        for sql in ("select * from problems", "select * from dumps", "select * from sightings"):
            assert rows(update, sql) == rows(full, sql)
