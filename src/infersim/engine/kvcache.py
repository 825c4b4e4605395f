"""Paged KV cache of one replica, with a prefix cache of shared blocks (mechanism).

Memory is counted in paging blocks of ``block_size`` tokens. Three kinds of holders:

- a running request's *private* blocks (its tokens beyond the shared prefix);
- *hash entries*: blocks of ``entry_tokens`` tokens keyed by a hash id (a replayed trace's per-block hash
  ids, e.g. Mooncake's 512-token blocks), each ``entry_blocks`` paging blocks, reference-counted by the
  running requests that use them;
- *chains*: a generated prefix (a shared system prompt, a conversation's context) keyed by its chain key.
  A chain caches its first ``n`` paging blocks, always a contiguous run from the start of the prefix:
  blocks are shared whole (a request reuses ``min(n, its prefix blocks)``), and eviction takes them from the
  end. Its holders are the running requests that reference its first ``held`` blocks; the blocks above the
  longest holding are unreferenced. Every operation on a chain costs O(1) in the prefix's length (O(distinct
  holding lengths) when the longest holder leaves), so a 16-token block size costs no more per request than
  a coarse one.

Entries and chain tails nobody references stay cached (still occupying memory) in least-recently-used order
and are evicted only when an allocation needs the room: a hash entry as a whole, a chain's unreferenced
tail block by block from its end (a chain is touched when a holder leaves it or it is extended, like a node
of SGLang's radix tree; vLLM orders single blocks, which differs only in how a chain's own stale tail ages).

Invariants: ``used_blocks`` = private blocks + entry blocks + chain blocks <= ``total_blocks``;
``evictable_blocks`` = the unreferenced entries' and chain tails' blocks; for every chain, its longest
holding <= its cached blocks.
"""

from __future__ import annotations

from collections import OrderedDict


def chain_tag(key: int) -> int:
    """The LRU key of chain ``key`` (>= 0): negative, so never equal to a hash id (>= 0)."""
    return -1 - key


