"""One replica running a vLLM-like continuous-batching engine (mechanism, on the SimPy clock).

``Replica`` is its ``engine.sequences.Sequences`` (slots, queue, KV cache) plus a clock: requests pass an
API-server / scheduling delay, then each *plan* (a ``policy.batching.BatchPlan``) is either

- one step chosen by the batch policy (decodes first, then running prefills, then admissions, within
  ``max_num_seqs`` and ``max_batched_tokens``; a partial prefill is a chunk; rules in ``policy.batching``), or
- a fast-forward of ``k`` decode-only steps when nothing can change in between: no prefill pending, no
  admissible waiting request, and ``k`` is at most the steps to the first completion and to the first
  KV allocation that might fail (``engine.fastforward``: how many steps the KV cache holds, and their
  times). Step times come from the performance model: for a short fast-forward on an affine model
  (``decode_affine``) the same float operations in plain Python, otherwise vectorised (``decode_steps_s``).

An arrival during a fast-forward cuts it at the end of the step in progress (a step is never
interrupted), so the result is identical to stepping one by one. A step that brings a slot's computed
tokens up to its tokens samples one new token; the first one is the first token (TTFT). Results are
bit-identical to stepping one by one with numpy (``benchmarks/engine_fingerprint.py``, committed hashes in
``tests/golden/engine_fingerprints.json``).
"""

from __future__ import annotations

from array import array
from heapq import heappush
from typing import TYPE_CHECKING

import numpy as np

from infersim.engine.clock import FleetClock
from infersim.engine.fastforward import K_MAX, decode_times, steps_done
from infersim.engine.sequences import Sequences
from infersim.policy.batching import IDLE, blocks_to_add, decodes_held, new_plan, prompt_budget

# the columns of ``Replica.sample``'s timeline row: busy share of the interval, KV usage, running requests,
# waiting requests (queued, or in the profile's API-server delay)
REPLICA_SAMPLE = ("busy", "kv_usage", "running", "waiting")

if TYPE_CHECKING:  # pragma: no cover
    from infersim.engine.knobs import ReplicaSetup
    from infersim.engine.recorder import Recorder
    from infersim.workload.generate import Requests


