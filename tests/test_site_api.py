"""The site through Datasette's own API, in-process: search, facets, queries, safety, download."""

from __future__ import annotations

import html
import json
import random
import re
import sqlite3
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
import yaml
from datasette.app import Datasette
from datasette.utils.asgi import Request

from conftest import ROOT, load_plugin, rows
from neuroai_papers.site import SETTINGS, site_paths
from neuroai_papers.write import TABLES

METADATA = yaml.safe_load((ROOT / "metadata.yml").read_text())
PAPERS = METADATA["databases"]["papers"]["tables"]["papers"]
QUERIES = METADATA["databases"]["papers"]["queries"]


@pytest.fixture(scope="session")
def ds(real_db):
    paths = site_paths()
    return Datasette(
        [],
        immutables=[str(real_db)],
        metadata=METADATA,
        plugins_dir=str(paths["plugins"]),
        template_dir=str(paths["templates"]),
        static_mounts=[("static", str(paths["static"]))],
        settings=SETTINGS,
    )


async def get_json(ds, path):
    response = await ds.client.get(path)
    assert response.status_code == 200, (path, response.text[:500])
    return response.json()


async def test_table_search_uses_the_stemmed_full_text_index(ds, real_db):
    data = await get_json(ds, "/papers/papers.json?_search=decode&_size=max&_shape=objects")
    titles = {row["title"] for row in data["rows"]}
    (expected,) = rows(real_db, "select count(*) from papers_fts where papers_fts match 'decode'")[0]
    assert len(titles) == expected
    assert "MindBridge: A Cross-Subject Brain Decoding Framework" in titles  # decoding -> decode


async def test_default_facets_come_back_with_counts_that_add_up(ds, real_db):
    data = await get_json(ds, "/papers/papers.json?_size=0")
    facets = data["facet_results"]
    assert set(facets) >= {"published_year", "organization", "authors", "dumps", "dumps_seen"}
    total = rows(real_db, "select count(*) from papers")[0][0]
    seen = {item["value"]: item["count"] for item in facets["dumps_seen"]["results"]}
    assert sum(seen.values()) == total
    assert not any(facet.get("truncated") is None for facet in facets.values())
    # Datasette's JSON leaves out the facets that gave up: every default one must be here.
    names = [f if isinstance(f, str) else next(iter(f.values())) for f in PAPERS["facets"]]
    assert set(facets) == set(names)


# Every way a page's facets are counted: nothing filtered, a search alone, a search with
# column and array filters (each clause read on its own), a clause of no known form (`_where`,
# the whole where clause read at once), and nothing matched.
FACET_PAGES = ["", "_search=fmri", "_search=spiking+network", "_search=spiking&published_year=2025",
               "_search=decoding&dumps_seen=1", "published_year=2024", "_search=zzzznothing",
               "topics__arraycontains=transformers", "_search=brain&topics__arraycontains=fMRI",
               "dumps__arraycontains=001_be74241cc718eecc.txt&dumps_seen__gt=1",
               "topics__arraycontains=no-such-topic", "_where=authors+>+5&_search=neural",
               "_search=model&_searchmode=raw&published_year__gte=2025",
               "_search=brain&date_method=page", "date_method=read&published_year__gt=2030",
               "topics__arraynotcontains=EEG", "_search=brain&topics__arraynotcontains=fMRI",
               "date_method__notblank=1&_search=brain", "dumps_seen__in=1,2",
               "date_method__isnull=1&_search=neural"]


def search_and_filters(page: str) -> tuple[str, list]:
    """Return the where clause and parameters that select the rows of a FACET_PAGES page."""
    clauses, params = ["1"], []
    for pair in filter(None, page.split("&")):
        key, value = pair.split("=")
        value = value.replace("+", " ")
        if key == "_searchmode":
            continue
        if key == "_search":
            clauses.append("papers.rowid in (select rowid from papers_fts where papers_fts match ?)")
        elif key == "_where":
            clauses.append(value)
            continue
        elif key.endswith("__arraycontains") or key.endswith("__arraynotcontains"):
            negated = "not " if key.endswith("__arraynotcontains") else ""
            clauses.append(f"? {negated}in (select value from json_each(papers.{key.split('__')[0]}))")
        elif key.endswith("__notblank") or key.endswith("__isnull"):  # as `=1`
            column = key.split("__")[0]
            clauses.append(f"papers.{column} is not null and papers.{column} != ''"
                           if key.endswith("__notblank") else f"papers.{column} is null")
            continue
        elif key.endswith("__in"):
            values = value.split(",")
            clauses.append(f"papers.{key.split('__')[0]} in ({', '.join('?' * len(values))})")
            params += [int(v) if v.isdigit() else v for v in values]
            continue
        elif key.endswith("__gt") or key.endswith("__gte"):
            column, lookup = key.split("__")
            clauses.append(f"papers.{column} {'>' if lookup == 'gt' else '>='} ?")
            value = int(value)
        else:
            clauses.append(f"papers.{key} = ?")
            value = int(value) if value.isdigit() else value
        params.append(value)
    return " and ".join(clauses), params


@pytest.mark.parametrize("page", FACET_PAGES)
async def test_list_facets_count_the_papers_holding_each_value(ds, real_db, page, search_plan):
    """The project's `list` facet (plugins/facets.py) counts what Datasette's array facet
    counts: the rows whose array holds the value, once per row. With nothing filtered it
    reads the counts the build stored (topics.papers, dumps.papers): they must agree."""
    ours = (await get_json(ds, f"/papers/papers.json?_size=0&{page}"))["facet_results"]
    where, params = search_and_filters(page)
    for column in ("topics", "dumps"):
        assert ours[column]["type"] == "list"
        expected = rows(real_db, f"""select j.value, count(distinct papers.rowid) from papers,
            json_each(papers.{column}) j where {where} group by 1""", params)
        counts = {(i["value"], i["count"]) for i in ours[column]["results"]}
        assert counts <= set(expected)
        assert len(counts) == min(len(expected), 30)  # the facet shows the 30 largest
        smallest_shown = min((count for _, count in counts), default=0)
        assert all(count <= smallest_shown for pair in set(expected) - counts for count in pair[1:])
        for item in ours[column]["results"]:  # links add the filter, or remove it if selected
            assert (f"{column}__arraycontains=" in item["toggle_url"]) != item["selected"], item


def loaded_plugin(name: str):
    """Return a plugin module as Datasette loaded it (its module state is the server's)."""
    from datasette.plugins import pm
    return pm.get_plugin(name)


def loaded_facets_plugin():
    return loaded_plugin("facets.py")


@pytest.fixture(params=["as_counted", "every_search_common"])
def search_plan(request, monkeypatch):
    """Run a test both ways plugins/search_plan.py reads a search: from its matches by rowid
    (every search of the seed papers matches few) and along an index (as a common word does
    at a million papers)."""
    if request.param == "every_search_common":
        monkeypatch.setattr(loaded_plugin("search_plan.py"), "COMMON_MATCHES", 1)
    return request.param


async def test_facets_of_a_search_alone_are_counted_in_memory(ds, real_db):
    """A search alone on an immutable database takes the in-memory path: the pairs of every
    declared facet column are loaded once, and the counts are SQL's (the tests around this one
    hold the SQL paths to Datasette's own facets)."""
    facets = loaded_facets_plugin()
    ours = (await get_json(ds, "/papers/papers.json?_size=0&_search=brain"))["facet_results"]
    loaded = facets.VALUE_INDEXES[ds]
    declared = [next(iter(f.items())) for f in PAPERS["facets"] if isinstance(f, dict)]
    assert {key[2] for key in loaded} == {column for _, column in declared}
    for kind, column in declared:
        index = loaded[("papers", "papers", column)].result(timeout=60)
        values = (f"papers, json_each(papers.{column}) j" if kind == "list" else "papers")
        value = "j.value" if kind == "list" else f"papers.{column}"
        assert len(index.rowids) == rows(real_db, f"select count(*) from {values} "
                                                  f"where {value} is not null")[0][0]
        expected = rows(real_db, f"""select {value}, count(*) from {values}
            where papers.rowid in (select rowid from papers_fts where papers_fts match 'brain')
            and {value} is not null group by 1 order by 2 desc, 1 limit 30""")
        assert [(i["value"], i["count"]) for i in ours[column]["results"]] == expected, column
        assert expected, column  # "brain" is common enough in the seed papers to count


@pytest.mark.parametrize("page, expected", [
    ("_search=brain&topics__arraycontains=fMRI&published_year=2025",  # with search_plan's
     [("sql", "papers_fts"), ("items", "topics"), ("sql", "published_year"),  # hints of a
      ("sql", "as rare"), ("sql", "from paper_topics")]),  # rare year and a rare topic
    ("dumps__arraycontains=001_be74241cc718eecc.txt&dumps_seen__gt=1",
     [("items", "dumps"), ("sql", "dumps_seen"), ("sql", "from sightings"), ("sql", "as rare")]),
    ("topics__arraynotcontains=EEG&date_method__notblank=1&dumps_seen__in=1,2",
     [("items_not", "topics"), ("sql", "is not null and"), ("sql", "dumps_seen in"),
      ("sql", "as rare")]),
    ("published__date=2025-06-01&organization__notin=x&title__contains=brain",
     [("sql", "date("), ("sql", "not in"), ("sql", "like")]),
    ("_where=authors+>+5&_search=neural", None),
])
async def test_each_filter_of_a_page_is_read_its_own_way(ds, page, expected):
    """The facets find a page's rows clause by clause: the search from the full-text index,
    array filters from the pairs in memory, Datasette's other filters and search_plan.py's
    hints from SQL; a clause of another form (a visitor's own SQL) leaves the counting to
    Datasette."""
    facets = loaded_facets_plugin()
    sql = (await get_json(ds, f"/papers/papers.json?_size=0&{page}"))["query"]["sql"]
    sql = sql.split(" order by ")[0]  # the facets are handed the query without its order
    facet = SimpleNamespace(ds=ds, database="papers", table="papers", metadata=PAPERS,
                            request=Request.fake(f"/papers/papers?{page}"))
    sources = facets.rowid_sources(facet, facets.page_filters(sql))
    if expected is None:
        assert sources is None
        return
    assert sorted(kind for kind, *_ in sources) == sorted(kind for kind, _ in expected)
    for kind, shown in expected:
        assert any(found == kind and shown in detail for found, detail, *_ in sources), shown


def test_value_index_counts_like_sql_on_random_columns():
    """ValueIndex against SQLite on random data: an item repeated in an array counts once,
    ties are ordered by value as SQLite orders mixed types, nulls and empty arrays hold
    nothing, and no match counts every row."""
    facets = loaded_facets_plugin()
    generator = random.Random(7)
    conn = sqlite3.connect(":memory:")
    conn.execute("create table t (items text, plain)")
    names = [f"item-{n}" for n in range(40)] + ["Émile", "zeta", "Zeta"]
    plain = [None, 0, 1, 2, 2025, -3, 1.5, "a", "B", "b", "Émile", "10"]
    for _ in range(2000):
        items = generator.choices(names, k=generator.randint(0, 6))
        conn.execute("insert into t values (?, ?)", [
            None if generator.random() < 0.05 else json.dumps(items), generator.choice(plain)])
    lists = facets.ValueIndex.load(conn, "t", "items", is_list=True)
    plains = facets.ValueIndex.load(conn, "t", "plain", is_list=False)
    conn.execute("create table m (rowid_ integer primary key)")
    for attempt in range(21):
        every = attempt == 0
        matched = list(range(1, 2001)) if every else sorted(
            generator.sample(range(1, 2001), generator.randint(0, 2000)))
        conn.execute("delete from m")
        conn.executemany("insert into m values (?)", [(r,) for r in matched])
        expected_items = conn.execute("""select j.value, count(distinct t.rowid) from t,
            json_each(t.items) j where t.rowid in (select rowid_ from m)
            group by 1 order by 2 desc, 1 limit 31""").fetchall()
        expected_plain = conn.execute("""select plain, count(*) from t
            where rowid in (select rowid_ from m) and plain is not null
            group by 1 order by 2 desc, 1 limit 31""").fetchall()
        chosen = None if every else np.array(matched, dtype=np.int64)
        assert lists.counts(chosen, 31) == expected_items
        assert plains.counts(chosen, 31) == expected_plain


@pytest.mark.parametrize("page", FACET_PAGES)
async def test_indexed_facets_count_what_the_column_facet_counts(ds, real_db, page, search_plan):
    """The `indexed` facets read the column's index when only a search filters the page;
    their counts must be exactly Datasette's own column facet's on the same page."""
    ours = (await get_json(ds, f"/papers/papers.json?_size=0&{page}"))["facet_results"]
    columns = [next(iter(f.values())) for f in PAPERS["facets"]
               if isinstance(f, dict) and "indexed" in f]
    stock_url = f"/papers/papers.json?_size=0&{page}&" + "&".join(f"_facet={c}" for c in columns)
    stock = (await get_json(ds, stock_url))["facet_results"]
    for column in columns:
        assert ours[column]["type"] == "indexed"
        mine = [(i["value"], i["count"]) for i in ours[column]["results"]]
        assert mine == [(i["value"], i["count"]) for i in stock[column]["results"]], column
        for item in ours[column]["results"]:  # links filter with Datasette's own column filter
            assert (f"{column}=" in item["toggle_url"]) != item["selected"], item
    where, params = search_and_filters(page)
    (total,) = rows(real_db, f"select count(*) from papers where {where}", params)[0]
    assert sum(i["count"] for i in ours["dumps_seen"]["results"]) == total


def test_indexed_facets_use_the_index_only_when_a_search_alone_filters():
    facets = load_plugin("facets")
    search = ("select rowid, id, title from papers where rowid in (select rowid from "
              "papers_fts where papers_fts match escape_fts(:search))")
    assert facets.page_filters("select rowid, id from papers ") == ""
    assert facets.page_filters(search) in facets.search_clause("papers_fts")
    assert facets.page_filters(search + " and published_year = :p0") not in facets.search_clause("papers_fts")


async def test_a_facet_selection_narrows_the_rows(ds, real_db):
    year_counts = rows(real_db, "select published_year, count(*) from papers "
                                "where published_year is not null group by 1 order by 2 desc")
    year, count = year_counts[0]
    data = await get_json(ds, f"/papers/papers.json?published_year={year}&_size=0")
    assert data["filtered_table_rows_count"] == count
    dump_facet = await get_json(ds, "/papers/papers.json?_facet_array=dumps&_size=0")
    first = dump_facet["facet_results"]["dumps"]["results"][0]
    narrowed = await get_json(ds, "/papers/papers.json?_size=0&dumps__arraycontains=" + first["value"])
    assert narrowed["filtered_table_rows_count"] == first["count"]


