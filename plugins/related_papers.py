"""Related papers, found when they are asked for, from the full-text index (paper pages,
the SQL function `related_papers(paper_id)`).

A paper's related papers are the answer to a "more like this" query: its most distinctive
words (tf-idf over title and abstract, title words counting TITLE_WEIGHT times) are sent to
the full-text index as one OR query, and bm25 ranks the papers that contain them. This is
how search engines do it, and here it has three advantages over a table computed by the
build: the answer always reflects the whole current corpus; the build spends nothing on it
(at a million papers the old table took a second process four minutes and 1.3 GB of the
file); and adding a dump changes no existing row, which is what lets an incremental build
update the previous file in place.

Everything is read from papers.db: the words of the paper are cut by SQLite's own tokenizer,
set up as papers_fts declares it (so "decoding" becomes the index's term "decod"), and the
number of papers holding each term comes from the `terms` table, which the build fills from
the index. This file needs nothing but the standard library, so the published site runs it.

The canned query `/papers/related?paper_id=...` given an id that no paper has answers 404
(NotAPaper), where it listed no rows as if the paper had no related ones: in HTML the page
of an unknown paper (plugins/site_pages.py), with its link to the approximate-title lookup;
in JSON Datasette's own error, `{"ok": false, "error": ..., "status": 404, "title": null}`,
as for an unknown row; in CSV the error as text (plugins/client_errors.py).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from typing import NamedTuple
from urllib.parse import quote_plus

from datasette import hookimpl
from datasette.utils import tilde_decode
from datasette.utils.asgi import NotFound
from datasette.views.database import QueryView

TOP_TERMS = 12  # distinctive words sent to the index
TITLE_WEIGHT = 3  # a title word counts as this many abstract words
PER_PAPER = 5
MIN_SHARED = 2  # one shared word is a coincidence more often than a relation
CANDIDATES = 25  # best bm25 matches checked for MIN_SHARED
# A term says something about a paper only if few papers hold it: at most MAX_DOC_SHARE of
# them, and past MIN_COMMON papers at most LARGE_DOC_SHARE (the terms sent to the index then
# hold few papers, which keeps the query fast on a large corpus).
MAX_DOC_SHARE = 0.2
MIN_COMMON = 64
LARGE_DOC_SHARE = 0.01
FTS_TABLE = "papers_fts"
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


RAW_WORD = re.compile(r"\w+")  # what is handed to the tokenizer, one word at a time


class Term(NamedTuple):
    """One index term of a paper: how often it occurs (title words weighted) and a word
    of the text that the tokenizer turns into exactly this term, for the query."""

    term: str
    count: int
    word: str | None  # None when the term only comes out of longer words (rare)


TOKENIZE = re.compile(r"tokenize\s*=\s*'((?:[^']|'')*)'", re.I)


def index_tokenizer(conn: sqlite3.Connection) -> str:
    """Return the tokenize option papers_fts was created with."""
    (sql,) = conn.execute(f"select sql from sqlite_master where name = '{FTS_TABLE}'").fetchone()
    return TOKENIZE.search(sql)[1].replace("''", "'")


def tokenizer(tokenize: str) -> sqlite3.Connection:
    """Return an in-memory database whose FTS5 table cuts text as papers_fts does."""
    conn = sqlite3.connect(":memory:")
    quoted = tokenize.replace("'", "''")
    conn.execute(f"create virtual table tok using fts5(title, abstract, tokenize='{quoted}')")
    conn.execute("create virtual table tok_terms using fts5vocab(tok, 'instance')")
    return conn


def index_terms(title: str, abstract: str, conn: sqlite3.Connection) -> dict[str, Term]:
    """Return the paper's index terms with their weighted counts; `conn` is a `tokenizer`."""
    conn.execute("delete from tok")
    conn.execute("insert into tok(rowid, title, abstract) values (0, ?, ?)", (title or "", abstract or ""))
    # Each distinct raw word alone, to learn which word gives which single term.
    words = sorted(set(RAW_WORD.findall(f"{title or ''} {abstract or ''}")))
    conn.executemany("insert into tok(rowid, title) values (?, ?)", enumerate(words, 1))
    counts: dict[str, int] = {}
    tokens_of: dict[int, list[str]] = {}
    for term, doc, column in conn.execute("select term, doc, col from tok_terms"):
        if doc == 0:
            counts[term] = counts.get(term, 0) + (TITLE_WEIGHT if column == "title" else 1)
        else:
            tokens_of.setdefault(doc, []).append(term)
    spelled = {}
    for doc, tokens in tokens_of.items():
        if len(tokens) == 1:
            spelled.setdefault(tokens[0], words[doc - 1])
    return {term: Term(term, count, spelled.get(term)) for term, count in counts.items()}


def telling(word: str | None) -> bool:
    """Whether a word can say what a paper is about (no stopword, number or initial)."""
    return word is not None and len(word) > 2 and not word.isdigit() and word.lower() not in STOPWORDS


