"""SQL functions backed by rapidfuzz, so visitors can fuzzy-match titles in SQL.

    select title, title_similarity(title, 'brain decodng fmri') as score
    from papers order by score desc limit 10

title_similarity(a, b) -> 0..100: rapidfuzz ratio of the two titles once case,
accents, punctuation and spacing are erased (the same normalization the build's
deduplication uses for papers.title_key).
token_similarity(a, b) -> 0..100: rapidfuzz token_set_ratio, which ignores word order
and extra words: good for looking a paper up by a few words of its title.
"""

from datasette import hookimpl
from rapidfuzz import fuzz

from neuroai_papers.dedupe import title_key


def title_similarity(a, b):
    if a is None or b is None:
        return None
    return round(fuzz.ratio(title_key(str(a)), title_key(str(b))), 1)


def token_similarity(a, b):
    if a is None or b is None:
        return None
    return round(fuzz.token_set_ratio(title_key(str(a)), title_key(str(b))), 1)


@hookimpl
def prepare_connection(conn):
    conn.create_function("title_similarity", 2, title_similarity, deterministic=True)
    conn.create_function("token_similarity", 2, token_similarity, deterministic=True)
