"""One replica running a vLLM-like continuous-batching engine (mechanism, on the SimPy clock).

Requests are rows, not processes: the replica keeps its running requests in per-slot lists
(``max_num_seqs`` slots, plus the sorted list of occupied ones) and its waiting requests in a FIFO of
ids. Each *plan* is either

- one step chosen by the scheduler (decodes first, then running prefills, then admissions, within
  ``max_num_seqs`` and ``max_batched_tokens``; a partial prefill is a chunk), or
- a fast-forward of ``k`` decode-only steps when nothing can change in between: no prefill pending, no
  admissible waiting request, and ``k`` is at most the steps to the first completion and to the first
  KV allocation that might fail (``engine.fastforward``: how many steps the KV cache holds, and their
  times). Step times come from the performance model: vectorised
  (``decode_steps_s``), or for a short fast-forward on an affine model (``decode_affine``) the same
  float operations in plain Python, which is faster than numpy on a few dozen steps.

Plain Python lists and loops over the running requests (typically a few dozen) are used instead of
numpy on purpose: per-call numpy overhead on ``max_num_seqs``-long arrays dominated the run time.
Results are bit-identical to the vectorised formulation (``benchmarks/engine_fingerprint.py``).

An arrival during a fast-forward cuts it at the end of the step in progress (a step is never
interrupted), so the result is identical to stepping one by one. Token semantics follow vLLM v1: a
request has ``num_tokens`` (prompt + generated) and ``num_computed``; a step that brings
``num_computed`` up to ``num_tokens`` samples one new token; the first one is the first token (TTFT).
Preemption is by recompute: the newest running request loses its KV and returns to the queue's head.
"""

from __future__ import annotations

from array import array
from bisect import insort
from collections import deque
from heapq import heappush
from typing import TYPE_CHECKING

import numpy as np

from infersim.engine.fastforward import K_MAX, decode_times, kv_horizon, steps_done
from infersim.engine.kvcache import KvCache

# the columns of ``Replica.sample``'s timeline row: busy share of the interval, KV usage, running requests,
# waiting requests (queued, or in the profile's API-server delay)
REPLICA_SAMPLE = ("busy", "kv_usage", "running", "waiting")

if TYPE_CHECKING:  # pragma: no cover
    from infersim.engine.knobs import ReplicaSetup
    from infersim.engine.recorder import Recorder
    from infersim.workload.generate import Requests