def distinctive_terms(conn: sqlite3.Connection, terms: dict[str, Term]) -> list[tuple[float, Term]]:
    """Return the paper's TOP_TERMS most distinctive terms with their tf-idf, heaviest first."""
    if not terms:
        return []
    total = conn.execute("select count(*) from papers").fetchone()[0]
    limit = max(2, min(MAX_DOC_SHARE * total, max(MIN_COMMON, LARGE_DOC_SHARE * total)))
    names = [name for name, term in terms.items() if telling(term.word)]
    held = dict(conn.execute(
        f"select term, papers from terms where term in ({', '.join('?' * len(names))})", names))
    weighted = [((1 + math.log(terms[t].count)) * math.log((1 + total) / (1 + n)), t)
                for t, n in held.items() if 2 <= n <= limit]
    weighted.sort(key=lambda pair: (-pair[0], pair[1]))
    return [(weight, terms[term]) for weight, term in weighted[:TOP_TERMS]]


def fts_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def similar_papers(conn: sqlite3.Connection, paper_id: str) -> list[dict]:
    """Return up to PER_PAPER papers most like `paper_id`, best first, with the shared words.

    Each has rank, id, title, published, score (bm25 relevance: higher is closer) and
    shared_words (the distinctive words it shares with the paper, heaviest first, as the
    paper writes them).
    """
    paper = conn.execute("select rowid, title, abstract from papers where id = ?", (paper_id,)).fetchone()
    if paper is None:
        return []
    rowid, title, abstract = paper
    cutter = tokenizer(index_tokenizer(conn))
    chosen = distinctive_terms(conn, index_terms(title, abstract, cutter))
    if len(chosen) < MIN_SHARED:
        return []
    query = " OR ".join(fts_phrase(term.word) for _, term in chosen)
    weight = {term.term: w for w, term in chosen}
    spelling = {term.term: term.word.lower() for _, term in chosen}  # "decoding", not "decod"
    found = []
    for other, score in conn.execute(f"""
            select rowid, -bm25({FTS_TABLE}, 10.0, 1.0) as score from {FTS_TABLE}
            where {FTS_TABLE} match ? and rowid != ? order by score desc, rowid
            limit {CANDIDATES}""",
            (query, rowid)):
        row = conn.execute("select id, title, abstract, published from papers where rowid = ?",
                           (other,)).fetchone()
        shared = sorted(weight.keys() & index_terms(row[1], row[2], cutter).keys(),
                        key=lambda t: (-weight[t], t))
        if len(shared) >= MIN_SHARED:
            found.append({"rank": len(found) + 1, "id": row[0], "title": row[1],
                          "published": row[3], "score": round(score, 2),
                          "shared_words": ", ".join(spelling[t] for t in shared[:6])})
            if len(found) == PER_PAPER:
                break
    cutter.close()
    return found


@hookimpl
def prepare_connection(conn, database):
    """`related_papers(paper_id)`: the paper's related papers as a JSON array (SQL editor)."""
    if database != "papers":
        return

    def related_papers(paper_id):
        try:
            return json.dumps(similar_papers(conn, paper_id))
        except sqlite3.Error:  # a database without papers_fts or terms: no related papers
            return None

    conn.create_function("related_papers", 1, related_papers)


DATABASE = "papers"
RELATED_QUERY = "related"  # the canned query of metadata.yml that lists them


class NotAPaper(NotFound):
    """The related query was given an id that no paper has. plugins/site_pages.py draws
    the page of an unknown paper for its `missing_paper_id`."""

    def __init__(self, paper_id: str):
        words = quote_plus(" ".join(paper_id.replace("-", " ").split()))
        super().__init__(f'No paper has the id "{paper_id}" (ids are made from titles: '
                         f"/papers/fuzzy_title?title={words} finds papers by an approximate "
                         f"title)")
        self.missing_paper_id = paper_id


def refusing_ids_of_no_paper(query_data):
    """Wrap QueryView.data: the related query of an id that no paper has raises NotAPaper
    (related_papers() gives [] for it, as for a paper with no related ones, and the page
    said nothing but "0 results"). After the query, which costs nothing for such an id: a
    request that is wrong in itself (a `_shape` a query cannot give) keeps its 400."""
    async def data(self, request, sql, *args, **kwargs):
        result = await query_data(self, request, sql, *args, **kwargs)
        paper_id = request.args.get("paper_id")
        if (paper_id and kwargs.get("canned_query") == RELATED_QUERY
                and tilde_decode(request.url_vars["database"]) == DATABASE):
            found = await self.ds.get_database(DATABASE).execute(
                "select 1 from papers where id = :id", {"id": paper_id})
            if not found.rows:
                raise NotAPaper(paper_id)
        return result

    return data


@hookimpl
def startup(datasette):
    # Marked on the class, not the function: another plugin may wrap the function again.
    if not getattr(QueryView, "refuses_related_of_no_paper", False):  # once per process
        QueryView.data = refusing_ids_of_no_paper(QueryView.data)
        QueryView.refuses_related_of_no_paper = True
