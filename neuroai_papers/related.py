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
from array import array
from collections import Counter
from dataclasses import dataclass, field
from string import ascii_lowercase, digits
from typing import Iterable, Iterator

import numpy as np

TOP_TERMS = 12
TITLE_WEIGHT = 3
POSTINGS_CAP = 64
PER_PAPER = 5
MIN_SCORE = 0.08
MIN_SHARED = 2  # one shared word is a coincidence more often than a relation
MAX_DOC_SHARE = 0.2  # words in more than this share of papers explain nothing
CHUNK = 1_000  # papers scored at a time: bounds the memory of the pair arrays (~50 MB)

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


# Every word WORD can match that `words` drops: the stopwords and all words of one or two
# characters (a hyphenated word has at least three). Dropping them from a Counter with set
# operations keeps the per-word work in C, which is most of the speed of this step.
UNWANTED = STOPWORDS | {
    first + second for first in ascii_lowercase for second in ["", *ascii_lowercase, *digits]
}


def counted_words(text: str) -> Counter:
    """Return Counter(words(text)), computed without a Python loop over every word."""
    counts = Counter(WORD.findall(text.casefold()))
    for unwanted in counts.keys() & UNWANTED:
        dict.__delitem__(counts, unwanted)  # Counter's own __delitem__ is Python code
    return counts


def term_counts(paper: dict) -> Counter:
    counts = counted_words(paper["abstract"] or "")
    for word, count in counted_words(paper["title"] or "").items():
        counts[word] += TITLE_WEIGHT * count
    return counts


def inverse_document_frequencies(df: Counter, total: int) -> dict[str, float]:
    """Return the idf of every word that can link papers: in two papers or more, not too common."""
    limit = max(2, MAX_DOC_SHARE * total)
    return {term: math.log((1 + total) / (1 + n)) for term, n in df.items() if 1 < n <= limit}


def top_terms(counts: Counter, idf: dict[str, float]) -> dict[str, float]:
    """Return the paper's most distinctive words with L2-normalized tf-idf weights."""
    # (-weight, term) tuples sort in C: heaviest first, ties by the word.
    best = sorted([(-(1 + math.log(count)) * idf[term], term)
                   for term, count in counts.items() if term in idf])[:TOP_TERMS]
    norm = math.sqrt(sum(w * w for w, _ in best)) or 1.0
    return {term: -w / norm for w, term in best}


@dataclass
class Vectors:
    """Every paper's kept words and weights, flat: paper i owns entries offsets[i]:offsets[i + 1].

    Compact arrays instead of one dict per paper: a million papers fit in ~150 MB.
    """

    words: list[str] = field(default_factory=list)  # word id -> word
    doc: array = field(default_factory=lambda: array("i"))
    term: array = field(default_factory=lambda: array("i"))
    weight: array = field(default_factory=lambda: array("d"))
    offsets: array = field(default_factory=lambda: array("q", [0]))

    def add(self, vector: dict[str, float], ids: dict[str, int]) -> None:
        index = len(self.offsets) - 1
        for word, value in vector.items():
            if word not in ids:
                ids[word] = len(self.words)
                self.words.append(word)
            self.doc.append(index)
            self.term.append(ids[word])
            self.weight.append(value)
        self.offsets.append(len(self.term))

    def of(self, index: int) -> dict[str, float]:
        low, high = self.offsets[index], self.offsets[index + 1]
        return {self.words[t]: w for t, w in zip(self.term[low:high], self.weight[low:high])}


def related_rows(papers: Iterable[dict]) -> list[dict]:
    return list(iter_related_rows(papers))


