"""The KV cache's chains (generated prefixes): sharing, LRU eviction from the tail, and its invariants."""

from __future__ import annotations

import numpy as np
import pytest

from infersim.engine.kvcache import KvCache, chain_tag


def check(kv: KvCache, private: int = 0) -> None:
    """used = private + chain blocks + hash-entry blocks; evictable = unreferenced tails and entries."""
    chain_blocks = sum(kv.chain_n.values())
    entry_blocks = len(kv.refs) * kv.entry_blocks
    assert kv.used_blocks == private + chain_blocks + entry_blocks <= kv.total_blocks
    tails = sum(kv.chain_n[k] - kv.chain_top[k] for k in kv.chain_n)
    unref = sum(1 for r in kv.refs.values() if r == 0) * kv.entry_blocks
    assert kv.evictable_blocks == tails + unref
    for k, holds in kv.chain_holds.items():
        assert kv.chain_top[k] == max(holds, default=0) <= kv.chain_n[k]
        assert (chain_tag(k) in kv.lru) == (kv.chain_top[k] < kv.chain_n[k])
        assert all(c > 0 for c in holds.values())
    assert set(kv.chain_n) == set(kv.chain_top) == set(kv.chain_holds)


def start(kv: KvCache, key: int, want: int, private: int) -> int:
    """A request of chain ``key`` wanting ``want`` blocks: match, hold the hit, allocate the rest privately,
    then register its computed prefix. Returns the blocks it holds."""
    hit = kv.chain_match(key, want)
    if hit:
        kv.chain_hold(key, 0, hit)
    assert kv.allocate(want - hit + private)
    if want > hit:
        assert kv.chain_register(key, hit, want, want - hit)
    return want


def test_a_second_request_reuses_the_first_requests_prefix():
    kv = KvCache(100, 16, 16)
    assert kv.chain_match(7, 9) == 0
    assert kv.allocate(9 + 3)  # 144 prefix tokens (9 blocks) + 3 private blocks
    assert kv.chain_register(7, 0, 9, 9)
    check(kv, private=3)
    assert kv.chain_match(7, 9) == 9 and kv.chain_match(7, 4) == 4
    kv.chain_hold(7, 0, 9)
    check(kv, private=3)
    assert kv.used_blocks == 12 and kv.evictable_blocks == 0
    assert (kv.hit_tokens, kv.lookup_tokens) == (13 * 16, 22 * 16)


def test_released_chains_are_evicted_oldest_first_from_their_tail():
    kv = KvCache(20, 16, 16)
    start(kv, 1, 6, 0)
    start(kv, 2, 6, 0)
    kv.chain_hold(1, 6, 0)  # chain 1 unreferenced first (older)
    kv.chain_hold(2, 6, 0)
    check(kv)
    assert kv.free_blocks == 8 and kv.evictable_blocks == 12
    assert kv.allocate(10)  # 8 free + 2 from chain 1's tail
    assert kv.chain_n == {1: 4, 2: 6} and kv.evicted_blocks == 2
    check(kv, private=10)
    assert kv.allocate(5)  # the rest of chain 1 (4), then 1 block of chain 2
    assert kv.chain_n == {2: 5} and 1 not in kv.chain_holds
    check(kv, private=15)
    assert not kv.allocate(6)  # 5 evictable blocks only: nothing changes
    assert kv.chain_n == {2: 5} and kv.used_blocks == 20
    assert kv.chain_match(2, 6) == 5


def test_a_chain_touched_by_a_release_becomes_the_newest():
    kv = KvCache(12, 16, 16)
    start(kv, 1, 4, 0)
    start(kv, 2, 4, 0)
    kv.chain_hold(1, 4, 0)
    kv.chain_hold(2, 4, 0)
    kv.chain_hold(1, 0, 4)  # chain 1 is used again and left again: now newer than chain 2
    kv.chain_hold(1, 4, 0)
    assert kv.allocate(4 + 4)
    assert kv.chain_n == {1: 4}
    check(kv, private=8)


def test_held_blocks_are_never_evicted_and_the_tail_above_the_longest_holder_is():
    kv = KvCache(16, 16, 16)
    start(kv, 3, 10, 0)  # holder A: 10 blocks
    kv.chain_hold(3, 0, 4)  # holder B: the first 4
    kv.chain_hold(3, 10, 0)  # A leaves: blocks 4..9 unreferenced
    check(kv)
    assert kv.evictable_blocks == 6
    assert not kv.allocate(13)  # 6 free + 6 evictable < 13
    assert kv.allocate(12)
    assert kv.chain_n[3] == 4 and kv.chain_top[3] == 4
    check(kv, private=12)
    kv.chain_hold(3, 4, 0)
    assert kv.evictable_blocks == 4
    check(kv, private=12)


