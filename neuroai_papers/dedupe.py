"""Group the records of all dumps into papers: one paper, many sightings.

Two copies of a paper's title can differ in case, punctuation, dashes, quotes,
spacing, a trailing period or unicode form: `title_key` erases all of that, so
those copies meet in one dictionary lookup. What is left (a typo, a dropped word)
goes to rapidfuzz, but only against candidates that share a blocking key, so the
cost grows with the number of records, not with its square.

A title match alone never merges: the abstracts must agree too, because distinct
papers can carry near-identical titles. Pairs whose titles match but whose
abstracts do not are kept apart and listed as look-alikes, so a person can audit
both decisions.

Paper ids are slugs of the title key of the paper's first sighting, in dump-name
order. Copies that share the title key give the same id whatever the order, so
ids never change when a dump is added; a fuzzy (typo-level) variant keeps the id
of the paper it joins.
"""

from __future__ import annotations

import functools
import operator
import re
import unicodedata
from array import array
from dataclasses import dataclass, field
from typing import Iterator, MutableSequence, NamedTuple
from zlib import crc32

from rapidfuzz import fuzz, process

from .blocks import BlockIndex
from .parse import Record

TITLE_MIN_SCORE = 90.0  # rapidfuzz ratio of title keys for a fuzzy match
ABSTRACT_MIN_SCORE = 80.0  # ratio of the abstracts' common-length prefixes
ABSTRACT_PREFIX = 600  # characters of abstract compared: enough to tell papers apart
BLOCK_CANDIDATES = 64  # most recent papers compared per blocking key (bounds the cost)
FUZZY_TRIES = 5  # closest titles whose abstracts are compared, best first
SLUG_MAX = 80

KEY_OF = operator.attrgetter("key")


# In ASCII the word characters of a regex's \w are the letters and digits: every other ASCII
# byte becomes a space, capitals become small letters, and bytes of UTF-8 sequences (all
# above 127) stay as they are. bytes.translate applies it in C, a byte at a time.
KEY_BYTES = bytes((ord(chr(b).lower()) if chr(b).isalnum() else 32) if b < 128 else b
                  for b in range(256))
NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Characters of an abstract normalized for its fingerprint at first: enough for the
# ABSTRACT_PREFIX characters of its key unless the text is mostly punctuation, in which
# case abstract_fingerprint normalizes twice as many (no abstract of the seed dumps or of
# the benchmark's corpus needs that).
FINGERPRINT_FIRST_TRY = 700


def title_key(title: str) -> str:
    """Return the title with case, accents, punctuation and spacing erased.

    plugins/fuzzy_sql.py spells it out: NFKD, without combining marks, casefolded, runs of
    [\\W_] as one space (a test holds the two equal). This does it in C instead of a
    loop and a regex over every character: 20 µs for an abstract with a few accents
    instead of 270 µs, and 15 instead of 27 µs for an ASCII one."""
    if title.isascii():  # nothing to decompose, no marks, no foreign punctuation
        return ascii_words(title)
    text = unicodedata.normalize("NFKD", title)
    for char in distinct_non_ascii(text):  # usually a handful: each replace runs in C
        if unicodedata.combining(char):
            text = text.replace(char, "")
    text = text.casefold()
    for char in distinct_non_ascii(text):
        if not char.isalnum():  # \W outside ASCII: punctuation, odd spaces
            text = text.replace(char, " ")
    return ascii_words(text)


def ascii_words(text: str) -> str:
    """Return the words of `text` (anything but ASCII punctuation), lowercased in ASCII,
    one space apart (UTF-8 keeps ASCII bytes for ASCII characters alone)."""
    return b" ".join(text.encode().translate(KEY_BYTES).split()).decode()


def distinct_non_ascii(text: str) -> set[str]:
    return set(NON_ASCII.findall(text))


def text_key(text: str) -> str:
    """Return prose reduced to lowercase words, for comparing abstracts."""
    return title_key(text)


def abstract_fingerprint(text: str) -> str:
    """Return what of an abstract the comparison reads: its first words, normalized.

    Papers keep this instead of their abstract, so matching holds little text in memory.
    """
    # Normalizing only the start keeps the cost flat however long the abstracts are. The
    # key of a text's start is the key of the whole but for its last word, which may be
    # cut: if that word starts past ABSTRACT_PREFIX, the prefix is already the same.
    key = text_key(text[:FINGERPRINT_FIRST_TRY])
    if len(text) > FINGERPRINT_FIRST_TRY and key.rfind(" ") < ABSTRACT_PREFIX:
        key = text_key(text[: ABSTRACT_PREFIX * 2])
    return key[:ABSTRACT_PREFIX]


