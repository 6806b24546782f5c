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


def test_malformed_reference_is_refused(dumps_dir, tmp_path):
    (dumps_dir / "a.txt").write_text(blank_separated(("Known", ABSTRACT_A)))
    bad = tmp_path / "orgs.yml"
    bad.write_text("organizations:\n  - id: x\n    name: X\n")
    result = run_build(dumps_dir, tmp_path / "p.db", "--reference", str(bad))
    assert result.returncode == 2
    assert "orgs.yml: entry 1 (x): missing city, country, latitude, longitude" in result.stderr
