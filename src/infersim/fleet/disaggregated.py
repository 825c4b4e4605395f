"""A disaggregated deployment: a prefill pool, a decode pool and the KV transfers between them (mechanism).

A request prefills on a prefill replica (the engine of ``engine.replica`` on a view of the request with one
output token: the step that completes the prompt is the prefill), then waits for a decode replica with room
for its prompt's KV (back-pressure: it never goes to a full replica; it waits in FIFO order and is rejected
with reason ``decode_kv_full`` after ``decode_wait_s``), then its KV moves over the prefill replica's link
(``fleet.kv_link.SharedLink``: latency + bytes / bandwidth, concurrent transfers share it), then it decodes.

On the decode replica the transferred KV is the request's own cached prefix: its full blocks are inserted
into the replica's KV cache when the transfer lands (``KvCache.chain_extend``: a chain of the request's own;
cached blocks of finished requests are evicted, oldest first, to make the room placement counted on), so
the decode engine admits the request with those tokens computed and its first step computes only the rest
of the last partial block (at most ``block_size`` tokens, at least one) and samples the first token, which is
the user's first token: TTFT = prefill wait and step + wait for decode room + transfer + decode wait and
first step. With ``first_token_at_prefill`` (DistServe's design: the prefill instance returns the token its
prefill sampled) the first token is the prefill's: TTFT ends with the prefill, the decode pool generates the
other ``output_tokens - 1`` (the gap from the prefill's token to the decode pool's first one, which holds the
wait for room and the transfer, is an inter-token gap and part of TPOT), and a one-token answer finishes at its
prefill without moving its KV. Prefix caching works on the prefill side only (the workload's shared prefixes); the decode side
caches only the transferred blocks.

The prefill replica keeps the prompt's KV until its transfer lands (NIXL / Mooncake connectors free the
source blocks only after the read completes): from the end of its prefill, through any wait for decode room,
to the end of the transfer, those blocks are taken from the prefill replica's cache, so a full decode pool
throttles prefill (back-pressure reaches the prefill side). Held: the prompt's blocks outside its shared prefix
(the shared blocks stay in the prefix cache, where a later request may find them or evict them).

Simplifications (documented in docs/disaggregation.md): the receiving side's NICs are not a
second shared resource; a decode replica that evicts a transferred block before the request is admitted
recomputes that part (counted in ``decode_recomputed_tokens``).

Each pool can autoscale (``policy.disagg``): a replica turned on starts after ``startup_s`` and is billed from
then; one turned off stops taking work and is released when its last request leaves.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

import numpy as np

from infersim.engine.recorder import FINISHED, REASONS, REJECTED, Recorder
from infersim.engine.replica import Replica
from infersim.fleet.kv_link import SharedLink
from infersim.fleet.queue import TimedQueue
from infersim.policy.disagg import PoolView, blocks_for, least_loaded, pick_decode

OFF, STARTING, READY, DRAINING = 0, 1, 2, 3


class PrefillView:
    """The requests as the prefill pool sees them: the prompt and a single output token."""

    def __init__(self, reqs):
        self._r = reqs
        self.input_tokens = reqs.input_tokens
        self.output_tokens = np.ones(len(reqs), dtype=np.int64)
        self.block_tokens = reqs.block_tokens
        self.has_prefixes = reqs.has_prefixes
        self.block_offsets = reqs.block_offsets
        self.prefix_key = reqs.prefix_key
        self.prefix_tokens = reqs.prefix_tokens

    def __len__(self) -> int:
        return len(self._r)

    def prefix_ids(self, i: int) -> np.ndarray:
        return self._r.prefix_ids(i)

    def chain_ids(self, i: int, n_blocks: int) -> list[int]:
        return self._r.chain_ids(i, n_blocks)


class DecodeView:
    """The requests as the decode pool sees them: the whole prompt is a cached prefix (the transferred KV), a
    chain of its own per request (key = the request id; the decode replica's cache holds nothing else), so the
    engine computes only what the last partial block leaves. A chain is O(1) to insert and evicts from its tail."""

    def __init__(self, reqs, block_tokens: int, first_token_at_prefill: bool = False):
        self.prompt_tokens = reqs.input_tokens  # what the prefill computed and the transfer carries
        # the prefill's token already streamed: the decode pool generates the rest (a one-token answer never gets
        # here), and that token is the last of its input, whose KV its first step computes (DistServe's decode
        # instance takes the prompt's KV and the sampled token)
        self.input_tokens = reqs.input_tokens + 1 if first_token_at_prefill else reqs.input_tokens
        self.output_tokens = np.maximum(reqs.output_tokens - 1, 1) if first_token_at_prefill else reqs.output_tokens
        self.block_tokens = int(block_tokens)
        self.has_prefixes = True
        self.block_offsets = None  # no trace hash ids: chains only
        self.prefix_key = np.arange(len(reqs), dtype=np.int64)
        self.prefix_tokens = reqs.input_tokens // self.block_tokens * self.block_tokens

    def __len__(self) -> int:
        return len(self.input_tokens)

    def blocks(self, i: int) -> int:
        """Whole KV blocks of request ``i``'s prompt: what its transfer lands on the decode replica."""
        return int(self.prompt_tokens[i]) // self.block_tokens

    def chain_ids(self, i: int, n_blocks: int) -> list[int]:
        return []


class Pool:
    """Replicas of one pool (built up to the autoscaler's maximum, ``n_init`` on at t=0)."""

    def __init__(self, env, name: str, setup, view, rec, first_id: int, n_max: int, n_init: int, on_done,
                 chain_full, *, usd_per_replica_hour: float, gpus_per_replica: int, scaler=None, tick_s: float = 10.0,
                 window_s: float = 60.0, startup_s: float = 0.0, on_ready=None):
        self.env, self.name, self.setup = env, name, setup
        self.replicas = [Replica(env, setup, view, rec, first_id + i, on_done, chain_full) for i in range(n_max)]
        self.state = [READY if i < n_init else OFF for i in range(n_max)]
        self.on_since = [0.0 if i < n_init else math.nan for i in range(n_max)]
        self.replica_s = 0.0
        self.peak = n_init
        self.usd_per_replica_hour, self.gpus_per_replica = usd_per_replica_hour, gpus_per_replica
        self.scaler, self.tick_s, self.window_s, self.startup_s = scaler, tick_s, window_s, startup_s
        self.samples: deque[tuple[float, float]] = deque()  # (t, latency) of the pool's metric
        self.inflight: deque[tuple[float, int]] = deque()
        self.waiting = lambda: 0
        self.on_ready = on_ready
        self.timeline: list[tuple[float, int, int]] = []  # (t, active, ready)
        if scaler is not None:
            env.process(self._control())

    # -- state ------------------------------------------------------------------------------------
    def ready(self) -> list[int]:
        return [i for i, s in enumerate(self.state) if s == READY]

    def eligible(self) -> list[bool]:
        return [s == READY for s in self.state]

    def outstanding(self) -> int:
        return sum(r.outstanding for r in self.replicas)

    def note(self, latency_s: float) -> None:
        if self.scaler is not None and not math.isnan(latency_s):
            self.samples.append((self.env.now, latency_s))

    def left(self, i: int) -> None:
        """Replica ``i`` had a request leave: release it if it is draining and empty."""
        if self.state[i] == DRAINING and self.replicas[i].outstanding == 0:
            self._off(i)

    def _off(self, i: int) -> None:
        self.replica_s += self.env.now - self.on_since[i]
        self.on_since[i] = math.nan
        self.state[i] = OFF

    def _turn_on(self, i: int) -> None:
        if self.state[i] == DRAINING:
            self.state[i] = READY
            return
        self.state[i] = STARTING
        self.on_since[i] = self.env.now
        if self.startup_s > 0:
            self.env.timeout(self.startup_s).callbacks.append(lambda _e: self._started(i))
        else:
            self._started(i)

    def _started(self, i: int) -> None:
        if self.state[i] == STARTING:
            self.state[i] = READY
            if self.on_ready is not None:
                self.on_ready()

    def _control(self):
        env = self.env
        while True:
            yield env.timeout(self.tick_s)
            now = env.now
            lo = now - self.window_s
            while self.samples and self.samples[0][0] < lo:
                self.samples.popleft()
            self.inflight.append((now, self.outstanding()))
            while self.inflight and self.inflight[0][0] < lo:
                self.inflight.popleft()
            lat = float(np.quantile([v for _, v in self.samples], self.scaler.quantile)) if self.samples else math.nan
            active = sum(1 for s in self.state if s in (STARTING, READY))
            view = PoolView(active, lat, float(np.mean([n for _, n in self.inflight])), self.waiting())
            want = self.scaler.decide(view)
            self._apply(want, active)
            self.timeline.append((now, sum(1 for s in self.state if s != OFF), len(self.ready())))

    def _apply(self, want: int, active: int) -> None:
        while active < want:
            cand = [i for i, s in enumerate(self.state) if s == DRAINING] or \
                   [i for i, s in enumerate(self.state) if s == OFF]
            if not cand:
                break
            self._turn_on(cand[0])
            active += 1
        ready = self.ready()
        while active > want and len(ready) > 1:
            i = min(ready, key=lambda j: self.replicas[j].outstanding)
            ready.remove(i)
            self.state[i] = DRAINING
            active -= 1
            self.left(i)
        self.peak = max(self.peak, sum(1 for s in self.state if s != OFF))

    def close(self, end_s: float) -> None:
        for i, s in enumerate(self.state):
            if s != OFF:
                self.replica_s += end_s - self.on_since[i]
                self.on_since[i] = end_s

    @property
    def cost_usd(self) -> float:
        return self.replica_s / 3600.0 * self.usd_per_replica_hour

    @property
    def gpu_hours(self) -> float:
        return self.replica_s / 3600.0 * self.gpus_per_replica


class DisaggDeployment:
    """``submit(rid)`` starts a request; ``on_done(rid)`` is called when it leaves (finished or rejected)."""

    def __init__(self, env, reqs, rec: Recorder, prefill_setup, decode_setup, links, on_done, *,
                 kv_bytes_per_token: float, prefill_pool: dict, decode_pool: dict, decode_wait_s: float | None,
                 max_concurrent_transfers: int | None = None, first_token_at_prefill: bool = False):
        self.env, self.reqs, self.rec, self.on_done = env, reqs, rec, on_done
        self.first_at_prefill = bool(first_token_at_prefill)
        n = len(reqs)
        self.prec = Recorder(n)  # the prefill pool's own record (its 'finish' is the end of the prefill)
        self.bpt = float(kv_bytes_per_token)
        # the transferred blocks are the decode replica's cached prefix; the request reached the platform's API
        # server once, on the prefill side, so the decode engine adds no API / scheduling hop of its own
        d_knobs = replace(decode_setup.knobs, schedule_delay_s=0.0, schedule_delay_per_seq_s=0.0, api_serial_s=0.0)
        d_setup = replace(decode_setup, prefix_caching=True, knobs=d_knobs)
        self.dview = DecodeView(reqs, d_setup.block_size, self.first_at_prefill)
        self.d_bs = d_setup.block_size
        self.d_max_tokens = d_setup.kv_blocks * d_setup.block_size
        self.prefill = Pool(env, "prefill", prefill_setup, PrefillView(reqs), self.prec, 0, on_done=self._prefilled,
                            chain_full=reqs.chain_full, **prefill_pool)
        self.decode = Pool(env, "decode", d_setup, self.dview, rec, len(self.prefill.replicas), on_done=self._decoded,
                           chain_full=None, on_ready=self._drain, **decode_pool)
        self.links = [SharedLink(env, link, max_concurrent_transfers) for link in links]
        self.reserved = [0] * len(self.decode.replicas)
        self.wait = TimedQueue(env, decode_wait_s, self._expire)
        self.prefill.waiting = lambda: sum(len(r.waiting) for r in self.prefill.replicas)
        self.decode.waiting = lambda: len(self.wait)
        # per-request columns
        self.prefill_replica = np.full(n, -1, np.int32)
        self.decode_replica = np.full(n, -1, np.int32)
        self.prefill_end_s = np.full(n, np.nan)
        self.kv_transfer_start_s = np.full(n, np.nan)
        self.kv_transfer_end_s = np.full(n, np.nan)
        self.kv_bytes = np.zeros(n)
        self.kv_bytes_sent = 0.0
        self.kv_bytes_received = 0.0
        self.inserted_blocks = 0
        self.transfer_blocks = 0
        self.transferring: set[int] = set()
        self.arrival = np.full(n, np.nan)
        # prompt KV blocks each request holds on its prefill replica until its transfer lands
        self.p_bs = prefill_setup.block_size
        self.p_shared = prefill_setup.prefix_caching
        self.held = np.zeros(n, np.int64)
        self.hold_short = 0  # prefills whose KV could not be kept (no room left at that instant)

    # -- prefill ----------------------------------------------------------------------------------
    def submit(self, rid: int) -> None:
        self.arrival[rid] = self.env.now
        pool = self.prefill
        ready = pool.ready()
        i = ready[least_loaded([pool.replicas[j].outstanding for j in ready])] if len(ready) > 1 else ready[0]
        self.prefill_replica[rid] = i
        pool.replicas[i].submit(rid)

    def _prefilled(self, rid: int) -> None:
        now = self.env.now
        i = int(self.prefill_replica[rid])
        self.prefill.left(i)
        if self.prec.outcome[rid] != FINISHED:  # rejected on the prefill side: same reason for the user
            self.rec.reject(rid, REASONS[self.prec.reason[rid]] or "kv_capacity", now)
            self.on_done(rid)
            return
        self.prefill_end_s[rid] = now
        self.prefill.note(now - self.arrival[rid])
        if self.first_at_prefill:
            self.rec.first_token(rid, now)
            if self.reqs.output_tokens[rid] <= 1:  # the whole answer: nothing to decode, no KV to move
                self.rec.assign(rid, i)
                self.rec.finish(rid, now)
                self.on_done(rid)
                return
        need_total = int(self.reqs.input_tokens[rid] + self.reqs.output_tokens[rid])
        if need_total > self.d_max_tokens:
            self.rec.reject(rid, "kv_capacity", now)
            self.on_done(rid)
            return
        self._hold(rid, i)
        if self.wait or not self._try_place(rid):
            self.wait.push(rid)

    def _hold(self, rid: int, i: int) -> None:
        """Keep ``rid``'s prompt KV on prefill replica ``i`` (the engine freed it when the prefill ended)."""
        n = blocks_for(int(self.reqs.input_tokens[rid]), self.p_bs)
        if self.p_shared:
            n -= int(self.reqs.prefix_tokens[rid]) // self.p_bs
        if n > 0:
            if self.prefill.replicas[i].kv.allocate(n):
                self.held[rid] = n
            else:
                self.hold_short += 1

    def _unhold(self, rid: int) -> None:
        n = int(self.held[rid])
        if n:
            self.held[rid] = 0
            rep = self.prefill.replicas[int(self.prefill_replica[rid])]
            rep.kv.free(n)
            rep.kick(self.env.now)

    # -- placement and transfer -------------------------------------------------------------------
    def _need(self, rid: int) -> int:
        return blocks_for(int(self.reqs.input_tokens[rid]) + 1, self.d_bs)

    def _available(self) -> list[int]:
        return [r.kv.free_blocks + r.kv.evictable_blocks - self.reserved[j]
                for j, r in enumerate(self.decode.replicas)]

    def _try_place(self, rid: int) -> bool:
        need = self._need(rid)
        j = pick_decode(self._available(), need, self.decode.eligible())
        if j < 0:
            return False
        self.reserved[j] += need
        self.decode_replica[rid] = j
        nbytes = self.bpt * float(self.reqs.input_tokens[rid])
        self.kv_bytes[rid] = nbytes
        self.kv_bytes_sent += nbytes
        self.kv_transfer_start_s[rid] = self.env.now
        self.transferring.add(rid)
        link = self.links[int(self.prefill_replica[rid])]
        link.start(nbytes, lambda: self._landed(rid, j, need, nbytes))
        return True

    def _landed(self, rid: int, j: int, need: int, nbytes: float) -> None:
        self.transferring.discard(rid)
        self.reserved[j] -= need
        self.kv_transfer_end_s[rid] = self.env.now
        self.kv_bytes_received += nbytes
        self._unhold(rid)
        rep = self.decode.replicas[j]
        n_blocks = self.dview.blocks(rid)
        self.transfer_blocks += n_blocks
        kv = rep.kv
        short = n_blocks - kv.free_blocks
        if short > 0:  # placement counted cached blocks of finished requests as room: evict them (LRU) now
            take = kv.free_blocks + min(short, kv.evictable_blocks)
            if kv.allocate(take):
                kv.free(take)
        self.inserted_blocks += kv.chain_extend(rid, n_blocks)
        rep.submit(rid)

    def _drain(self) -> None:
        while self.wait:
            rid = self.wait.ids()[0]
            if not self._try_place(rid):
                return
            self.wait.pop()

    def _expire(self, rid: int) -> None:
        self._unhold(rid)
        self.rec.reject(rid, "decode_kv_full", self.env.now)
        self.on_done(rid)

    # -- decode -----------------------------------------------------------------------------------
    def _decoded(self, rid: int) -> None:
        j = int(self.decode_replica[rid])
        if self.rec.outcome[rid] == FINISHED:
            if self.first_at_prefill:  # the decode pool's first token was the answer's second
                t1 = float(self.prefill_end_s[rid])
                self.rec.itl_one(float(self.rec.first_token_s[rid]) - t1, 1)
                self.rec.first_token(rid, t1)
            out = int(self.reqs.output_tokens[rid])
            if out > 1:
                self.decode.note((self.rec.finish_s[rid] - self.rec.first_token_s[rid]) / (out - 1))
        self.decode.left(j)
        self.on_done(rid)
        self._drain()

    # -- end of run -------------------------------------------------------------------------------
    def in_flight(self) -> list[int]:
        out = [rid for r in self.prefill.replicas for rid in r.in_flight()]
        out += [rid for r in self.decode.replicas for rid in r.in_flight()]
        return out + self.wait.ids() + sorted(self.transferring)

    def finish(self, end_s: float) -> None:
        """Close the pools' billing and fold the prefill side's record into the request table."""
        self.prefill.close(end_s)
        self.decode.close(end_s)
        if self.first_at_prefill:  # every prefilled request still served has its first token (in flight ones too)
            done = ~np.isnan(self.prefill_end_s) & (self.rec.outcome != REJECTED)
            self.rec.first_token_s[done] = self.prefill_end_s[done]
        self.rec.cached_tokens[:] = self.prec.cached_tokens  # prefix-cache hits are the prefill side's
        self.rec.preemptions[:] = self.rec.preemptions + self.prec.preemptions
        rej = self.rec.outcome == REJECTED
        self.decode_replica[rej & np.isnan(self.kv_transfer_start_s)] = -1