def fingerprint_score(a: str, b: str) -> float:
    """Return how alike two abstracts are (0-100), comparing their common-length prefixes.

    Comparing prefixes of equal length lets a copy that was cut short still match.
    """
    n = min(len(a), len(b))
    if n == 0:
        return 100.0 if a == b else 0.0
    return fuzz.ratio(a[:n], b[:n])


def abstract_score(first: str, second: str) -> float:
    """Return how alike two abstracts are (0-100); see `fingerprint_score`."""
    return fingerprint_score(abstract_fingerprint(first), abstract_fingerprint(second))


def block_hash(text: str) -> int:
    """Return a blocking key as an integer, the same in every process and build (unlike
    hash()), so that title_blocks can store it: the CRC-32 of its words. A number is smaller
    than the words, and CRC-32 costs a third of a cryptographic hash; two keys with the same
    CRC only add a candidate, which is still scored."""
    return crc32(text.encode())


@functools.lru_cache(maxsize=8)  # asked twice for a new title: to find candidates, to file it
def blocking_keys(key: str) -> frozenset[int]:
    """Return the keys under which a title looks for fuzzy candidates, and is found by them.

    The keys are the title key itself and the title key with one word left out, once for
    each word. Two titles one word-level edit apart always share one: a typo in a word
    leaves the key without that word the same, a dropped word makes one title equal to a
    key of the other, and an added word the reverse. A key leaves out a single word, so
    few titles share one and the candidates stay few however many papers there are.
    `key` is a title key (title_key): its words are one space apart.
    """
    # block_hash of each key without joining a string for it: CRC-32 carries on over
    # concatenated bytes (crc32(b, crc32(a)) == crc32(a + b)), so a key without word i is
    # the CRC of the words before it, carried on over the words after it (11.9 -> 7.8 µs a
    # title; a test holds it equal to joining the words).
    data = key.encode()
    keys = [crc32(data)]
    before, start = 0, 0  # the CRC of data[:start]: the words before the next, with spaces
    for word in data.split(b" ")[:-1]:
        end = start + len(word)
        keys.append(crc32(data[end + 1:], before))
        before, start = crc32(data[start:end + 1], before), end + 1
    keys.append(crc32(data[:start - 1] if start else b""))  # without the last word
    return frozenset(keys)


class RecordKeys(NamedTuple):
    """What matching reads of a record, computed from the record alone (so a process that
    parses the dumps can compute it too: see parallel.DumpReader)."""

    title: str  # title_key
    fingerprint: str  # abstract_fingerprint
    blocks: frozenset[int]  # blocking_keys of the title key


def record_keys(record: Record) -> RecordKeys:
    key = title_key(record.title)
    return RecordKeys(key, abstract_fingerprint(record.abstract), blocking_keys(key))


def slugify(key: str) -> str:
    """Return a URL-friendly id of at most SLUG_MAX characters, cut at a word boundary."""
    slug = key.replace(" ", "-")
    if len(slug) > SLUG_MAX:
        slug = slug[:SLUG_MAX].rsplit("-", 1)[0]
    return slug or "untitled"


@dataclass(slots=True)
class Sighting:
    """One record of one dump, as it joins a paper."""

    dump: str
    record: Record
    paper_id: str = ""
    method: str = ""  # how it joined: new, identical, normalized_title, fuzzy_title
    published: str | None = None  # set once the dump's capture year is known (enrich)
    date_method: str | None = None


@dataclass(slots=True)
class Paper:
    """A paper: its first sighting's title and its number, in the order papers appear.

    Its abstract is not kept here: the build keeps abstracts and their fingerprints on disk
    (texts.DiskList), at the paper's number, so a million papers fit in memory.
    """

    id: str
    key: str
    title: str
    number: int  # 0, 1, 2 ... in the order papers were created
    sightings: list[Sighting] = field(default_factory=list)
    topics: str | None = None  # JSON array, set by the topic rules (enrich)


@dataclass(frozen=True)
class Merge:
    """A sighting whose title differed from its paper's, and why it still joined."""

    paper_id: str
    dump: str
    line: int
    title: str
    paper_title: str
    method: str
    title_score: float
    abstract_score: float


@dataclass(frozen=True)
class Lookalike:
    """A paper whose title matched an earlier paper's but whose abstract did not."""

    paper_id: str
    other_paper_id: str
    dump: str
    line: int
    title_score: float
    abstract_score: float


