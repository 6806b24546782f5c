"""Assign NeuroAI topics to papers with the rules of reference/topics.yml.

A rule is a regular expression matched case-insensitively, as whole words, against
a paper's title and abstract. A title match is strong evidence on its own; abstract
matches must reach the topic's `abstract_hits`. Every match that assigned a topic is
kept (field, rule, matched text) so a reader can see why a paper carries it.
"""

from __future__ import annotations

import csv
import json
import re
import re._constants as sre_constants  # the parsed form of a rule: its literal starts
import re._parser as sre_parse
from bisect import bisect_right
from itertools import chain
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import ahocorasick_rs

from .parse import DumpError
from .yamlfiles import read_yaml


@dataclass(frozen=True)
class Rules:
    """Some rules of a topic: regular expressions matched at word boundaries, ignoring case."""

    sources: tuple[str, ...]

    @classmethod
    def of(cls, sources: list[str]) -> "Rules":
        for source in sources:
            if has_uppercase_literal(source):
                raise ValueError(f"rule {source!r}: write rules in lowercase (text is lowercased)")
            re.compile(source)  # a malformed rule fails here, naming the taxonomy file
        return cls(tuple(sources))


@dataclass(frozen=True)
class Topic:
    id: str
    label: str
    group: str
    description: str
    abstract_rules: Rules  # `patterns`
    title_rules: Rules  # `patterns` and `title_patterns`
    exclude: Rules
    abstract_hits: int

    @property
    def all_sources(self) -> set[str]:
        return {*self.title_rules.sources, *self.abstract_rules.sources, *self.exclude.sources}


def has_uppercase_literal(source: str) -> bool:
    """Return whether a rule holds an uppercase letter outside escapes such as \\W or \\S."""
    return any(ch.isupper() for ch in re.sub(r"\\.", "", source))


def load_topics(path: Path) -> list[Topic]:
    """Return the taxonomy; raise DumpError naming the file and topic if a rule is malformed."""
    try:
        data = read_yaml(path)
        groups = data["groups"]
        topics = []
        for entry in data["topics"]:
            if entry["group"] not in groups:
                raise ValueError(f"unknown group {entry['group']!r}")
            patterns = entry.get("patterns") or []
            topics.append(Topic(
                id=entry["id"], label=entry["label"], group=entry["group"],
                description=entry["description"],
                abstract_rules=Rules.of(patterns),
                title_rules=Rules.of(patterns + (entry.get("title_patterns") or [])),
                exclude=Rules.of(entry.get("exclude") or []),
                abstract_hits=int(entry.get("abstract_hits", 1)),
            ))
    except (KeyError, TypeError, ValueError, re.error) as error:
        raise DumpError(f"{path}: {type(error).__name__}: {error}") from None
    return topics


# --- Matching -------------------------------------------------------------------------------
#
# Case is ignored by matching the rules against lowercased text (str.lower), not with
# re.IGNORECASE: Python's regex engine skips straight to a rule's literal start only when
# case is significant and the pattern does not open with \b, which makes the scan several
# times faster. The leading word boundary is checked by hand for each candidate instead.
# Rules are therefore written in lowercase (load_topics refuses others).

LEADING_BOUNDARY = re.compile(r"\b")
SEPARATOR = "\n\x00\n"  # between papers: no word and no rule can span it
SCAN_CHUNK = 2_000  # papers scanned together: bounds the joined text and the hits held
MAX_STARTS = 64  # literal starts of one rule tracked at most (alternations multiply them)
REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT)


@dataclass
class Hits:
    """What one rule matched in one paper: texts per field, and whether it matched at all."""

    title: list[str]
    abstract: list[str]
    anywhere: bool  # in title + "\n" + abstract (what an exclusion looks at)


def scanning_regex(source: str) -> re.Pattern:
    return re.compile(rf"(?:{source})\b")


def find_all(regex: re.Pattern, text: str, start: int = 0, end: int | None = None):
    """Yield the matches `\b(?:rule)\b` would give in text[start:end], found with `regex`.

    `regex` is the rule without its leading \b, so the engine can search for its literal
    start; a candidate without a word boundary before it is skipped by moving on one
    character, which is exactly where the full pattern's own search would resume.
    """
    end = len(text) if end is None else end
    position = start
    while (match := regex.search(text, position, end)) is not None:
        if LEADING_BOUNDARY.match(text, match.start()) is None:
            position = match.start() + 1
            continue
        yield match
        position = match.end() if match.end() > match.start() else match.end() + 1


