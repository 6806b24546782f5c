"""SQL functions backed by rapidfuzz, so visitors can fuzzy-match titles in SQL.

    select title, title_similarity(title, 'brain decodng fmri') as score
    from papers order by score desc limit 10

title_similarity(a, b) -> 0..100: rapidfuzz ratio of the two titles once case,
accents, punctuation and spacing are erased (the same normalization the build's
deduplication uses for papers.title_key).
token_similarity(a, b) -> 0..100: rapidfuzz token_set_ratio, which ignores word order
and extra words: good for looking a paper up by a few words of its title.
fragment_similarity(a, b) -> 0..100: rapidfuzz partial_ratio, the shorter title against
the part of the longer that matches it best: a few words of a title with a typo
(`brain decodng` scores 92 against "Brain decoding: toward ...", 56 with the other two).
title_words_match(title) -> an FTS5 query for the titles that share the start of one of its
words (the first four letters of each word of three or more): the candidates of the canned
query fuzzy_title on a large file, where scoring every title takes too long.
All three similarities compare at most the first 1,000 characters of each argument: rapidfuzz's time grows
with the product of the lengths (two strings of 300,000 characters take 1.5 s), and the
SQL time limit cannot stop a function while it runs.
"""

import functools
import re
import unicodedata

from datasette import hookimpl
from rapidfuzz import fuzz

MAX_CHARS = 1_000  # titles are under 300 characters
MATCH_WORDS = 12  # words of a title looked up by title_words_match, in order
MATCH_PREFIX = 4  # letters of a word it looks up: a typo after them is found


def title_key(title):
    """Return the title with case, accents, punctuation and spacing erased.

    The same normalization as neuroai_papers.dedupe.title_key (a test holds them equal):
    repeated here because the published site runs the plugins without the build package.
    """
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


@functools.lru_cache(maxsize=256)
def key_of(text: str) -> str:
    """title_key, remembered: a query compares one title, its argument, with every row's, and
    normalized it again for each (5,000 rows of the canned fuzzy_title query, three
    functions)."""
    return title_key(text)


def as_text(value) -> str:
    """The start of a value as text, as SQLite's text functions read it: a number's text, a
    blob's bytes as UTF-8 (str() wrote a blob as Python's "b'...'")."""
    if isinstance(value, bytes):
        value = value[:4 * MAX_CHARS].decode("utf-8", "replace")
    return str(value)[:MAX_CHARS]


def title_similarity(a, b):
    if a is None or b is None:
        return None
    return round(fuzz.ratio(key_of(as_text(a)), key_of(as_text(b))), 1)


def token_similarity(a, b):
    if a is None or b is None:
        return None
    return round(fuzz.token_set_ratio(key_of(as_text(a)), key_of(as_text(b))), 1)


def fragment_similarity(a, b):
    if a is None or b is None:
        return None
    return round(fuzz.partial_ratio(key_of(as_text(a)), key_of(as_text(b))), 1)


def title_words_match(title):
    """Return an FTS5 query matching the titles that hold a word starting as one of `title`'s
    words does (`title : ("brai"* OR "deco"*)` for "brain decodng"), or the empty phrase,
    which matches nothing, for a title with no word of three letters. Shorter words are
    left out: the prefix of one or two letters spans too many of the index's terms."""
    if title is None:
        return '""'
    words = [word for word in dict.fromkeys(title_key(as_text(title)).split())
             if len(word) >= 3][:MATCH_WORDS]
    if not words:
        return '""'
    return "title : (" + " OR ".join(f'"{word[:MATCH_PREFIX]}"*' for word in words) + ")"


@hookimpl
def prepare_connection(conn):
    conn.create_function("title_similarity", 2, title_similarity, deterministic=True)
    conn.create_function("token_similarity", 2, token_similarity, deterministic=True)
    conn.create_function("fragment_similarity", 2, fragment_similarity, deterministic=True)
    conn.create_function("title_words_match", 1, title_words_match, deterministic=True)
