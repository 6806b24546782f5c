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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from .parse import DumpError


@dataclass(frozen=True)
class Rule:
    source: str  # as written in the taxonomy file
    anchor: str  # lowercase text every match starts with; '' if none is sure
    regex: re.Pattern


@dataclass(frozen=True)
class Rules:
    """Some rules of a topic, each a case-insensitive whole-word regular expression."""

    rules: tuple[Rule, ...]

    @classmethod
    def of(cls, sources: list[str]) -> "Rules":
        return cls(tuple(
            Rule(source, literal_start(source),
                 re.compile(rf"\b(?:{source})\b", re.IGNORECASE))
            for source in sources))

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(rule.source for rule in self.rules)

    def matches(self, text: str, lowered: str) -> dict[str, list[str]]:
        """Return, per rule that matches, the texts it matched (`lowered` is text.lower()).

        A rule whose literal start does not occur in the text cannot match: that substring
        test is far cheaper than the regex scan, and most papers carry few topics.
        """
        found: dict[str, list[str]] = {}
        same_offsets = len(lowered) == len(text)  # lower() can lengthen some letters
        for rule in self.rules:
            start = lowered.find(rule.anchor) if rule.anchor else 0
            if start < 0:
                continue
            # No match can begin before the first occurrence of the literal start.
            scan = rule.regex.finditer(text, start if same_offsets else 0)
            hits = [match.group(0) for match in scan]
            if hits:
                found[rule.source] = hits
        return found


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


def literal_start(source: str) -> str:
    """Return the lowercase literal text every match of a rule starts with ('' if none is sure).

    `spike trains?` starts with `spike train` (the `s` is optional); a rule that opens with a
    group or has an alternative at its top level has no sure start.
    """
    depth = 0
    for char in source:
        depth += char == "("
        depth -= char == ")"
        if char == "|" and depth == 0:
            return ""
    match = re.match(r"[^\\.^$*+?{}\[\]|()]*", source)
    literal = match.group(0)
    if literal and source[len(literal):len(literal) + 1] in ("?", "*", "{"):
        literal = literal[:-1]  # the last character is optional
    return literal.lower()


def load_topics(path: Path) -> list[Topic]:
    """Return the taxonomy; raise DumpError naming the file and topic if a rule is malformed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
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
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, re.error) as error:
        raise DumpError(f"{path}: {type(error).__name__}: {error}") from None
    return topics


def rule_matches(topic: Topic, title: str, abstract: str,
                 lowered_title: str, lowered_abstract: str) -> list[dict]:
    """Return the matches that assign `topic` to a paper, or [] if it does not apply."""
    if topic.exclude.rules and topic.exclude.matches(
            f"{title}\n{abstract}", f"{lowered_title}\n{lowered_abstract}"):
        return []
    found = [
        {"field": field, "rule": source, "matched": hits[0], "hits": len(hits)}
        for field, text, lowered, rules in (
            ("title", title, lowered_title, topic.title_rules),
            ("abstract", abstract, lowered_abstract, topic.abstract_rules))
        for source, hits in rules.matches(text, lowered).items()
    ]
    in_title = any(match["field"] == "title" for match in found)
    abstract_hits = sum(match["hits"] for match in found if match["field"] == "abstract")
    return found if in_title or abstract_hits >= topic.abstract_hits else []


def assign_topics(papers: list[dict], topics: list[Topic],
                  known: dict[str, tuple[str, list[dict]]] | None = None) -> list[dict]:
    """Set each paper's `topics` (a JSON array) and return one row per rule that matched.

    `known` holds topics already assigned to papers by a previous build (an incremental
    build): a paper's title and abstract never change, so neither do its topics.
    """
    rows = []
    known = known or {}
    for paper in papers:
        if paper["id"] in known:
            paper["topics"], evidence = known[paper["id"]]
            rows.extend(evidence)
            continue
        assigned = []
        title, abstract = paper["title"] or "", paper["abstract"] or ""
        lowered = (title.lower(), abstract.lower())
        for topic in topics:
            matches = rule_matches(topic, title, abstract, *lowered)
            if matches:
                assigned.append(topic.id)
                rows.extend({"paper_id": paper["id"], "topic": topic.id, **m} for m in matches)
        paper["topics"] = json.dumps(assigned)
    return rows


def topic_rows(topics: list[Topic], paper_topics: list[dict]) -> list[dict]:
    """Return one row per topic with its description, rules and number of papers."""
    papers = {topic.id: set() for topic in topics}
    for row in paper_topics:
        papers[row["topic"]].add(row["paper_id"])
    return [{
        "id": topic.id, "label": topic.label, "topic_group": topic.group,
        "description": topic.description,
        "rules": json.dumps(list(topic.title_rules.sources)),
        "papers": len(papers[topic.id]),
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
