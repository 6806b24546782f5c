"""Let SQLite choose how to read a table page's search and its list filters: from the
matches, or along an index.

Datasette writes `?_search=` as `<fts_pk> in (select rowid from papers_fts where ...)`.
With the default fts_pk, rowid, SQLite always reads the papers from that list: it takes the
list to be short (it cannot know a word's frequency), looks up every match by rowid, then
sorts them. A common word matches half of a million papers, and looking up 540,000 rows to
show the newest 50 took 1.3 s of the site's 1.5 s limit (2.5-2.9 s with a topic filter
too: the page failed).

So metadata.yml sets fts_pk to `search_rowid`, a plain copy of the rowid that the build
writes (and checks) and that only the date index carries: SQLite cannot look rows up by
it, so it walks the index of the page's sort, newest first, and stops at the 50th paper
that matched. Measured at a million papers: "neural" 1,340 -> 140 ms, "neural" within a
topic 2,850 -> 120 ms.

Walking an index is the wrong way for a search with few matches: a rare word sorted by a
column whose index does not carry search_rowid took 1.6 s, against 0 ms from its two
matches. And a sort on a column without an index has no index to walk. In both cases this
hook adds Datasette's own clause on the rowid beside it, and SQLite reads the matches by
rowid as before. A search is rare when the index holds fewer than COMMON_MATCHES matches,
read from the index up to that number (a few ms).

The page's count of a search with no other filter is read from the full-text index alone.
Datasette counts the page's rows with `select count(*) from papers where search_rowid in
(select rowid from papers_fts where ...)`, which walks the whole date index (750,000
entries at a million papers) to test each against the matches: "neural" took 610-710 ms of
its page for its 539,307 matches. The index holds one row per paper, under the paper's
rowid, which is its search_rowid (the build checks both: write.check_search_rowids, and the
index against the papers' texts), and the file is served immutable (a mutable database,
whose index could lag behind its table, keeps Datasette's count); so `select count(*)
from papers_fts where papers_fts match ...` is the same number, in 19 ms. Only that exact
count is rewritten (either way this hook writes the search, escaped or raw); a count with
any other filter is SQLite's to plan, as before.

Also, a search with nothing left to search for once quoted (`"`, a space) matches nothing
instead of failing: Datasette's escape_fts() turns it into an empty string, which FTS5
refuses as a syntax error ("Invalid SQL" on the table page, a 400 on a canned query).

And escape_fts() gives each phrase once: a search of one word 300 times (`brain brain ...`,
or `Brain, brain. BRAIN`) was 300 phrases of the same term, and snippet() weighs every
phrase's every occurrence against every other's: the ranked search's 100 snippets took
1.2 s for 300 phrases (0.005 s for one) and the page hit the SQL time limit. Phrases are
the same when their texts are the same but for the case of ASCII letters and the ASCII
characters between words: FTS5's tokenizer (unicode61, as papers_fts declares it) folds the
one and splits words at the other, so both give the same terms and every search matches
the same papers. Repeating a word no longer weighs it more in the ranking.

The list facets' filters (`?dumps__arraycontains=`, and the count of `?topics__arraycontains=`)
get the same papers from an index beside Datasette's JSON lookup: see DUMP_FILTER and
count_with_topic_hints. So does a column filter few papers pass: see rare_filter_hints.
Such a filter's few papers are then where SQLite starts, rather than a search's matches.
"""

import re

import sqlite3

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.filters import FilterArguments, Filters
from datasette.utils import escape_fts as quoted_words
from datasette.utils import escape_sqlite

# At or above this many matches the page walks an index: reading that many rows by rowid
# costs about 25 ms, and an index walk meets a match every 100 papers or sooner at a
# million papers, so it finds 50 within a few thousand rows.
COMMON_MATCHES = 10_000


PHRASE = re.compile(r'"[^"]*"')  # a phrase as Datasette's escape_fts writes it, bar line breaks
ASCII_UPPER_TO_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
ASCII_BETWEEN_WORDS = re.compile(r"[\x00-/:-@\[-`{-\x7f]+")  # ASCII but letters and digits