def test_every_facet_and_sort_the_site_offers_is_backed_by_an_index(real_db):
    """Each table's default facets and declared sortable columns are read from an index (one
    that leads with the column, or the table's key): at a million papers a facet on a column
    without one read every row of paper_topics' 4.3 million and gave up at the facet limit,
    and a sort of them took 1.4 s of the 1.5 s SQL limit. (The list facets count papers'
    arrays in memory: plugins/facets.py.)"""
    conn = sqlite3.connect(real_db)
    tables = METADATA["databases"]["papers"]["tables"]
    checked = 0
    for table, table_metadata in tables.items():
        leading = {conn.execute(f"select name from pragma_index_info('{name}')").fetchone()[0]
                   for (name,) in conn.execute(f"select name from pragma_index_list('{table}')")}
        key = [name for name, pk in conn.execute(f"select name, pk from pragma_table_info('{table}')")
               if pk == 1]
        facets = [facet if isinstance(facet, str) else facet.get("indexed")
                  for facet in table_metadata.get("facets", [])]
        for column in [*filter(None, facets), *table_metadata.get("sortable_columns", [])]:
            assert column in leading or [column] == key[:1], (table, column)
            checked += 1
    assert checked >= len(PAPERS["facets"])
    conn.close()


async def test_ranked_search_query_highlights_and_orders_by_relevance(ds):
    data = await get_json(ds, "/papers/search.json?q=spiking&_shape=array")
    assert len(data) > 5
    assert [r["rank"] for r in data] == list(range(1, len(data) + 1))
    assert [r["score"] for r in data] == sorted((r["score"] for r in data), reverse=True)
    assert all("[[hl]]" in r["snippet"] or "spiking" in r["title"].lower() for r in data)
    page = await ds.client.get("/papers/search?q=spiking")
    assert "<strong>Spiking</strong>" in page.text or "<strong>spiking</strong>" in page.text


async def test_the_search_query_scores_a_word_most_papers_hold(ds, real_db):
    """For a word in most papers bm25 is close to 0: rounded to 2 places, every row's score
    read -0.0. The query numbers its matches and gives their scores unrounded, in order."""
    (word,) = rows(real_db, "select term from terms order by papers desc, term limit 1")[0]
    data = await get_json(ds, f"/papers/search.json?q={word}&_shape=array")
    expected = rows(real_db, """select papers.id, -bm25(papers_fts, 10.0, 1.0) from papers_fts
        join papers on papers.rowid = papers_fts.rowid where papers_fts match ?
        order by bm25(papers_fts, 10.0, 1.0), papers.rowid limit 100""", (f'"{word}"',))
    assert [r["rank"] for r in data] == list(range(1, len(expected) + 1))
    assert [r["paper_id"] for r in data] == [paper_id for paper_id, _ in expected]
    assert [r["score"] for r in data] == pytest.approx([score for _, score in expected], rel=1e-9)
    assert all(0 < r["score"] < 0.01 for r in data)  # close to 0, yet told apart


def ranked_reference(db, search, where="", params=(), limit=10):
    """The ranked matches as one plain query gives them: snippet and row for every match."""
    return rows(db, f"""
        select papers.id, snippet(papers_fts, 1, '[[hl]]', '[[/hl]]', ' … ', 30),
          round(bm25(papers_fts, 10.0, 1.0), 6)
        from papers_fts join papers on papers.rowid = papers_fts.rowid
        where papers_fts match ? {where}
        order by bm25(papers_fts, 10.0, 1.0), papers.rowid limit {limit}""", (search, *params))


@pytest.mark.parametrize("search", ["brain", "spiking", "decoding fmri", "neural"])
async def test_ranked_matches_are_the_best_of_all_matches_with_their_snippets(ds, real_db, search,
                                                                              monkeypatch):
    """The table page's best matches and the canned search rank on the index first and
    fetch snippets for the best only: the same papers, order and snippets as doing it all.
    A filtered search looks among the best matches of all first (site_pages.best_first_sql,
    here among 0, 5 and 1,000 of them), then within the filter: the same either way."""
    module = load_plugin("site_pages")
    year = rows(real_db, "select published_year from papers where published_year is not null "
                         "group by 1 order by count(*) desc limit 1")[0][0]
    topic = rows(real_db, "select topic from paper_topics group by topic "
                          "order by count(distinct paper_id) desc limit 1")[0][0]
    dump = rows(real_db, "select dump from sightings group by dump order by count(*) desc "
                         "limit 1")[0][0]
    for url_filter, where, params in (
            ("", "", ()),
            (f"&published_year={year}", "and published_year = ?", (year,)),
            (f"&topics__arraycontains={topic}",  # as Datasette's filter reads it
             "and ? in (select value from json_each(papers.topics))", (topic,)),
            (f"&dumps__arraycontains={dump}",
             "and ? in (select value from json_each(papers.dumps))", (dump,))):
        for first in (0, 5, 1_000):
            monkeypatch.setattr(module, "RANKED_FIRST", first)
            request = Request.fake(f"/papers/papers?_search={search}{url_filter}")
            found = await module.ranked_matches(ds, request)
            assert [(r["id"], r["snippet"], round(r["rank"], 6)) for r in found["ranked"]] == \
                ranked_reference(real_db, search, where, params)
            assert found["ranked"], search
    canned = await get_json(ds, f"/papers/search.json?q={search}&_shape=array")
    expected = ranked_reference(real_db, search, limit=100)
    assert [(r["paper_id"], r["snippet"]) for r in canned] == [(i, s) for i, s, _ in expected]


def test_every_paper_carries_exactly_the_topics_it_has_evidence_for(real_db):
    """The ranked box reads a topic filter from paper_topics' index (site_pages.LIST_FILTERS),
    where Datasette's filter reads each paper's `topics` list: the two must agree."""
    listed = set(rows(real_db, "select papers.id, topic.value from papers, "
                               "json_each(papers.topics) as topic"))
    with_evidence = set(rows(real_db, "select distinct paper_id, topic from paper_topics"))
    assert listed and listed == with_evidence


def test_every_paper_lists_exactly_the_dumps_its_sightings_show(real_db):
    """A dumps filter is read from the sightings' index (search_plan.papers_seen_in,
    site_pages.LIST_FILTERS), where Datasette's reads each paper's `dumps` list."""
    listed = set(rows(real_db, "select papers.id, dump.value from papers, "
                               "json_each(papers.dumps) as dump"))
    seen = set(rows(real_db, "select distinct paper_id, dump from sightings"))
    assert listed and listed == seen


@pytest.mark.parametrize("search", ["", "brain"])
@pytest.mark.parametrize("topic_is", ["common", "rare"])
async def test_a_topic_filters_count_reads_paper_topics_and_is_datasettes_count(
        real_db, search, topic_is, monkeypatch):
    """A topic facet's page counted its papers from every paper's list of topics (1.2 s of
    the 1.5 s limit at a million papers with a common word): the count Datasette runs gets
    the same papers from paper_topics' index beside its own clause, and the same number.
    A topic few papers carry gets them for its rows too (search_plan.rare_topic_hints), and
    its count then reads that one hint."""
    if topic_is == "common":
        monkeypatch.setattr(loaded_plugin("search_plan.py"), "COMMON_MATCHES", 1)
    paths = site_paths()
    site = Datasette([], immutables=[str(real_db)], metadata=METADATA,
                     plugins_dir=str(paths["plugins"]), template_dir=str(paths["templates"]),
                     settings={**SETTINGS, "trace_debug": True})
    topic = rows(real_db, "select topic from paper_topics group by topic "
                          "order by count(distinct paper_id) desc limit 1")[0][0]
    query = f"topics__arraycontains={topic}" + (f"&_search={search}" if search else "")
    page = await get_json(site, f"/papers/papers.json?{query}&_size=1&_trace=1")
    expected = rows(real_db, "select count(*) from papers where ? in (select value from "
                             "json_each(papers.topics))" + (
                                 " and rowid in (select rowid from papers_fts where papers_fts "
                                 f"match '{search}')" if search else ""), (topic,))[0][0]
    assert page["filtered_table_rows_count"] == expected > 0
    if not search and topic_is == "common":  # the topic alone: the count the build stored
        assert any(trace["sql"].startswith("select coalesce((select papers from topics")
                   for trace in page["_trace"]["traces"])
        assert "from paper_topics as evidence" not in page["query"]["sql"]
        return
    counts = [trace["sql"] for trace in page["_trace"]["traces"]
              if trace["sql"].startswith("select count(*) from papers where")]
    assert counts and all(sql.count("from paper_topics as evidence") == 1 for sql in counts)
    rows_hinted = "from paper_topics as evidence" in page["query"]["sql"]
    assert rows_hinted == (topic_is == "rare"), page["query"]["sql"]
    plan = query_plan(real_db, counts[0], {"p0": topic, "with_topic_0": topic,
                                           "search": search}).split(" / ")
    assert any(step.startswith("SEARCH evidence USING") for step in plan), plan


