"""A facet for the JSON array columns the build writes (papers.topics, papers.dumps).

Datasette's own array facet counts each item once per row by joining every item with the
whole row (`select distinct j.value, inner.* ...`), which copies every column of every
matching row, abstracts included: on 15,000 papers the topics facet gave up after the
site's 400 ms facet limit. The build writes every array with distinct values, so counting
items needs only that one column. metadata.yml names these facets `list: topics`; the
links they make filter with Datasette's own `topics__arraycontains=`.
"""

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.facets import ArrayFacet
from datasette.utils import escape_sqlite, path_with_added_args, path_with_removed_args


class ListFacet(ArrayFacet):
    type = "list"

    async def suggest(self):
        return []  # declared in metadata.yml, never suggested

    async def facet_results(self):
        results, timed_out = [], []
        size = self.get_facet_size()
        pairs = self.get_querystring_pairs()
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            sql = (f"select j.value as value, count(*) as count "
                   f"from ({self.sql}) as inner_rows, json_each(inner_rows.{escape_sqlite(column)}) j "
                   f"group by j.value order by count(*) desc, j.value limit {size + 1}")
            try:
                rows = await self.ds.execute(
                    self.database, sql, self.params, truncate=False,
                    custom_time_limit=self.ds.setting("facet_time_limit_ms"))
            except QueryInterrupted:
                timed_out.append(column)
                continue
            values = []
            for row in rows.rows[:size]:
                value = str(row["value"])
                selected = (f"{column}__arraycontains", value) in pairs
                change = path_with_removed_args if selected else path_with_added_args
                values.append({
                    "value": value, "label": value, "count": row["count"], "selected": selected,
                    "toggle_url": self.ds.absolute_url(
                        self.request, change(self.request, {f"{column}__arraycontains": value})),
                })
            results.append({
                "name": column, "type": self.type, "results": values,
                "hideable": source_and_config["source"] != "metadata",
                "toggle_url": self.ds.urls.path(
                    path_with_removed_args(self.request, {f"_facet_{self.type}": column})),
                "truncated": len(rows) > size,
            })
        return results, timed_out


@hookimpl
def register_facet_classes():
    return [ListFacet]