def same_terms(phrase: str) -> str:
    """Return a phrase's text as FTS5's tokenizer is sure to read it: ASCII letters in lower
    case, the ASCII characters between words as one space."""
    return ASCII_BETWEEN_WORDS.sub(" ", phrase.translate(ASCII_UPPER_TO_LOWER)).strip()


def escape_fts(query) -> str | None:
    """Datasette's escape_fts, but with each phrase once (see above), and with nothing to
    search for as `""`, the empty phrase, which FTS5 matches with no row. Like SQLite's own
    functions, it gives NULL for NULL and reads a number as its text and a blob as UTF-8
    (Datasette's raised an exception)."""
    if query is None:
        return None
    if isinstance(query, bytes):
        query = query.decode("utf-8", "replace")
    quoted = quoted_words(str(query))
    found = PHRASE.findall(quoted)
    if " ".join(found) != quoted:
        # Not phrases alone: Datasette's quoting does not pair quotes across a line break
        # ('"brain\neeg' gives '"brain "eeg""'), and FTS5 reads what it wrote as it is.
        return quoted
    phrases = {}
    for phrase in found:
        phrases.setdefault(same_terms(phrase), phrase)
    return " ".join(phrases.values()) or '""'


@hookimpl(trylast=True)  # after Datasette's own registration of escape_fts, to replace it
def prepare_connection(conn):
    conn.create_function("escape_fts", 1, escape_fts, deterministic=True)


def match_expression(table_metadata: dict, request) -> str:
    """Return the match parameter as Datasette's own search writes it (raw or escaped)."""
    raw = table_metadata.get("searchmode") == "raw"
    raw = {"escaped": False, "raw": True}.get(request.args.get("_searchmode"), raw)
    return ":search" if raw else "escape_fts(:search)"


def sort_column(table_metadata: dict, request) -> str | None:
    """Return the column the page is sorted by (Datasette's rule: the request's, else the
    table's default), or None."""
    sort, sort_desc = request.args.get("_sort"), request.args.get("_sort_desc")
    if not sort and not sort_desc:
        sort, sort_desc = table_metadata.get("sort"), table_metadata.get("sort_desc")
    return sort or sort_desc


def leading_index_columns(conn, table: str) -> set[str]:
    """Return the columns that lead an index of `table`: the sorts SQLite can walk."""
    return {row[0] for row in conn.execute(
        "select info.name from pragma_index_list(?) as list, pragma_index_info(list.name) "
        "as info where info.seqno = 0", [table])}


# A click on the dumps facet filters the papers by `dumps__arraycontains=<dump>`, which
# Datasette writes as a JSON lookup in every paper's list of dumps: at a million papers the
# page read 750,000 lists for a dump's 60 papers (its rows 0.3-1.4 s, its count 0.4 s, with
# a search 0.5-0.7 s each). Beside Datasette's own clause, this adds the same papers read
# from the sightings' index of dumps, which SQLite then starts from (0-70 ms). Datasette's
# clause stays, so the rows are Datasette's whatever the hint says (and the build writes
# each paper's list from its sightings: a test holds the two equal).
DUMP_FILTER = "dumps__arraycontains"


def papers_seen_in(parameter: str) -> str:
    """Return the clause of the papers that a sighting of the dump named by `parameter`
    shows, read through the sightings' index on (dump, position)."""
    return (f"rowid in (select carrier.rowid from sightings as sighting "
            f"join papers as carrier on carrier.id = sighting.paper_id "
            f"where sighting.dump = :{parameter})")


# A topic facet's filter (`?topics__arraycontains=`) is Datasette's JSON lookup too. For a
# topic most papers carry, the page's rows walk the date index and stop at their 26th (a
# list of 190,000 papers to start from made that slower: 0.001 -> 0.56 s), so only its count
# gets paper_topics' papers (count_with_topic_hints). A topic few papers carry (fewer than
# COMMON_MATCHES evidence rows), or one none does (a mistyped link), gets them for its rows
# too: at a million papers a topic of no paper walked all 750,000 papers' lists and the page
# failed with 400 at the SQL time limit.
TOPIC_FILTER = "topics__arraycontains"