class AbstractHashes:
    """Each paper's abstract as a hash, by paper number: what tells whether a later copy of
    the paper wrote the same abstract. One that did not keeps its own (sightings.abstract):
    abstracts agree well enough to merge (ABSTRACT_MIN_SCORE, on their first words) while
    differing, and the paper shows only its first copy's."""

    def __init__(self, first_number: int = 0) -> None:
        self.first_number = first_number
        self.hashes = array("q")  # 8 bytes a paper: the texts themselves are on disk

    def append(self, abstract: str) -> None:
        self.hashes.append(hash(abstract))

    def same(self, number: int, abstract: str) -> bool:
        return self.hashes[number - self.first_number] == hash(abstract)


class Deduplicator:
    """Assigns each sighting to a paper, creating papers as new titles appear."""

    def __init__(self, fingerprints: MutableSequence[str] | None = None) -> None:
        """`fingerprints`: where each paper's abstract fingerprint goes, at its number (a
        list unless given; the build passes a list on disk)."""
        self.fingerprints = fingerprints if fingerprints is not None else []
        self.papers: list[Paper] = []
        self.merges: list[Merge] = []
        self.lookalikes: list[Lookalike] = []
        # Title key -> its paper, or a list of them once several papers share it (rare: a
        # list for every key would cost 80 MiB at a million papers).
        self.by_key: dict[str, Paper | list[Paper]] = {}
        # Blocking key (block_hash) -> the numbers of the papers holding it. At a million
        # papers their eleven or so keys each are the largest part of matching's memory, hence
        # flat arrays instead of a dict (blocks.py); build.py drops them once matching is done.
        self.blocks = BlockIndex()
        self.ids: set[str] = set()
        self.first_number = 0  # the number of the first paper in self.papers
        self.lookalike_pairs: set[tuple[str, str]] = set()

    def add(self, sighting: Sighting, keys: RecordKeys | None = None) -> Paper:
        """Return the paper the sighting belongs to (a new one if none matches); `keys` are
        the record's, if already computed."""
        record = sighting.record
        keys = keys or record_keys(record)
        rejected: list[tuple[Paper, float, float]] = []
        paper = self.match_exact(sighting, keys.title, keys.fingerprint, rejected) or \
            self.match_fuzzy(sighting, keys, rejected)
        if paper is None:
            paper = self.new_paper(keys.title, record.title, keys.fingerprint, keys.blocks)
            sighting.method = "new"
        sighting.paper_id = paper.id
        paper.sightings.append(sighting)
        for other, title_score, abstract in rejected:
            self.record_lookalike(paper, other, sighting, title_score, abstract)
        return paper

    def match_exact(self, sighting: Sighting, key: str, fingerprint: str,
                    rejected: list) -> Paper | None:
        for paper in self.papers_with_key(key):
            score = fingerprint_score(self.fingerprints[paper.number], fingerprint)
            if score >= ABSTRACT_MIN_SCORE:
                identical = paper.title == sighting.record.title
                sighting.method = "identical" if identical else "normalized_title"
                if not identical:
                    self.record_merge(paper, sighting, 100.0, score)
                return paper
            rejected.append((paper, 100.0, score))
        return None

    def match_fuzzy(self, sighting: Sighting, keys: RecordKeys, rejected: list) -> Paper | None:
        for paper, title_score in self.fuzzy_matches(keys.title, keys.blocks):
            score = fingerprint_score(self.fingerprints[paper.number], keys.fingerprint)
            if score >= ABSTRACT_MIN_SCORE:
                sighting.method = "fuzzy_title"
                self.record_merge(paper, sighting, title_score, score)
                return paper
            rejected.append((paper, title_score, score))
        return None

    def fuzzy_matches(self, key: str, blocks: frozenset[int]) -> list[tuple[Paper, float]]:
        """Return the FUZZY_TRIES papers whose title keys come closest to `key` (other than
        `key` itself), at least TITLE_MIN_SCORE, best first, among the candidates.

        Among equal scores the candidate met first comes first. A paper held by several
        blocking keys is a candidate several times: rapidfuzz scores the copies too, in C,
        which costs less than removing them in Python before (at a million records that took
        most of the matching time); they are removed from the few matches instead.
        """
        candidates = self.fuzzy_candidates(key, blocks)
        if not candidates:
            return []
        found = process.extract(key, list(map(KEY_OF, candidates)), scorer=fuzz.ratio,
                                score_cutoff=TITLE_MIN_SCORE, limit=None)
        matches: dict[str, tuple[Paper, float]] = {}
        for _, title_score, index in found:  # best first; equal scores in candidate order
            paper = candidates[index]
            if paper.key != key and paper.id not in matches:
                matches[paper.id] = (paper, title_score)
                if len(matches) == FUZZY_TRIES:
                    break
        return list(matches.values())

    def fuzzy_candidates(self, key: str, blocks: frozenset[int] | None = None) -> list[Paper]:
        """Return the papers holding the key's blocking keys, the BLOCK_CANDIDATES most recent
        of each key (a paper may come more than once); `blocks` are the key's blocking keys,
        if already computed."""
        # The keys go in sorted order, not a set's, which changes with each process:
        # candidates with equal title scores are taken in this order, so it must not change.
        numbers = self.candidate_numbers(sorted(blocks or blocking_keys(key)))
        return list(map(self.paper_numbered, numbers)) if numbers else []

    def candidate_numbers(self, blocks: list[int]) -> list[int]:
        """Return the numbers of the BLOCK_CANDIDATES newest papers holding each blocking
        key, key after key, each key's oldest first."""
        return self.blocks.newest_holders(blocks, BLOCK_CANDIDATES)

    def paper_numbered(self, number: int) -> Paper:
        return self.papers[number - self.first_number]

    def papers_with_key(self, key: str) -> list[Paper]:
        """Return the BLOCK_CANDIDATES newest papers whose title key is `key`, oldest first.

        Bounded as a blocking key is: a generic title (`Untitled`, or any title of only
        punctuation, whose key is empty) can be held by any number of distinct papers, and
        comparing each new one with all of them made the cost and the look-alike rows grow
        with their square (1,500 such records: 1.1 million look-alike rows, 21 s)."""
        held = self.by_key.get(key)
        return [] if held is None else held[-BLOCK_CANDIDATES:] if isinstance(held, list) else [held]

    def new_paper(self, key: str, title: str, fingerprint: str,
                  blocks: frozenset[int] | None = None) -> Paper:
        return self.restore_paper(self.unique_id(slugify(key)), key, title, fingerprint, blocks)

    def restore_paper(self, paper_id: str, key: str, title: str, fingerprint: str,
                      blocks: frozenset[int] | None = None) -> Paper:
        """Add a paper under an id already chosen (by new_paper, or by a previous build)."""
        paper = Paper(paper_id, key, title, self.first_number + len(self.papers))
        self.ids.add(paper_id)
        self.fingerprints.append(fingerprint)
        self.papers.append(paper)
        self.file_under_key(paper)
        self.blocks.add_all(blocks or blocking_keys(key), paper.number)
        return paper

    def file_under_key(self, paper: Paper) -> None:
        held = self.by_key.get(paper.key)
        if held is None:
            self.by_key[paper.key] = paper
        elif isinstance(held, list):
            held.append(paper)
        else:
            self.by_key[paper.key] = [held, paper]

    def id_taken(self, paper_id: str) -> bool:
        return paper_id in self.ids

    def unique_id(self, slug: str) -> str:
        candidate, number = slug, 1
        while self.id_taken(candidate):
            number += 1
            candidate = f"{slug}-{number}"
        self.ids.add(candidate)
        return candidate

    def record_merge(self, paper: Paper, sighting: Sighting, title: float, abstract: float):
        self.merges.append(
            Merge(paper.id, sighting.dump, sighting.record.line, sighting.record.title,
                  paper.title, sighting.method, round(title, 1), round(abstract, 1))
        )

    def record_lookalike(self, paper, other, sighting, title_score, abstract):
        pair = (paper.id, other.id)
        if self.pair_recorded(pair):
            return
        self.lookalike_pairs.add(pair)
        self.lookalikes.append(
            Lookalike(paper.id, other.id, sighting.dump, sighting.record.line,
                      round(title_score, 1), round(abstract, 1))
        )


    def pair_recorded(self, pair: tuple[str, str]) -> bool:
        return pair in self.lookalike_pairs

    def blocking_rows(self) -> Iterator[dict]:
        """Yield the rows of table title_blocks for these papers: which paper holds which
        blocking key (what an incremental build adds; a full build takes them all from the
        block index at once, BlockIndex.packed_pairs).

        The database keeps them so that an incremental build finds a new title's fuzzy
        candidates without recomputing the keys of every paper."""
        for paper in self.papers:
            for block in blocking_keys(paper.key):
                yield {"block": block, "paper_rowid": paper.number + 1}


def deduplicate(sightings: list[Sighting]) -> Deduplicator:
    """Return the deduplicator after assigning every sighting, in the order given."""
    dedup = Deduplicator()
    for sighting in sightings:
        dedup.add(sighting)
    return dedup
