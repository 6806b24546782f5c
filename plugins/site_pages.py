"""Data for the project's own templates: the front page, the paper page, ranked search.

Each function returns plain rows; the templates (templates/) render them with
Jinja's autoescaping on, so titles and abstracts always reach the page as text.
"""

import json
import os
from urllib.parse import quote_plus, urlencode

from datasette import Response, hookimpl
from datasette.database import QueryInterrupted
from datasette.filters import Filters
from datasette.utils import tilde_decode
from datasette.utils.asgi import NotFound

DATABASE = "papers"
RANKED_LIMIT = 10


async def select(datasette, sql, params=None):
    result = await datasette.get_database(DATABASE).execute(sql, params or {})
    return [dict(row) for row in result.rows]


async def front_page_facts(datasette):
    """Return the counts and build facts the front page shows."""
    (counts,) = await select(datasette, """
        select
          (select count(*) from papers) as papers,
          (select count(*) from dumps) as dumps,
          (select count(*) from sightings) as sightings,
          (select count(*) from organizations) as organizations,
          (select count(*) from organizations where latitude is not null) as placed,
          (select count(*) from problems) as problems,
          (select count(*) from merges) as merges,
          (select count(published) from papers) as dated,
          (select min(published) from papers) as earliest,
          (select max(published) from papers) as latest
    """)
    # Only the facts shown: build_info.dumps grows with every dump, and the SQL limits
    # (sql_limits.py) would refuse a value that outgrew them.
    info = {row["key"]: row["value"] for row in await select(
        datasette, "select key, value from build_info where key in ('built_at', 'git_commit')")}
    newest = await select(datasette, """
        select name, capture_date, capture_text, capture_method, new_papers from dumps
        order by position desc limit 1
    """)
    return {"counts": counts, "build": info, "newest_dump": newest[0] if newest else None,
            "file": download_facts(datasette.get_database(DATABASE))}


def download_facts(db):
    """Return the size and sha256 of the file `/papers.db` sends, or None if it sends none:
    someone who resumed a download with `curl -C -` checks the file against the sha256
    (plugins/download.py computes it in a thread at start; the front page waits for it)."""
    if db.is_mutable or db.is_memory or not db.path:
        return None
    size = os.path.getsize(db.path)
    return {"bytes": size, "size": file_size(size), "sha256": db.hash}


def file_size(size: int) -> str:
    """Return a size in bytes as the site writes it, in decimal units: "2.4 MB"."""
    return next(f"{size / 1000 ** power:,.1f} {unit}" for power, unit in
                ((3, "GB"), (2, "MB"), (1, "kB"), (0, "B")) if size >= 1000 ** power or not power)


async def paper_page(datasette, paper_id):
    """Return the paper, its sightings and its related papers."""
    paper = await select(datasette, "select * from papers where id = :id", {"id": paper_id})
    if not paper:
        return {}
    sightings = await select(datasette, """
        select sightings.*, dumps.capture_date, dumps.capture_text, dumps.capture_method
        from sightings join dumps on dumps.name = sightings.dump
        where paper_id = :id order by dumps.position, sightings.position
    """, {"id": paper_id})
    # related_papers() is the SQL function of plugins/related_papers.py.
    (found,) = await select(datasette, "select related_papers(:id) as papers", {"id": paper_id})
    related = json.loads(found["papers"] or "[]")
    merges = await select(datasette, "select * from merges where paper_id = :id order by id",
                          {"id": paper_id})
    # Why the paper carries each topic, shown beside it: "title: EEG; abstract: EEG, MEG".
    topics = await select(datasette, """
        select topics.id, topics.label, group_concat(fields.field || ': ' || fields.matched,
          '; ') as evidence
        from (select topic, field, group_concat(matched, ', ') as matched from paper_topics
              where paper_id = :id group by topic, field order by topic, field desc) as fields
        join topics on topics.id = fields.topic
        group by topics.id order by topics.rowid
    """, {"id": paper_id})
    title = paper[0]["title"]
    return {
        "paper": paper[0], "sightings": sightings, "related": related, "merges": merges,
        "topics": topics,
        "huggingface_url": "https://huggingface.co/papers?q=" + quote_plus(title),
        "arxiv_url": "https://arxiv.org/search/?searchtype=title&query=" + quote_plus(title),
    }


