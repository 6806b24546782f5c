"""Place the organizations the dumps name on the map, using reference/organizations.yml.

Dumps only name organizations, as the page shows them: the Hugging Face account
handle, then the display name (`SakanaAI Sakana AI`), or a name alone (`Korea
University`). The curated reference file gives each known organization a location.
A dump's line is matched, most trusted first, by:

1. handle: the account handle equals one listed for a reference organization;
2. name: the name (or an alias) is equal once case and punctuation are erased;
3. fuzzy_name: rapidfuzz finds a name or alias scoring at least FUZZY_MIN_SCORE.

An organization that matches nothing keeps its own id and no location; the build
lists it so a maintainer can add it to the reference file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz, process

from .dedupe import slugify, title_key
from .yamlfiles import YamlDocument, read_yaml_document

FUZZY_MIN_SCORE = 90.0
REQUIRED = ("id", "name", "city", "country", "latitude", "longitude")


@dataclass(frozen=True)
class Placement:
    """Where a dump's organization line points: an id, and a reference entry if placed."""

    id: str
    name: str
    handle: str | None
    reference: dict | None
    method: str | None
    score: float | None


def split_organization(line: str) -> tuple[str | None, str]:
    """Return (account handle, display name) of an organization line.

    When the first word does not look like a handle of the rest (`Korea University`),
    the whole line is the name.
    """
    first, _, rest = line.partition(" ")
    a, b = squash(first), squash(rest)
    if len(a) >= 3 and len(b) >= 3 and (a.startswith(b) or b.startswith(a)):
        return first, rest
    return None, line


def squash(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def load_reference(path: Path) -> list[dict]:
    """Return the reference organizations; raise DumpError naming the file, the line and the
    entry if the file is not a list of organizations as its header describes (check_entry),
    or two entries share an id or a handle (one would silently take the other's papers)."""
    document = read_yaml_document(path)
    data = document.data or {}
    if not isinstance(data, dict):
        raise document.error("expected `organizations:`, a list of organizations")
    for key in data:
        if key != "organizations":  # a misspelled `organisations:` would place nothing
            raise document.error(f"unknown key `{key}` (expected `organizations:`)", key, key=True)
    entries = data.get("organizations") or []
    if not isinstance(entries, list):
        raise document.error(f"expected `organizations:` to be a list of organizations, got "
                             f"{entries!r}", "organizations")
    for index, entry in enumerate(entries):
        check_entry(document, index, entry)
    refuse_repeated(document, entries, "id", lambda entry: [entry["id"]])
    refuse_repeated(document, entries, "handle",  # placed case-insensitively (by_handle)
                    lambda entry: [handle.casefold() for handle in entry.get("handles") or []])
    return entries


TEXTS = ("id", "name", "city", "country")
COORDINATES = {"latitude": 90, "longitude": 180}  # the largest value of each, either sign
LISTS = ("handles", "aliases")  # optional: missing or null is none


def check_entry(document: YamlDocument, index: int, entry) -> None:
    """Raise DumpError, naming the line, unless `entry` is a mapping of the REQUIRED keys, texts
    and coordinates, and of optional lists of texts, with no other key (a misspelled
    `handle:` would be ignored)."""
    where = ("organizations", index)
    if not isinstance(entry, dict):
        raise document.error(f"entry {index + 1}: expected an organization (id, name, city, "
                             f"country, latitude, longitude), got {entry!r}", *where)
    label = f"entry {index + 1} ({entry.get('id')})"
    missing = [key for key in REQUIRED if entry.get(key) in (None, "")]
    if missing:
        raise document.error(f"{label}: missing {', '.join(missing)}", *where)
    for key, value in entry.items():
        if key not in (*REQUIRED, *LISTS):
            raise document.error(f"{label}: unknown key `{key}`", *where, key, key=True)
        if key in TEXTS and not isinstance(value, str):
            raise document.error(f"{label}: `{key}` must be text, got {value!r}", *where, key)
        if key in COORDINATES and not is_coordinate(value, COORDINATES[key]):
            raise document.error(f"{label}: `{key}` must be a number from -{COORDINATES[key]} "
                                 f"to {COORDINATES[key]}, got {value!r}", *where, key)
        if key in LISTS and not (value is None or is_list_of_texts(value)):
            raise document.error(f"{label}: `{key}` must be a list ([a, b], or [] for none), "
                                 f"got {value!r}", *where, key)


def is_coordinate(value, largest: float) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and -largest <= value <= largest)


def is_list_of_texts(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item for item in value)


def refuse_repeated(document: YamlDocument, entries: list[dict], what: str, values_of) -> None:
    """Raise DumpError at the second entry that gives a value of `values_of(entry)` again."""
    first: dict[str, int] = {}
    for index, entry in enumerate(entries):
        for value in values_of(entry):
            if value in first:
                earlier = first[value]
                raise document.error(f"entry {index + 1} ({entry['id']}): {what} `{value}` is "
                                     f"already entry {earlier + 1}'s ({entries[earlier]['id']})",
                                     "organizations", index)
            first[value] = index


class OrganizationIndex:
    """Matches organization lines against the reference, caching each distinct line."""

    def __init__(self, reference: list[dict]):
        self.reference = reference
        self.by_handle = {h.casefold(): e for e in reference for h in e.get("handles") or []}
        self.by_name: dict[str, dict] = {}
        for entry in reference:
            for name in [entry["name"], *(entry.get("aliases") or [])]:
                self.by_name.setdefault(title_key(name), entry)
        self.names = list(self.by_name)
        self.cache: dict[str, Placement] = {}

    def place(self, line: str) -> Placement:
        if line not in self.cache:
            self.cache[line] = self.match(line)
        return self.cache[line]

    def match(self, line: str) -> Placement:
        handle, name = split_organization(line)
        found, method, score = self.lookup(handle, name, line)
        if found is None:
            own_id = slugify(title_key(handle or name))
            return Placement(own_id, name, handle, None, None, None)
        return Placement(found["id"], found["name"], handle, found, method, score)

    def lookup(self, handle: str | None, name: str, line: str):
        first_word = line.partition(" ")[0].casefold()
        for candidate in filter(None, (handle and handle.casefold(), first_word)):
            if candidate in self.by_handle:
                return self.by_handle[candidate], "handle", 100.0
        for text in (name, line):
            if title_key(text) in self.by_name:
                return self.by_name[title_key(text)], "name", 100.0
        if self.names:
            best = process.extractOne(title_key(name), self.names, scorer=fuzz.ratio,
                                      score_cutoff=FUZZY_MIN_SCORE)
            if best:
                return self.by_name[best[0]], "fuzzy_name", round(best[1], 1)
        return None, None, None

    def unplaced(self) -> list[str]:
        """Return the organization lines seen so far that matched no reference entry."""
        return sorted(line for line, placement in self.cache.items() if placement.reference is None)