def papers_with_topic(parameter: str) -> str:
    """Return the clause of the papers that carry the topic named by `parameter`, read
    through paper_topics' index on (topic, paper_id)."""
    return (f"rowid in (select carrier.rowid from paper_topics as evidence "
            f"join papers as carrier on carrier.id = evidence.paper_id "
            f"where evidence.topic = :{parameter})")


async def rare_topic_hints(request, database, table, datasette) -> FilterArguments | None:
    topics = request.args.getlist(TOPIC_FILTER) if table == "papers" else []
    clauses, params = [], {}
    for number, topic in enumerate(topics):
        try:
            (evidence,) = (await datasette.get_database(database).execute(
                f"select count(*) from (select 1 from paper_topics where topic = :topic "
                f"limit {COMMON_MATCHES})", {"topic": topic})).first()
        except (sqlite3.Error, QueryInterrupted):
            continue
        if evidence < COMMON_MATCHES:
            clauses.append(papers_with_topic(f"with_topic_{number}"))
            params[f"with_topic_{number}"] = topic
    return FilterArguments(clauses, params=params) if clauses else None


def dump_filter_hints(request, table: str) -> FilterArguments | None:
    dumps = request.args.getlist(DUMP_FILTER) if table == "papers" else []
    if not dumps:
        return None
    return FilterArguments([papers_seen_in(f"seen_in_{n}") for n in range(len(dumps))],
                           params={f"seen_in_{n}": dump for n, dump in enumerate(dumps)})


# A column filter that few rows pass, on a page sorted along another index: SQLite takes
# the filter's value to be as common as the column's average (stat1 knows no more), so it
# walks the sort's index and tests every row. At a million papers `?date_method=page`, a
# value no paper has, walked all 750,000 papers (1.1 s; with a common word's search 3 s, past
# the SQL time limit, so the page failed with 400), and so did `?published_year__gt=2030`.
# When the column's index holds fewer than COMMON_MATCHES rows for the filter (read from the
# index up to that number, a few ms), this adds the same rows' rowids beside Datasette's
# clause, and SQLite starts from them: 0 ms. Datasette's clause stays, so the rows are its own.
INDEX_FRIENDLY_FILTERS = {"exact", "gt", "gte", "lt", "lte", "in", "isnull"}


def rare_rows_clause(table: str, clause: str) -> str:
    """Return the clause of the rows of `table` that pass `clause`, as a list of rowids."""
    return f"rowid in (select rare.rowid from {escape_sqlite(table)} as rare where {clause})"


def renamed_parameters(clause: str, params: dict, prefix: str) -> tuple[str, dict]:
    """Return Datasette's clause and parameters with each `:pN` named `:<prefix>N` instead,
    so that they do not collide with the page's own."""
    renamed = re.sub(r":p(\d+)\b", rf":{prefix}\1", clause)
    return renamed, {f"{prefix}{name[1:]}": value for name, value in params.items()}


async def rare_filter_hints(request, database, table, datasette) -> FilterArguments | None:
    """Return, for each column filter of the page that fewer than COMMON_MATCHES rows pass,
    the same rows read from the column's index (see above); None if there is none."""
    pairs = [(key, value) for key in request.args if not key.startswith("_")
             for value in request.args.getlist(key)]
    db = datasette.get_database(database)
    if not pairs or not await db.execute_fn(lambda conn: has_rowid(conn, table)):
        return None
    indexed = await db.execute_fn(lambda conn: leading_index_columns(conn, table))
    clauses, params = [], {}
    for number, pair in enumerate(pairs):
        filters = Filters([pair])
        if not any(column in indexed and lookup in INDEX_FRIENDLY_FILTERS
                   for column, lookup, _ in filters.selections()):
            continue
        (clause,), values = filters.build_where_clauses(table)
        clause, values = renamed_parameters(clause, values, f"rare_{number}_")
        try:
            (rows,) = (await db.execute(
                f"select count(*) from (select 1 from {escape_sqlite(table)} where {clause} "
                f"limit {COMMON_MATCHES})", values)).first()
        except (sqlite3.Error, OverflowError, QueryInterrupted):  # Datasette's own query says why
            continue
        if rows < COMMON_MATCHES:
            clauses.append(rare_rows_clause(table, clause))
            params.update(values)
    return FilterArguments(clauses, params=params) if clauses else None