class Replica:
    """A replica of a deployment. ``submit(rid)`` hands it a request; it calls ``on_done(rid)`` when the
    request leaves (finished or rejected).

    Per-slot state lives in ``array('l')`` columns (``s_*``, ``max_num_seqs`` long; C arrays when the engine
    is compiled) and ``active`` lists the occupied slots in increasing slot order, so each plan and commit
    touch only the running requests (a few dozen at most in practice) without numpy's per-call overhead on
    small arrays."""

    def __init__(self, env, setup: ReplicaSetup, requests: Requests, recorder: Recorder,
                 replica_id: int, on_done=None, chain_full: np.ndarray | None = None):
        self.env, self.setup, self.req, self.rec = env, setup, requests, recorder
        self.id = replica_id
        self.on_done = on_done
        self.perf = setup.perf
        self.step_s = setup.perf.step_s
        cap = setup.max_num_seqs
        self.cap = cap
        self.bs = setup.block_size
        self.mbt = setup.max_batched_tokens
        knobs = setup.knobs
        self.mixed_cap = knobs.mixed_prefill_tokens
        self.prefill_first = knobs.prefill_first
        self.prefix_on = setup.prefix_caching and requests.has_prefixes
        self.kv = KvCache(setup.kv_blocks, setup.block_size, requests.block_tokens or setup.block_size)
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
        self.resume: dict[int, tuple[int, int]] = {}
        self.order = 0
        self.in_tok = requests.input_tokens
        self.out_tok = requests.output_tokens
        # plan state
        self.busy = False
        self.gen = 0
        self.plan_start = 0.0
        self.plan_k = 0
        self.plan_ff = False  # the plan is a fast-forward of plan_k decode steps (times in ff_dt, ff_cum)
        self.plan_pre: list[tuple[int, int]] = []
        self.dec = array("l", [0]) * cap  # slots decoding in the plan: dec[:plan_ndec]
        self.ff_room = array("l", [0]) * cap  # per decoding slot: tokens its KV blocks hold beyond the next
        self.ff_dt = array("d", [0.0]) * 64  # a fast-forward's step times and their running sum (grown
        self.ff_cum = array("d", [0.0]) * 64  # to the longest fast-forward so far, at most K_MAX)
        self.plan_ndec = 0
        self.busy_s = 0.0
        self.steps = 0
        self.tokens_out = 0
        self.kv_tokens_max = setup.kv_blocks * setup.block_size
        self.delay = knobs.schedule_delay_s
        self.delay_per_seq = knobs.schedule_delay_per_seq_s
        self.api_serial = knobs.api_serial_s
        self.api_free = 0.0  # when the API-server process is next free (api_serial_s)
        self.pending = 0  # submitted, still in the scheduling delay
        self.failed = False
        # own event loop (engine.own_clock): heap of (time, rid) of requests in the scheduling delay; None on
        # the shared SimPy clock
        self.alone: list | None = None
        self.last_busy = 0.0  # busy seconds at the last timeline sample
        self.events = 0  # events of its own loop (engine.own_clock): step ends, scheduling-delay exits, arrivals
        # load view for balancers (read for every replica on every dispatch, so a plain attribute):
        # requests submitted and not yet left, = n_active + len(waiting) + pending at all times
        self.outstanding = 0

    # -- load views for balancers -------------------------------------------------------------------
    def busy_until(self, now: float) -> float:
        """Seconds spent executing steps up to ``now`` (the step or fast-forward in progress counted so far)."""
        return self.busy_s + (now - self.plan_start if self.busy else 0.0)

    @property
    def kv_usage(self) -> float:
        return self.kv.used_blocks / self.kv.total_blocks

    # -- entry ------------------------------------------------------------------------------------
    def submit(self, rid: int) -> None:
        """Queue a request (FCFS) now. Requests that can never fit are rejected at once."""
        self._submit(rid, self.env.now)

    def _submit(self, rid: int, now: float) -> None:
        need = int(self.in_tok[rid] + self.out_tok[rid])
        if need > self.setup.model.max_context:
            self.rec.reject(rid, "context_length", now, self.id)
            self._done(rid)
            return
        if need > self.kv_tokens_max:
            self.rec.reject(rid, "kv_capacity", now, self.id)
            self._done(rid)
            return
        self.rec.assign(rid, self.id)
        delay = self.delay + self.delay_per_seq * self.outstanding if self.delay_per_seq else self.delay
        if self.api_serial:  # one API-server process: simultaneous arrivals are handled one after another
            self.api_free = max(now, self.api_free) + self.api_serial
            delay += self.api_free - now
        self.pending += 1
        self.outstanding += 1
        if delay <= 0:
            self._enqueue(rid, now)
        elif self.alone is None:  # API server / tokenisation hop before the scheduler sees it
            self.env.timeout(delay, rid).callbacks.append(self._enqueue_event)
        else:
            heappush(self.alone, (now + delay, rid))

    def _enqueue_event(self, ev) -> None:
        self._enqueue(ev.value, self.env.now)

    def _enqueue(self, rid: int, now: float) -> None:
        if self.failed:
            return  # the replica failed while the request was in its scheduling delay (the fleet retries it)
        self.pending -= 1
        self.waiting.append(rid)
        if not self.busy:
            self._plan(now)
        elif self.plan_k > 1:
            self._cut(now)

    def _done(self, rid: int) -> None:
        if self.on_done is not None:
            self.on_done(rid)

    # -- planning ---------------------------------------------------------------------------------
    def _plan(self, now: float, mix: bool = False) -> None:
        s_left, s_comp, s_priv = self.s_left, self.s_comp, self.s_priv
        kv, bs = self.kv, self.bs
        preempted = False
        held = False
        dec = self.dec  # the slots decoding in this plan: dec[:n_dec]
        n_dec = 0
        n_active = self.n_active
        if n_active:
            n_dec = self._decoding()
            if self.prefill_first and not mix and n_dec and (self.waiting or n_dec < n_active):
                n_dec, held = 0, True  # prefill-priority profile: a prompt step without the decodes
            # decodes first: one token each; allocate any block boundary they cross
            s_shared = self.s_shared
            while n_dec:
                total = 0
                for i in range(n_dec):
                    s = dec[i]
                    nd = -(-(s_comp[s] + 1 - s_shared[s]) // bs) - s_priv[s]
                    if nd > 0:
                        total += nd
                if kv.allocate(total):
                    if total:
                        for i in range(n_dec):
                            s = dec[i]
                            nd = -(-(s_comp[s] + 1 - s_shared[s]) // bs) - s_priv[s]
                            if nd > 0:
                                s_priv[s] += nd
                    break
                self._preempt_newest()
                preempted = True
                n_dec = self._decoding()
            n_active = self.n_active
            pre_slots = [s for s in self.active if s_left[s] > 1] if n_dec < n_active else []
        else:
            pre_slots = []
        budget = self.mbt - n_dec
        if n_dec and self.mixed_cap:  # the profile's limit on prefill tokens in a step with decodes
            budget = min(budget, self.mixed_cap)
        chunks: list[tuple[int, int]] = []
        if pre_slots:
            s_shared = self.s_shared
            if len(pre_slots) > 1:
                pre_slots.sort(key=self.s_order.__getitem__)
            for slot in pre_slots:
                if budget <= 0:
                    break
                c = s_comp[slot]
                chunk = min(s_left[slot], budget)
                need = max(-(-(c + chunk - s_shared[slot]) // bs) - s_priv[slot], 0)
                if not kv.allocate(need):
                    break
                s_priv[slot] += need
                chunks.append((slot, chunk))
                budget -= chunk
        if not preempted:
            waiting = self.waiting
            while waiting and budget > 0 and self.free_slots:
                adm = self._admit(waiting[0], budget)
                if adm is None:
                    break
                waiting.popleft()
                chunks.append(adm)
                budget -= adm[1]
        if held and not chunks:  # no prompt could start: run the decodes after all
            self._plan(now, mix=True)
            return
        if not chunks and not n_dec:
            if self.n_active:  # everything stuck on KV: free room by preempting the newest
                self._preempt_newest()
                self._plan(now)
                return
            self.busy = False
            self.plan_k = 0
            return
        self.busy = True
        self.plan_start = now
        self.plan_pre = chunks
        self.plan_ndec = n_dec
        dec_ctx_i = 0
        for i in range(n_dec):
            dec_ctx_i += s_comp[dec[i]]
        dec_ctx = float(dec_ctx_i) if n_dec else 0.0
        if chunks:
            n_tok = 0
            pairs = 0.0
            pre_ctx = 0.0
            for slot, chunk in chunks:
                c = s_comp[slot]
                n_tok += chunk
                pairs += chunk * c + chunk * (chunk + 1) / 2.0
                pre_ctx += c
            dt = self.step_s(n_tok, pairs, len(chunks), n_dec, dec_ctx, pre_ctx)
            self.plan_k = 1
            self.plan_ff = False
            self._wake(dt)
            return
        # decode-only: fast-forward as far as nothing can change
        s_out, s_gen = self.s_out, self.s_gen
        k = K_MAX
        for i in range(n_dec):
            s = dec[i]
            if s_out[s] - s_gen[s] < k:
                k = s_out[s] - s_gen[s]
        if k > 1:
            k = self._kv_horizon(n_dec, k)
        if k > 1:
            if k > len(self.ff_cum):
                size = max(k, min(2 * len(self.ff_cum), K_MAX))
                self.ff_dt, self.ff_cum = array("d", [0.0]) * size, array("d", [0.0]) * size
            decode_times(self.perf, n_dec, dec_ctx_i, k, self.ff_dt, self.ff_cum)
            self.plan_ff = True
            self.plan_k = k
            self._wake(self.ff_cum[k - 1])
        else:
            dt = self.step_s(0, 0.0, 0, n_dec, dec_ctx)
            self.plan_ff = False
            self.plan_k = 1
            self._wake(dt)

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
                    s_priv[dec[i]] += -(-(kk - x) // bs)
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
        ids = ()
        if self.prefix_on:
            ids = self.req.prefix_ids(rid).tolist()
            if ids:
                hit = kv.match(ids)
        shared = hit * kv.entry_tokens
        comp = min(shared, ntok - 1)
        chunk = min(ntok - comp, budget)
        need = max(-(-(comp + chunk - shared) // self.bs), 0)
        if hit:
            kv.acquire(ids[:hit])
        if not kv.allocate(need):
            if hit:
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
        slot = max(self.active, key=self.s_order.__getitem__)
        rid = self.s_rid[slot]
        self.resume[rid] = (self.s_comp[slot] + self.s_left[slot], self.s_gen[slot])
        self.rec.preempt(rid)
        self._release(slot)
        self.waiting.appendleft(rid)
        self.outstanding += 1  # back in the queue (_release counted it as leaving)

    def _release(self, slot: int, finished: bool = False) -> None:
        kv = self.kv
        kv.free(self.s_priv[slot])
        held = self.s_held[slot]
        rid = self.s_rid[slot]
        if held or (finished and self.prefix_on and self.chain_full is not None and self.chain_full[rid]):
            ids = self.req.prefix_ids(rid).tolist()
            if held:
                kv.release(ids[:held])
            if finished and self.chain_full is not None and self.chain_full[rid]:
                # a conversation's whole context becomes reusable by its next turn
                ctx = self.s_comp[slot]
                kv.insert_unreferenced(self.req.chain_ids(rid, ctx // kv.entry_tokens))
        self.active.remove(slot)
        self.s_priv[slot] = 0
        self.s_held[slot] = 0
        self.s_rid[slot] = -1
        self.free_slots.append(slot)
        self.n_active -= 1
        self.outstanding -= 1

    # -- time -------------------------------------------------------------------------------------
    def _wake(self, dt: float) -> None:
        self.gen += 1
        self.plan_end = self.plan_start + dt
        if self.alone is None:
            self.env.timeout(dt, self.gen).callbacks.append(self._on_wake_event)

    def _cut(self, now: float) -> None:
        """An arrival during a fast-forward: stop after the step in progress."""
        i = steps_done(self.ff_cum, self.plan_k, now - self.plan_start)
        if i + 1 >= self.plan_k:
            return
        self.plan_k = i + 1
        self.gen += 1
        g = self.gen
        end = self.plan_start + self.ff_cum[i]
        self.plan_end = end
        if self.alone is None:
            self.env.timeout(end - now, g).callbacks.append(self._on_wake_event)

    def _on_wake_event(self, ev) -> None:
        if ev.value == self.gen:  # else superseded by a cut
            now = self.env.now
            self._commit(now)
            self._plan(now)

    def _commit(self, now: float) -> None:
        k = self.plan_k
        dec = self.dec
        n_dec = self.plan_ndec
        rec = self.rec
        if self.plan_ff:
            busy = self.ff_cum[k - 1]
            rec.itl_many(self.ff_dt, k, n_dec)
        else:
            busy = now - self.plan_start
            if n_dec:
                rec.itl_one(busy, n_dec)
        self.busy_s += busy
        self.steps += k
        s_comp, s_gen, s_left, s_out, s_rid = self.s_comp, self.s_gen, self.s_left, self.s_out, self.s_rid
        finished: list[int] = []
        if n_dec:
            # a prefill whose last chunk is a single token is scheduled like a decode: its first token
            # comes at the end of the plan's first step
            fresh = None
            for i in range(n_dec):
                s = dec[i]
                g = s_gen[s]
                if not g:
                    if fresh is None:
                        fresh = [s]
                    else:
                        fresh.append(s)
                s_comp[s] += k  # decodes keep one token left: num_tokens and num_computed both grow by k
                s_gen[s] = g + k
            if fresh is not None:
                t1 = self.plan_start + (self.ff_cum[0] if self.plan_ff else busy)
                for slot in fresh:
                    rid = s_rid[slot]
                    rec.first_token(rid, t1)
                    self._register_prefix(slot, rid)
            self.tokens_out += k * n_dec
            for i in range(n_dec):
                s = dec[i]
                if s_gen[s] >= s_out[s]:
                    finished.append(s)
        for slot, chunk in self.plan_pre:
            s_comp[slot] += chunk
            left = s_left[slot] - chunk
            if left:
                s_left[slot] = left
            else:  # prompt (or recomputed context) complete: a token is sampled
                rid = s_rid[slot]
                if s_gen[slot] == 0:
                    rec.first_token(rid, now)
                    self._register_prefix(slot, rid)
                s_gen[slot] += 1
                s_left[slot] = 1
                self.tokens_out += 1
                if s_gen[slot] >= s_out[slot]:
                    finished.append(slot)
        self.plan_pre = []
        for slot in finished:
            rid = s_rid[slot]
            rec.finish(rid, now)
            self._release(slot, finished=True)
            self._done(rid)

    def _register_prefix(self, slot: int, rid: int) -> None:
        """Prefill done: the request's prefix blocks become shared entries (reusable by others)."""
        if not self.prefix_on:
            return
        ids = self.req.prefix_ids(rid).tolist()
        held = self.s_held[slot]
        if held >= len(ids):
            return
        kv = self.kv
        shared = len(ids) * kv.entry_tokens
        old_priv = self.s_priv[slot]
        new_priv = min(max(-(-(self.s_comp[slot] - shared) // self.bs), 0), old_priv)
        if not kv.register(ids[held:], old_priv - new_priv):
            return  # no room to share: the blocks stay private to this request
        self.s_priv[slot] = new_priv
        self.s_shared[slot] = shared
        self.s_held[slot] = len(ids)

    def fail(self, now: float) -> None:
        """The replica fails at ``now``: its step in progress never completes (busy time counted up to now)
        and requests still in its scheduling delay are dropped (the fleet retries or rejects them)."""
        self.busy_s = self.busy_until(now)
        self.gen += 1
        self.busy = False
        self.failed = True

    # -- timeline -------------------------------------------------------------------------------------
    def sample(self, now: float, dt_s: float) -> tuple[float, float, int, int]:
        """A timeline row at ``now``, ``dt_s`` after the previous one: (share of the interval busy running
        steps, KV usage, running requests, waiting requests (queued or in the scheduling delay))."""
        b = self.busy_until(now)
        busy = min(max((b - self.last_busy) / dt_s, 0.0), 1.0)
        self.last_busy = b
        return busy, self.kv_usage, self.n_active, len(self.waiting) + self.pending

    # -- end of run ---------------------------------------------------------------------------------
    def in_flight(self) -> list[int]:
        s_rid = self.s_rid
        return [s_rid[s] for s in self.active] + list(self.waiting)


def least_outstanding(replicas: list) -> int:
    """Index of the replica with the fewest requests submitted and not yet left (the first on ties): the
    least-outstanding balancer's scan, here so that it reads replicas as C structs when compiled."""
    best, best_load = 0, -1
    for i in range(len(replicas)):
        r = replicas[i]
        load = r.outstanding
        if best_load < 0 or load < best_load:
            best, best_load = i, load
            if load == 0:
                break
    return best


__all__ = ["REPLICA_SAMPLE", "Replica", "least_outstanding"]