def paper_hits(regex: re.Pattern, title: str, abstract: str) -> Hits | None:
    """Return one rule's hits in one paper, matched separately in each field (the reference)."""
    lowered_title, lowered_abstract = title.lower(), abstract.lower()
    both = f"{lowered_title}\n{lowered_abstract}"
    in_title = [original(title, lowered_title, m) for m in find_all(regex, lowered_title)]
    in_abstract = [original(abstract, lowered_abstract, m)
                   for m in find_all(regex, lowered_abstract)]
    anywhere = bool(in_title or in_abstract) or next(find_all(regex, both), None) is not None
    return Hits(in_title, in_abstract, anywhere) if anywhere else None


def original(text: str, lowered: str, match: re.Match, offset: int = 0) -> str:
    """Return the text a match covers as written (lowercase if lowering changed the length)."""
    if len(text) != len(lowered):
        return match.group(0)
    return text[match.start() - offset:match.end() - offset]


class Anchors:
    """The literal texts every match of each rule starts with, found all at once.

    One Aho-Corasick pass over a chunk finds where any rule's literal start occurs; each
    rule's regex is then tried only there, instead of scanning the whole text once per rule
    (179 rules over a gigabyte of abstracts at a million papers). Rules whose starts are
    not sure (an opening \\w*, a character class) are scanned the ordinary way.

    The automaton is ahocorasick_rs's DFA: on 30,000 abstracts (45 million characters) it
    finds the 265,000 starts in 0.65 s where pyahocorasick's automaton took 1.32 s, the
    same starts (a test holds them to a plain search for each start).
    """

    def __init__(self, sources: list[str]):
        self.of_rule = {source: sure_starts(source) for source in sources}
        self.words = sorted({start for starts in self.of_rule.values() for start in starts or ()})
        self.automaton = ahocorasick_rs.AhoCorasick(
            self.words, implementation=ahocorasick_rs.Implementation.DFA) if self.words else None

    def find(self, text: str) -> dict[str, list[int]]:
        """Return where each literal start occurs in `text` (ascending positions; string
        indexes, not UTF-8 offsets), overlapping ones included."""
        found: dict[str, list[int]] = {}
        if self.automaton is not None:
            words = self.words
            for number, start, _ in self.automaton.find_matches_as_indexes(text, overlapping=True):
                found.setdefault(words[number], []).append(start)
        return found


def sure_starts(source: str) -> tuple[str, ...] | None:
    """Return the texts every match of a rule starts with (at least two characters each),
    or None if the rule has no such sure start."""
    try:
        starts, _ = literal_starts(list(sre_parse.parse(source)))
    except (re.error, TypeError, ValueError):
        return None
    if not starts or min(map(len, starts)) < 2:
        return None
    # A start that begins with another adds nothing but the same places found twice.
    return tuple(sorted(start for start in starts
                        if not any(start != other and start.startswith(other)
                                   for other in starts)))


def literal_starts(items: list) -> tuple[set[str], bool]:
    """Return the literal prefixes of a parsed pattern, and whether they are all of it.

    Literals extend every prefix; a group or an alternation extends them with each of its
    own prefixes, an optional item (`s?`, `(?:the )?`) with each of its own and with
    nothing, a class of a few letters (`[- ]`) with each letter; a repeat that must match
    at least once extends them with its item's prefixes and ends them; anything else (a
    repeat that may match nothing, a range, an escape) ends them.

    Going on past an optional item matters: `models? of` starts with `model`, a word of
    every other abstract, but with `model of` or `models of` only, where the rule is tried
    a hundred times less often.
    """
    found = {""}
    for op, value in items:
        if op is sre_constants.LITERAL:
            found = {start + chr(value) for start in found}
            continue
        if op is sre_constants.SUBPATTERN:
            inner, complete = literal_starts(list(value[-1]))
        elif op is sre_constants.BRANCH:
            branches = [literal_starts(list(branch)) for branch in value[1]]
            inner = set().union(*(starts for starts, _ in branches))
            complete = all(whole for _, whole in branches)
        elif op in REPEATS and value[0] >= 1:  # at least one: it starts so, then who knows
            inner, _ = literal_starts(list(value[2]))
            complete = False
        elif op in REPEATS and (value[0], value[1]) == (0, 1):
            inner, complete = literal_starts(list(value[2]))
            inner = inner | {""}
        elif op is sre_constants.IN and all(kind is sre_constants.LITERAL for kind, _ in value):
            inner, complete = {chr(code) for _, code in value}, True
        else:
            return found, False
        found = {start + more for start in found for more in inner}
        if not complete or len(found) > MAX_STARTS:
            return found, False
    return found, True