def has_rowid(conn, table: str) -> bool:
    """True if `table` is a table with a rowid (not a view, nor WITHOUT ROWID)."""
    return conn.execute("select count(*) from pragma_table_list where name = ? and "
                        "schema = 'main' and type = 'table' and not wr", [table]).fetchone()[0] > 0


@hookimpl
def filters_from_request(request, database, table, datasette):
    async def inner():
        hints = [arguments for arguments in (dump_filter_hints(request, table),
                                             await rare_topic_hints(request, database, table,
                                                                    datasette),
                                             await rare_filter_hints(request, database, table,
                                                                     datasette)) if arguments]
        # A filter's few rows are a shorter list to start from than a search's matches:
        # given both, SQLite started from the search's (a topic no paper carries, with
        # "neural" sorted by title: 0.95 s for the rows, 0.9 s for the count, at a million).
        search = None if hints else await search_filter(request, database, table, datasette)
        found = [arguments for arguments in (search, *hints) if arguments]
        if not found:
            return None
        return FilterArguments(
            [clause for arguments in found for clause in arguments.where_clauses],
            params={name: value for arguments in found for name, value in arguments.params.items()})

    return inner


async def search_filter(request, database, table, datasette) -> FilterArguments | None:
    """Return the search's clause as the module's docstring says (None: Datasette's own)."""
    table_metadata = datasette.table_metadata(database, table)
    # As Datasette's own search reads them (a visitor may name others).
    fts_table = request.args.get("_fts_table") or table_metadata.get("fts_table")
    fts_pk = request.args.get("_fts_pk", table_metadata.get("fts_pk", "rowid"))
    search = request.args.get("_search")
    if not search or not fts_table or fts_pk == "rowid":
        return None
    db = datasette.get_database(database)
    fts, match = escape_sqlite(fts_table), match_expression(table_metadata, request)
    sort = sort_column(table_metadata, request)
    walkable = sort in (None, "rowid") or sort in await db.execute_fn(
        lambda conn: leading_index_columns(conn, table))
    if walkable:
        try:
            (matches,) = (await db.execute(
                f"select count(*) from (select rowid from {fts} where {fts} match {match} "
                f"limit {COMMON_MATCHES})", {"search": search})).first()
        except (sqlite3.OperationalError, QueryInterrupted):  # a search the index refuses: Datasette's own query says why
            return None
        if matches >= COMMON_MATCHES:
            return None
    return FilterArguments(
        [f"rowid in (select rowid from {fts} where {fts} match {match})"],
        params={"search": search})


def search_only_counts(table: str, fts_table: str, fts_pk: str) -> dict[str, str]:
    """Return the count SQL Datasette writes for a page of `table` filtered by its search
    alone, each mapped to the same count read from the full-text index alone. (facets.py's
    search_clauses knows the same clauses: plugins are loaded apart and import nothing of
    each other; tests hold both to the SQL Datasette runs.)"""
    counts = {}
    for match in (":search", "escape_fts(:search)"):
        fts = escape_sqlite(fts_table)
        matches = f"(select rowid from {fts} where {fts} match {match})"
        by_pk = f"{escape_sqlite(fts_pk)} in {matches}"
        from_index = f"select count(*) from {fts} where {fts} match {match}"
        for where in (by_pk, f"rowid in {matches} and {by_pk}"):  # common, then rare searches
            counts[f"select count(*) from {escape_sqlite(table)} where {where}"] = from_index
    return counts