def test_register_shares_blocks_another_request_computed_meanwhile():
    kv = KvCache(40, 16, 16)
    # two requests of chain 5 start together (nothing cached) and compute 8 blocks each, privately
    assert kv.chain_match(5, 8) == 0 and kv.chain_match(5, 8) == 0
    assert kv.allocate(8 + 8)
    assert kv.chain_register(5, 0, 8, 8)
    assert kv.chain_register(5, 0, 8, 8)  # the second gives up its 8 private blocks and shares
    check(kv)
    assert kv.used_blocks == 8 and kv.chain_holds[5] == {8: 2}
    # a longer request holding the first 8 extends the chain to 12
    assert kv.chain_register(5, 0, 8, 0) and kv.chain_holds[5] == {8: 3}
    assert kv.allocate(4)
    assert kv.chain_register(5, 8, 12, 4)
    assert kv.chain_n[5] == 12 and kv.chain_holds[5] == {8: 2, 12: 1} and kv.used_blocks == 12
    check(kv)


def test_a_failed_register_changes_nothing():
    kv = KvCache(10, 16, 16)
    start(kv, 1, 3, 0)
    kv.chain_hold(1, 3, 0)  # 3 evictable blocks of chain 1
    assert kv.chain_match(2, 20) == 0
    assert kv.allocate(6)  # 6 private blocks of a request of chain 2 ... wanting 8 shared blocks
    before = (kv.used_blocks, kv.evictable_blocks, dict(kv.chain_n), list(kv.lru))
    assert not kv.chain_register(2, 0, 8, 0)  # needs 8 more: 1 free + 3 evictable
    assert (kv.used_blocks, kv.evictable_blocks, dict(kv.chain_n), list(kv.lru)) == before
    check(kv, private=6)


def test_extend_caches_a_finished_context_only_into_free_room():
    kv = KvCache(10, 16, 16)
    start(kv, 9, 2, 0)
    assert kv.chain_extend(9, 6) == 4  # held blocks 0..1 plus an unreferenced tail of 4
    assert kv.chain_n[9] == 6 and kv.evictable_blocks == 4
    check(kv)
    kv.chain_hold(9, 2, 0)
    assert kv.allocate(4)
    assert kv.chain_extend(9, 20) == 0 and kv.chain_n[9] == 6  # no free room: nothing added, nothing evicted
    check(kv, private=4)
    assert kv.chain_extend(4, 3) == 0  # a new chain with no room
    assert 4 not in kv.chain_n
    kv.free(4)
    assert kv.chain_extend(4, 3) == 3 and kv.chain_match(4, 5) == 3
    check(kv)


def test_hash_entries_and_chains_share_one_lru():
    kv = KvCache(10, 16, 64)  # hash entries of 64 tokens = 4 blocks
    assert kv.match([11, 12]) == 0
    assert kv.allocate(8)
    assert kv.register([11, 12], 8)
    kv.release([11, 12])  # entry 12 then 11 join the LRU
    start(kv, 1, 2, 0)
    kv.chain_hold(1, 2, 0)  # chain 1 is the newest
    check(kv)
    assert kv.evictable_blocks == 10
    assert kv.allocate(4)  # evicts hash entry 12 (oldest), a whole entry of 4 blocks
    assert set(kv.refs) == {11} and kv.chain_n == {1: 2}
    assert kv.allocate(5)  # entry 11 (4 blocks), then one block of chain 1
    assert not kv.refs and kv.chain_n == {1: 1}
    check(kv, private=9)


@pytest.mark.parametrize("seed", range(6))
def test_random_operations_keep_the_invariants(seed):
    """Random starts, extensions, releases and allocations: the accounting invariants hold after every one,
    and a request never holds more blocks of a chain than the chain has cached."""
    g = np.random.default_rng(seed)
    kv = KvCache(200, 16, 16)
    running: list[tuple[int, int, int]] = []  # (chain key, held blocks, private blocks)
    private = 0
    for _ in range(2000):
        op = g.integers(0, 4)
        if op <= 1:
            key, want, priv = int(g.integers(0, 6)), int(g.integers(1, 40)), int(g.integers(0, 10))
            hit = kv.chain_match(key, want)
            if hit:
                kv.chain_hold(key, 0, hit)
            if not kv.allocate(want - hit + priv):
                if hit:
                    kv.chain_hold(key, hit, 0)
                check(kv, private)
                continue
            held, p = hit, want - hit + priv
            if want > hit and kv.chain_register(key, hit, want, want - hit):
                held, p = want, priv
            private += p
            running.append((key, held, p))
        elif op == 2 and running:
            key, held, p = running.pop(int(g.integers(0, len(running))))
            kv.free(p)
            private -= p
            if held:
                kv.chain_hold(key, held, 0)
            if g.random() < 0.3:
                kv.chain_extend(key, held + int(g.integers(0, 10)))
        else:
            n = int(g.integers(1, 30))
            if kv.allocate(n):
                kv.free(n)
        check(kv, private)
        for key, held, _ in running:
            assert kv.chain_n.get(key, 0) >= held
    assert kv.peak_blocks <= kv.total_blocks
