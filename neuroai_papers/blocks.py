"""The blocking keys of matching: which papers hold each key, in flat arrays.

At a million records matching files about nine million blocking keys (dedupe.blocking_keys).
In a dict each key costs about 67 bytes (an int object, an entry, its index slot), nearly
600 MiB in all, the largest part of the build's peak. BlockIndex keeps the same mapping in
two arrays, open addressing with linear probing: 8 bytes for the key and 4 for the paper's
number a slot, at least half the slots free, 24 to 48 bytes a key (201 MiB at a million
records). A lookup is a few Python operations on the arrays, about twice a dict's time
(0.9 against 0.5 µs): matching 300,000 records took 12.2 s instead of 11.3.

The keys are CRC-32 values (dedupe.block_hash), uniform in their low bits, so a key's home
slot is its low bits. There is no wrap-around: the arrays end with TAIL spare slots and the
last slot is always empty, so a probe always ends. Growing rebuilds the arrays with numpy,
all keys at once, since a rebuild in Python would cost a second per million keys.
"""

from __future__ import annotations

from array import array
from itertools import chain
from typing import Collection

import numpy as np

LOAD = 0.5  # the share of slots in use at which the table doubles (keeps probes short)
TAIL = 1024  # spare slots after the last home slot, where the last clusters run on
FIRST_CAPACITY = 1 << 12
PAIR_SHIFT = 31  # packed_pairs: the paper's rowid in the low 31 bits, the key above


