"""Paged KV cache of one replica, with a prefix cache of shared blocks (mechanism).

Memory is counted in paging blocks of ``block_size`` tokens. Two kinds of holders:

- a running request's *private* blocks (its tokens beyond the shared prefix);
- *prefix entries*: blocks of ``entry_tokens`` tokens (the workload's prefix-hash granularity) keyed by a
  hash id, reference-counted by the running requests that use them. An entry nobody references stays
  cached (still occupying memory) in LRU order and is evicted only when an allocation needs the room.

Invariant: ``used_blocks`` = private blocks + entry blocks <= ``total_blocks``, always.
"""

from __future__ import annotations

from collections import OrderedDict


class KvCache:
    __slots__ = ("total_blocks", "block_size", "entry_tokens", "entry_blocks", "used_blocks",
                 "refs", "lru", "hit_blocks", "lookup_blocks", "evicted_entries", "peak_blocks")

    def __init__(self, total_blocks: int, block_size: int, entry_tokens: int):
        self.total_blocks = int(total_blocks)
        self.block_size = int(block_size)
        self.entry_tokens = int(entry_tokens)
        self.entry_blocks = -(-max(int(entry_tokens), 1) // int(block_size))
        self.used_blocks = 0
        self.refs: dict[int, int] = {}  # hash id -> number of running requests holding it
        self.lru: OrderedDict[int, None] = OrderedDict()  # unreferenced entries, oldest first
        self.hit_blocks = 0
        self.lookup_blocks = 0
        self.evicted_entries = 0
        self.peak_blocks = 0  # most blocks ever in use (checked against total_blocks by the tests)

    # -- capacity ------------------------------------------------------------------------------
    @property
    def free_blocks(self) -> int:
        return self.total_blocks - self.used_blocks

    @property
    def evictable_blocks(self) -> int:
        return len(self.lru) * self.entry_blocks

    def allocate(self, n: int) -> bool:
        """Take ``n`` blocks, evicting unreferenced prefix entries (oldest first) if needed."""
        if n <= 0:
            return True
        short = n - (self.total_blocks - self.used_blocks)
        if short > 0:
            if short > len(self.lru) * self.entry_blocks:
                return False
            lru, refs = self.lru, self.refs
            while short > 0:
                h, _ = lru.popitem(last=False)
                del refs[h]
                self.used_blocks -= self.entry_blocks
                self.evicted_entries += 1
                short -= self.entry_blocks
        self.used_blocks += n
        if self.used_blocks > self.peak_blocks:
            self.peak_blocks = self.used_blocks
        return True

    def free(self, n: int) -> None:
        self.used_blocks -= n

    # -- prefix entries ------------------------------------------------------------------------------
    def match(self, ids) -> int:
        """Number of leading ids present in the cache (computed blocks a new request can reuse)."""
        refs = self.refs
        n = 0
        for h in ids:
            if h in refs:
                n += 1
            else:
                break
        self.lookup_blocks += len(ids)
        self.hit_blocks += n
        return n

    def acquire(self, ids) -> None:
        """Reference existing entries (after ``match``)."""
        refs, lru = self.refs, self.lru
        for h in ids:
            r = refs[h]
            if r == 0:
                del lru[h]
            refs[h] = r + 1

    def register(self, ids, freed_private: int) -> bool:
        """Turn a request's just-computed prefix blocks into shared entries it references.

        ``freed_private`` private blocks of the request are given up in exchange; entries that already
        exist (another request computed them meanwhile) are shared instead of duplicated. Returns False,
        changing nothing, if the net extra blocks cannot be had."""
        refs, lru = self.refs, self.lru
        create = [h for h in ids if h not in refs]
        existing = [h for h in ids if h in refs]
        for h in existing:  # take them off the LRU before any eviction below
            r = refs[h]
            if r == 0:
                del lru[h]
            refs[h] = r + 1
        net = len(create) * self.entry_blocks - freed_private
        if net > 0 and not self.allocate(net):
            self.release(existing)
            return False
        if net < 0:
            self.used_blocks += net
        for h in create:
            refs[h] = 1
        return True

    def insert_unreferenced(self, ids) -> int:
        """Cache finished blocks nobody references (e.g. a conversation's last turn), if room is free
        without eviction. Returns the number inserted."""
        refs, lru = self.refs, self.lru
        n = 0
        for h in ids:
            if h in refs:
                continue
            if self.total_blocks - self.used_blocks < self.entry_blocks:
                break
            refs[h] = 0
            lru[h] = None
            self.used_blocks += self.entry_blocks
            self.peak_blocks = max(self.peak_blocks, self.used_blocks)
            n += 1
        return n

    def release(self, ids) -> None:
        """Drop one reference from each id; entries reaching zero join the LRU, tail blocks first so
        that a chain is evicted from its end."""
        refs, lru = self.refs, self.lru
        for h in reversed(ids):
            r = refs[h] - 1
            refs[h] = r
            if r == 0:
                lru[h] = None