# Datasette counts a page filtered by the topics facet (`?topics__arraycontains=EEG`) by
# reading every paper's list of topics: 0.8 s at a million papers, 1.2 s beside a common
# word's search, of the 1.5 s the SQL time limit allows. paper_topics' index holds the same
# papers (a paper carries a topic exactly when it has evidence for it; a test holds them
# equal): the count gets them beside its own clause, and SQLite starts from them (0.54 and
# 0.65 s; a topic of 39,000 papers 0.13 and 0.26 s). The count alone: the page's rows walk
# the date index and stop at their 26th, which a list of 190,000 papers to start from made
# slower (0.001 -> 0.56 s).
COUNT_OF_PAPERS = "select count(*) from papers where "
TOPIC_CONTAINS = re.compile(r':(p\d+) in \(select value from json_each\("papers"\."topics"\)\)')


def count_with_topic_hints(sql: str) -> str:
    """Return Datasette's count of papers with, for each topic filter, the papers that carry
    the topic from paper_topics' index AND-ed to its own clauses (so the same count)."""
    if not sql.startswith(COUNT_OF_PAPERS) or not (topics := TOPIC_CONTAINS.findall(sql)):
        return sql
    if "from paper_topics as evidence" in sql:  # the page's own rows have them (rare_topic_hints)
        return sql
    hints = "".join(f" and {papers_with_topic(parameter)}" for parameter in topics)
    return f"{COUNT_OF_PAPERS}({sql[len(COUNT_OF_PAPERS):]}){hints}"


# A page filtered by a topic most papers carry and by nothing else (a click on a value of
# the topics facet) has a count the build stored: topics.papers, the papers whose list holds
# it (a test holds it equal to counting the lists, as the topics facet of an unfiltered page
# reads it: facets.py's STORED_COUNTS). At a million papers the count of a topic two papers
# in three carry took 0.54 s from paper_topics' index beside the lists
# (count_with_topic_hints), and past the 1.5 s limit on a busy machine, where the page then
# says "many rows"; the stored count takes no time. A topic few or no papers carry has its
# rows hinted (rare_topic_hints), and a dump filter always (dump_filter_hints): their counts
# read the hint, a few ms.
ONE_TOPIC_FILTER = re.compile(r'select count\(\*\) from papers where '
                              r':(?P<param>p\d+) in \(select value from json_each\("papers"\.'
                              r'"topics"\)\)')


def count_stored_by_the_build(sql: str) -> str:
    """Return the stored count for Datasette's count of papers filtered by one topic alone
    (ONE_TOPIC_FILTER), else `sql`."""
    if (match := ONE_TOPIC_FILTER.fullmatch(sql)) is None:
        return sql
    return f"select coalesce((select papers from topics where id = :{match['param']}), 0)"


def counting_searches_from_the_index(db, counts: dict[str, str]) -> None:
    """Make db.execute read the counts in `counts` from the full-text index, count a
    topic's papers from what the build stored (count_stored_by_the_build), and a topic's
    papers with other filters from paper_topics (count_with_topic_hints)."""
    execute = db.execute

    async def execute_counting_from_the_index(sql, *args, **kwargs):
        if isinstance(sql, str):
            sql = sql.strip()
            sql = count_with_topic_hints(count_stored_by_the_build(counts.get(sql, sql)))
        return await execute(sql, *args, **kwargs)

    db.execute = execute_counting_from_the_index


@hookimpl
def startup(datasette):
    for name, db in datasette.databases.items():
        if db.is_mutable:  # its index may lag behind its table: Datasette's own count
            continue
        counts = {}
        for table, table_metadata in (datasette.metadata("tables", database=name) or {}).items():
            fts_table, fts_pk = table_metadata.get("fts_table"), table_metadata.get("fts_pk")
            if fts_table and fts_pk and fts_pk != "rowid":  # a search this hook plans
                counts.update(search_only_counts(table, fts_table, fts_pk))
        if counts:
            counting_searches_from_the_index(db, counts)
