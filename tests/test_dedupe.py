"""Deduplication: true variants merge, look-alikes stay apart, ids are stable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import ABSTRACT_A, ABSTRACT_B, ABSTRACT_C, blank_separated, rows, run_build
from neuroai_papers.dedupe import (
    BLOCK_CANDIDATES,
    Deduplicator,
    Sighting,
    blocking_keys,
    deduplicate,
    title_key,
)
from neuroai_papers.parse import Record

TITLE = "MindBridge: A Cross-Subject Brain Decoding Framework"


def sighting(title: str, abstract: str = ABSTRACT_A, dump: str = "a.txt", position: int = 1):
    return Sighting(dump, Record(position=position, line=position, title=title,
                                 abstract=abstract, end_line=position))


@pytest.mark.parametrize(
    "variant",
    [
        "mindbridge: a cross-subject brain decoding framework",  # case
        "MindBridge - A Cross-Subject Brain Decoding Framework",  # punctuation
        "MindBridge: A Cross\u2013Subject Brain Decoding Framework",  # en dash
        "MindBridge:  A  Cross-Subject Brain Decoding Framework ",  # spacing
        "MindBridge: A Cross-Subject Brain Decoding Framework.",  # trailing period
        "\u201cMindBridge\u201d: A Cross-Subject Brain Decoding Framework",  # curly quotes
    ],
)
def test_normalized_title_variants_share_a_key_and_merge(variant):
    assert title_key(variant) == title_key(TITLE)
    dedup = deduplicate([sighting(TITLE), sighting(variant, dump="b.txt")])
    assert len(dedup.papers) == 1
    assert dedup.papers[0].sightings[1].method == "normalized_title"
    (merge,) = dedup.merges
    assert (merge.method, merge.title_score) == ("normalized_title", 100.0)
    assert merge.abstract_score >= 80


def test_unicode_forms_and_accents_share_a_key():
    composed = "Réseaux de neurones à impulsions"
    decomposed = "Re\u0301seaux de neurones a\u0300 impulsions"
    assert title_key(composed) == title_key(decomposed) == title_key("Reseaux de Neurones a Impulsions")


def test_typo_variant_merges_by_fuzzy_match_with_its_score():
    typo = "MindBridge: A Cross-Subject Brain Decodng Framework"
    dedup = deduplicate([sighting(TITLE), sighting(typo, dump="b.txt")])
    assert len(dedup.papers) == 1
    (merge,) = dedup.merges
    assert merge.method == "fuzzy_title"
    assert 90 <= merge.title_score < 100
    assert merge.title == typo and merge.paper_title == TITLE


def test_truncated_abstract_copy_still_merges():
    dedup = deduplicate([sighting(TITLE), sighting(TITLE.lower(), ABSTRACT_A[:90], "b.txt")])
    assert len(dedup.papers) == 1


def test_lookalike_titles_with_different_abstracts_stay_apart():
    first = "Spiking Neural Networks for Image Classification"
    second = "Spiking Neural Networks for Image Segmentation"
    dedup = deduplicate([sighting(first, ABSTRACT_B), sighting(second, ABSTRACT_C, "b.txt")])
    assert len(dedup.papers) == 2
    assert dedup.merges == []


def test_identical_titles_of_distinct_papers_stay_apart_and_are_listed():
    dedup = deduplicate([sighting("Brain Decoding", ABSTRACT_A),
                         sighting("Brain Decoding", ABSTRACT_C, "b.txt")])
    assert [p.id for p in dedup.papers] == ["brain-decoding", "brain-decoding-2"]
    (lookalike,) = dedup.lookalikes
    assert (lookalike.paper_id, lookalike.other_paper_id) == ("brain-decoding-2", "brain-decoding")
    assert lookalike.title_score == 100 and lookalike.abstract_score < 80


def test_a_typo_in_any_word_leaves_a_blocking_key_in_common():
    key = title_key("Brain Decoding with Diffusion Priors")
    words = key.split()
    for index in range(len(words)):
        typo = " ".join(w[:-1] if i == index else w for i, w in enumerate(words))
        assert blocking_keys(key) & blocking_keys(typo), typo


def test_a_dropped_or_added_word_leaves_a_blocking_key_in_common():
    key = title_key("Brain Decoding with Diffusion Priors")
    words = key.split()
    for index in range(len(words)):
        dropped = " ".join(words[:index] + words[index + 1:])
        added = " ".join(words[:index] + ["latent"] + words[index:])
        assert blocking_keys(key) & blocking_keys(dropped), dropped
        assert blocking_keys(key) & blocking_keys(added), added


@pytest.mark.parametrize("variant", ["Brain Decoding with Diffusion Priors",  # dropped word
                                     "Brain Decoding with Latent Diffusion Image Priors"])  # added
def test_a_title_a_word_shorter_or_longer_joins_its_paper_however_many_papers_came_between(variant):
    original = "Brain Decoding with Latent Diffusion Priors"
    between = [sighting(f"Brain Decoding with Latent Diffusion Priors part {n}",
                        f"{ABSTRACT_B} Variant {n}.") for n in range(BLOCK_CANDIDATES * 2)]
    dedup = deduplicate([sighting(original), *between, sighting(variant, dump="b.txt")])
    assert dedup.papers[0].title == original and len(dedup.papers[0].sightings) == 2
    (merge,) = [merge for merge in dedup.merges if merge.dump == "b.txt"]
    assert (merge.method, merge.title) == ("fuzzy_title", variant)


def test_blocking_keys_are_the_same_in_every_process():
    """title_blocks stores them, so an incremental build in another process must agree."""
    code = ("from neuroai_papers.dedupe import blocking_keys; "
            "print(sorted(blocking_keys('brain decoding with diffusion priors')))")
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2")}
    assert seen == {f"{sorted(blocking_keys('brain decoding with diffusion priors'))}\n"}


def test_candidates_per_key_are_bounded_so_cost_stays_near_linear():
    dedup = Deduplicator()
    common = "Deep Learning for Brain Signals"
    for number in range(BLOCK_CANDIDATES * 3):
        dedup.add(sighting(f"{common} part {number}", f"{ABSTRACT_B} Variant {number}."))
    candidates = dedup.fuzzy_candidates(title_key(f"{common} part x"))
    assert len(candidates) <= BLOCK_CANDIDATES * len(blocking_keys(title_key(common)))


def test_real_dumps_merge_repeated_papers_and_keep_distinct_ones(real_db):
    assert rows(real_db, "select count(*) from papers")[0][0] == 332
    assert rows(real_db, "select count(*) from sightings")[0][0] == 425
    # The Neuroformer paper appears in all five dumps: one paper, five sightings.
    (seen,) = rows(real_db, "select dumps_seen from papers where title like 'Neuroformer:%'")
    assert seen == (5,)


def test_rebuilding_from_the_same_dumps_gives_the_same_ids(copy_real_dumps, tmp_path, real_db):
    out = tmp_path / "again.db"
    assert run_build(copy_real_dumps, out).returncode == 0
    assert rows(out, "select id, title from papers order by id") == rows(
        real_db, "select id, title from papers order by id")


def test_adding_a_dump_never_changes_existing_ids(copy_real_dumps, tmp_path, real_db):
    before = dict(rows(real_db, "select title_key, id from papers"))
    # A dump that sorts first, repeating a known paper with a case variant, plus a new one.
    (copy_real_dumps / "0000_first.txt").write_text(blank_separated(
        ("NEUROFORMER: MULTIMODAL AND MULTITASK GENERATIVE PRETRAINING FOR BRAIN DATA",
         rows(real_db, "select abstract from papers where title like 'Neuroformer:%'")[0][0]),
        ("A brand new paper on EEG", ABSTRACT_C),
    ))
    (copy_real_dumps / "999_last.txt").write_text(blank_separated(("Another new paper", ABSTRACT_B)))
    out = tmp_path / "more.db"
    assert run_build(copy_real_dumps, out).returncode == 0
    after = dict(rows(out, "select title_key, id from papers"))
    assert {key: after[key] for key in before} == before
    assert len(after) == len(before) + 2


def load_fuzzy_sql_plugin():
    """Return plugins/fuzzy_sql.py, whose title_key spells out the normalization as a
    regex: the definition the build's faster title_key must follow."""
    from conftest import load_plugin

    return load_plugin("fuzzy_sql")


