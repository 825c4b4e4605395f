"""The sequences of one replica and their KV blocks (mechanism without a clock; compiled with the engine).

Requests are rows, not processes: the running ones sit in ``max_num_seqs`` slots whose per-slot state lives
in ``array('l')`` columns (``s_*``; C arrays when the engine is compiled), ``active`` lists the occupied
slots in increasing slot order, and the waiting ones are a FIFO of ids (``waiting``; a preempted request
goes back to its head with its progress in ``resume``). Each method touches only the running requests (a
few dozen at most in practice): plain loops over small arrays, no numpy per-call overhead.

Token semantics follow vLLM v1: a slot has ``s_comp`` tokens computed and ``s_left`` to compute before its
next sample (a decoding slot has exactly one left). KV: a slot holds ``s_priv`` private blocks for its
tokens beyond ``s_shared`` tokens of shared prefix (``s_held`` referenced: blocks of its chain, or a
trace's hash entries). Preemption is by recompute: the victim loses its KV and returns to the queue's head; under ``guaranteed_no_evict``
(``knobs.no_evict``) a request reserves its prompt + maximum output at admission and is never preempted.

Prefixes: a generated prefix (``Requests.prefix_key`` >= 0) is a chain of the KV cache (``engine.kvcache``)
whose length this engine rounds down to its own block: ``prefix_tokens // block_size`` blocks, matched,
held, registered and (a conversation's finished context) extended in O(1) per request whatever the block
size. A replayed trace's hash ids are entries of ``Requests.block_tokens`` tokens each. ``engine.replica.Replica`` adds the
clock and the scheduler loop; the rules it applies are ``policy.batching``'s.
"""

from __future__ import annotations

from array import array
from bisect import insort
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from infersim.engine.fastforward import kv_horizon
from infersim.engine.kvcache import KvCache
from infersim.policy.batching import blocks_to_add, first_chunk, preemption_victim, reserve_tokens
from infersim.policy.load import LoadView

if TYPE_CHECKING:  # pragma: no cover
    from infersim.engine.knobs import ReplicaSetup
    from infersim.engine.recorder import Recorder
    from infersim.workload.generate import Requests