async def ranked_matches(datasette, request):
    """Return the best matches for the table page's search, within the same filters as the
    table below it: column filters (on any column, shown or hidden by `_col`/`_nocol`),
    `_where` clauses, and the search read raw or escaped as `_searchmode` says. A page
    filtered in a way this cannot repeat (`_through`, a search of one column) gets no
    ranked list rather than one that contradicts the table."""
    search = request.args.get("_search", "").strip()
    if not search or any(key == "_through" or key.startswith("_search_") for key in request.args):
        return {}
    columns = await datasette.get_database(DATABASE).table_columns("papers")
    pairs = [(key, value) for key in request.args.keys() for value in request.args.getlist(key)
             if not key.startswith("_") and key.split("__")[0] in columns]
    where, params = filter_clauses(pairs, request, read_from_index=False)
    raw = request.args.get("_searchmode") == "raw"
    operators = {} if raw else fts_operators_in(search, request)
    try:
        ranked = None
        if where:  # the best matches of all first: see best_first_sql
            ranked = await select(datasette, best_first_sql(" and ".join(where), raw),
                                  {**params, "search": search})
        if ranked is None or len(ranked) < RANKED_LIMIT:
            indexed, indexed_params = filter_clauses(pairs, request, read_from_index=True)
            within = (f"and +rowid in (select rowid from papers where {' and '.join(indexed)})"
                      if indexed else "")
            ranked = await select(datasette, ranked_sql(within, RANKED_LIMIT, raw),
                                  {**indexed_params, "search": search})
    except QueryInterrupted:
        # A common word matches most papers: if ranking them all outlasts the SQL time
        # limit, the page still lists the matches (Datasette's own search), unranked.
        return {"ranked_search": search, "ranked_too_slow": True, **operators}
    return {"ranked": ranked, "ranked_search": search, "ranked_raw": raw,
            "ranked_filtered": bool(where), **operators}


def filter_clauses(pairs: list[tuple[str, str]], request,
                   read_from_index: bool) -> tuple[list[str], dict]:
    """Return the page's filters as clauses on papers, with their parameters: Datasette's
    own, or (`read_from_index`) with the list facets' filters read from an index
    (LIST_FILTERS). `_where` clauses are kept as written."""
    listed = [pair for pair in pairs if read_from_index and pair[0] in LIST_FILTERS]
    where, params = Filters(sorted(pair for pair in pairs if pair not in listed)
                            ).build_where_clauses("papers")
    where += [f"({clause})" for clause in request.args.getlist("_where")]
    for number, (key, value) in enumerate(listed):
        where.append(LIST_FILTERS[key](f"listed{number}"))
        params[f"listed{number}"] = value
    return where, params


def papers_with_topic(parameter: str) -> str:
    """Return the clause of the papers that carry the topic named by `parameter`, read from
    paper_topics' index rather than from each paper's JSON list."""
    return (f"rowid in (select carrier.rowid from paper_topics as evidence "
            f"join papers as carrier on carrier.id = evidence.paper_id "
            f"where evidence.topic = :{parameter})")


def papers_seen_in(parameter: str) -> str:
    """Return the clause of the papers a sighting of the dump named by `parameter` shows,
    read from the sightings' index (search_plan.py gives the table below the same hint)."""
    return (f"rowid in (select carrier.rowid from sightings as sighting "
            f"join papers as carrier on carrier.id = sighting.paper_id "
            f"where sighting.dump = :{parameter})")