class Replica(Sequences):
    """A replica of a deployment. ``submit(rid)`` hands it a request; it calls ``on_done(rid)`` when the
    request leaves (finished or rejected). Engine knobs come from ``setup.knobs`` (``engine.knobs``)."""

    def __init__(self, env, setup: ReplicaSetup, requests: Requests, recorder: Recorder,
                 replica_id: int, on_done=None, chain_full: np.ndarray | None = None):
        Sequences.__init__(self, setup, requests, recorder, replica_id, chain_full)
        self.env, self.setup = env, setup
        self.on_done = on_done
        self.perf = setup.perf
        self.step_s = setup.perf.step_s
        self.mbt = setup.max_batched_tokens
        knobs = setup.knobs
        self.mixed_cap = knobs.mixed_prefill_tokens
        self.prefill_first = knobs.prefill_first
        self.delay = knobs.schedule_delay_s
        self.delay_per_seq = knobs.schedule_delay_per_seq_s
        self.api_serial = knobs.api_serial_s
        self.api_free = 0.0  # when the API-server process is next free (api_serial_s)
        self.kv_tokens_max = setup.kv_blocks * setup.block_size
        # plan state
        self.busy = False
        self.gen = 0  # generation of the pending wake-up (a cut or a failure supersedes older ones)
        self.plan = IDLE
        self.plan_start = 0.0
        self.plan_end = 0.0
        self.ff_dt = array("d", [0.0]) * 64  # a fast-forward's step times and their running sum (grown
        self.ff_cum = array("d", [0.0]) * 64  # to the longest fast-forward so far, at most K_MAX)
        self.busy_s = 0.0
        self.steps = 0
        self.tokens_out = 0
        self.pending = 0  # submitted, still in the scheduling delay
        self.failed = False
        # own event loop (engine.own_clock): heap of (time, rid) of requests in the scheduling delay; None on
        # the shared SimPy clock
        self.alone: list | None = None
        # a fleet's own calendar (engine.clock.FleetClock, the replica's env or set by engine.own_clock.run_fleet):
        # step ends and scheduling-delay exits go on its heap; None on a SimPy clock or alone
        self.clock = env if isinstance(env, FleetClock) else None
        self.last_busy = 0.0  # busy seconds at the last timeline sample
        self.events = 0  # events of its own loop (engine.own_clock): step ends, scheduling-delay exits, arrivals

    def busy_until(self, now: float) -> float:
        """Seconds spent executing steps up to ``now`` (the step or fast-forward in progress counted so far)."""
        return self.busy_s + (now - self.plan_start if self.busy else 0.0)

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
        load = self.load
        delay = self.delay + self.delay_per_seq * load.outstanding if self.delay_per_seq else self.delay
        if self.api_serial:  # one API-server process: simultaneous arrivals are handled one after another
            self.api_free = max(now, self.api_free) + self.api_serial
            delay += self.api_free - now
        self.pending += 1
        load.add(1)
        if delay <= 0:
            self._enqueue(rid, now)
        elif self.clock is not None:
            self.clock.enqueue(self, now + delay, rid)
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
        if self.totals is not None:
            self.totals.waiting += 1
        if not self.busy:
            self._plan(now)
        elif self.plan.k > 1:
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
            if self.prefill_first and decodes_held(True, mix, n_dec, len(self.waiting), n_active):
                n_dec, held = 0, True  # prefill-priority profile: a prompt step without the decodes
            # decodes first: one token each; allocate any block boundary they cross
            s_shared = self.s_shared
            while n_dec:
                total = 0
                for i in range(n_dec):
                    s = dec[i]
                    nd = blocks_to_add(s_comp[s] + 1, s_shared[s], s_priv[s], bs)
                    if nd > 0:
                        total += nd
                if kv.allocate(total):
                    if total:
                        for i in range(n_dec):
                            s = dec[i]
                            nd = blocks_to_add(s_comp[s] + 1, s_shared[s], s_priv[s], bs)
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
        budget = prompt_budget(self.mbt, n_dec, self.mixed_cap)
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
                need = max(blocks_to_add(c + chunk, s_shared[slot], s_priv[slot], bs), 0)
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
                if self.totals is not None:
                    self.totals.waiting -= 1
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
            self.plan = IDLE
            return
        self.busy = True
        self.plan_start = now
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
            self.plan = new_plan(chunks, n_dec, 1, False)
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
            self.plan = new_plan(chunks, n_dec, k, True)
            self._wake(self.ff_cum[k - 1])
        else:
            dt = self.step_s(0, 0.0, 0, n_dec, dec_ctx)
            self.plan = new_plan(chunks, n_dec, 1, False)
            self._wake(dt)

    # -- time -------------------------------------------------------------------------------------
    def _wake(self, dt: float) -> None:
        self.gen += 1
        self.plan_end = self.plan_start + dt
        if self.clock is not None:
            self.clock.wake(self, self.plan_end, self.gen)
        elif self.alone is None:
            self.env.timeout(dt, self.gen).callbacks.append(self._on_wake_event)

    def _cut(self, now: float) -> None:
        """An arrival during a fast-forward: stop after the step in progress."""
        plan = self.plan
        i = steps_done(self.ff_cum, plan.k, now - self.plan_start)
        if i + 1 >= plan.k:
            return
        self.plan = new_plan(plan.chunks, plan.n_dec, i + 1, plan.fast_forward)
        self.gen += 1
        g = self.gen
        end = self.plan_start + self.ff_cum[i]
        self.plan_end = end
        if self.clock is not None:  # the time SimPy's timeout(end - now) would fire at, to the last bit
            self.clock.wake(self, now + (end - now), g)
        elif self.alone is None:
            self.env.timeout(end - now, g).callbacks.append(self._on_wake_event)

    def _on_wake_event(self, ev) -> None:
        if ev.value == self.gen:  # else superseded by a cut
            now = self.env.now
            self._commit(now)
            self._plan(now)

    def _commit(self, now: float) -> None:
        """The plan's steps are done at ``now``: record their tokens, first tokens and finished requests."""
        plan = self.plan
        k = plan.k
        dec = self.dec
        n_dec = plan.n_dec
        rec = self.rec
        if plan.fast_forward:
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
                t1 = self.plan_start + (self.ff_cum[0] if plan.fast_forward else busy)
                for slot in fresh:
                    rid = s_rid[slot]
                    rec.first_token(rid, t1)
                    self._register_prefix(slot, rid)
            self.tokens_out += k * n_dec
            for i in range(n_dec):
                s = dec[i]
                if s_gen[s] >= s_out[s]:
                    finished.append(s)
        for slot, chunk in plan.chunks:
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
        for slot in finished:
            rid = s_rid[slot]
            rec.finish(rid, now)
            self._release(slot, finished=True)
            self._done(rid)

    def kick(self, now: float) -> None:
        """KV blocks were freed from outside the engine (a disaggregated prefill replica's KV held for its
        transfer): an idle replica with requests waiting for room plans again."""
        if not self.busy and not self.failed and self.waiting:
            self._plan(now)

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


__all__ = ["REPLICA_SAMPLE", "Replica"]