def matches_at(regex: re.Pattern, text: str, starts: list[int]) -> Iterator[re.Match]:
    """Yield what `find_all(regex, text)` yields, trying the regex only at `starts`.

    `starts` (ascending) holds every position where a match could begin, so the first one
    that matches with a word boundary before it is the match `find_all` finds first.
    """
    position = 0
    for start in starts:
        if start < position:
            continue
        match = regex.match(text, start)
        if match is None or LEADING_BOUNDARY.match(text, start) is None:
            continue
        yield match
        position = match.end() if match.end() > start else start + 1


class ChunkScan:
    """The lowercased titles and abstracts of some papers, joined, to scan each rule once."""

    def __init__(self, papers: list[dict], anchors: "Anchors"):
        self.titles = [paper["title"] or "" for paper in papers]
        self.abstracts = [paper["abstract"] or "" for paper in papers]
        pieces, self.starts, self.title_ends, self.ends = [], [], [], []
        position = 0
        for title, abstract in zip(self.titles, self.abstracts):
            self.starts.append(position)
            self.title_ends.append(position + len(title))
            position += len(title) + 1 + len(abstract)
            self.ends.append(position)
            pieces.append(f"{title}\n{abstract}")
            position += len(SEPARATOR)
        # Each paper lowercased alone: most are ASCII, which str.lower does in a fast loop,
        # while the joined text of a chunk with one accent took the slow one (2,000 papers:
        # 26 -> 3 ms). The same text: lowering depends on the neighbours only for a final
        # sigma, and SEPARATOR's characters end its context as the text's end does.
        self.text = SEPARATOR.join([piece.lower() for piece in pieces])
        # str.lower can lengthen a few letters (İ); offsets are then recomputed per paper.
        self.exact = len(self.text) == position - len(SEPARATOR) if papers else True
        self.anchors = anchors
        self.anchor_starts = anchors.find(self.text) if self.exact else {}

    def matches(self, source: str, regex: re.Pattern) -> Iterator[re.Match]:
        """Yield the rule's matches in the joined text, as `find_all` would."""
        anchors = self.anchors.of_rule.get(source)
        if anchors is None:
            yield from find_all(regex, self.text)
            return
        starts = sorted(chain.from_iterable(self.anchor_starts.get(a, ()) for a in anchors))
        yield from matches_at(regex, self.text, starts)

    def hits(self, source: str) -> dict[int, Hits]:
        """Return, per paper index of the chunk, what the rule matched there."""
        if not self.exact:
            return self.hits_paper_by_paper(source)
        regex = scanning_regex(source)
        found: dict[int, Hits] = {}
        redo: set[int] = set()
        for match in self.matches(source, regex):
            index = bisect_right(self.starts, match.start()) - 1
            start, end = match.start(), match.end()
            if end > self.ends[index] or start <= self.title_ends[index] < end:
                # It spans the end of a field or of a paper, so the fields' own matches may
                # differ: match every paper it touches field by field instead.
                last = bisect_right(self.starts, end - 1) - 1
                redo.update(range(index, last + 1))
                continue
            hits = found.get(index)
            if hits is None:  # not setdefault: that would make a Hits for every match
                hits = found[index] = Hits([], [], True)
            if end <= self.title_ends[index]:
                hits.title.append(self.titles[index][start - self.starts[index]:
                                                     end - self.starts[index]])
            else:
                offset = self.title_ends[index] + 1
                hits.abstract.append(self.abstracts[index][start - offset:end - offset])
        for index in redo:
            found.pop(index, None)
            if hits := paper_hits(regex, self.titles[index], self.abstracts[index]):
                found[index] = hits
        return found

    def hits_paper_by_paper(self, source: str) -> dict[int, Hits]:
        regex = scanning_regex(source)
        found = {}
        for index, (title, abstract) in enumerate(zip(self.titles, self.abstracts)):
            if hits := paper_hits(regex, title, abstract):
                found[index] = hits
        return found


def topic_evidence(topic: Topic, hits: dict[str, Hits]) -> list[dict]:
    """Return the matches that assign `topic` to a paper (its rules' hits), or []."""
    if any(source in hits and hits[source].anywhere for source in topic.exclude.sources):
        return []
    found = [
        {"field": field, "rule": source, "matched": texts[0], "hits": len(texts)}
        for field, rules in (("title", topic.title_rules), ("abstract", topic.abstract_rules))
        for source in rules.sources
        if source in hits and (texts := getattr(hits[source], field))
    ]
    in_title = any(match["field"] == "title" for match in found)
    abstract_hits = sum(match["hits"] for match in found if match["field"] == "abstract")
    return found if in_title or abstract_hits >= topic.abstract_hits else []


def assign_topics(papers: list[dict], topics: list[Topic]) -> list[dict]:
    """Set each paper's `topics` (a JSON array) and return one row per rule that matched."""
    rows = []
    for paper, (assigned, evidence) in zip(papers, topics_of_papers(papers, topics)):
        paper["topics"] = assigned
        rows.extend(evidence)
    return rows