# The list facets' filters (`topics__arraycontains=EEG`), which Datasette writes as a JSON
# lookup in every paper's list: to rank "neural" within a topic at a million papers that
# read all 750,000 papers' topics (1.8 s, past the SQL time limit). The same papers come
# from an index: paper_topics' (a paper carries a topic exactly when it has that topic's
# evidence rows: both come from one topics.topics_of_chunk) and the sightings' (a paper's
# list of dumps is that of its sightings); tests hold both equal. A topic: 0.4 s.
LIST_FILTERS = {"topics__arraycontains": papers_with_topic,
                "dumps__arraycontains": papers_seen_in}


# The best matches of the whole index a filtered search looks through first.
RANKED_FIRST = 1_000


def best_first_sql(where: str, raw: bool = False) -> str:
    """Return the ranked query of a filtered search that looks for its best matches among
    the RANKED_FIRST best of all matches, checking the filters (`where`, Datasette's own
    clauses on papers) on each of them alone.

    When RANKED_LIMIT of them pass, they are the best within the filters: every other match
    ranks below all of them. A filter that most papers pass (a topic of half of a million
    papers) is thus never read whole: "neural" within such a topic lost its ranking at the
    SQL time limit, reading 480,000 papers' topics to rank 360,000 matches. Fewer passing
    (a rare filter) leaves the ranking to ranked_sql, which reads the filter first.
    """
    match = ":search" if raw else "escape_fts(:search)"
    return f"""
        with best as (
          select rowid, bm25(papers_fts, 10.0, 1.0) as rank
          from papers_fts
          where papers_fts match {match}
          order by rank, rowid limit {RANKED_FIRST}
        ),
        passed as (
          select best.rowid, best.rank from best
          where exists (select 1 from papers where papers.rowid = best.rowid and {where})
          order by best.rank, best.rowid limit {RANKED_LIMIT}
        )
        {rows_of_the_best("passed", match)}
    """


def ranked_sql(within: str, limit: int, raw: bool = False) -> str:
    """Return the ranked-search query: the best `limit` matches (rowid breaks ties).

    Ranking is done on the full-text index alone, and the snippets and rows are fetched for
    the best matches only: a word that matches most of a million papers would otherwise
    cost a snippet and a row read for every match (three times slower at 300,000 papers).
    `within` restricts the matches to the rowids of papers that pass the page's filters,
    written `+rowid in (...)`: with a bare `rowid in`, SQLite hands the filter's list to the
    full-text index as rowids to look up, one full-text query per paper of the list, and at a
    million papers every filtered search (a year, an organization, a topic; even a word of
    two matches) ran past the time limit and lost its ranking. The unary `+` keeps the list
    a check on each match (a year: over 5 s -> 0.15 s for "neural", 0.04 s for "zebrafish").
    The canned query `search` in metadata.yml has the same shape. `raw` reads the search as
    FTS5 syntax (`_searchmode=raw`), as Datasette's table does.
    """
    match = ":search" if raw else "escape_fts(:search)"
    return f"""
        with best as (
          select rowid, bm25(papers_fts, 10.0, 1.0) as rank
          from papers_fts
          where papers_fts match {match} {within}
          order by rank, rowid limit {limit}
        )
        {rows_of_the_best("best", match)}
    """


def rows_of_the_best(ranked: str, match: str) -> str:
    """Return the select of the ranked box's rows, with their snippets, for the matches of
    the table `ranked` (rowid, rank), best first."""
    return f"""
        select papers.id, papers.title, papers.published, papers.organization,
          snippet(papers_fts, 1, '[[hl]]', '[[/hl]]', ' … ', 30) as snippet, {ranked}.rank
        from {ranked}  -- cross join: SQLite keeps this order, the best matches first
        cross join papers_fts on papers_fts.rowid = {ranked}.rowid
        cross join papers on papers.rowid = {ranked}.rowid
        where papers_fts match {match}
        order by {ranked}.rank, {ranked}.rowid"""


FTS_OPERATORS = ("AND", "OR", "NOT")