class BlockIndex:
    """A mapping from blocking key (0 <= key < 2**32) to the numbers of the papers holding
    it, oldest first. Most keys belong to one paper: its number is stored in the slot. A key
    held by several points (as ~index) into `shared`, a list of their numbers."""

    def __init__(self, capacity: int = FIRST_CAPACITY) -> None:
        self.allocate(capacity)
        self.size = 0
        self.shared: list[list[int]] = []

    def allocate(self, capacity: int) -> None:
        self.capacity = capacity  # a power of two: the home slots
        self.mask = capacity - 1
        self.limit = int(capacity * LOAD)
        self.keys = array("Q", bytes(8 * (capacity + TAIL)))  # key + 1; 0 marks a free slot
        self.holders = array("i", bytes(4 * (capacity + TAIL)))

    def __len__(self) -> int:
        return self.size

    def slot_for(self, key: int) -> int:
        """Return the slot that holds `key`, or the free slot where it would go."""
        stored, keys, slot = key + 1, self.keys, key & self.mask
        found = keys[slot]
        while found and found != stored:
            slot += 1
            found = keys[slot]
        return slot

    def holders_of(self, key: int) -> list[int]:
        """Return the numbers of the papers holding `key`, oldest first."""
        slot = self.slot_for(key)
        if not self.keys[slot]:
            return []
        held = self.holders[slot]
        return [held] if held >= 0 else self.shared[~held]

    def newest_holders(self, keys: list[int], most: int) -> list[int]:
        """Return the numbers of the `most` newest papers holding each of `keys`, key after
        key, each key's oldest first (what matching compares a new title with)."""
        found: list[int] = []
        table, mask = self.keys, self.mask
        for key in keys:  # slot_for, inlined: this runs for every record of a build
            stored, slot = key + 1, key & mask
            hit = table[slot]
            while hit and hit != stored:
                slot += 1
                hit = table[slot]
            if hit:
                held = self.holders[slot]
                if held >= 0:
                    found.append(held)
                else:
                    found += self.shared[~held][-most:]
        return found

    def add_all(self, keys: Collection[int], number: int) -> None:
        """File paper `number` under each of `keys` (numbers come in increasing order)."""
        if self.size + len(keys) > self.limit:
            self.grow()
        table, holders, mask, last = self.keys, self.holders, self.mask, len(self.keys) - 1
        for key in keys:  # slot_for, inlined: this runs for every new paper of a build
            stored, slot = key + 1, key & mask
            found = table[slot]
            while found and found != stored:
                slot += 1
                found = table[slot]
            if found:
                self.add_holder(slot, number)
            elif slot == last:  # the last slot stays free, so that every probe ends
                self.grow()
                self.add_all([key], number)
                table, holders, mask, last = self.keys, self.holders, self.mask, len(self.keys) - 1
            else:
                table[slot] = stored
                holders[slot] = number
                self.size += 1

    def add_holder(self, slot: int, number: int) -> None:
        held = self.holders[slot]
        if held >= 0:
            self.shared.append([held, number])
            self.holders[slot] = ~(len(self.shared) - 1)
        else:
            self.shared[~held].append(number)

    def grow(self) -> None:
        """Double the home slots and place every key again, all at once with numpy.

        The old arrays go before the new ones come, and the new ones after the placement's
        temporaries: at a million records this runs once at 4 million keys, in the middle
        of matching, and it must not be the build's peak."""
        used = np.frombuffer(self.keys, dtype=np.uint64) != 0
        stored = np.frombuffer(self.keys, dtype=np.uint64)[used]  # copies, not views
        holders = np.frombuffer(self.holders, dtype=np.int32)[used]
        del used
        self.keys = self.holders = array("B")
        capacity = self.capacity * 2
        while True:
            slots, order = place(stored - 1, capacity)
            if len(slots) == 0 or slots[-1] < capacity + TAIL - 1:
                break
            capacity *= 2  # a cluster ran into the last slot: only with far too few slots
        stored, holders = stored[order], holders[order]
        del order
        self.allocate(capacity)
        np.frombuffer(self.keys, dtype=np.uint64)[slots] = stored
        np.frombuffer(self.holders, dtype=np.int32)[slots] = holders

    def packed_pairs(self) -> np.ndarray:
        """Return every (key, number + 1) the index holds, packed as key << 31 | number + 1
        (below 2**63, a SQLite integer), in increasing order: the title_blocks rows, in the
        order of their primary key (block, paper_rowid)."""
        keys = np.frombuffer(self.keys, dtype=np.uint64)
        holders = np.frombuffer(self.holders, dtype=np.int32)
        alone = (keys != 0) & (holders >= 0)
        shared_slots = np.flatnonzero((keys != 0) & (holders < 0))
        lists = [self.shared[~held] for held in holders[shared_slots].tolist()]
        counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        numbers = np.concatenate([
            holders[alone].astype(np.uint64),
            np.fromiter(chain.from_iterable(lists), dtype=np.uint64, count=int(counts.sum()))])
        packed = np.concatenate([keys[alone], np.repeat(keys[shared_slots], counts)])
        packed -= np.uint64(1)  # the slots hold key + 1
        packed <<= np.uint64(PAIR_SHIFT)
        packed |= numbers + np.uint64(1)
        packed.sort()
        return packed

    def clear(self) -> None:
        """Hand the memory back (the build drops the keys once matching is done)."""
        self.__init__()


def place(keys: np.ndarray, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the slots linear probing gives distinct `keys` in an empty table of `capacity`
    home slots, in increasing order, and which key goes in each (indexes into `keys`).

    Keys taken in the order of their home slots each go to the first free slot at or after
    their home: slot[i] = max(home[i], slot[i-1] + 1), which is a running maximum of
    home[i] - i, plus i. Every slot between a key's home and its slot is then taken, which
    is what a lookup's probe needs.
    """
    homes = (keys & np.uint64(capacity - 1)).view(np.int64)  # below 2**32: the same values
    order = np.argsort(homes, kind="stable")
    slots = homes[order]
    del homes
    steps = np.arange(len(keys), dtype=np.int64)
    slots -= steps  # in place: at 4 million keys each temporary array is 32 MB
    np.maximum.accumulate(slots, out=slots)
    slots += steps
    return slots, order