class Sequences:
    """Slots, queue and KV cache of a replica ``replica_id`` for ``requests``, writing to ``recorder``.

    Invariants: ``n_active == len(active)``; ``active`` holds the occupied slots, increasing;
    ``load.outstanding`` (requests submitted and not yet left) = running + waiting + in the scheduling
    delay, kept by the replica; the KV cache never holds more than its blocks (``engine.kvcache``)."""

    def __init__(self, setup: ReplicaSetup, requests: Requests, recorder: Recorder, replica_id: int,
                 chain_full: np.ndarray | None = None):
        self.req, self.rec = requests, recorder
        self.id = replica_id
        cap = setup.max_num_seqs
        self.cap = cap
        self.bs = setup.block_size
        self.prefix_on = setup.prefix_caching and requests.has_prefixes
        self.has_ids = requests.block_offsets is not None  # trace hash ids (else only generated chains)
        self.kv = KvCache(setup.kv_blocks, setup.block_size, requests.block_tokens or setup.block_size)
        self.pkey = requests.prefix_key
        self.ptok = requests.prefix_tokens
        self.no_evict = setup.knobs.no_evict  # policy.batching.reserve_tokens
        self.chain_full = chain_full if chain_full is not None and chain_full.any() else None
        self.s_rid = array("l", [-1]) * cap
        self.s_comp = array("l", [0]) * cap
        self.s_left = array("l", [0]) * cap  # tokens to compute before the next sample: num_tokens - num_computed
        self.s_gen = array("l", [0]) * cap
        self.s_out = array("l", [0]) * cap
        self.s_shared = array("l", [0]) * cap
        self.s_priv = array("l", [0]) * cap
        self.s_order = array("l", [0]) * cap
        self.s_held = array("l", [0]) * cap  # prefix entries held (leading ids of the request's prefix)
        self.active: list[int] = []  # occupied slots, increasing
        self.free_slots = list(range(cap - 1, -1, -1))
        self.n_active = 0
        self.waiting: deque[int] = deque()
        # a deployment's load counters (``fleet.load_totals``) while it counts this replica: its ``waiting``
        # follows this queue's length (kept here, where the queue changes)
        self.totals = None
        self.resume: dict[int, tuple[int, int]] = {}
        self.order = 0
        self.in_tok = requests.input_tokens
        self.out_tok = requests.output_tokens
        self.dec = array("l", [0]) * cap  # slots decoding in the current plan: dec[:plan.n_dec]
        self.ff_room = array("l", [0]) * cap  # per decoding slot: tokens its KV blocks hold beyond the next
        # what the balancers read (a plain attribute: read for every replica on every dispatch)
        self.load = LoadView(self.kv)

    # -- load -------------------------------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        """Requests submitted and not yet left (running, waiting, in the scheduling delay)."""
        return self.load.outstanding

    @property
    def kv_usage(self) -> float:
        return self.kv.used_blocks / self.kv.total_blocks

    # -- slots ------------------------------------------------------------------------------------
    def _decoding(self) -> int:
        """Put the running slots whose next step is a decode (one token left to compute) into ``dec``, in
        slot order; returns how many."""
        s_left, dec = self.s_left, self.dec
        n = 0
        for s in self.active:
            if s_left[s] == 1:
                dec[n] = s
                n += 1
        return n

    def _kv_horizon(self, n_dec: int, k: int) -> int:
        """Largest k' <= k whose extra blocks (steps 2..k') can all be allocated now; allocates them."""
        s_comp, s_shared, s_priv = self.s_comp, self.s_shared, self.s_priv
        bs = self.bs
        kv = self.kv
        dec, xs = self.dec, self.ff_room
        # slot s has room for x = priv x bs - (comp + 1 - shared) more tokens after its next one
        for i in range(n_dec):
            s = dec[i]
            xs[i] = s_priv[s] * bs - s_comp[s] - 1 + s_shared[s]
        k, total = kv_horizon(xs, n_dec, bs, kv.free_blocks + kv.evictable_blocks, k)
        if total:
            kv.allocate(total)
            kk = k - 1
            for i in range(n_dec):
                x = xs[i]
                if x < kk:
                    s_priv[dec[i]] += blocks_to_add(kk, x, 0, bs)
        return k

    def _admit(self, rid: int, budget: int):
        """Try to start the waiting request ``rid`` with a first chunk; None if it cannot start now."""
        kv = self.kv
        resumed = self.resume.pop(rid, None)
        if resumed is not None:
            ntok, gen = resumed
        else:
            ntok, gen = int(self.in_tok[rid]), 0
        hit = 0
        shared = 0
        key = -1
        ids = None
        if self.prefix_on:
            key = self.pkey[rid]
            if key >= 0:
                want = self.ptok[rid] // self.bs
                if want:
                    hit = kv.chain_match(key, want)
                    shared = hit * self.bs
            elif self.has_ids:
                ids = self.req.prefix_ids(rid).tolist()
                if ids:
                    hit = kv.match(ids)
                    shared = hit * kv.entry_tokens
        comp, chunk = first_chunk(ntok, shared, budget)
        reserve = reserve_tokens(self.no_evict, comp + chunk, self.in_tok[rid] + self.out_tok[rid])
        need = max(blocks_to_add(reserve, shared, 0, self.bs), 0)
        if hit:
            if key >= 0:
                kv.chain_hold(key, 0, hit)
            else:
                kv.acquire(ids[:hit])
        if not kv.allocate(need):
            if hit:
                if key >= 0:
                    kv.chain_hold(key, hit, 0)
                else:
                    kv.release(ids[:hit])
            if resumed is not None:
                self.resume[rid] = resumed
            return None
        slot = self.free_slots.pop()
        self.n_active += 1
        self.s_rid[slot] = rid
        self.s_comp[slot] = comp
        self.s_left[slot] = ntok - comp
        self.s_gen[slot] = gen
        self.s_out[slot] = int(self.out_tok[rid])
        self.s_shared[slot] = shared
        self.s_held[slot] = hit
        self.s_priv[slot] = need
        self.s_order[slot] = self.order
        self.order += 1
        active = self.active
        if not active or slot > active[-1]:
            active.append(slot)
        else:
            insort(active, slot)
        if resumed is None:
            self.rec.start(rid, comp)
        return slot, chunk

    def _preempt_newest(self) -> None:
        slot = preemption_victim(self.active, self.s_order)
        rid = self.s_rid[slot]
        self.resume[rid] = (self.s_comp[slot] + self.s_left[slot], self.s_gen[slot])
        self.rec.preempt(rid)
        self._release(slot)
        self.waiting.appendleft(rid)
        if self.totals is not None:
            self.totals.waiting += 1
        self.load.add(1)  # back in the queue (_release counted it as leaving)

    def _release(self, slot: int, finished: bool = False) -> None:
        kv = self.kv
        kv.free(self.s_priv[slot])
        held = self.s_held[slot]
        rid = self.s_rid[slot]
        if self.prefix_on:
            key = self.pkey[rid]
            if key >= 0:
                if held:
                    kv.chain_hold(key, held, 0)
                if finished and self.chain_full is not None and self.chain_full[rid]:
                    # a conversation's whole context becomes reusable by its next turn
                    kv.chain_extend(key, self.s_comp[slot] // self.bs)
            elif held:
                kv.release(self.req.prefix_ids(rid).tolist()[:held])
        self.active.remove(slot)
        self.s_priv[slot] = 0
        self.s_held[slot] = 0
        self.s_rid[slot] = -1
        self.free_slots.append(slot)
        self.n_active -= 1
        self.load.add(-1)

    def _register_prefix(self, slot: int, rid: int) -> None:
        """Prefill done: the request's prefix blocks become shared (its chain's, or hash entries), reusable
        by others; its private blocks covering them are given up in exchange."""
        if not self.prefix_on:
            return
        kv = self.kv
        held = self.s_held[slot]
        key = self.pkey[rid]
        if key >= 0:
            target = self.ptok[rid] // self.bs
            if held >= target:
                return
            shared = target * self.bs
        elif self.has_ids:
            ids = self.req.prefix_ids(rid).tolist()
            target = len(ids)
            if held >= target:
                return
            shared = target * kv.entry_tokens
        else:
            return
        old_priv = self.s_priv[slot]
        reserve = reserve_tokens(self.no_evict, self.s_comp[slot], self.in_tok[rid] + self.out_tok[rid])
        new_priv = min(max(blocks_to_add(reserve, shared, 0, self.bs), 0), old_priv)
        if key >= 0:
            if not kv.chain_register(key, held, target, old_priv - new_priv):
                return  # no room to share: the blocks stay private to this request
        elif not kv.register(ids[held:], old_priv - new_priv):
            return
        self.s_priv[slot] = new_priv
        self.s_shared[slot] = shared
        self.s_held[slot] = target

    # -- end of run ---------------------------------------------------------------------------------
    def in_flight(self) -> list[int]:
        """Requests still running or waiting (the recorder marks them in flight at the end)."""
        s_rid = self.s_rid
        return [s_rid[s] for s in self.active] + list(self.waiting)