def fts_operators(search: str) -> list[str]:
    """Return the FTS5 operators a search writes as FTS5 reads them (AND, OR, NOT in capitals,
    a word ending in *), each once.

    A search box quotes every word (Datasette's escape_fts, and the canned search): "brain
    OR eeg" looked for papers holding the word "or" as well, 8 where "brain" alone finds 106,
    and said nothing."""
    return list(dict.fromkeys(word for word in search.split() if word in FTS_OPERATORS or
                              (word.endswith("*") and word.strip("*"))))


def fts_operators_in(search: str, request) -> dict:
    """Return the operators of the table page's search with a link to the same page
    searching in FTS5's syntax; {} if it writes none."""
    operators = fts_operators(search)
    if not operators:
        return {}
    pairs = [(key, value) for key in request.args.keys() for value in request.args.getlist(key)
             if key not in ("_next", "_searchmode")]  # the raw search starts on its first page
    return {"ranked_operators": operators,
            "ranked_raw_url": f"{request.path}?{urlencode([*pairs, ('_searchmode', 'raw')])}"}


# How a capture date's year was obtained, when the year is not certain (dumps.capture_method):
# the date is shown with it, since "2026-02-09" alone reads as known.
INFERRED_YEAR_NOTES = {"inferred": "year inferred", "inferred_earliest": "earliest possible year"}


def inferred_year_note(capture_method) -> str:
    """Return " (year inferred)" or " (earliest possible year)" to follow a capture date whose
    year the build inferred, and nothing after one whose year was stated or read."""
    note = INFERRED_YEAR_NOTES.get(capture_method)
    return f" ({note})" if note else ""


def plural(count, noun: str) -> str:
    """Return `noun` as a count of `count` takes it: "1 paper", "0 papers", "3 papers"."""
    return noun if count == 1 else noun + "s"


@hookimpl
def prepare_jinja2_environment(env):
    env.filters["plural"] = plural
    env.filters["inferred_year_note"] = inferred_year_note
    env.filters["fts_operators"] = fts_operators


@hookimpl
def extra_template_vars(view_name, table, request, columns, datasette):
    async def inner():
        if view_name == "index":
            return await front_page_facts(datasette)
        if view_name == "row" and table == "papers":
            return await paper_page(datasette, tilde_decode(request.url_vars["pks"]))
        if view_name == "table" and table == "papers" and request is not None:
            return await ranked_matches(datasette, request)
        if view_name == "database":
            # Its download link's size, as the front page writes it: Datasette's own
            # format_bytes counts MB of 1,024 KB, and the two pages gave 2.3 and 2.4 MB.
            return {"format_bytes": file_size}
        return {}

    return inner


def missing_paper_id(request, exception) -> str | None:
    """Return the id of a paper page that was not found, or of the related papers of no
    paper (plugins/related_papers.py, NotAPaper), or None for any other error (and for the
    JSON or CSV of those pages, whose 404 Datasette writes as its own)."""
    url_vars = getattr(request, "url_vars", None) or {}
    if getattr(exception, "missing_paper_id", None) is not None:
        return None if url_vars.get("format") else exception.missing_paper_id
    if not (isinstance(exception, NotFound) and url_vars.get("database") == DATABASE
            and url_vars.get("table") == "papers" and "pks" in url_vars
            and not url_vars.get("format")):
        return None
    return tilde_decode(url_vars["pks"])


@hookimpl
def handle_exception(datasette, request, exception):
    """An unknown paper id gets a 404 page that says so and links the approximate-title
    query for its words (ids are slugs of titles, so an old or mistyped link still names the
    paper), where Datasette said only "Record not found"."""
    paper_id = missing_paper_id(request, exception)
    if paper_id is None:
        return None

    async def inner():
        words = " ".join(paper_id.replace("-", " ").split())
        return Response.html(await datasette.render_template("row-papers-papers.html", {
            "paper": None, "missing_id": paper_id, "words": words,
            "database": DATABASE, "table": "papers",
        }, request=request), status=404)

    return inner