class KvCache:
    __slots__ = ("total_blocks", "block_size", "entry_tokens", "entry_blocks", "used_blocks", "evictable",
                 "refs", "lru", "chain_n", "chain_top", "chain_holds", "hit_tokens", "lookup_tokens",
                 "evicted_blocks", "peak_blocks")

    def __init__(self, total_blocks: int, block_size: int, entry_tokens: int):
        self.total_blocks = int(total_blocks)
        self.block_size = int(block_size)
        self.entry_tokens = int(entry_tokens)
        self.entry_blocks = -(-max(int(entry_tokens), 1) // int(block_size))
        self.used_blocks = 0
        self.evictable = 0  # blocks of unreferenced entries and chain tails (what eviction can free)
        self.refs: dict[int, int] = {}  # hash id -> number of running requests holding it
        # unreferenced hash ids and chains with an unreferenced tail (chain_tag(key)), oldest first
        self.lru: OrderedDict[int, None] = OrderedDict()
        self.chain_n: dict[int, int] = {}  # chain key -> cached blocks (a run from the prefix's start)
        self.chain_top: dict[int, int] = {}  # chain key -> longest holding (blocks), 0 without holders
        self.chain_holds: dict[int, dict[int, int]] = {}  # chain key -> {held blocks: holders}
        self.hit_tokens = 0  # prefix tokens found cached, over every lookup (a retried admission counts again)
        self.lookup_tokens = 0  # prefix tokens looked up (whole blocks or entries only)
        self.evicted_blocks = 0
        self.peak_blocks = 0  # most blocks ever in use (checked against total_blocks by the tests)

    # -- capacity ------------------------------------------------------------------------------
    @property
    def free_blocks(self) -> int:
        return self.total_blocks - self.used_blocks

    @property
    def evictable_blocks(self) -> int:
        return self.evictable

    def allocate(self, n: int) -> bool:
        """Take ``n`` blocks, evicting unreferenced entries and chain tails (oldest first) if needed."""
        if n <= 0:
            return True
        short = n - (self.total_blocks - self.used_blocks)
        if short > 0:
            if short > self.evictable:
                return False
            lru = self.lru
            while short > 0:
                h = next(iter(lru))
                if h < 0:
                    key = -1 - h
                    n_c = self.chain_n[key]
                    top = self.chain_top[key]
                    take = min(n_c - top, short)
                    n_c -= take
                    if n_c == top:
                        del lru[h]
                        if n_c == 0:
                            del self.chain_n[key], self.chain_top[key], self.chain_holds[key]
                        else:
                            self.chain_n[key] = n_c
                    else:
                        self.chain_n[key] = n_c
                else:
                    del lru[h]
                    del self.refs[h]
                    take = self.entry_blocks
                self.used_blocks -= take
                self.evictable -= take
                self.evicted_blocks += take
                short -= take
        self.used_blocks += n
        if self.used_blocks > self.peak_blocks:
            self.peak_blocks = self.used_blocks
        return True

    def free(self, n: int) -> None:
        self.used_blocks -= n

    # -- hash entries (trace block hashes) ------------------------------------------------------
    def match(self, ids) -> int:
        """Number of leading ids present in the cache (computed blocks a new request can reuse)."""
        refs = self.refs
        n = 0
        for h in ids:
            if h in refs:
                n += 1
            else:
                break
        self.lookup_tokens += len(ids) * self.entry_tokens
        self.hit_tokens += n * self.entry_tokens
        return n

    def acquire(self, ids) -> None:
        """Reference existing entries (after ``match``)."""
        refs, lru = self.refs, self.lru
        for h in ids:
            r = refs[h]
            if r == 0:
                del lru[h]
                self.evictable -= self.entry_blocks
            refs[h] = r + 1

    def register(self, ids, freed_private: int) -> bool:
        """Turn a request's just-computed prefix blocks into shared entries it references.

        ``freed_private`` private blocks of the request are given up in exchange; entries that already
        exist (another request computed them meanwhile) are shared instead of duplicated. Returns False,
        changing nothing, if the net extra blocks cannot be had."""
        refs = self.refs
        create = [h for h in ids if h not in refs]
        existing = [h for h in ids if h in refs]
        self.acquire(existing)  # take them off the LRU before any eviction below
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
            self.evictable += self.entry_blocks
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
                self.evictable += self.entry_blocks

    # -- chains (generated prefixes) -------------------------------------------------------------
    def chain_match(self, key: int, want: int) -> int:
        """Blocks of chain ``key`` a new request wanting its first ``want`` blocks can reuse (cached now)."""
        hit = self.chain_n.get(key, 0)
        if hit > want:
            hit = want
        self.lookup_tokens += want * self.block_size
        self.hit_tokens += hit * self.block_size
        return hit

    def chain_hold(self, key: int, old: int, new: int) -> None:
        """A holder of chain ``key`` goes from its first ``old`` blocks to its first ``new`` (0 = not a
        holder); ``new`` blocks must be cached. Blocks no longer held by anyone join the LRU (the chain is
        touched); blocks newly held leave it. The chain must exist (``chain_n`` has it)."""
        holds = self.chain_holds[key]
        top = self.chain_top[key]
        if old:
            c = holds[old] - 1
            if c:
                holds[old] = c
            else:
                del holds[old]
        if new:
            holds[new] = holds.get(new, 0) + 1
        if new > top:
            new_top = new
        elif old == top and old not in holds:
            new_top = max(holds) if holds else 0
        else:
            new_top = top
        if new_top == top:
            return
        self.chain_top[key] = new_top
        n_c = self.chain_n[key]
        self.evictable += top - new_top
        tag = -1 - key
        if new_top < n_c:
            self.lru[tag] = None
            if new_top < top:
                self.lru.move_to_end(tag)
        else:
            self.lru.pop(tag, None)
            if n_c == 0:
                del self.chain_n[key], self.chain_top[key], self.chain_holds[key]

    def chain_register(self, key: int, held: int, target: int, freed_private: int) -> bool:
        """A request holding the first ``held`` blocks of chain ``key`` has computed its first ``target``
        (> held): they become the chain's, and the request holds them. ``freed_private`` of its private
        blocks are given up in exchange; blocks the chain already has are shared, not duplicated. Returns
        False, changing nothing, if the net extra blocks cannot be had."""
        n_c = self.chain_n.get(key, 0)
        mid = target if target < n_c else n_c
        if mid > held:
            self.chain_hold(key, held, mid)  # take existing blocks off the LRU before any eviction below
        else:
            mid = held
        create = target - n_c if target > n_c else 0
        net = create - freed_private
        if net > 0 and not self.allocate(net):
            if mid != held:
                self.chain_hold(key, mid, held)
            return False
        if net < 0:
            self.used_blocks += net
        if create:  # the chain grows to target: nothing above the new holding, so nothing is evictable
            holds = self.chain_holds.get(key)
            if holds is None:
                holds = {}
                self.chain_holds[key] = holds
            if mid:
                c = holds[mid] - 1
                if c:
                    holds[mid] = c
                else:
                    del holds[mid]
            holds[target] = holds.get(target, 0) + 1
            self.chain_n[key] = target
            self.chain_top[key] = target
        return True

    def chain_extend(self, key: int, n: int) -> int:
        """Cache chain ``key`` up to its first ``n`` blocks, unreferenced (a finished conversation turn's
        context, the next turn's prefix), as far as free room allows without eviction. Returns the blocks
        added."""
        n_c = self.chain_n.get(key, 0)
        add = min(n - n_c, self.total_blocks - self.used_blocks)
        if add <= 0:
            return 0
        if key not in self.chain_holds:
            self.chain_holds[key] = {}
            self.chain_top[key] = 0
        self.chain_n[key] = n_c + add
        self.used_blocks += add
        self.evictable += add
        tag = -1 - key
        self.lru[tag] = None
        self.lru.move_to_end(tag)
        if self.used_blocks > self.peak_blocks:
            self.peak_blocks = self.used_blocks
        return add