async def test_a_page_filtered_by_a_common_topic_alone_counts_what_the_build_stored(
        real_db, monkeypatch):
    """A click on a value of the topics facet, and nothing else: the page's count is the one
    the build stored (topics.papers), the same number as counting the lists. With a search
    beside it, or a second topic, the count is Datasette's own again (with its hints)."""
    monkeypatch.setattr(loaded_plugin("search_plan.py"), "COMMON_MATCHES", 1)  # all common
    paths = site_paths()
    site = Datasette([], immutables=[str(real_db)], metadata=METADATA,
                     plugins_dir=str(paths["plugins"]), template_dir=str(paths["templates"]),
                     settings={**SETTINGS, "trace_debug": True})
    topics = [topic for (topic,) in rows(real_db, "select distinct value from papers, "
                                                  "json_each(papers.topics) order by 1")]
    for topic in [topics[0], topics[len(topics) // 2], topics[-1], "no-such-topic"]:
        for extra in ("", "&_search=brain", f"&topics__arraycontains={topics[1]}"):
            page = await get_json(site, f"/papers/papers.json?topics__arraycontains={topic}"
                                        f"{extra}&_size=1&_trace=1")
            where, params = search_and_filters(f"topics__arraycontains={topic}{extra}")
            expected = rows(real_db, f"select count(*) from papers where {where}", params)[0][0]
            assert page["filtered_table_rows_count"] == expected, (topic, extra)
            stored = [trace["sql"] for trace in page["_trace"]["traces"]
                      if trace["sql"].startswith("select coalesce((select papers from topics")]
            carried = topic != "no-such-topic"  # no paper carries it: its rows are hinted
            assert bool(stored) == (extra == "" and carried), (topic, extra, stored)


async def test_a_dumps_filter_reads_the_sightings_index_and_lists_datasettes_rows(ds, real_db):
    """A click on the dumps facet read every paper's list of dumps (at a million papers,
    0.3-1.4 s for the rows of a dump's 60 papers): the page adds the same papers read from
    the sightings' index, which SQLite starts from, and lists what Datasette's filter
    alone gives."""
    dump = rows(real_db, "select name from dumps order by position desc limit 1")[0][0]
    for search in ("", "&_search=brain"):
        page = await get_json(ds, f"/papers/papers.json?dumps__arraycontains={dump}{search}"
                                  f"&_size=max&_col=id&_shape=objects")
        expected = rows(real_db, "select id from papers where ? in (select value from "
                                 "json_each(papers.dumps))" + (
                                     " and rowid in (select rowid from papers_fts where "
                                     "papers_fts match 'brain')" if search else ""), (dump,))
        assert sorted(row["id"] for row in page["rows"]) == sorted(i for (i,) in expected)
        assert page["filtered_table_rows_count"] == len(expected) > 0
        sql, params = page["query"]["sql"], page["query"]["params"]
        assert "from sightings as sighting" in sql
        plan = query_plan(real_db, sql, params).split(" / ")
        assert any(step.startswith("SEARCH sighting USING") and "(dump=?)" in step
                   for step in plan), plan


@pytest.mark.parametrize("filters", ["published_year={year}", "topics__arraycontains=EEG",
                                     "_where=authors%3E3", "organization={organization}",
                                     "dumps__arraycontains={dump}"])
async def test_the_ranked_box_checks_its_filters_on_each_match(ds, real_db, filters, monkeypatch):
    """With `rowid in (the filter's papers)` SQLite handed the list to the full-text index as
    rowids to look up: one full-text query per paper of the list (FTS5's plan `=M`, a rowid
    equality beside the match). At a million papers every filtered search ran past the time
    limit and lost its ranking (a year: over 5 s for "zebrafish"). The ranked query must
    read the matches once and check the filter on each (`+rowid`: the plan `M` alone)."""
    module = load_plugin("site_pages")
    year, organization = rows(real_db, "select published_year, organization from papers "
                                       "join papers_fts on papers_fts.rowid = papers.rowid "
                                       "where papers_fts match 'brain' and published_year is "
                                       "not null and organization is not null "
                                       "group by 1, 2 order by count(*) desc")[0]
    asked = []

    async def select(datasette, sql, params=None):
        asked.append((sql, params))
        return await selected(datasette, sql, params)

    selected = module.select
    monkeypatch.setattr(module, "select", select)
    monkeypatch.setattr(module, "RANKED_FIRST", 0)  # none of the best of all: within the filter
    dump = rows(real_db, "select dump from sightings join papers_fts on papers_fts.rowid = "
                         "(select rowid from papers where id = sightings.paper_id) "
                         "where papers_fts match 'brain' limit 1")[0][0]
    query = filters.format(year=year, organization=urllib.parse.quote_plus(organization),
                           dump=dump)
    found = await module.ranked_matches(ds, Request.fake(f"/papers/papers?_search=brain&{query}"))
    assert found["ranked_filtered"] and found["ranked"]
    first, (sql, params) = asked
    assert "limit 0" in first[0]
    plan = query_plan(real_db, sql, params).split(" / ")
    # FTS5 names its plan `<index>:<constraints>`: `=` a rowid looked up, `M` the match.
    first_scan = next(step for step in plan if step.startswith("SCAN papers_fts"))
    assert first_scan.endswith(":M2"), plan


async def test_a_search_too_common_to_rank_in_time_still_lists_its_matches(ds, real_db, monkeypatch):
    """When ranking outlasts the SQL time limit, the page says so and still lists every
    match, unranked. The served plugin's ranking query is swapped for one that never ends
    (a common word at a million papers on a slow machine), so the limit stops it."""
    from datasette.plugins import pm

    await ds.invoke_startup()
    site_pages = pm.get_plugin("site_pages.py")
    endless = ("with recursive n(i) as (select 1 union all select i + 1 from n) "
               "select count(*) from n")
    monkeypatch.setattr(site_pages, "ranked_sql", lambda within, limit, raw=False: endless)
    page = await ds.client.get("/papers/papers?_search=brain&_size=max")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "“brain” matches too many papers to rank them" in text
    assert 'class="ranked-title"' not in text
    matches = rows(real_db, "select count(*) from papers_fts where papers_fts match 'brain'")[0][0]
    listed = set(re.findall(r'<td class="col-id[^"]*"[^>]*><a href="/papers/papers/([^"]+)"', text))
    assert matches > 10 and len(listed) == matches


@pytest.mark.parametrize("query", [
    "_search=fmri&_nocol=published_year&published_year={year}",  # a filter on a hidden column
    "_search=fmri&_col=title&published_year={year}",
    "_search=fmri&_where=authors%3E5",
    "_search=brain&_where=authors%3E3&_where=published_year%3E2022",
    "_searchmode=raw&_search=fmri%20NOT%20eeg",
    "_searchmode=raw&_search=%22neural%20decoding%22%20OR%20spiking",
])
async def test_the_ranked_matches_are_among_the_rows_of_the_table_below_them(ds, real_db, query):
    """The box says "best matches ... within the filters below": its papers must be
    rows of the table under it, as many as it holds up to ten."""
    import re

    year = rows(real_db, "select published_year from papers where published_year is not null "
                         "group by 1 order by count(*) desc limit 1")[0][0]
    query = query.format(year=year)
    page = await ds.client.get(f"/papers/papers?{query}")
    assert page.status_code == 200
    ranked = re.findall(r'class="ranked-title" href="/papers/papers/([^"]+)"', page.text)
    table = await get_json(ds, f"/papers/papers.json?{query}&_shape=array&_size=max&_col=id")
    listed = {row["id"] for row in table}
    assert listed and set(ranked) <= listed
    assert len(ranked) == min(10, len(listed))


async def test_all_ranked_results_are_offered_only_for_a_search_the_canned_query_repeats(ds):
    plain = (await ds.client.get("/papers/papers?_search=eeg")).text
    raw = (await ds.client.get("/papers/papers?_search=eeg%20OR%20meg&_searchmode=raw")).text
    assert 'class="ranked-title"' in plain and 'class="ranked-title"' in raw
    assert 'href="/papers/search?q=eeg">All ranked results' in plain
    assert "All ranked results" not in raw


async def test_all_ranked_results_of_a_filtered_search_says_it_leaves_the_filters(ds):
    """The canned search ranks every paper: from a filtered page its link must not pass
    for the ranked results within the filters the box above it speaks of."""
    plain = (await ds.client.get("/papers/papers?_search=brain")).text
    filtered = (await ds.client.get("/papers/papers?_search=brain&topics__arraycontains=EEG")).text
    assert "without these filters" not in plain
    # Nor does an unfiltered page speak of filters its ranking is within.
    assert "within the\n  filters below" not in plain and "within the" in filtered
    assert re.search(r'href="/papers/search\?q=brain">All ranked results</a>\s*for “brain” in all '
                     r"papers, without these filters", filtered)


async def test_a_filter_the_ranked_box_cannot_repeat_gets_no_box(ds):
    page = await ds.client.get("/papers/papers?_search=brain&_search_title=decoding")
    assert page.status_code == 200 and 'class="ranked-title"' not in page.text


async def test_a_facet_chosen_on_a_later_page_starts_the_filtered_list_from_its_first_page(ds, real_db):
    first = await get_json(ds, "/papers/papers.json?_size=20")
    later = await get_json(ds, f"/papers/papers.json?_size=20&_next={first['next']}")
    links = [item["toggle_url"] for facet in later["facet_results"].values()
             for item in facet["results"]]
    assert links and not [link for link in links if "_next=" in link]
    (topic,) = [item for item in later["facet_results"]["topics"]["results"]
                if item["value"] == "transformers"]
    path = topic["toggle_url"].split("://", 1)[1].split("/", 1)[1]
    chosen = await get_json(ds, "/" + path.replace("/papers/papers?", "/papers/papers.json?", 1)
                            + "&_shape=objects")
    expected = rows(real_db, "select id from papers where exists (select 1 from paper_topics "
                             "where paper_id = papers.id and topic = 'transformers') "
                             "order by published desc, id limit 20")
    assert [row["id"] for row in chosen["rows"]] == [paper_id for (paper_id,) in expected]
    # And choosing it again (to remove it) also starts from the first page.
    selected = await get_json(ds, f"/papers/papers.json?_size=20&topics__arraycontains="
                                  f"transformers&_next={chosen['next']}")
    (again,) = [item for item in selected["facet_results"]["topics"]["results"]
                if item["value"] == "transformers"]
    assert again["selected"] and "_next=" not in again["toggle_url"]


@pytest.mark.parametrize("path", ["/papers/sightings.json?_size=50",
                                  "/papers/paper_topics.json?_size=50",
                                  "/papers/papers.json?_size=20&_facet=date_method"])
async def test_datasettes_own_facet_links_also_start_from_the_first_page(ds, path):
    first = await get_json(ds, path)
    later = await get_json(ds, f"{path}&_next={first['next']}")
    links = [item["toggle_url"] for facet in later["facet_results"].values()
             for item in facet["results"]]
    assert links and not [link for link in links if "_next=" in link]


@pytest.mark.parametrize("search", ['"', '""', '" "'])  # spaces alone: no search (test_site_pages)
async def test_a_table_search_with_nothing_to_search_for_lists_nothing_instead_of_an_error(ds, search):
    response = await ds.client.get("/papers/papers.json", params={"_search": search})
    assert response.status_code == 200, response.text[:200]
    assert response.json()["rows"] == []
    page = await ds.client.get("/papers/papers", params={"_search": search})
    assert page.status_code == 200


@pytest.mark.parametrize("q", ["", " ", '"', '""', '" "'])
async def test_empty_search_returns_nothing_instead_of_an_error(ds, q):
    """Nothing to search for, once quoted as the site quotes words (escape_fts), is no
    match: FTS5 would refuse the empty query with a syntax error."""
    response = await ds.client.get("/papers/search.json", params={"q": q, "_shape": "array"})
    assert response.status_code == 200, response.text[:200]
    assert response.json() == []


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_every_canned_query_runs(ds, name):
    params = {"search": "?q=brain", "fuzzy_title": "?title=brain+decodng+framework",
              "related": "?paper_id=neuroformer-multimodal-and-multitask-generative-pretraining-"
                         "for-brain-data"}.get(name, "")
    joiner = "&" if params else "?"
    data = await get_json(ds, f"/papers/{name}.json{params}{joiner}_shape=array")
    assert isinstance(data, list)
    assert data or name == "unplaced_organizations", name  # the seed dumps place every org


@pytest.mark.parametrize("title, found", [
    ("brain decodng", "Brain decoding: toward real-time reconstruction of visual perception"),
    ("eeg fondation model", "EEG Foundation Models: Progresses, Benchmarking, and Open Problems"),
])
async def test_fuzzy_title_finds_a_paper_by_a_few_words_of_its_title_with_a_typo(ds, title, found):
    """The lookup promises "typos and missing words are fine": a few words with a typo
    found nothing (56 and 64 at best on the whole title and on its words, under 60)."""
    data = await get_json(ds, f"/papers/fuzzy_title.json?title={title}&_shape=array")
    assert found in [row["title"] for row in data[:3]]
    assert all(row["fragment_match"] >= 80 or max(row["similarity"], row["word_overlap"]) >= 60
               for row in data)


@pytest.mark.parametrize("title", ["brain decodng", "eeg fondation model",
                                   "MindBrige cross subject brain decoding"])
def test_fuzzy_title_on_a_large_file_scores_the_titles_sharing_a_words_start(real_db, title):
    """Scoring every title took 8 s at 224,000 papers, past the SQL time limit: above 50,000
    papers the canned query scores the 5,000 titles that best share the start of a word. Run
    so here (the limit set to 0), it finds what scoring every title finds."""
    sql = QUERIES["fuzzy_title"]["sql"]
    assert "(select count(*) from papers) <= 50000 or papers.rowid in candidates" in sql
    conn = sqlite3.connect(real_db)
    load_plugin("fuzzy_sql").prepare_connection(conn)
    try:
        every_title = conn.execute(sql, {"title": title}).fetchall()
        candidates_only = conn.execute(sql.replace("<= 50000", "<= 0"), {"title": title}).fetchall()
        matched = conn.execute("select count(*) from papers_fts where papers_fts match "
                               "title_words_match(?)", (title,)).fetchone()[0]
    finally:
        conn.close()
    assert every_title and candidates_only[:3] == every_title[:3]
    assert 0 < matched < rows(real_db, "select count(*) from papers")[0][0]

def test_fuzzy_title_scores_each_title_once_and_normalizes_the_asked_title_once(real_db):
    """SQLite computes a column's alias again wherever the query names it (its filter, its
    order): each title was scored two or three times, and the asked title normalized again
    for every call. At a million papers that took the lookup of a common title past the
    1.5 s limit; scored once (and normalized once) it takes about 0.8 s."""
    plugin = load_plugin("fuzzy_sql")
    calls = {name: 0 for name in ("title_similarity", "token_similarity", "fragment_similarity")}
    normalized: list[str] = []

    def counted(name):
        def score(a, b):
            calls[name] += 1
            return getattr(plugin, name)(a, b)
        return score

    reference = plugin.title_key
    plugin.title_key = lambda text: normalized.append(text) or reference(text)
    conn = sqlite3.connect(real_db)
    plugin.prepare_connection(conn)
    for name in calls:
        conn.create_function(name, 2, counted(name), deterministic=True)
    try:
        plugin.key_of.cache_clear()
        found = conn.execute(QUERIES["fuzzy_title"]["sql"], {"title": "brain decodng"}).fetchall()
    finally:
        conn.close()
        plugin.title_key = reference
    papers = rows(real_db, "select count(*) from papers")[0][0]
    assert found
    assert calls == {name: papers for name in calls}  # a file this small: every title once
    # Once, then remembered (title_words_match is not called: this file's titles all count).
    assert normalized.count("brain decodng") == 1


async def test_fuzzy_title_function_finds_a_misspelled_title(ds):
    data = await get_json(ds, "/papers/fuzzy_title.json?title=MindBrige+cross+subject+brain+decoding&_shape=array")
    assert data[0]["title"] == "MindBridge: A Cross-Subject Brain Decoding Framework"
    sql = "select title_similarity('Brain-Decoding!', 'brain decoding') as s"
    assert (await get_json(ds, f"/papers.json?sql={sql}&_shape=array"))[0]["s"] == 100


async def test_map_query_gives_coordinates_and_popups(ds, real_db):
    data = await get_json(ds, "/papers/organization_map.json?_shape=array")
    placed = rows(real_db, "select count(*) from organizations where latitude is not null")[0][0]
    assert len(data) == placed > 0
    popup = json.loads(data[0]["popup"])
    assert popup["link"] == ("/papers/papers?_where=id+in+(select+paper_id+from+sightings+where+"
                             f"organization_id+%3D+%27{data[0]['id']}%27)")
    assert "paper" in popup["description"]


@pytest.mark.parametrize("sql", [
    "insert into papers (id, title) values ('x', 'y')",
    "update papers set title = 'x'",
    "delete from papers",
    "drop table papers",
    "pragma journal_mode = wal",
    "attach database ':memory:' as other",
])
async def test_writes_and_dangerous_statements_are_refused(ds, real_db, sql):
    before = rows(real_db, "select count(*), max(title) from papers")
    response = await ds.client.get("/papers.json", params={"sql": sql})
    assert response.status_code in (400, 403)
    assert rows(real_db, "select count(*), max(title) from papers") == before


async def test_download_is_the_file_the_build_produced(ds, real_db):
    response = await ds.client.get("/papers.db")
    assert response.status_code == 200
    assert response.content == Path(real_db).read_bytes()


async def test_csv_and_json_exports(ds):
    csv = await ds.client.get("/papers/papers.csv?_size=5")
    assert csv.status_code == 200 and csv.text.startswith("id,title,abstract")
    data = await get_json(ds, "/papers/sightings.json?_shape=array&_size=3")
    assert len(data) == 3


async def test_paper_page_shows_sightings_related_and_lookup_links(ds, real_db):
    (paper_id, seen) = rows(real_db, "select id, dumps_seen from papers where title like 'Neuroformer:%'")[0]
    html = (await ds.client.get(f"/papers/papers/{paper_id}")).text
    assert html.count('href="/papers/dumps/') >= seen
    assert "huggingface.co/papers?q=Neuroformer" in html
    assert "arxiv.org/search/?searchtype=title&amp;query=Neuroformer" in html
    related = await get_json(ds, f"/papers/related.json?paper_id={paper_id}&_shape=array")
    assert 0 < len(related) <= 5
    links = re.findall(r'<li><a href="/papers/papers/([^"]+)">', html)
    assert links == [paper["paper_id"] for paper in related]  # the page and the canned query agree
    # The canned query's papers link to their pages, as every other query's do.
    table = (await ds.client.get(f"/papers/related?paper_id={paper_id}")).text
    assert [f'<a href="/papers/papers/{p["paper_id"]}">' in table for p in related] == [True] * len(related)


async def test_an_unknown_paper_id_says_so_and_links_papers_with_titles_like_its_words(ds, real_db):
    """Datasette said only "Record not found"; ids are slugs of titles, so the words of an
    old or mistyped id find the paper by its approximate title."""
    (paper_id, title) = rows(real_db, "select id, title from papers order by id limit 1")[0]
    missing = paper_id + "-x"
    page = await ds.client.get(f"/papers/papers/{missing}")
    assert page.status_code == 404
    assert "<title>Paper not found</title>" in page.text
    assert f"No paper has the id “{missing}”" in page.text
    link = html.unescape(re.search(r'<a href="(/papers/fuzzy_title\?title=[^"]+)"', page.text).group(1))
    found = await get_json(ds, link.replace("/papers/fuzzy_title?", "/papers/fuzzy_title.json?_shape=array&", 1))
    assert found[0]["title"] == title
    # Its JSON, and other tables' unknown rows, stay Datasette's own 404.
    assert (await ds.client.get(f"/papers/papers/{missing}.json")).json()["error"] == "Record not found"
    other = await ds.client.get("/papers/organizations/nope")
    assert other.status_code == 404 and "Record not found" in other.text


async def test_paper_page_says_why_it_carries_each_topic_in_its_text(ds, real_db):
    """The words each topic's rules matched are read beside it, not only in a hover title,
    which keyboards and touch screens cannot open."""
    (paper_id,) = rows(real_db, "select paper_id from paper_topics group by paper_id "
                                "order by count(distinct topic) desc, paper_id limit 1")[0]
    page = (await ds.client.get(f"/papers/papers/{paper_id}")).text
    facts = re.search(r"<dt>Topics</dt>\s*<dd>(.*?)</dd>", page, re.S).group(1)
    shown = [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", facts, re.S)]
    expected = rows(real_db, "select topics.label, paper_topics.field, paper_topics.matched "
                             "from paper_topics join topics on topics.id = paper_topics.topic "
                             "where paper_id = ?", (paper_id,))
    assert len(shown) == len({label for label, _, _ in expected}) > 1
    for label, field, matched in expected:
        (item,) = [item for item in shown if f">{label}</a>" in item]
        why = re.search(r'<span class="method">\((.*?)\)</span>', item, re.S).group(1)
        assert f"{field}: " in why and matched in why, (label, why)


async def test_pages_are_titled_by_what_they_show(ds):
    """A page's title is what a tab, a bookmark or a screen reader names it by."""
    def title(page):
        return html.unescape(re.search(r"<title>(.*?)</title>", page.text, re.S).group(1)).strip()

    assert title(await ds.client.get("/papers/search?q=brain")) == (
        "Search papers, best matches first (papers)")
    assert title(await ds.client.get("/papers/dumps/004_a2400baee32e0311~2Etxt")) == (
        "dumps: 004_a2400baee32e0311.txt (papers)")
    own = title(await ds.client.get("/papers?sql=select+id,+title+from+papers+where+authors+>+5+order+by+id"))
    assert own.startswith("select id, title from papers") and len(own) < 90


async def test_each_map_popup_links_to_as_many_papers_as_it_counts(ds):
    places = await get_json(ds, "/papers/organization_map.json?_shape=array")
    assert places
    for place in places:
        popup = json.loads(place["popup"])
        listed = await get_json(ds, popup["link"].replace("/papers/papers?", "/papers/papers.json?_shape=array&_size=max&", 1))
        assert popup["description"].startswith(f"{len(listed)} paper") and len(listed) == place["papers"]


async def test_the_table_under_the_map_links_each_organizations_papers(ds):
    """Without a mouse the markers are hard to use: the table below the map is the way in,
    so its popup cells are links, not JSON text."""
    places = await get_json(ds, "/papers/organization_map.json?_shape=array")
    page = (await ds.client.get("/papers/organization_map")).text
    cells = re.findall(r'<td class="col-popup[^"]*">\s*<a href="([^"]+)">([^<]+)</a> · ([^<]+)</td>',
                       page)
    expected = [(json.loads(p["popup"])["link"], p["name"], json.loads(p["popup"])["description"])
                for p in places]
    assert [(html.unescape(link), html.unescape(name), html.unescape(text))
            for link, name, text in cells] == expected
    # Only the site's own links become links: anything else stays text.
    popup_link = load_plugin("cells").popup_link
    assert popup_link('{"title": "x", "link": "javascript:alert(1)"}') is None
    assert popup_link("not json") is None and popup_link("[1]") is None
    # Any visitor's query may name a column `popup`, whatever it holds.
    nested = await ds.client.get("/papers", params={
        "sql": "select replace(hex(zeroblob(1500)), '00', '[') as popup"})
    assert nested.status_code == 200


async def test_a_paper_that_changed_organization_is_listed_under_both(tmp_path):
    """A later dump shows the paper under another organization: papers.organization_id
    keeps the latest, but both popups count it, and both links must list it."""
    from conftest import ABSTRACT_A, blank_separated, run_build

    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "a.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A, ["Korea University", "·", "Mar 3, 2025"])))
    (dumps / "b.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A, ["SakanaAI Sakana AI", "·", "Mar 3, 2025"])))
    db = tmp_path / "papers.db"
    assert run_build(dumps, db).returncode == 0
    paths = site_paths()
    site = Datasette([], immutables=[str(db)], metadata=METADATA, plugins_dir=str(paths["plugins"]),
                     template_dir=str(paths["templates"]), settings=SETTINGS)
    places = await get_json(site, "/papers/organization_map.json?_shape=array")
    assert len(places) == 2
    for place in places:
        link = json.loads(place["popup"])["link"]
        listed = await get_json(site, link.replace("/papers/papers?", "/papers/papers.json?_shape=array&", 1))
        assert [paper["title"] for paper in listed] == ["Shared paper"], place["name"]


async def test_front_page_says_what_this_is_and_links_the_download(ds, real_db):
    html = (await ds.client.get("/")).text
    (papers,) = rows(real_db, "select count(*) from papers")[0]
    assert f"<strong>{papers}</strong> papers" in html
    assert 'href="/papers.db"' in html and "/papers/organization_map" in html
    # The size and sha256 of the file the download sends (to check a resumed download).
    import hashlib
    data = Path(real_db).read_bytes()
    assert f'<code class="sha256">{hashlib.sha256(data).hexdigest()}</code>' in html
    assert f"({len(data) / 1e6:,.1f} MB," in html


async def test_the_database_page_gives_the_download_the_front_pages_size(ds, real_db):
    """Both pages link the same file: Datasette's database page wrote its size in units of
    1,024 (2.3 MB) beside the front page's 2.4 MB."""
    size = f"{Path(real_db).stat().st_size / 1e6:,.1f} MB"
    assert f"({size}," in (await ds.client.get("/")).text
    download = re.search(r'<p class="download-sqlite">.*?</p>', (await ds.client.get("/papers")).text,
                         re.S).group(0)
    assert f"<em>{size}</em>" in download


async def test_the_database_description_names_its_tables_as_code_not_in_backticks(ds):
    """The database's description heads /papers and every SQL page: Datasette shows a text
    description as it is, and it read "One row per paper in `papers`"."""
    for path in ("/papers", "/papers?sql=select+1"):
        page = (await ds.client.get(path)).text
        description = re.search(r"</h1>(.*?)<h2", page, re.S).group(1)
        assert "<code>papers</code>" in description and "`" not in description, path


async def test_front_page_says_when_the_file_was_built_from_changes_not_committed(real_db,
                                                                                  tmp_path):
    db = tmp_path / "papers.db"
    db.write_bytes(real_db.read_bytes())
    with sqlite3.connect(db) as conn:
        conn.execute("update build_info set value = ? where key = 'git_commit'",
                     ["0123456789abcdef0123456789abcdef01234567-dirty"])
    conn.close()
    paths = site_paths()
    html = (await Datasette([], immutables=[str(db)], metadata=METADATA,
                            plugins_dir=str(paths["plugins"]),
                            template_dir=str(paths["templates"]),
                            settings=SETTINGS).client.get("/")).text
    assert re.search(r"from commit <code>0123456789ab</code>\s+with changes not committed", html)


async def test_settings_limit_hostile_sql(ds):
    settings = await get_json(ds, "/-/settings.json")
    readme = (ROOT / "README.md").read_text()
    # The values README.md gives visitors ("Read-only and safe").
    assert "queries stop after 1.5 s" in readme and settings["sql_time_limit_ms"] == 1500
    assert "capped at 1,000 rows" in readme and settings["max_returned_rows"] == 1000
    assert "facets give up after 400 ms" in readme and settings["facet_time_limit_ms"] == 400
    slow = "with recursive r(i) as (select 1 union all select i + 1 from r) select count(*) from r"
    response = await ds.client.get("/papers.json", params={"sql": slow})
    assert response.status_code == 400 and "interrupted" in response.text.lower()


async def test_the_site_reads_its_database_through_a_memory_map(ds, real_db):
    # SQLite reports the map size it accepted: 0 unless the plugin asked, and never more
    # than the file it maps from is worth asking for (its own compile-time cap).
    (mapped,) = (await ds.get_database("papers").execute("pragma mmap_size")).first()
    assert mapped > real_db.stat().st_size
    plain = sqlite3.connect(real_db)
    assert plain.execute("pragma mmap_size").fetchone()[0] == 0  # not SQLite's default
    plain.close()


async def test_atom_feed_lists_new_papers_linking_to_their_pages(ds, real_db):
    import xml.etree.ElementTree as ET

    response = await ds.client.get("/papers/feed.atom", headers={"host": "example.org"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    entries = ET.fromstring(response.text).findall("{http://www.w3.org/2005/Atom}entry")
    assert len(entries) == 100
    newest = rows(real_db, "select name from dumps order by position desc limit 1")[0][0]
    first_ids = {e.find("{http://www.w3.org/2005/Atom}id").text.rsplit(":", 1)[1] for e in entries[:5]}
    firsts = {pid for (pid,) in rows(real_db, "select id from papers where first_seen_dump = ?", (newest,))}
    assert first_ids <= firsts
    link = entries[0].find("{http://www.w3.org/2005/Atom}link").get("href")
    assert link.startswith("http://example.org/papers/papers/")


@pytest.mark.parametrize("topic", ["EEG", "eeg", "Eeg"])
async def test_topic_feed_only_carries_that_topic(ds, real_db, topic):
    """A topic id is matched in any case: `?topic=eeg` was an empty feed for ever, which a
    feed reader shows as "no new papers"."""
    import xml.etree.ElementTree as ET

    response = await ds.client.get("/papers/feed.atom", params={"topic": topic})
    entries = ET.fromstring(response.text).findall("{http://www.w3.org/2005/Atom}entry")
    ids = [e.find("{http://www.w3.org/2005/Atom}id").text.rsplit(":", 1)[1] for e in entries]
    expected = rows(real_db, "select count(distinct paper_id) from paper_topics where topic = 'EEG'")[0][0]
    assert len(ids) == expected > 0
    for paper_id in ids:
        assert "EEG" in json.loads(rows(real_db, "select topics from papers where id = ?", (paper_id,))[0][0])


@pytest.mark.parametrize("topic", ["EEG2", "no-such-topic", "'", "NULL"])
async def test_a_feed_with_no_entries_is_an_empty_feed_not_an_error(ds, real_db, topic):
    import xml.etree.ElementTree as ET

    response = await ds.client.get("/papers/feed.atom", params={"topic": topic})
    assert response.status_code == 200, response.text[:300]
    root = ET.fromstring(response.text)
    atom = "{http://www.w3.org/2005/Atom}"
    assert root.findall(f"{atom}entry") == []
    built = rows(real_db, "select value from build_info where key = 'built_at'")[0][0]
    assert root.find(f"{atom}updated").text[:19] == built[:19]
    assert root.find(f"{atom}title").text == "Atom feed of new papers"


def test_the_feed_walks_the_newest_dumps_and_an_unknown_topic_reads_no_paper(real_db):
    """At a million papers the feed read and sorted every paper (3 s, past the SQL time
    limit): it walks the dumps by position, newest first, sorting only within a dump, and
    stops at its 100th paper. A topic no paper carries walked every paper (5 s cold); it now
    reads none: fewer steps of SQLite's machine than the unfiltered feed's 100 papers."""
    sql = QUERIES["feed"]["sql"]
    params = {"_header_x_forwarded_proto": "", "_header_host": ""}
    steps = {}
    conn = sqlite3.connect(real_db)
    try:
        plan = [step for *_, step in conn.execute(f"explain query plan {sql}",
                                                  {**params, "topic": ""})]
        for topic in ("", "no-such-topic"):
            counted = [0]
            conn.set_progress_handler(lambda: counted.__setitem__(0, counted[0] + 1), 1)
            conn.execute(sql, {**params, "topic": topic}).fetchall()
            steps[topic] = counted[0]
    finally:
        conn.close()
    assert "SCAN dumps USING INDEX idx_dumps_position" in plan
    assert "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY" in plan
    assert 0 < steps["no-such-topic"] < steps[""]


async def test_a_feed_whose_query_fails_is_an_error_not_an_empty_feed(real_db, tmp_path):
    """A newest paper the site's caps refuse (an abstract over 32 kB, put in by hand: the
    build refuses such lines) fails the feed's query: the answer says so, with no feed."""
    db = tmp_path / "papers.db"
    db.write_bytes(real_db.read_bytes())
    with sqlite3.connect(db) as conn:
        conn.execute("update papers set abstract = ? where first_seen_dump = "
                     "(select max(name) from dumps)", ["x" * 40_000])
    conn.close()
    paths = site_paths()
    site = Datasette([], immutables=[str(db)], metadata=METADATA, plugins_dir=str(paths["plugins"]),
                     template_dir=str(paths["templates"]), settings=SETTINGS)
    response = await site.client.get("/papers/feed.atom")
    assert response.status_code == 400
    assert response.text.startswith("error: ") and "<feed" not in response.text


async def test_every_feed_entry_has_a_real_date_and_an_author(ds, real_db):
    """Atom requires both. Papers of a dump without a capture date and without a date of
    their own are dated by the build, not by 1970."""
    import xml.etree.ElementTree as ET

    atom = "{http://www.w3.org/2005/Atom}"
    undated = rows(real_db, "select count(*) from papers join dumps on dumps.name = "
                            "papers.first_seen_dump where dumps.capture_date is null "
                            "and papers.published is null")[0][0]
    assert undated > 0  # the seed has such papers (dump 001 shows no dates)
    built = rows(real_db, "select value from build_info where key = 'built_at'")[0][0]
    seen_build_date = 0
    for topic in ("", "transformers", "EEG"):
        response = await ds.client.get("/papers/feed.atom", params={"topic": topic})
        for entry in ET.fromstring(response.text).findall(f"{atom}entry"):
            updated = entry.find(f"{atom}updated").text
            assert not updated.startswith("1970")
            seen_build_date += updated[:19] == built[:19]
            assert entry.find(f"{atom}author/{atom}name").text
    assert seen_build_date > 0


async def test_papers_table_facets_on_topics(ds, real_db):
    data = await get_json(ds, "/papers/papers.json?_size=0")
    topics = {item["value"]: item["count"] for item in data["facet_results"]["topics"]["results"]}
    # Counted from the papers themselves, not from topics.papers (what the facet reads).
    assert topics == dict(rows(real_db, "select value, count(*) from papers, "
                                        "json_each(papers.topics) group by 1"))


@pytest.fixture(scope="module")
def mutable_ds(real_db, tmp_path_factory):
    """The site on a mutable copy of the database: loaded pairs could go stale there, so every
    facet counts through SQL (the list facets their column only, the plain ones their index)."""
    copy = tmp_path_factory.mktemp("mutable") / "papers.db"
    copy.write_bytes(real_db.read_bytes())
    paths = site_paths()
    return Datasette([str(copy)], metadata=METADATA, plugins_dir=str(paths["plugins"]),
                     settings=SETTINGS)


@pytest.mark.parametrize("page", ["", "_search=brain", "_search=spiking&published_year=2025",
                                  "topics__arraycontains=transformers"])
async def test_a_mutable_database_counts_through_sql_and_agrees(ds, mutable_ds, page):
    ours = (await get_json(mutable_ds, f"/papers/papers.json?_size=0&{page}"))["facet_results"]
    in_memory = (await get_json(ds, f"/papers/papers.json?_size=0&{page}"))["facet_results"]
    assert mutable_ds not in loaded_facets_plugin().VALUE_INDEXES
    names = [next(iter(f.values())) for f in PAPERS["facets"] if isinstance(f, dict)]
    for column in names:
        assert [(i["value"], i["count"]) for i in ours[column]["results"]] == \
            [(i["value"], i["count"]) for i in in_memory[column]["results"]], column


# Pages of searches with sorts on the date (indexed, carrying search_rowid), on an indexed
# column, on a column without an index and on the primary key, with filters and the raw mode.
SEARCH_PAGES = ["_search=brain", "_search=neural&_sort=published", "_search=decoding&_sort=title",
                "_search=spiking&_sort_desc=authors", "_search=brain&topics__arraycontains=fMRI",
                "_search=model&_searchmode=raw&published_year__gte=2025", "_search=network&_sort=id",
                "_search=zzzznothing", "_search=brain+OR&_sort_desc=published_year"]


@pytest.mark.parametrize("page", SEARCH_PAGES)
async def test_a_search_lists_what_datasettes_rowid_search_lists(ds, page, search_plan):
    """Whichever way plugins/search_plan.py lets SQLite read a search, the page lists the
    rows of Datasette's own search on the rowid (`_fts_pk=rowid`), in the order of the sort.

    Rows that tie on the sort column may come in another order: Datasette's first page
    orders by the sort column alone (its later pages add the primary key), so the order of
    ties is SQLite's, whichever plan it runs."""
    async def listed(query: str) -> tuple[list, set]:
        data = await get_json(ds, f"/papers/papers.json?_size=max&_shape=objects&{query}")
        assert data["next"] is None  # every match on one page
        return [row[sort] for row in data["rows"]], {row["id"] for row in data["rows"]}

    arguments = dict(pair.split("=") for pair in page.split("&"))
    sort = arguments.get("_sort") or arguments.get("_sort_desc") or PAPERS["sort_desc"]

    (ours_sorted, ours), (stock_sorted, stock) = await listed(page), await listed(
        page + "&_fts_pk=rowid")
    assert ours == stock and ours_sorted == stock_sorted
    assert len(ours) == len(ours_sorted)
    if "zzzz" not in page:
        assert len(ours) > 3, page


ROWID_CLAUSE = re.compile(r"(?<!\w)rowid in \(select rowid from papers_fts where")


def query_plan(db: Path, sql: str, params: dict) -> str:
    from datasette.utils import escape_fts
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.create_function("escape_fts", 1, escape_fts)
        return " / ".join(row[3] for row in conn.execute(f"explain query plan {sql}", params))
    finally:
        conn.close()


async def test_a_common_search_walks_the_sort_index_and_a_rare_one_reads_its_matches(
        ds, real_db, monkeypatch):
    plugin = loaded_plugin("search_plan.py")
    (matches,) = rows(real_db, "select count(*) from papers_fts where papers_fts match 'brain'")[0]
    assert matches > 7

    async def page_query(page: str) -> tuple[str, dict]:
        query = (await get_json(ds, f"/papers/papers.json?_size=5&{page}"))["query"]
        return query["sql"], query["params"]

    # Fewer matches than COMMON_MATCHES: the rowid clause, and SQLite reads the matches by rowid.
    monkeypatch.setattr(plugin, "COMMON_MATCHES", matches + 1)
    sql, params = await page_query("_search=brain")
    assert ROWID_CLAUSE.search(sql) and "search_rowid in (select rowid" in sql
    assert "USING INTEGER PRIMARY KEY" in query_plan(real_db, sql, params)
    # As many: search_rowid alone, and SQLite walks the date index, already in the page's order.
    monkeypatch.setattr(plugin, "COMMON_MATCHES", matches)
    sql, params = await page_query("_search=brain")
    assert not ROWID_CLAUSE.search(sql) and "search_rowid in (select rowid" in sql
    plan = query_plan(real_db, sql, params)
    assert "idx_papers_published_id_search_rowid" in plan and "TEMP B-TREE" not in plan, plan
    sql, _ = await page_query("_search=brain&_sort=published_year")  # an index to walk
    assert not ROWID_CLAUSE.search(sql)
    sql, _ = await page_query("_search=brain&_sort=title")  # no index to walk: by rowid
    assert ROWID_CLAUSE.search(sql)
    sql, _ = await page_query("_search=brain&_fts_pk=rowid")  # the visitor's choice stands
    assert "search_rowid in" not in sql
    # A search the index refuses is left to Datasette, which says why.
    response = await ds.client.get('/papers/papers.json?_search=%22unclosed&_searchmode=raw')
    assert response.status_code == 400 and "unterminated string" in response.text


@pytest.mark.parametrize("search", ["", "&_search=brain"])
async def test_a_filter_few_papers_pass_is_read_from_its_index(ds, real_db, monkeypatch, search):
    """SQLite takes a filter's value to be as common as its column's average: at a million
    papers `?date_method=page` (no paper has it) walked the whole date index, and with a
    common word the page failed at the SQL time limit; so did a topic no paper carries. A
    filter fewer than COMMON_MATCHES papers pass gets its rows read from its index beside
    Datasette's clause, which SQLite starts from; the rows are Datasette's either way."""
    plugin = loaded_plugin("search_plan.py")
    monkeypatch.setattr(plugin, "COMMON_MATCHES", 10_000)  # all are rare in the seed papers
    (year,) = rows(real_db, "select max(published_year) from papers")[0]
    (method, papers), *_ = rows(real_db, "select date_method, count(*) from papers where "
                                         "date_method is not null group by 1 order by 2")
    (topic,) = rows(real_db, "select id from topics where papers > 0 order by papers limit 1")[0]
    on_topic = "? in (select value from json_each(papers.topics))"
    rare_rows = "SEARCH rare USING COVERING INDEX"
    pages = {"date_method=page": ("date_method = ?", "page", f"{rare_rows} idx_papers_date_method"),
             f"date_method={method}": ("date_method = ?", method,
                                       f"{rare_rows} idx_papers_date_method"),
             f"published_year__gt={year}": ("published_year > ?", year,
                                             f"{rare_rows} idx_papers_published_year"),
             f"published_year__gte={year}": ("published_year >= ?", year,
                                              f"{rare_rows} idx_papers_published_year"),
             f"topics__arraycontains={topic}": (on_topic, topic, "SEARCH evidence USING"),
             "topics__arraycontains=no-such-topic": (on_topic, "no-such-topic",
                                                     "SEARCH evidence USING")}
    matching = (" and rowid in (select rowid from papers_fts where papers_fts match 'brain')"
                if search else "")
    for page, (clause, value, index) in pages.items():  # index: where SQLite starts from
        data = await get_json(ds, f"/papers/papers.json?{page}{search}&_size=max&_col=id"
                                  f"&_shape=objects")
        expected = rows(real_db, f"select id from papers where {clause}{matching} "
                                 f"order by published desc, id", (value,))
        assert [row["id"] for row in data["rows"]] == [i for (i,) in expected], page
        assert data["filtered_table_rows_count"] == len(expected)
        sql, params = data["query"]["sql"], data["query"]["params"]
        plan = query_plan(real_db, sql, params)
        assert index in plan, plan
        # The search's own list by rowid is left out: SQLite started from it, not the hint's.
        assert not ROWID_CLAUSE.search(sql), sql
    assert len(rows(real_db, "select 1 from papers where date_method = 'page'")) == 0 < papers
    # A value as common as COMMON_MATCHES is left to SQLite's plan: no hint.
    monkeypatch.setattr(plugin, "COMMON_MATCHES", papers)
    sql = (await get_json(ds, f"/papers/papers.json?date_method={method}{search}"))["query"]["sql"]
    assert "as rare" not in sql
    monkeypatch.setattr(plugin, "COMMON_MATCHES", 1)
    sql = (await get_json(ds, f"/papers/papers.json?topics__arraycontains={topic}{search}")
           )["query"]["sql"]
    assert "paper_topics" not in sql
    # Nor does a filter its index cannot answer, or a table without rowids, get one.
    monkeypatch.setattr(plugin, "COMMON_MATCHES", 10_000)
    sql = (await get_json(ds, f"/papers/papers.json?title__contains=brain{search}"))["query"]["sql"]
    assert "as rare" not in sql
    topics = await get_json(ds, "/papers/paper_topics.json?topic=EEG&_size=max&_shape=objects")
    assert "as rare" not in topics["query"]["sql"]
    assert len(topics["rows"]) == rows(real_db, "select count(*) from paper_topics "
                                                "where topic = 'EEG'")[0][0] > 0


def next_path(data: dict) -> str | None:
    """Return the path of the page after a table page's JSON, or None on the last page."""
    return data["next_url"] and "/" + data["next_url"].split("://", 1)[1].split("/", 1)[1]


@pytest.mark.parametrize("page", ["", "_search=brain", "_search=brain&published_year__gte=2024"])
async def test_paging_newest_first_shows_every_paper_once(ds, real_db, monkeypatch, page):
    """The papers table's pages, newest first, list every paper once in the order Datasette's
    later pages use (date, then id; plugins/stable_pages.py gives the first page that order
    too). The date index is in that very order (write.INDEXES): a search is read along it
    when it is common (set so here), and each page after the first must not be a sort of
    every paper (it took 16 s at a million papers); neither may the first, with its tie-break."""
    monkeypatch.setattr(loaded_plugin("search_plan.py"), "COMMON_MATCHES", 1)
    first = (await get_json(ds, f"/papers/papers.json?_size=7&{page}"))["query"]  # Datasette's
    stable = loaded_plugin("stable_pages.py")
    tie_broken = stable.with_tie_break(first["sql"], ["id"], stable.sorted_first_page(first["sql"]))
    assert tie_broken.endswith("order by published desc, id limit 8")
    ids, path = [], f"/papers/papers.json?_size=7&_shape=objects&{page}"
    queries = [{"sql": tie_broken, "params": first["params"]}]
    while path:
        data = await get_json(ds, path)
        ids += [row["id"] for row in data["rows"]]
        path = next_path(data)
        if path:
            query = (await get_json(ds, path.replace("_shape=objects", "_shape=arrays")))["query"]
            queries.append(query)
    where, params = search_and_filters(page)
    expected = [pid for (pid,) in rows(real_db, f"""select id from papers where {where}
        order by published is null, published desc, id""", params)]
    assert ids == expected
    assert len(queries) >= 3  # the first page and pages after it
    for query in queries[:4] if "published_year" not in page else []:  # a filter: its index
        plan = query_plan(real_db, query["sql"], query["params"])
        assert "idx_papers_published_id_search_rowid" in plan and "TEMP B-TREE" not in plan, plan


SORTED_PAGES = ["_sort=authors", "_sort_desc=authors", "_sort=dumps_seen", "_sort_desc=comments",
                "topics__arraycontains=EEG", "_search=brain", "_search=decoding&_sort=authors",
                "authors__gt=3&_sort_desc=published_year"]


@pytest.mark.parametrize("page", SORTED_PAGES)
async def test_sorted_pages_show_every_paper_once_in_one_order(ds, real_db, page, search_plan):
    """Every sorted listing, paged, shows each paper once, in the order of its sort column and
    then id. Datasette 0.65 orders only the pages after the first by the id too; without
    plugins/stable_pages.py a first page that ends inside a tie (papers of one date, one
    author count) lists the tie in the order SQLite reads it, and the next page skips or
    repeats papers of it (seen: 318 of 332 papers sorted by authors, seven a page)."""
    ids, values, path = [], [], f"/papers/papers.json?_size=7&_shape=objects&{page}"
    sort = dict(pair.split("=") for pair in page.split("&") if pair.startswith("_sort"))
    column = sort.get("_sort") or sort.get("_sort_desc") or "published"
    direction = "asc" if "_sort" in sort else "desc"
    while path:
        data = await get_json(ds, path)
        ids += [row["id"] for row in data["rows"]]
        values += [row[column] for row in data["rows"]]
        path = next_path(data)
    where, params = search_and_filters("&".join(pair for pair in page.split("&")
                                                if not pair.startswith("_sort")))
    expected = [pid for (pid,) in rows(real_db, f"select id from papers where {where} "
                                                f"order by {column} {direction}, id", params)]
    assert ids == expected
    # The case this guards: a page boundary inside a tie of the sort column.
    assert any(values[i - 1] == values[i] for i in range(7, len(values), 7)), values


async def test_only_a_sorted_first_page_gets_the_primary_key_as_tie_break(ds):
    """stable_pages rewrites SQL of a table page's exact shape only, and what it writes runs."""
    plugin = loaded_plugin("stable_pages.py")
    conn = sqlite3.connect(":memory:")
    conn.executescript("""create table t (id text primary key, n integer);
        create table r (a, b); create table k (a, b, primary key (a, b));
        create table [odd name] ([the id] text primary key, [order] integer);
        create view v as select * from t;""")
    page = "select id, n from t order by n limit 26"
    rewritten = {
        page: "select id, n from t order by n, id limit 26",
        "select id, n from t where n > :p0 order by n desc limit 26":
            "select id, n from t where n > :p0 order by n desc, id limit 26",
        "select rowid, a, b from r order by a limit 3": "select rowid, a, b from r order by a, rowid limit 3",
        "select a, b from k order by b desc limit 3": "select a, b from k order by b desc, a, b limit 3",
        "select [the id], [order] from [odd name] order by [order] desc limit 5":
            "select [the id], [order] from [odd name] order by [order] desc, [the id] limit 5",
        # A compound select made by a where clause still sorts by its own columns.
        "select id, n from t where 1 union select id, n from t order by n limit 3":
            "select id, n from t where 1 union select id, n from t order by n, id limit 3",
    }
    unchanged = [
        "select id, n from t where (n < :p0 or (n = :p0 and id > :p1)) order by n desc, id limit 26",
        "select id, n from t order by id limit 26",  # sorted by the key already
        "select n from t order by n limit 26",  # the key is not selected
        "select count(*) from t order by n limit 3", "select id, n from v order by n limit 26",
        "select id, n from t order by n limit 26 offset 26", "select id, n from t order by n",
        "select id, n from t union select id, n from t order by n limit 3",
        "select id, n from (select * from t) order by n limit 3", None,
    ]
    for sql in [*rewritten, *unchanged]:
        match = plugin.sorted_first_page(sql)
        keys = match and plugin.tie_keys(conn, plugin.unescaped(match["table"]))
        result = plugin.with_tie_break(sql, keys, match) if match else sql
        assert result == rewritten.get(sql, sql), sql
        if result is not None:
            conn.execute(result, {"p0": 1, "p1": "a"} if ":p" in result else {})


async def test_sorted_pages_sort_the_rowids_and_keep_the_null_test_off_the_index(ds):
    """stable_pages' two rewrites for speed (its docstring), on SQL of Datasette's shapes: a
    sorted page of a table with a rowid sorts the rowids and reads its rows after; a later
    page sorted descending tests its cursor's nulls with `+`; what it writes runs."""
    plugin = loaded_plugin("stable_pages.py")
    conn = sqlite3.connect(":memory:")
    conn.executescript("""create table t (id text primary key, n integer);
        create table r (a, b); create table k (a, b, primary key (a, b)) without rowid;
        create table h (id text primary key, rowid integer);
        create view v as select * from t;""")
    desc_cursor = "(n < :p1 or n is null or (n = :p1 and ((id > :p0))))"
    rewritten = {
        "select id, n from t order by n limit 26":
            "select id, n from t where rowid in (select rowid from t order by n, id limit 26) "
            "order by n, id limit 26",
        f"select id, n from t where {desc_cursor} order by n desc, id limit 26":
            "select id, n from t where rowid in (select rowid from t where "
            "(n < :p1 or +n is null or (n = :p1 and ((id > :p0)))) order by n desc, id limit 26) "
            "order by n desc, id limit 26",
        "select id, n from t where (n > :p1 or (n = :p1 and ((id > :p0)))) order by n, id limit 26":
            "select id, n from t where rowid in (select rowid from t where (n > :p1 or (n = :p1 "
            "and ((id > :p0)))) order by n, id limit 26) order by n, id limit 26",
        "select rowid, a, b from r where (a < :p1 or a is null or (a = :p1 and rowid > :p0)) "
        "order by a desc, rowid limit 3":
            "select rowid, a, b from r where rowid in (select rowid from r where (a < :p1 or "
            "+a is null or (a = :p1 and rowid > :p0)) order by a desc, rowid limit 3) "
            "order by a desc, rowid limit 3",
        # No rowid to sort: the null test alone (and the first page's tie-break).
        "select a, b from k where (b < :p2 or b is null or (b = :p2 and ((a > :p0) or (a = :p0 "
        "and b > :p1)))) order by b desc, a, b limit 3":
            "select a, b from k where (b < :p2 or +b is null or (b = :p2 and ((a > :p0) or "
            "(a = :p0 and b > :p1)))) order by b desc, a, b limit 3",
        "select a, b from k order by b desc limit 3": "select a, b from k order by b desc, a, b limit 3",
        "select id, rowid from h order by rowid limit 3": "select id, rowid from h order by rowid, id limit 3",
        # A visitor's compound select sorts the compound's rows: the tie-break alone.
        "select id, n from t where 1 union select id, n from t order by n limit 3":
            "select id, n from t where 1 union select id, n from t order by n, id limit 3",
        "select id, n from t where 1 UNION ALL select id, n from t where n > 1 order by n limit 3":
            "select id, n from t where 1 UNION ALL select id, n from t where n > 1 order by n, id limit 3",
        "select id, n from t where n > 0 group by n order by n limit 3":
            "select id, n from t where n > 0 group by n order by n, id limit 3",
    }
    unchanged = [
        "select id, n from t order by id limit 26",  # sorted by the key: its index is the order
        "select rowid, a, b from r where rowid > :p0 order by rowid limit 26",
        "select id, n from v order by n limit 26",
        "select id, n from t where n < :p1 or n is null order by n desc, id limit 26 offset 3",
        "select count(*) from t order by n limit 3",
    ]
    for sql in [*rewritten, *unchanged]:
        match = plugin.sorted_page(sql)
        facts = plugin.table_facts(conn, plugin.unescaped(match["table"])) if match else None
        result = plugin.stable_and_fast(sql, facts) if match else sql
        assert result == rewritten.get(sql, sql), sql
        conn.execute(result, {"p0": 1, "p1": "a", "p2": 2} if ":p" in result else {})


# Sorts whose pages the rewrites change: nulls first (the date, the authors), nulls last
# (descending), a sort by the key descending, with a search and with filters.
REWRITTEN_PAGES = ["_sort=published", "_sort_desc=authors", "_sort=organization", "_sort_desc=id",
                   "_sort_desc=last_seen_dump", "_search=brain&_sort_desc=title_key",
                   "topics__arraycontains=fMRI&_sort=comments", "published_year=2025&_sort_desc=dumps_seen"]


@pytest.mark.parametrize("page", REWRITTEN_PAGES)
async def test_the_rewritten_pages_list_what_datasettes_own_sql_lists(ds, real_db, page):
    """Every page of a sorted listing, walked to its end, lists the rows Datasette's own SQL
    for that page gives (run here as Datasette wrote it, past stable_pages, with only the
    first page's tie-break added), in its order."""
    from datasette.utils import escape_fts

    conn = sqlite3.connect(f"file:{real_db}?mode=ro", uri=True)
    conn.create_function("escape_fts", 1, escape_fts)
    stable = loaded_plugin("stable_pages.py")
    path, pages, rewritten = f"/papers/papers.json?_size=7&{page}", 0, 0
    while path:
        data = await get_json(ds, path)
        sql, params = data["query"]["sql"], data["query"]["params"]
        first_page = stable.sorted_first_page(sql)
        ordered = stable.with_tie_break(sql, ["id"], first_page) if first_page else sql
        expected = [row[0] for row in conn.execute(ordered.replace(" limit 8", " limit 7"), params)]
        assert [row[0] for row in data["rows"]] == expected, path
        rewritten += stable.stable_and_fast(sql, stable.table_facts(conn, "papers")) != ordered
        pages += 1
        path = next_path(data)
    assert pages > 2 and rewritten >= pages - 1  # sorted by id, the first page is left as it is


# A later page of each kind of cursor (on a value, ascending or descending; on a null, either
# way), of the papers and of Datasette's own facets on other tables (one of them WITHOUT ROWID).
LATER_PAGE_FACETS = ["/papers/papers.json?_size=7", "/papers/papers.json?_size=7&_sort=authors",
                     "/papers/papers.json?_size=7&_sort_desc=authors",
                     "/papers/papers.json?_size=40&_search=brain&_sort=published_year",
                     "/papers/papers.json?_size=7&topics__arraycontains=fMRI&_sort_desc=comments",
                     "/papers/papers.json?_size=30&_facet=date_method&_sort=id",
                     "/papers/sightings.json?_size=100", "/papers/paper_topics.json?_size=200",
                     "/papers/paper_topics.json?_size=200&_sort_desc=topic"]


@pytest.mark.parametrize("path", LATER_PAGE_FACETS)
async def test_a_later_page_counts_its_facets_over_every_row_as_the_first_page(ds, path):
    """plugins/facets.py: a page after the first (`_next`) counts its facets over every row
    its filters and search select, as the first page and the page's row count do. Datasette
    0.65 counted only the rows after the page's cursor."""
    def counts(data):
        return {name: [(item["value"], item["count"]) for item in facet["results"]]
                for name, facet in data["facet_results"].items()}

    first = await get_json(ds, path)
    assert first["facet_results"] and first["next"]
    data, pages = first, 0
    while data["next"] and pages < 60:
        data = await get_json(ds, f"{path}&_next={urllib.parse.quote(data['next'])}")
        assert counts(data) == counts(first), (data["next"], pages)
        assert data["filtered_table_rows_count"] == first["filtered_table_rows_count"]
        pages += 1
    assert pages >= 2


@pytest.mark.parametrize("table", ["paper_topics", "title_blocks"])
async def test_tables_stored_by_their_key_browse_and_link_their_rows_by_it(ds, real_db, table):
    """write.WITHOUT_ROWID: no rowid, so Datasette must page, sort and address rows by the
    primary key alone."""
    from datasette.utils import tilde_encode

    key = list(TABLES[table][1])
    data = await get_json(ds, f"/papers/{table}.json?_shape=objects&_size=5")
    assert data["primary_keys"] == key
    expected = rows(real_db, f"select {', '.join(key)} from {table} order by {', '.join(key)} "
                             f"limit 10")
    assert [tuple(row[c] for c in key) for row in data["rows"]] == expected[:5]
    after = await get_json(ds, f"/papers/{table}.json?_shape=objects&_size=5&_next="
                               f"{data['next']}")  # the second page continues the first
    assert [tuple(row[c] for c in key) for row in after["rows"]] == expected[5:]
    first = data["rows"][0]
    path = ",".join(tilde_encode(str(first[c])) for c in key)
    row = await get_json(ds, f"/papers/{table}/{path}.json?_shape=objects")
    assert row["rows"] == [first]
    page = await ds.client.get(f"/papers/{table}/{path}")
    assert page.status_code == 200 and 'data-column="rowid"' not in page.text
    assert all(f'data-column="{column}"' in page.text for column in TABLES[table][0])


async def test_table_cells_show_a_preview_of_long_abstracts_that_opens_to_the_whole(ds, real_db):
    page = await ds.client.get("/papers/papers?_size=20")
    found = re.findall(r'<details class="abstract-preview"><summary>([^<]*)<span class="more">'
                       r' … more</span></summary><span class="rest">([^<]*)</span></details>',
                       page.text)
    previews = [(cut + rest, cut) for cut, rest in found]
    abstracts = dict(rows(real_db, "select abstract, id from papers"))
    shown = rows(real_db, "select abstract from papers order by published desc, id limit 20")
    long_ones = [a for (a,) in shown if len(a) > 260]
    assert long_ones and len(previews) == len(long_ones)
    for whole, cut in previews:
        whole, cut = html.unescape(whole), html.unescape(cut)
        assert whole in abstracts  # the summary and the rest are the full abstract
        assert whole.startswith(cut) and len(cut) <= 260 and whole[len(cut)] == " "


async def test_a_topics_number_of_papers_links_to_those_papers(ds, real_db):
    """The topics table and a topic's page led only to paper_topics (a row per rule that
    matched: 54 rows for EEG's 24 papers), not to the papers."""
    topics = rows(real_db, "select id, papers from topics where papers > 0 order by papers desc")
    page = (await ds.client.get("/papers/topics?_size=max")).text
    for topic, count in topics:
        link = f"/papers/papers?topics__arraycontains={urllib.parse.quote_plus(topic)}"
        assert f'<a href="{link}">{count:,}</a>' in page, topic
    topic, count = topics[0]
    assert f'topics__arraycontains={urllib.parse.quote_plus(topic)}">{count:,}</a>' in (
        await ds.client.get(f"/papers/topics/{topic}")).text
    listed = await get_json(ds, f"/papers/papers.json?topics__arraycontains={topic}&_size=0")
    assert listed["filtered_table_rows_count"] == count


async def test_the_feed_page_shows_previews_of_its_abstracts_and_the_feed_the_whole(ds, real_db):
    """The feed's canned query page listed 100 whole abstracts, a page 79,000 px tall."""
    page = (await ds.client.get("/papers/feed")).text
    cells = re.findall(r'<td class="col-atom_content[^"]*">(.*?)</td>', page, re.S)
    shown = rows(real_db, """select abstract from papers join dumps on dumps.name = first_seen_dump
                             order by dumps.position desc, published desc, papers.id limit 100""")
    assert len(cells) == len(shown) == 100
    for cell, (abstract,) in zip(cells, shown):
        assert ('class="abstract-preview"' in cell) == (len(abstract) > 260)
    feed = (await ds.client.get("/papers/feed.atom")).text
    assert html.escape(shown[0][0], quote=False) in feed


def test_the_base_template_is_datasettes_own_but_for_its_accessibility():
    """templates/base.html copies Datasette's to add the page's language, a skip link and a
    <main> landmark; an upgrade of Datasette that changes its base template must be copied
    again, not silently lose those."""
    import datasette

    own = (ROOT / "templates" / "base.html").read_text()
    stock = (Path(datasette.__file__).parent / "templates" / "base.html").read_text()
    additions = [
        ('<html lang="en">', "<html>"),
        ('<a class="skip-link" href="#content">Skip to content</a>\n', ""),
        ('<main id="content"><section class="content">', '<section class="content">'),
        ("</section></main>", "</section>"),
    ]
    for ours, theirs in additions:
        assert own.count(ours) == 1, ours
        own = own.replace(ours, theirs)
    assert own == stock


def test_the_facet_results_template_is_datasettes_own_but_for_the_indexed_facets_heading():
    """templates/_facet_results.html copies Datasette's; an upgrade that changes it must be
    copied again."""
    import datasette

    own = (ROOT / "templates" / "_facet_results.html").read_text()
    stock = (Path(datasette.__file__).parent / "templates" / "_facet_results.html").read_text()
    own = re.sub(r"\A\{#-.*?-#\}\n", "", own, flags=re.S)
    assert own.replace('not in ("column", "indexed")', '!= "column"', 1) == stock


async def test_facets_are_headed_by_their_column_not_by_how_they_are_counted(ds):
    """The papers page headed five facets "published_year (indexed)" and so on: how the
    plugin counts them, which means nothing to a visitor."""
    page = (await ds.client.get("/papers/papers")).text
    headings = [" ".join(h.split()) for h in re.findall(
        r'<p class="facet-info-name">\s*<strong>([^<]*)<span', page)]
    assert sorted(headings) == sorted(
        ["published_year", "organization", "authors", "topics (list)", "dumps (list)",
         "dumps_seen", "first_seen_dump"])


COUNTED_PAGES = ["_search=brain", "_search=brain&_searchmode=raw", "_search=brain+OR+eeg&_searchmode=raw",
                 "_search=zzzznothing", "_search=brain&published_year__gte=2024",
                 "_search=brain&_sort=title", "_search=neural&topics__arraycontains=fMRI"]


@pytest.mark.parametrize("page", COUNTED_PAGES)
async def test_a_search_counts_what_it_matches(ds, real_db, page, search_plan):
    """The row count above a searched table is the number of papers the search and the
    filters match. A search with no other filter is counted from the full-text index alone
    (plugins/search_plan.py; at a million papers 19 ms against 610 ms through the papers);
    any other count is Datasette's own."""
    from datasette.tracer import capture_traces

    traces = []
    with capture_traces(traces):
        data = await get_json(ds, f"/papers/papers.json?_size=1&{page}")
    counts = [trace["sql"] for trace in traces
              if trace.get("sql", "").startswith("select count(*) from papers")]
    (stock,) = (await get_json(ds, f"/papers/papers.json?_size=1&{page}&_fts_pk=rowid"))[
        "filtered_table_rows_count"],
    where, params = search_and_filters(page.replace("&_sort=title", ""))
    (expected,) = rows(real_db, f"select count(*) from papers where {where}", params)[0]
    assert data["filtered_table_rows_count"] == stock == expected
    assert len(counts) == 1
    search_alone = {pair.split("=")[0] for pair in page.split("&")} <= {
        "_search", "_searchmode", "_sort"}
    assert counts[0].startswith("select count(*) from papers_fts where") == search_alone, counts
    if "zzzz" not in page:
        assert expected > 0, page


def test_only_a_count_of_the_search_alone_is_read_from_the_index():
    counts = loaded_plugin("search_plan.py").search_only_counts("papers", "papers_fts", "search_rowid")
    assert counts == {
        "select count(*) from papers where search_rowid in (select rowid from papers_fts where "
        "papers_fts match :search)": "select count(*) from papers_fts where papers_fts match :search",
        "select count(*) from papers where rowid in (select rowid from papers_fts where papers_fts "
        "match :search) and search_rowid in (select rowid from papers_fts where papers_fts match "
        ":search)": "select count(*) from papers_fts where papers_fts match :search",
        "select count(*) from papers where search_rowid in (select rowid from papers_fts where "
        "papers_fts match escape_fts(:search))":
            "select count(*) from papers_fts where papers_fts match escape_fts(:search)",
        "select count(*) from papers where rowid in (select rowid from papers_fts where papers_fts "
        "match escape_fts(:search)) and search_rowid in (select rowid from papers_fts where "
        "papers_fts match escape_fts(:search))":
            "select count(*) from papers_fts where papers_fts match escape_fts(:search)",
    }


@pytest.mark.parametrize("words", ["brain", "fmri decoding", "zzzznothing", "neural"])
async def test_the_search_page_says_what_it_found_without_javascript(ds, real_db, words):
    """The canned search's page (templates/query-papers-search.html) names its box and its
    button, and heads the results with what they are, in its HTML: not Datasette's "q",
    "Run SQL" and "Custom SQL query returning N rows"."""
    response = await ds.client.get("/papers/search?q=" + words.replace(" ", "+"))
    assert response.status_code == 200
    page = response.text
    assert re.search(r'<label for="search-q">Search titles and abstracts</label>\s*'
                     rf'<input type="search" id="search-q" name="q" value="{words}">\s*'
                     r'<input type="submit" value="Search">', page)
    assert "Run SQL" not in page and "Custom SQL query" not in page
    quoted = " ".join(f'"{word}"' for word in words.split())
    (matches,) = rows(real_db, "select count(*) from papers_fts where papers_fts match ?",
                      (quoted,))[0]
    shown = max(page.count("<tr>") - 1, 0)  # the header row, if there is a table
    heading = html.unescape(re.search(r"<h2[^>]*>(.*?)</h2>", page, re.DOTALL).group(1)).strip()
    limit = int(re.search(r"limit (\d+)", QUERIES["search"]["sql"]).group(1))
    assert shown == min(matches, limit)
    assert heading == {0: f"No paper matches “{words}”", 1: f"1 paper matches “{words}”",
                       limit: f"The {limit} best matches for “{words}”"}.get(
        shown, f"{shown} papers match “{words}”, the best first")
    assert "<pre id=\"sql-query\"" not in page
    shown_sql = (await ds.client.get(f"/papers/search?q={words}&_show_sql=1")).text
    assert "<pre id=\"sql-query\"" in shown_sql and "bm25(papers_fts, 10.0, 1.0)" in shown_sql


ROWS = r"[\d,]+ rows?"
SQL = "Custom SQL query"
HEADED_PAGES = [("/", None), ("/papers", SQL), ("/papers/papers", ROWS),
                ("/papers/papers?_search=brain", ROWS),
                ("/papers/papers?_search=brain&_where=authors+>+2", ROWS),
                ("/papers/sightings", ROWS), ("/papers/most_seen", SQL),
                ("/papers/search?q=brain", "The 100 best matches"), ("/papers?sql=select+1", SQL),
                ("/papers/dumps", ROWS), ("/papers/papers/{paper}", None),
                ("/papers/dumps/{dump}", None)]


@pytest.mark.parametrize("path, heading", HEADED_PAGES)
async def test_headings_go_down_one_level_at_a_time(ds, real_db, path, heading):
    """A screen reader lists a page by its headings: one h1, and no level skipped below it
    (Datasette's pages went from h1 to h3; templates/ and plugins/headings.py make those h2,
    styled as before)."""
    from datasette.utils import tilde_encode

    (paper,), (dump,) = rows(real_db, "select id from papers limit 1")[0], rows(
        real_db, "select name from dumps limit 1")[0]
    response = await ds.client.get(path.format(paper=tilde_encode(paper), dump=tilde_encode(dump)))
    assert response.status_code == 200
    main = response.text.split('<main id="content"', 1)[1].split("</main>", 1)[0]
    levels = [int(level) for level in re.findall(r"<h([1-6])\b", main)]
    assert levels[0] == 1 and levels.count(1) == 1, levels
    assert all(after <= before + 1 for before, after in zip(levels, levels[1:])), levels
    assert "&lt;h" not in main  # the page's own markup, not shown as text
    if heading:  # the heading that was an h3 is there, as an h2
        assert re.search(rf'<h2 class="header3">\s*{heading}', main), main[:3000]


async def test_a_mutable_database_counts_a_search_through_its_papers(real_db, tmp_path):
    """On a mutable file the full-text index may lag behind the papers (it has no triggers):
    the count of a search is Datasette's own, the rows the page lists."""
    copy = tmp_path / "papers.db"
    copy.write_bytes(real_db.read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("delete from papers where rowid = (select min(rowid) from papers_fts "
                     "where papers_fts match 'brain')")
    site = Datasette([str(copy)], metadata=METADATA, plugins_dir=str(site_paths()["plugins"]),
                     settings=SETTINGS)
    data = await get_json(site, "/papers/papers.json?_search=brain&_size=max")
    (indexed,) = rows(copy, "select count(*) from papers_fts where papers_fts match 'brain'")[0]
    assert data["filtered_table_rows_count"] == len(data["rows"]) == indexed - 1


@pytest.mark.parametrize("path", ["/papers.csv", "/papers.json?_shape=array",
                                  "/papers.json?_shape=arrayfirst", "/papers.csv?sql=",
                                  "/papers.json?sql=&_shape=array"])
async def test_the_database_as_csv_or_rows_without_a_query_is_a_client_error(ds, path):
    """The database's own page has rows only for ?sql=: Datasette 0.65 failed with a 500
    (KeyError 'columns' or 'rows') when asked for them without one."""
    response = await ds.client.get(path)
    assert response.status_code == 400, response.text[:200]
    assert "no SQL query given" in response.text


async def test_a_search_that_fails_says_so_and_not_that_nothing_matched(ds):
    response = await ds.client.get("/papers/search?q=brain%00")  # FTS5 refuses it
    assert response.status_code == 400
    assert 'class="message-error"' in response.text
    assert "No paper matches" not in response.text and "<table" not in response.text
    assert '>show the SQL</a>' in response.text  # to see what failed


@pytest.mark.parametrize("path", ["/papers/search", "/papers/search?q=brain%00"])
async def test_the_search_page_can_always_hide_the_sql_it_shows(ds, path):
    shown = await ds.client.get(path + ("&" if "?" in path else "?") + "_show_sql=1")
    assert '<pre id="sql-query"' in shown.text and ">hide the SQL</a>" in shown.text


@pytest.mark.parametrize("query", [
    "", "_search=brain", "_search=brain&_next=2024-01-01%2Cabc", "topics__arraycontains=fMRI&topics__arraycontains=EEG",
    "published_year=2024&_facet=organization&_sort=title", "_search=%C3%A9l%C3%A8ve+%22x%22&_where=authors+%3E+2",
    "blank=&_size=5", "a=1&a=2&_next=7&b=%2F%2E%2E%2Fx"])
@pytest.mark.parametrize("value", ["fMRI", 2024, "a b&c=d", "é", "x/../y"])
async def test_facet_value_links_are_datasettes_own(ds, query, value):
    """plugins/facets.py's ValueLinks makes the links of facet values faster, and the same
    as with_filter_added / with_filter_removed and Datasette's absolute_url would."""
    facets = loaded_facets_plugin()
    for path in ("/papers/papers", "/papers/sightings"):
        request = Request.fake(f"{path}?{query}" if query else path)
        links = facets.ValueLinks(ds, request)
        for selected in (False, True):
            change = facets.with_filter_removed if selected else facets.with_filter_added
            expected = change(request, "topics__arraycontains", value)
            assert links.toggle("topics__arraycontains", value, selected) == expected
            assert links.absolute(expected) == ds.absolute_url(request, expected)
            routed = ds.urls.path(expected)
            assert links.absolute(routed) == ds.absolute_url(request, routed)
        for odd in ("//elsewhere/x", "/papers/../papers", "relative?x=1", "/./x"):
            assert links.absolute(odd) == ds.absolute_url(request, odd)


async def test_a_bad_host_header_does_not_break_a_search_without_matches(ds):
    """A facet with no values makes no link, so it needs no origin from the Host header
    (urljoin refuses `[`): the page answers as it did before ValueLinks."""
    response = await ds.client.get("/papers/papers.json?_search=zzqqxx", headers={"host": "["})
    assert response.status_code == 200 and response.json()["rows"] == []


def test_facet_counts_of_few_rows_and_of_many_agree():
    """ValueIndex finds a few rows' pairs by binary search and many rows' by testing every
    pair: both count the same, ordered by count and then value as SQLite orders values."""
    facets = load_plugin("facets")
    generator = np.random.default_rng(7)
    for _ in range(30):
        values = [*range(-3, 3), "b", "B", "a", "é", 2.5, b"x"][: generator.integers(1, 13)]
        rowids = np.sort(generator.integers(1, 400, size=generator.integers(0, 900)))
        numbers = generator.integers(0, len(values), size=len(rowids))
        index = facets.ValueIndex(values, rowids.astype(np.int32), numbers.astype(np.int32))
        for size in (0, 1, 3, 20, 300):
            matched = np.unique(generator.integers(1, 450, size=size))
            few = index.numbers_held(matched)
            selected = np.isin(rowids, matched)
            assert sorted(few.tolist()) == sorted(numbers[selected].tolist())
            counts = index.counts(matched, 5)
            expected = sorted(((values[n], int((numbers[selected] == n).sum()))
                               for n in set(numbers[selected].tolist())),
                              key=lambda pair: (-pair[1], facets.sqlite_order(pair[0])))[:5]
            assert counts == expected


async def test_a_paper_page_shows_the_abstracts_other_copies_wrote(dumps_dir, tmp_path):
    from conftest import ABSTRACT_A, blank_separated, run_build

    longer = ABSTRACT_A + " Code <and> weights are released."
    (dumps_dir / "a.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A)))
    (dumps_dir / "b.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A)))
    (dumps_dir / "c.txt").write_text(blank_separated(("Shared paper", longer)))
    db = tmp_path / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    paths = site_paths()
    small = Datasette([], immutables=[str(db)], metadata=METADATA,
                      plugins_dir=str(paths["plugins"]), template_dir=str(paths["templates"]),
                      settings=SETTINGS)
    page = (await small.client.get("/papers/papers/shared-paper")).text
    copies = re.findall(r'<details class="abstract-copy"><summary>(.*?)</summary>\s*'
                        r'<p class="abstract">(.*?)</p>', page, re.S)
    assert copies == [("c.txt, line 13", html.escape(longer, quote=False))]


@pytest.fixture(scope="module")
def small_site(tmp_path_factory):
    """A site of one dump: three papers, two of them undated (one with an organization,
    the other one's date impossible), one organization and one problem."""
    from conftest import ABSTRACT_A, ABSTRACT_B, blank_separated, run_build

    folder = tmp_path_factory.mktemp("small")
    (folder / "dumps").mkdir()
    (folder / "dumps" / "a.txt").write_text(blank_separated(
        ("Decoding seen images from fMRI", ABSTRACT_A, ["• 3 authors", "·", "Mar 3, 2025"]),
        ("Reconstructing images from voxels", ABSTRACT_A.replace("six", "eight"),
         ["Korea University", "·", "Feb 30, 2025"]),
        ("Surrogate gradients for spiking networks", ABSTRACT_B)))
    db = folder / "papers.db"
    assert run_build(folder / "dumps", db).returncode == 0
    paths = site_paths()
    return Datasette([], immutables=[str(db)], metadata=METADATA,
                     plugins_dir=str(paths["plugins"]), template_dir=str(paths["templates"]),
                     settings=SETTINGS)


async def test_a_paper_without_a_date_lists_its_other_facts_without_a_separator_first(small_site):
    """A related paper, or a ranked match, with no date: its line starts with the next fact,
    not with " · "."""
    page = (await small_site.client.get("/papers/papers/decoding-seen-images-from-fmri")).text
    (related,) = re.findall(r'<ol class="related">.*?</ol>', page, re.S)
    assert re.findall(r'<span class="method">(.*?)</span>', related) == [
        "relevance 0.0 · shared: decoding, fmri, images, seen, model, diffusion"]
    page = (await small_site.client.get("/papers/papers?_search=images")).text
    (ranked,) = re.findall(r'<section class="ranked">.*?</section>', page, re.S)
    assert re.findall(r'<span class="method">(.*?)</span>', ranked) == [
        "Korea University", "2025-03-03"]


async def test_the_front_page_counts_one_of_a_kind_in_the_singular(small_site, ds, real_db):
    facts = " ".join(re.sub(r"<[^>]+>", "", (await small_site.client.get("/")).text).split())
    assert "3 papers from 1 dump (3 sightings)" in facts
    assert "1 organization (1 on the map). 0 title variants merged, 1 unreadable line kept in" in facts
    assert "with 3 new papers." in facts
    facts = " ".join(re.sub(r"<[^>]+>", "", (await ds.client.get("/")).text).split())
    (organizations,) = rows(real_db, "select count(*) from organizations")[0]
    assert "from 5 dumps" in facts and f"{organizations} organizations (" in facts


async def test_the_map_links_the_organizations_it_could_not_place(ds):
    page = (await ds.client.get("/papers/organization_map")).text
    assert '<a href="/papers/unplaced_organizations">unplaced_organizations</a>' in page
    assert (await ds.client.get("/papers/unplaced_organizations")).status_code == 200


@pytest.mark.parametrize("sql, expected", [
    ("select escape_fts(null)", None), ("select escape_fts(12)", '"12"'),
    ("select escape_fts(1.5)", '"1.5"'), ("select escape_fts(x'627261696e20656567')", '"brain" "eeg"'),
    ("select title_similarity(x'427261696e', 'brain')", 100.0),
    ("select token_similarity(2024, '2024')", 100.0), ("select title_similarity(null, 1)", None),
    ("select fragment_similarity(x'427261696e', 2024)", 0.0),
    ("select fragment_similarity(null, 'brain')", None),
    ("select related_papers(null)", "[]"), ("select related_papers(x'00')", "[]"),
])
async def test_the_sites_sql_functions_take_null_numbers_and_blobs(ds, sql, expected):
    """Like SQLite's own functions: NULL for NULL, a number as its text, a blob as UTF-8;
    escape_fts(null) failed with "user-defined function raised exception"."""
    response = await ds.client.get("/papers.json", params={"sql": sql, "_shape": "arrayfirst"})
    assert response.status_code == 200, response.text[:300]
    assert response.json() == [expected]


@pytest.mark.parametrize("path", ["/papers/papers", "/papers/papers.json", "/papers/search",
                                  "/papers/search.csv?q=brain", "/papers/organization_map",
                                  "/papers/no_such_table"])
async def test_a_post_to_a_read_only_page_is_a_method_not_allowed(ds, path):
    """As a POST to a row or to the database is: Datasette 0.65 failed with a 500."""
    response = await ds.client.post(path, data={"q": "brain"})
    assert response.status_code == 405, response.text[:300]
    assert response.headers["allow"] == "GET, HEAD"
    assert response.text == "Method not allowed: this page is read-only; use GET\n"


async def test_a_canned_query_that_writes_still_takes_a_post(tmp_path):
    db = tmp_path / "notes.db"
    sqlite3.connect(db).execute("create table notes (text)").connection.close()
    paths = site_paths()
    site = Datasette([str(db)], plugins_dir=str(paths["plugins"]), metadata={"databases": {
        "notes": {"queries": {"add": {"sql": "insert into notes values (:text)", "write": True}}}}})
    response = await site.client.post("/notes/add", data={"text": "hello"})
    assert response.status_code == 302, response.text[:300]
    assert rows(db, "select text from notes") == [("hello",)]
    assert (await site.client.post("/notes/notes")).status_code == 405
    assert (await site.client.post("/elsewhere/notes")).status_code == 404


async def test_a_raw_search_fts5_cannot_read_says_why_and_can_be_corrected(ds):
    """Datasette showed only "Invalid SQL" and "unterminated string", with no search box."""
    response = await ds.client.get(
        "/papers/papers?_search=%22brain&_searchmode=raw&published_year=2025&_next=x")
    assert response.status_code == 400
    page = response.text
    assert "<h1>Invalid search</h1>" in page
    assert re.search(r'<p class="message-error">“&#34;brain” is not a search FTS5 can read '
                     r'.*: unterminated string\.</p>', page, re.S)
    (form,) = re.findall(r'<form class="search-form" action="/papers/papers" method="get">.*?</form>',
                         page, re.S)
    assert re.findall(r'<input type="(\w+)"(?: id="_search")? name="(\w+)" value="([^"]*)"', form) == [
        ("search", "_search", "&#34;brain"), ("hidden", "_searchmode", "raw"),
        ("hidden", "published_year", "2025")]  # the cursor is left behind
    assert '<a href="/papers/papers?published_year=2025&amp;_search=%22brain">search for its words</a>' in page
    words = await ds.client.get("/papers/papers?published_year=2025&_search=%22brain")
    assert words.status_code == 200
    # A failure elsewhere in the page's SQL is still Datasette's own error.
    other = await ds.client.get("/papers/papers?_search=brain&_searchmode=raw&_where=nosuch%3D1")
    assert other.status_code == 400 and "no such column: nosuch" in other.text
    assert "Invalid search" not in other.text
    for export in ("json", "csv"):
        response = await ds.client.get(f"/papers/papers.{export}?_search=%22brain&_searchmode=raw")
        assert response.status_code == 400 and "unterminated string" in response.text


def filter_form_fields(page: str) -> list[tuple[str, str]]:
    """The (name, value) pairs the table page's filter form sends as it is (selects unset)."""
    (form,) = re.findall(r'<form class="filters".*?</form>', page, re.S)
    return [(name, html.unescape(value)) for name, value in
            re.findall(r'<input[^>]* name="([^"]+)" value="([^"]*)"', form)]


@pytest.mark.parametrize("query, box, label", [
    ("_search_title=brain", ("_search_title", "brain"), "Search title:"),
    ("_search_title=brain&_search_abstract=fmri", ("_search_abstract", "fmri"), "Search abstract:"),
    ("_search=brain", ("_search", "brain"), "Search:"), ("", ("_search", ""), "Search:")])
async def test_the_search_box_sends_the_search_the_page_made(ds, query, box, label):
    """On a title search, the box showed the title's search but sent it as `_search` too,
    and Datasette then searched every column and ignored the title search."""
    page = (await ds.client.get("/papers/papers?" + query)).text
    assert f'<label for="_search">{label}</label><input id="_search" type="search" name="{box[0]}"' in page
    fields = filter_form_fields(page)
    assert [field for field in fields if field[0].startswith("_search")] == [
        box, *[pair for pair in urllib.parse.parse_qsl(query) if pair[0] != box[0]]]
    # What the form sends (Datasette's redirect drops its blank fields), as JSON.
    sent = await get_json(ds, "/papers/papers.json?_shape=array&_size=max&" + urllib.parse.urlencode(
        [field for field in fields if field[0] != "_size" and field[1]]))
    shown = await get_json(ds, f"/papers/papers.json?_shape=array&_size=max&{query}")
    assert [row["id"] for row in sent] == [row["id"] for row in shown]


@pytest.mark.parametrize("search, operators", [
    ("brain OR eeg", ["OR"]), ("decoding AND fmri NOT eeg", ["AND", "NOT"]), ("decod*", ["decod*"]),
    ("brain or eeg", []), ("brain", []), ("*", [])])
async def test_a_search_that_writes_fts5_operators_says_the_box_reads_them_as_words(ds, search, operators):
    """"brain OR eeg" found 8 papers where "brain" alone finds 106 (the box looks for the word
    "or" too) and said nothing; the page now says so and links the same search read raw."""
    query = urllib.parse.urlencode({"_search": search, "topics__arraycontains": "EEG"})
    page = (await ds.client.get(f"/papers/papers?{query}")).text
    notes = re.findall(r'<p class="ranked-operators">(.*?)</p>', page, re.S)
    if not operators:
        assert notes == []
        return
    (note,) = notes
    assert ", ".join(f"“{op}”" for op in operators) in note
    link = html.unescape(re.search(r'href="([^"]+)"', note).group(1))
    assert urllib.parse.parse_qs(link.split("?", 1)[1]) == {
        "_search": [search], "topics__arraycontains": ["EEG"], "_searchmode": ["raw"]}
    raw = await get_json(ds, link.replace("/papers/papers?", "/papers/papers.json?", 1))
    if search == "brain OR eeg":  # read raw, OR finds the papers holding either word
        words = await get_json(ds, f"/papers/papers.json?{query}")
        assert raw["filtered_table_rows_count"] > words["filtered_table_rows_count"]


@pytest.mark.parametrize("q, operators", [("brain OR eeg", ["OR"]), ("brain or eeg", [])])
async def test_the_ranked_search_page_says_too_that_it_reads_operators_as_words(ds, q, operators):
    page = (await ds.client.get(f"/papers/search?{urllib.parse.urlencode({'q': q})}")).text
    notes = re.findall(r'<p class="ranked-operators">(.*?)</p>', page, re.S)
    assert len(notes) == len(operators)
    if operators:
        link = html.unescape(re.search(r'href="([^"]+)"', notes[0]).group(1))
        assert link == "/papers/papers?" + urllib.parse.urlencode({"_search": q, "_searchmode": "raw"})
        assert (await ds.client.get(link)).status_code == 200


async def test_a_word_repeated_hundreds_of_times_is_searched_once(ds):
    """300 phrases of one term made snippet() weigh each occurrence against every other:
    the ranked search's page hit the SQL time limit on 332 papers."""
    once = await get_json(ds, "/papers/search.json?_shape=array&q=brain")
    repeated = await ds.client.get("/papers/search.json", params={
        "_shape": "array", "q": " ".join(["brain", "Brain,", "BRAIN."] * 400)})
    assert repeated.status_code == 200, repeated.text[:300]
    assert repeated.json() == once
    single = await get_json(ds, "/papers/papers.json?_search=brain")
    page = await ds.client.get("/papers/papers.json", params={"_search": "brain " * 1000})
    assert page.status_code == 200 and page.json()["rows"] == single["rows"]


def test_searching_each_phrase_once_matches_the_same_papers(real_db):
    """escape_fts gives phrases that differ only in ASCII case and in the ASCII characters
    between words once: FTS5 reads them as the same terms, so every search matches what it
    matched with each of them (Datasette's escape_fts)."""
    from datasette.utils import escape_fts as every_phrase

    escape_fts = load_plugin("search_plan").escape_fts
    generator = random.Random(5)
    words = [word for (title,) in rows(real_db, "select title from papers limit 60")
             for word in title.split()]
    variants = [str.lower, str.upper, str.title, lambda w: w + ",", lambda w: "(" + w + ")",
                lambda w: w.replace("-", " "), lambda w: w + "-" + w, lambda w: '"' + w + '"']
    conn = sqlite3.connect(real_db)
    count = "select count(*) from papers_fts where papers_fts match ?"
    for _ in range(300):
        chosen = generator.choices(words, k=generator.randint(1, 4))
        search = " ".join(generator.choice(variants)(generator.choice(chosen))
                          for _ in range(generator.randint(1, 12)))
        assert len(escape_fts(search)) <= len(every_phrase(search))
        assert (conn.execute(count, [escape_fts(search)]).fetchone()
                == conn.execute(count, [every_phrase(search)]).fetchone()), search
    conn.close()


@pytest.mark.parametrize("search", ['"brain\nfmri', 'brain"\nfmri', 'fmri "brain\neeg"',
                                    '"brain\ndecoding', 'brain "\nbrain'])
def test_a_search_with_a_line_break_in_quotes_matches_what_it_matched(real_db, search):
    """Datasette's escape_fts pairs no quotes across a line break ('"brain\\nfmri' gives
    '"brain "fmri""', which FTS5 reads as brain AND fmri): its output is not phrases alone,
    and taking the phrases out of it dropped words (brain alone, 106 papers instead of 24)."""
    from datasette.utils import escape_fts as every_phrase

    escape_fts = load_plugin("search_plan").escape_fts
    conn = sqlite3.connect(real_db)

    def matches(query):
        try:
            return sorted(conn.execute("select rowid from papers_fts where papers_fts match ?",
                                       [query]))
        except sqlite3.OperationalError as error:
            return str(error)

    assert matches(escape_fts(search)) == matches(every_phrase(search))
    conn.close()


async def test_a_raw_search_of_one_column_fts5_cannot_read_says_why_and_keeps_its_column(ds):
    """?_search_title= with _searchmode=raw still got Datasette's bare "Invalid SQL"."""
    response = await ds.client.get(
        "/papers/papers?_search_title=%22brain&_searchmode=raw&published_year=2025")
    assert response.status_code == 400
    page = response.text
    assert "<h1>Invalid search</h1>" in page and ": unterminated string.</p>" in page
    (form,) = re.findall(r'<form class="search-form" action="/papers/papers" method="get">.*?</form>',
                         page, re.S)
    assert '<label for="_search">Search title</label>' in form
    assert re.findall(r'<input type="(\w+)"(?: id="_search")? name="(\w+)" value="([^"]*)"', form) == [
        ("search", "_search_title", "&#34;brain"), ("hidden", "_searchmode", "raw"),
        ("hidden", "published_year", "2025")]
    link = "/papers/papers?published_year=2025&amp;_search_title=%22brain"
    assert f'<a href="{link}">search for its words</a>' in page
    assert (await ds.client.get(link.replace("&amp;", "&"))).status_code == 200
    # A column FTS5 does not index is Datasette's own refusal, as before.
    other = await ds.client.get("/papers/papers?_search_nosuch=%22brain&_searchmode=raw")
    assert other.status_code == 400 and "Invalid search" not in other.text


async def test_filter_and_sort_controls_are_named_without_javascript(ds):
    """static/site.js named them: without JavaScript, a screen reader had only "combo box"."""
    page = (await ds.client.get("/papers/papers?published_year__gte=2020")).text
    names = dict(re.findall(r'<(?:select|input)[^>]* aria-label="([^"]+)" name="(\w+)"', page))
    assert {name: label for label, name in names.items()} == {
        "_filter_column_1": "Filter 1: column", "_filter_op_1": "Filter 1: operator",
        "_filter_value_1": "Filter 1: value", "_filter_column": "New filter: column",
        "_filter_op": "New filter: operator", "_filter_value": "New filter: value",
        "_sort": "Sort by column"}


def test_a_ranked_search_pages_through_every_match_once_in_rank_order(site, real_db):
    """A script asking for every ranked match of a common word ("neural": 250 papers) gets
    them 100 at a time (`page=2`, ...), each once, ranked 1 to 250; the page says which
    matches it shows and links the next and previous ones, as its JSON lists them."""
    quoted = '"neural"'
    (matches,) = rows(real_db, "select count(*) from papers_fts where papers_fts match ?",
                      (quoted,))[0]
    limit = int(re.search(r"limit (\d+)", QUERIES["search"]["sql"]).group(1))
    assert matches > 2 * limit
    pages, found = [], []
    for number in range(1, matches // limit + 2):  # the last page is short
        pages.append(httpx.get(f"{site}/papers/search.json", params={
            "q": "neural", "page": number, "_shape": "array"}).json())
        found += pages[-1]
    assert [row["rank"] for row in found] == list(range(1, matches + 1))
    assert sorted(row["paper_id"] for row in found) == sorted(id for (id,) in rows(real_db, """
        select id from papers where rowid in
            (select rowid from papers_fts where papers_fts match ?)""", (quoted,)))
    assert [row["score"] for row in found] == sorted((row["score"] for row in found), reverse=True)
    last = len(pages)
    for number, listed in enumerate(pages, 1):
        page = httpx.get(f"{site}/papers/search", params={"q": "neural", "page": number}).text
        shown = re.findall(r'<td class="col-paper_id"><a href="/papers/papers/([^"]+)"', page)
        assert shown == [row["paper_id"] for row in listed]
        heading = html.unescape(re.search(r"<h2[^>]*>(.*?)</h2>", page, re.DOTALL).group(1))
        assert heading.strip() == (f"The {limit} best matches for “neural”" if number == 1 else
                                   f"Matches {listed[0]['rank']} to {listed[-1]['rank']} "
                                   f"for “neural”, the best first")
        assert (f'href="/papers/search?q=neural&amp;page={number + 1}"' in page) == (
            number < last)
        assert (f'href="/papers/search?q=neural&amp;page={number - 1}"' in page) == (number > 1)


def test_asking_for_a_facet_the_page_already_has_counts_it_once(site):
    """`_facet=published_year` or `_facet_array=topics`, which the papers page already
    facets (metadata.yml), is that facet, not a second one (`published_year_2` in JSON, a
    second box with the same HTML id); a facet the page lacks is still added."""
    params = {"_search": "brain", "_facet": ["published_year", "title"],
              "_facet_array": "topics"}
    data = httpx.get(f"{site}/papers/papers.json", params={**params, "_size": 0}).json()
    declared = [next(iter(facet.values())) for facet in PAPERS["facets"]]
    assert sorted(data["facet_results"]) == sorted([*declared, "title"])
    page = httpx.get(f"{site}/papers/papers", params=params).text
    ids = re.findall(r'<div class="facet-info[^"]*" id="([^"]+)"', page)
    assert sorted(ids) == sorted(f"facet-{column}" for column in [*declared, "title"])
