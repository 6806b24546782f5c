"""Organizations: matched to the curated reference by handle, name or rapidfuzz, or reported."""

from __future__ import annotations

import pytest

from conftest import ABSTRACT_A, ABSTRACT_B, ABSTRACT_C, ROOT, blank_separated, rows, run_build
from neuroai_papers.organizations import OrganizationIndex, load_reference, split_organization

REFERENCE = load_reference(ROOT / "reference" / "organizations.yml")


@pytest.mark.parametrize("line, expected", [
    ("SakanaAI Sakana AI", ("SakanaAI", "Sakana AI")),
    ("pathwaycom Pathway", ("pathwaycom", "Pathway")),
    ("Korea University", (None, "Korea University")),
])
def test_organization_line_splits_into_handle_and_name(line, expected):
    assert split_organization(line) == expected


def test_reference_entries_are_complete_and_unique():
    ids = [entry["id"] for entry in REFERENCE]
    handles = [h.casefold() for entry in REFERENCE for h in entry.get("handles") or []]
    assert len(ids) == len(set(ids)) and len(handles) == len(set(handles))
    assert all(-90 <= e["latitude"] <= 90 and -180 <= e["longitude"] <= 180 for e in REFERENCE)


@pytest.mark.parametrize("line, reference_id, method", [
    ("SakanaAI Sakana AI", "sakana-ai", "handle"),
    ("Korea University", "korea-university", "name"),
    ("pathwaycom Pathway", "pathway", "handle"),
    ("Korea Universty", "korea-university", "fuzzy_name"),
])
def test_dump_lines_are_placed_by_the_most_trusted_rule(line, reference_id, method):
    place = OrganizationIndex(REFERENCE).place(line)
    assert (place.id, place.method) == (reference_id, method)
    assert place.reference["latitude"] is not None


def test_unknown_organization_is_kept_reported_and_left_off_the_map(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(
        ("Known", ABSTRACT_A, ["SakanaAI Sakana AI", "·", "May 8, 2025"]),
        ("Unknown", ABSTRACT_B, ["zetalab Zeta Lab", "·", "May 9, 2025"]),
        ("Same unknown", ABSTRACT_C, ["zetalab Zeta Lab", "·", "May 10, 2025"]),
    ))
    out = tmp_path / "p.db"
    result = run_build(dumps_dir, out)
    assert result.returncode == 0
    assert "warning: organization not on the map: 'zetalab Zeta Lab'" in result.stderr
    assert rows(out, "select id, name, papers, latitude, location_method from organizations "
                     "order by id") == [
        ("sakana-ai", "Sakana AI", 1, 35.6762, "handle"),
        ("zetalab", "Zeta Lab", 2, None, None),
    ]
    assert rows(out, "select organization from papers where title = 'Unknown'") == [("Zeta Lab",)]


ENTRY = "  - id: x\n    name: X\n    city: Paris\n    country: France\n    latitude: 48.9\n    longitude: 2.4\n"


@pytest.mark.parametrize("text, message", [
    ("organizations:\n  - id: x\n    name: X\n",
     "orgs.yml:2: entry 1 (x): missing city, country, latitude, longitude"),
    ("- id: x\n", "orgs.yml: expected `organizations:`, a list of organizations"),
    ("organizations:\n  - just a string\n", "orgs.yml:2: entry 1: expected an organization"),
    ("organizations: {a: 1}\n", "orgs.yml:1: expected `organizations:` to be a list"),
    ("organizations:\n" + ENTRY.replace("name: X", "name: 123"),
     "orgs.yml:3: entry 1 (x): `name` must be text, got 123"),
    ("organizations:\n" + ENTRY + "    handles: abc\n",
     "orgs.yml:8: entry 1 (x): `handles` must be a list ([a, b], or [] for none), got 'abc'"),
    ("organizations:\n" + ENTRY + "    handle: [xlab]\n", "orgs.yml:8: entry 1 (x): unknown key `handle`"),
    ("organizations:\n" + ENTRY.replace("48.9", "'48.9 N'"),
     "orgs.yml:6: entry 1 (x): `latitude` must be a number from -90 to 90, got '48.9 N'"),
    ("organizations:\n" + ENTRY + ENTRY.replace("name: X", "name: Other X"),
     "orgs.yml:8: entry 2 (x): id `x` is already entry 1's (x)"),
    ("organizations:\n" + ENTRY + "    handles: [XLab]\n" + ENTRY.replace("id: x", "id: y")
     + "    handles: [xlab]\n", "orgs.yml:9: entry 2 (y): handle `xlab` is already entry 1's (x)"),
    ("organisations:\n" + ENTRY, "orgs.yml:1: unknown key `organisations` (expected `organizations:`)"),
])
def test_malformed_reference_is_refused_in_one_line(dumps_dir, tmp_path, text, message):
    (dumps_dir / "a.txt").write_text(blank_separated(("Known", ABSTRACT_A)))
    bad = tmp_path / "orgs.yml"
    bad.write_text(text)
    result = run_build(dumps_dir, tmp_path / "p.db", "--reference", str(bad))
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {bad}"), result.stderr
    assert f"{bad.parent / message}" in errors[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "p.db").exists()