REFERENCE = load_fuzzy_sql_plugin()


def test_sql_plugin_normalizes_titles_exactly_as_the_build_does():
    samples = [TITLE, "Réseaux — «neurones» à impulsions!", "SL^{2}A-INR_x", "  Ｆｕｌｌ width  ", ""]
    assert [REFERENCE.title_key(s) for s in samples] == [title_key(s) for s in samples]


def test_title_keys_drop_every_combining_mark_unicode_knows():
    import sys
    import unicodedata

    marks = [chr(cp) for cp in range(sys.maxunicode + 1) if unicodedata.combining(chr(cp))]
    assert len(marks) > 800
    assert {title_key(f"Ab{mark}c d") for mark in marks} == {"abc d"}
    assert title_key("Ångström-scale Décodage: naïve Ｆｕｌｌ ｗｉｄｔｈ") == "angstrom scale decodage naive full width"


# Text like a title or an abstract, with what normalization has to undo: capitals, accents
# composed and apart, punctuation in and outside ASCII, odd spaces, other scripts, letters
# that casefold or NFKD lengthen (ß, ﬁ, İ), marks after a space, and runs of any of them.
TRICKY = ("abcXYZ019 -_.,;:'\"!?()[]{}/\\^|~\t\n\x1f\x7f éÉèçñßİıΣσςﬁﬂǅ“”«»—–…·"
          "\u0301\u0308\u0327\u00a0\u2009\u200b\u3000 αβγ中文ひらがなｆｕｌｌ①²½Ⅻ\u212a\U0001d400")