def topics_of_papers(papers: Iterable[dict], topics: list[Topic]) -> Iterator[tuple[str, list[dict]]]:
    """Yield, for each paper in order, its topics (a JSON array) and the rows of evidence.

    Papers are read and scanned SCAN_CHUNK at a time, so any number of them streams
    through. A paper's topics depend on its own title and abstract only.
    """
    sources = sorted(set().union(*(topic.all_sources for topic in topics)))
    anchors = Anchors(sources)
    window: list[dict] = []
    for paper in papers:
        window.append(paper)
        if len(window) == SCAN_CHUNK:
            yield from topics_of_chunk(window, topics, sources, anchors)
            window = []
    yield from topics_of_chunk(window, topics, sources, anchors)


def topics_of_chunk(chunk: list[dict], topics: list[Topic], sources: list[str],
                    anchors: "Anchors") -> Iterator[tuple[str, list[dict]]]:
    """Yield what topic_evidence gives each paper of the chunk, topic by topic.

    The loops run topic first: each topic walks only the hits of its own rules, instead of
    every paper asking every topic (which took half the time of the scan)."""
    scan = ChunkScan(chunk, anchors)
    hits_of = {source: scan.hits(source) for source in sources}
    assigned: list[list[str]] = [[] for _ in chunk]
    rows: list[list[dict]] = [[] for _ in chunk]
    for topic in topics:
        for index, matches in topic_matches(topic, hits_of).items():
            assigned[index].append(topic.id)
            paper_id = chunk[index]["id"]
            rows[index].extend({"paper_id": paper_id, "topic": topic.id, "field": field,
                                "rule": source, "matched": texts[0], "hits": len(texts)}
                               for field, source, texts in matches)
    encoded: dict[tuple, str] = {}  # papers share few topic lists: encode each once
    for topic_ids, evidence in zip(assigned, rows):
        key = tuple(topic_ids)
        if key not in encoded:
            encoded[key] = json.dumps(topic_ids)
        yield encoded[key], evidence


def topic_matches(topic: Topic, hits_of: dict[str, dict[int, Hits]]) -> dict[int, list]:
    """Return, per paper index, the (field, rule, texts) that assign `topic` to the paper,
    in topic_evidence's order; papers the topic does not apply to are left out."""
    found: dict[int, list] = {}
    for field, rules in (("title", topic.title_rules), ("abstract", topic.abstract_rules)):
        for source in rules.sources:
            for index, hits in hits_of[source].items():
                if texts := (hits.title if field == "title" else hits.abstract):
                    found.setdefault(index, []).append((field, source, texts))
    excluded = {index for source in topic.exclude.sources
                for index, hits in hits_of[source].items() if hits.anywhere}
    return {index: matches for index, matches in found.items()
            if index not in excluded and (matches[0][0] == "title"  # title ones come first
                                          or sum(len(texts) for _, _, texts in matches)
                                          >= topic.abstract_hits)}


def topic_rows(topics: list[Topic], papers_per_topic: Counter) -> list[dict]:
    """Return one row per topic with its description, every part of its rules (so that the
    file alone says how papers get it) and its number of papers."""
    return [{
        "id": topic.id, "label": topic.label, "topic_group": topic.group,
        "description": topic.description,
        "title_rules": json.dumps(list(topic.title_rules.sources)),
        "abstract_rules": json.dumps(list(topic.abstract_rules.sources)),
        "abstract_hits": topic.abstract_hits,
        "exclude_rules": json.dumps(list(topic.exclude.sources)),
        "papers": papers_per_topic[topic.id],
    } for topic in topics]


def load_labels(path: Path) -> dict[str, set[str]]:
    """Return the hand labels of tests/topic_labels.csv: paper id -> topic ids."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["paper_id"]: set(row["topics"].split()) for row in csv.DictReader(handle)}


def evaluate(labels: dict[str, set[str]], predicted: dict[str, set[str]],
             topic_ids: list[str]) -> dict[str, dict]:
    """Return precision, recall and counts per topic and overall (micro-averaged)."""
    scores = {}
    totals = Counter()
    for topic in [*topic_ids, "overall"]:
        if topic == "overall":
            tp, fp, fn = totals["tp"], totals["fp"], totals["fn"]
        else:
            tp = sum(topic in labels[p] and topic in predicted[p] for p in labels)
            fp = sum(topic not in labels[p] and topic in predicted[p] for p in labels)
            fn = sum(topic in labels[p] and topic not in predicted[p] for p in labels)
            totals.update(tp=tp, fp=fp, fn=fn)
        scores[topic] = {
            "labelled": tp + fn, "predicted": tp + fp, "true_positives": tp,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
        }
    return scores
