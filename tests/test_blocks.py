"""The blocking-key index (neuroai_papers/blocks.py) against a dict doing the same job."""

import random

import numpy as np
from hypothesis import given, settings, strategies as st

from neuroai_papers.blocks import FIRST_CAPACITY, TAIL, BlockIndex, place


def filed_in_a_dict(papers: list[list[int]]) -> dict[int, list[int]]:
    held: dict[int, list[int]] = {}
    for number, keys in enumerate(papers):
        for key in keys:
            held.setdefault(key, []).append(number)
    return held


def assert_same_as_dict(index: BlockIndex, papers: list[list[int]], absent: list[int]) -> None:
    expected = filed_in_a_dict(papers)
    assert len(index) == len(expected)
    for key, numbers in expected.items():
        assert index.holders_of(key) == numbers
    for key in absent:
        if key not in expected:
            assert index.holders_of(key) == []


def test_it_holds_what_a_dict_holds_across_many_growths():
    rnd = random.Random(7)
    pool = [rnd.getrandbits(32) for _ in range(500)]  # keys several papers share
    papers = [[rnd.getrandbits(32) if rnd.random() < 0.9 else rnd.choice(pool)
               for _ in range(rnd.randint(1, 14))] for _ in range(20_000)]
    index = BlockIndex()
    for number, keys in enumerate(papers):
        index.add_all(set(keys), number)
    assert index.capacity >= 16 * FIRST_CAPACITY  # it grew, several times
    assert len(index) <= index.capacity / 2
    assert_same_as_dict(index, [sorted(set(keys)) for keys in papers],
                        [rnd.getrandbits(32) for _ in range(5_000)])


def test_keys_with_one_home_slot_run_into_the_tail_and_the_table_grows_before_the_last_slot():
    # Keys that agree in their low bits all want the last home slot: they fill the tail.
    last_home = FIRST_CAPACITY - 1
    keys = [last_home + (n << 32 - 4) for n in range(1, 16)]
    index = BlockIndex()
    for number, key in enumerate(keys):
        index.add_all([key], number)
    assert index.capacity == FIRST_CAPACITY  # 15 keys: no growth yet
    assert [index.holders_of(key) for key in keys] == [[n] for n in range(len(keys))]
    # More such keys than the tail has slots: it must grow rather than take the last slot.
    many = [last_home + (n << 20) for n in range(1, TAIL + 50)]
    for number, key in enumerate(many, len(keys)):
        index.add_all([key], number)
    assert index.keys[-1] == 0
    assert_same_as_dict(index, [[key] for key in keys + many], [last_home, last_home + 1])


def test_a_shared_key_lists_its_papers_oldest_first_through_growth():
    index = BlockIndex()
    for number in range(5_000):
        index.add_all([12345, number * 7919 + 1], number)
    assert index.holders_of(12345) == list(range(5_000))


def test_newest_holders_gives_each_keys_newest_papers_key_after_key():
    index = BlockIndex()
    for number in range(100):
        index.add_all([7, 8] if number % 2 else [7], number)
    index.add_all([9], 100)
    assert index.newest_holders([9, 5, 8, 7], 3) == [100, 95, 97, 99, 97, 98, 99]
    assert index.newest_holders([5, 6], 3) == []


def test_key_zero_and_the_largest_key_are_keys_like_any_other():
    index = BlockIndex()
    index.add_all([0, 2**32 - 1], 3)
    assert index.holders_of(0) == [3] and index.holders_of(2**32 - 1) == [3]
    assert index.holders_of(1) == []


def test_clear_forgets_every_key():
    index = BlockIndex()
    index.add_all(range(1, 10_000), 1)
    index.clear()
    assert len(index) == 0 and index.holders_of(5) == [] and index.capacity == FIRST_CAPACITY


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), unique=True, max_size=300),
       st.sampled_from([16, 64, 1024]))
def test_place_gives_each_key_the_slot_linear_probing_gives_it(keys, capacity):
    slots, order = place(np.array(keys, dtype=np.uint64), capacity)
    table: dict[int, int] = {}
    for key in np.array(keys, dtype=np.uint64)[order].tolist():  # in placement order
        slot = key & (capacity - 1)
        while slot in table:
            slot += 1
        table[slot] = key
    assert slots.tolist() == sorted(table)
    assert [table[slot] for slot in slots.tolist()] == np.array(keys)[order].tolist()
    # What a lookup needs: every slot from a key's home to its own slot is taken.
    for slot, key in table.items():
        assert all(s in table for s in range(key & (capacity - 1), slot))