def iter_related_rows(papers: Iterable[dict]) -> Iterator[dict]:
    """Yield up to PER_PAPER related papers for each paper, with score and shared terms.

    `papers` (dicts with id, title and abstract) is read twice, so it must be a list or
    something else that can be iterated again, such as the build's paper texts.
    """
    # Two passes over the text instead of keeping every paper's word counts: memory stays
    # proportional to the twelve words kept per paper, not to the whole vocabulary of each.
    df: Counter = Counter()
    ids = []
    for paper in papers:
        df.update(term_counts(paper).keys())
        ids.append(paper["id"])
    idf = inverse_document_frequencies(df, len(ids))
    del df
    vectors, word_ids = Vectors(), {}
    for paper in papers:
        vectors.add(top_terms(term_counts(paper), idf), word_ids)
    del word_ids, idf
    for index, ranked in best_matches(vectors, ids):
        mine = vectors.of(index) if ranked else {}
        for rank, (other, score) in enumerate(ranked, 1):
            theirs = vectors.of(other)
            shared = sorted(mine.keys() & theirs.keys(), key=lambda t: (-mine[t] * theirs[t], t))
            yield {
                "paper_id": ids[index], "related_id": ids[other], "rank": rank,
                "score": round(score, 4), "shared_terms": ", ".join(shared[:6]),
            }


def best_matches(vectors: Vectors, ids: list[str]) -> Iterator[tuple[int, list[tuple[int, float]]]]:
    """Yield, for every paper in order, its best (other paper, score) pairs, best first.

    Vectorized: every (paper, term) entry meets the term's postings (at most POSTINGS_CAP
    papers per term) in numpy, a chunk of papers at a time, so memory stays bounded.
    """
    terms = vectors.words
    # 32-bit ids and no copies kept longer than needed: at a million papers each array of
    # (paper, word) entries is some 12 million long.
    doc = np.frombuffer(vectors.doc, np.int32)
    term = np.frombuffer(vectors.term, np.int32)
    weight = np.frombuffer(vectors.weight, np.float64)
    # Postings: for each term, its papers by decreasing weight, cut at POSTINGS_CAP.
    order = np.lexsort((-weight, term))
    p_term = term[order]
    starts = np.searchsorted(p_term, np.arange(len(terms)))
    keep = order[(np.arange(len(p_term)) - starts[p_term]) < POSTINGS_CAP]
    del order
    p_term, p_doc, p_weight = term[keep], doc[keep], weight[keep]
    del keep
    starts = np.searchsorted(p_term, np.arange(len(terms)))
    lengths = np.bincount(p_term, minlength=len(terms))
    id_rank = np.argsort(np.argsort(np.array(ids, dtype=object)))  # tie-break by paper id
    for low in range(0, len(ids), CHUNK):
        high = min(low + CHUNK, len(ids))
        entries = slice(vectors.offsets[low], vectors.offsets[high])  # papers low..high-1
        results: list[list[tuple[int, float]]] = [[] for _ in range(low, high)]
        for a, b, score in chunk_matches(doc[entries], term[entries], weight[entries], starts,
                                         lengths, p_doc, p_weight, id_rank, len(ids)):
            results[a - low].append((b, score))
        yield from enumerate(results, low)


def chunk_matches(doc, term, weight, starts, lengths, p_doc, p_weight, id_rank, total):
    """Return (paper, other, score) for the best pairs of a chunk of papers, best first."""
    repeat = lengths[term]
    left = np.repeat(doc, repeat)
    offsets = np.arange(repeat.sum()) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    positions = np.repeat(starts[term], repeat) + offsets
    right = p_doc[positions]
    product = np.repeat(weight, repeat) * p_weight[positions]
    different = left != right
    pair = left[different].astype(np.int64) * total + right[different]
    pairs, inverse = np.unique(pair, return_inverse=True)
    scores = np.bincount(inverse, weights=product[different])
    shared = np.bincount(inverse)
    good = (scores >= MIN_SCORE) & (shared >= MIN_SHARED)
    pairs, scores = pairs[good], scores[good]
    left, right = pairs // total, pairs % total
    order = np.lexsort((id_rank[right], -scores, left))
    left, right, scores = left[order], right[order], scores[order]
    first = np.searchsorted(left, left)  # index where each paper's run starts
    keep = (np.arange(len(left)) - first) < PER_PAPER
    return zip(left[keep].tolist(), right[keep].tolist(), scores[keep].tolist())