# Titles in ASCII (title_key's shortcut) and in any script, with TRICKY's cases often.
TITLES = st.one_of(st.text(alphabet=st.characters(max_codepoint=127), max_size=120),
                   st.text(alphabet=st.one_of(st.sampled_from(TRICKY),
                                              st.characters(blacklist_categories=("Cs",))),
                           max_size=120))


@settings(max_examples=4000, deadline=None, derandomize=True, database=None)
@given(TITLES)
def test_the_title_key_follows_the_definition(text):
    assert title_key(text) == REFERENCE.title_key(text)


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(TITLES)
@example("")
@example("brain")
@example("brain decoding with diffusion priors")
def test_blocking_keys_are_the_key_and_the_key_with_each_word_left_out(text):
    from neuroai_papers.dedupe import block_hash
    key = title_key(text)
    words = key.split()
    left_out = [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
    assert blocking_keys(key) == {block_hash(k) for k in [key, *left_out]}


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(st.lists(st.one_of(st.sampled_from(["brain", "decoding", "fMRI", "Décodage", "ß", "x"]),
                          st.text(alphabet=st.sampled_from(TRICKY), min_size=1, max_size=6),
                          st.text(alphabet=" -.,;:!?()—…\u0301\u00a0", min_size=5, max_size=60)),
                max_size=300).map(" ".join))
# The first 700 characters end inside a word that starts just before the key's 600th
# character, and punctuation makes their key shorter than 600: normalizing 1,200 is needed.
@example("a " * 290 + "." * 110 + "b" * 40 + " end")
@example("é " * 290 + "—" * 110 + "ß" * 40 + " end")
def test_the_fingerprint_is_the_key_of_the_first_1200_characters_cut_to_600(text):
    """abstract_fingerprint normalizes 700 characters first and twice as many only when
    those give too short a key (runs of punctuation): the result must be what normalizing
    1,200 gives."""
    from neuroai_papers.dedupe import ABSTRACT_PREFIX, abstract_fingerprint
    assert abstract_fingerprint(text) == \
        REFERENCE.title_key(text[:ABSTRACT_PREFIX * 2])[:ABSTRACT_PREFIX]


def reference_fuzzy_matches(dedup, key):
    """Fuzzy matching as first written: distinct candidates in first-seen order, then the
    five best at or above the cutoff (rapidfuzz orders equal scores by position)."""
    from rapidfuzz import fuzz, process
    from neuroai_papers.dedupe import TITLE_MIN_SCORE
    distinct = list({paper.id: paper for paper in dedup.fuzzy_candidates(key)
                     if paper.key != key}.values())
    found = process.extract(key, [paper.key for paper in distinct], scorer=fuzz.ratio,
                            score_cutoff=TITLE_MIN_SCORE, limit=5)
    return [(distinct[index].id, score) for _, score, index in found]


def test_fuzzy_matches_are_those_of_distinct_candidates_ties_included():
    """Scoring repeated candidates and removing the copies afterwards picks the same papers,
    in the same order, as removing them first; many ties (equal keys of look-alikes, the same
    score for different typos) and more than five matches included."""
    import random
    generator = random.Random(3)
    words = "brain neural spiking decoding fmri eeg".split()
    dedup = Deduplicator()
    titles = []
    for number in range(1500):
        base = " ".join(generator.sample(words, 4))
        title = base if generator.random() < 0.5 else base[:-1] + generator.choice("xyz")
        titles.append(title)
        # Abstracts that never agree: every title match is a look-alike, kept apart.
        abstract = " ".join(generator.choices(words + ["alpha", "beta", "gamma"], k=80))
        dedup.add(sighting(title, abstract))
    compared = 0
    for title in generator.sample(titles, 300):
        key = title_key(title[:-1] + "q")
        ours = [(paper.id, score) for paper, score in dedup.fuzzy_matches(key, blocking_keys(key))]
        assert ours == reference_fuzzy_matches(dedup, key), key
        compared += len(ours) == 5
    assert compared > 50  # the cap of five mattered often


def test_the_sql_similarity_functions_compare_titles_as_documented():
    """title_similarity: ratio of the title keys (case, accents, punctuation erased);
    token_similarity: word order and extra words ignored; NULL in, NULL out."""
    assert REFERENCE.title_similarity("Brain Décoding: fMRI!", "brain decoding fmri") == 100
    assert REFERENCE.title_similarity("fmri decoding brain", "brain decoding fmri") < 80
    assert REFERENCE.token_similarity("fmri decoding brain", "Brain decoding, fMRI") == 100
    assert REFERENCE.token_similarity("decoding the visual brain with fMRI", "visual brain") == 100
    assert REFERENCE.token_similarity("spiking networks", "visual brain") < 50
    assert REFERENCE.title_similarity(None, "x") is None and REFERENCE.token_similarity("x", None) is None
    # fragment_similarity: a few words of a title, a typo in them, against the whole title.
    assert REFERENCE.fragment_similarity("brain decodng", "Brain Decoding: toward real time") > 90
    assert REFERENCE.token_similarity("brain decodng", "Brain Decoding: toward real time") < 60
    assert REFERENCE.fragment_similarity("spiking networks", "visual brain") < 50
    assert REFERENCE.fragment_similarity(None, "x") is None
    # title_words_match: the start of each word of three letters or more, in the title column.
    assert REFERENCE.title_words_match("Brain decodng: a study of EEG") == (
        'title : ("brai"* OR "deco"* OR "stud"* OR "eeg"*)')
    assert REFERENCE.title_words_match("a b, c!") == REFERENCE.title_words_match(None) == '""'
    long = "brain " * 100_000  # cut to the first 1,000 characters: answers at once
    assert REFERENCE.title_similarity(long, long) == 100


def test_ids_are_the_title_slugs_column_docs_describes(real_db, dumps_dir, tmp_path):
    """A long title's id is cut at a word to 80 characters, and a look-alike (same title,
    another abstract) gets -2: the documentation of papers.id says both."""
    from neuroai_papers.dedupe import slugify

    long_title = "Spiking " * 15 + "Networks"
    (dumps_dir / "a.txt").write_text(blank_separated(
        (long_title, ABSTRACT_A), ("Same title", ABSTRACT_B), ("Same title", ABSTRACT_C)))
    out = tmp_path / "p.db"
    assert run_build(dumps_dir, out).returncode == 0
    ids = [paper_id for (paper_id,) in rows(out, "select id from papers order by rowid")]
    assert ids == [slugify(title_key(long_title)), "same-title", "same-title-2"]
    assert len(ids[0]) <= 80 and len(title_key(long_title)) > 80
    (description,) = rows(real_db, "select description from column_docs "
                                   "where table_name = 'papers' and column_name = 'id'")[0]
    text = " ".join(description.split())
    assert "at most 80 characters" in text and "-2, -3 ... after it" in text


def test_a_copy_whose_abstract_differs_keeps_its_own_in_its_sighting(dumps_dir, tmp_path):
    """Copies merge when their abstracts' first words agree: a later copy's longer abstract
    (here, and a shorter one) is kept in its sighting, so no line of it is lost; a copy
    with the paper's very abstract keeps none."""
    longer = ABSTRACT_A + " Code and weights are released."
    (dumps_dir / "a.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A),
                                                     ("Other", ABSTRACT_B)))
    (dumps_dir / "b.txt").write_text(blank_separated(("Shared paper", longer),
                                                     ("Other", ABSTRACT_B)))
    (dumps_dir / "c.txt").write_text(blank_separated(("Shared paper", ABSTRACT_A[:150])))
    db = tmp_path / "papers.db"
    assert run_build(dumps_dir, db).returncode == 0
    assert rows(db, "select dump, title, abstract, match_method from sightings order by id") == [
        ("a.txt", "Shared paper", None, "new"), ("a.txt", "Other", None, "new"),
        ("b.txt", "Shared paper", longer, "identical"), ("b.txt", "Other", None, "identical"),
        ("c.txt", "Shared paper", ABSTRACT_A[:150], "identical")]
    assert rows(db, "select abstract from papers where title = 'Shared paper'") == [(ABSTRACT_A,)]
