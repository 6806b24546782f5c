"""Precompute, for every paper, the papers most like it (TF-IDF over title and abstract).

Each paper is reduced to its TOP_TERMS most distinctive words (tf-idf, with title
words counted TITLE_WEIGHT times). Two papers are compared only when they share one
of those words, and each word lists at most POSTINGS_CAP papers (those it weighs
most in), so the work per paper is bounded and the whole step grows linearly with
the number of papers instead of with its square. The score is the cosine of the
two reduced vectors; the shared words that contribute most explain it.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

TOP_TERMS = 12
TITLE_WEIGHT = 3
POSTINGS_CAP = 200
PER_PAPER = 5
MIN_SCORE = 0.08
MIN_SHARED = 2  # one shared word is a coincidence more often than a relation
MAX_DOC_SHARE = 0.2  # words in more than this share of papers explain nothing

WORD = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
STOPWORDS = frozenset("""
a about above across after again against all also although among an and any are as at
be because been before being below between both but by can could did do does doing done
due during each either else even ever every few for from further had has have having here
how however if in into is it its itself just less many may might more most much must
neither no nor not now of off often on once only or other others otherwise our ours out
over own per rather same several shall should show shows shown since so some such than
that the their theirs them then there therefore these they this those though through thus
to too toward towards under until up upon us use used uses using very via was we well were
what when where whether which while who whom whose why will with within without would yet
you your paper propose proposed present presents approach method methods results new
novel work study studies based first two three one enables
""".split())


def words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.casefold()) if len(w) > 2 and w not in STOPWORDS]


def term_counts(paper: dict) -> Counter:
    counts = Counter(words(paper["abstract"] or ""))
    for word in words(paper["title"] or ""):
        counts[word] += TITLE_WEIGHT
    return counts


def top_terms(counts: Counter, df: Counter, total: int) -> dict[str, float]:
    """Return the paper's most distinctive words with L2-normalized tf-idf weights."""
    weights = {
        term: (1 + math.log(count)) * math.log((1 + total) / (1 + df[term]))
        for term, count in counts.items()
        if 1 < df[term] <= max(2, MAX_DOC_SHARE * total)
    }
    best = sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:TOP_TERMS]
    norm = math.sqrt(sum(w * w for _, w in best)) or 1.0
    return {term: w / norm for term, w in best}


def related_rows(papers: list[dict]) -> list[dict]:
    """Return up to PER_PAPER related papers for each paper, with score and shared terms."""
    counts = [term_counts(paper) for paper in papers]
    df = Counter(term for c in counts for term in c)
    vectors = [top_terms(c, df, len(papers)) for c in counts]
    postings: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for index, vector in enumerate(vectors):
        for term, weight in vector.items():
            postings[term].append((weight, index))
    for term, entries in postings.items():
        entries.sort(key=lambda entry: (-entry[0], entry[1]))
        del entries[POSTINGS_CAP:]
    rows = []
    for index, vector in enumerate(vectors):
        rows.extend(best_matches(index, vector, vectors, postings, papers))
    return rows


def best_matches(index, vector, vectors, postings, papers) -> list[dict]:
    scores: dict[int, float] = defaultdict(float)
    for term, weight in vector.items():
        for other_weight, other in postings[term]:
            if other != index:
                scores[other] += weight * other_weight
    ranked = sorted(
        ((score, papers[other]["id"], other) for other, score in scores.items()
         if score >= MIN_SCORE and len(vector.keys() & vectors[other].keys()) >= MIN_SHARED),
        key=lambda item: (-item[0], item[1]),
    )[:PER_PAPER]
    rows = []
    for rank, (score, other_id, other) in enumerate(ranked, 1):
        shared = sorted(
            (term for term in vector if term in vectors[other]),
            key=lambda term: (-vector[term] * vectors[other][term], term),
        )
        rows.append({
            "paper_id": papers[index]["id"], "related_id": other_id, "rank": rank,
            "score": round(score, 4), "shared_terms": ", ".join(shared[:6]),
        })
    return rows
