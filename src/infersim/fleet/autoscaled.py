"""An autoscaled deployment: replicas that start cold, serve, drain and stop (mechanism, on the SimPy clock).

Replica states: ``starting`` (waiting for pool capacity, then node provisioning), ``loading`` (image pull,
weight load, engine warm-up), ``ready`` (takes requests), ``draining`` (takes no new requests, finishes its
own), ``stopped``. Only ready replicas receive requests; while none is ready (scale from zero), requests wait
in the deployment queue, which also serves ``replica_concurrency`` as in ``Deployment``; a request waiting
longer than ``queue_timeout`` is rejected (``queue_timeout``).

The policy (``infersim.policy.autoscale``) runs every ``tick`` s and at once when a request finds no replica
at all. More replicas wanted: flags are cancelled, draining replicas return to ready, then new replicas start
(never more than ``max_replicas`` alive, draining ones included). Fewer: replicas still waiting for capacity
are withdrawn, then replicas are flagged (not-ready ones first, then the least loaded ready ones); a flagged
replica keeps serving and is removed ``scale_down_delay`` s later unless traffic returns first.

A failed replica (``failures``) stops at once; each of its requests is retried through the deployment up to
``max_retries`` times, else rejected with ``replica_failed``. The autoscaler replaces it by a cold start.
"""

from __future__ import annotations

from collections import deque
from functools import partial

from infersim.economics import deployment_usd_per_gpu_hour
from infersim.engine.replica import Replica
from infersim.fleet.billing import BillingClock
from infersim.fleet.failures import ReplicaFailures, spot_pools, with_failure_defaults
from infersim.fleet.load_totals import LoadTotals
from infersim.fleet.queue import TimedQueue
from infersim.fleet.replica_life import CHAIN, DRAINING, LOADING, READY, STARTING, STOPPED, ReplicaLife
from infersim.policy.autoscale import ScaleView, make_policy
from infersim.policy.balancers import LeastOutstanding, PrefixAffinity, make_balancer
from infersim.policy.load import LoadIndex, LoadView


class AutoscaledDeployment:
    """Same entry points as ``Deployment`` (``submit``, ``queued``); ``replicas`` is empty because the
    replicas come and go (see ``live``/``dead``)."""

    def __init__(self, env, setup, spec, reqs, rec, ids, on_done, *, seed: int, platform: str, pools=None,
                 chain_full=None, interruptions: dict[str, float] | None = None):
        # ``interruptions``: pool name -> mean GPU-hours between interruptions (spot capacity). A replica on such
        # a pool is interrupted after an exponential time (mean x 3600 / GPUs per replica), handled as a
        # replica failure: requests retried up to ``failures.max_retries`` (default 1), replica replaced.
        spot = spot_pools(spec, interruptions)
        spec = with_failure_defaults(spec, spot)
        self.env, self.setup, self.spec, self.reqs, self.rec = env, setup, spec, reqs, rec
        self.ids, self.on_done_platform, self.chain_full = ids, on_done, chain_full
        self.auto = spec.autoscaling
        self.policy = make_policy(self.auto)
        self.cs = spec.cold_start
        self.gpus = setup.config.gpus
        self.price_gpu_h = deployment_usd_per_gpu_hour(spec, setup.hardware)
        self.bill = BillingClock(spec.billing.unit, spec.billing.stages, self.price_gpu_h * self.gpus, self.gpus)
        self.weights_gb = self.cs.weights_gb or setup.model.weight_bytes(spec.precision) / 1e9
        self.cached = False  # weights are in the cache tier once a load finished
        self.pools, self.prefs = pools, tuple(spec.pools or ())
        self.limit, self.timeout = spec.replica_concurrency, spec.queue_timeout
        self.replicas: list = []
        self.live: list[ReplicaLife] = []
        self.dead: list[ReplicaLife] = []
        self.ready: list[ReplicaLife] = []
        self.ready_engines: list[Replica] = []
        self.ready_views: list[LoadView] = []  # what the balancer reads, in the order of ``ready``
        self.queue = TimedQueue(env, self.timeout, self._expire)
        self.lb = make_balancer(spec, reqs, seed=seed, platform=platform, deployment=setup.name)
        # least outstanding over the ready replicas in O(log n) (see ``Deployment``), rebuilt as they change
        self.index = (LoadIndex(self.ready_views) if isinstance(self.lb, (LeastOutstanding, PrefixAffinity))
                      else None)
        self.totals: LoadTotals | None = None  # load counters of the ready replicas (``track_load``)
        if isinstance(self.lb, PrefixAffinity):
            self.track_load()
        # windowed averages for the policy: integral of in-flight requests; KV usage sampled at ticks
        self.n_inflight, self.area, self.t_last = 0, 0.0, 0.0
        self.hist: deque[tuple[float, float]] = deque([(0.0, 0.0)])
        self.kv_hist: deque[tuple[float, float]] = deque()
        self.failures = ReplicaFailures(self, spot, seed=seed, platform=platform, name=setup.name)
        self.n_arrivals = 0  # requests submitted (``stats["arrivals"]``; an attribute: counted once per request)
        self._stats = {"requests_waited_cold_start": 0, "requests_retried": 0,
                       "requests_failed": 0, "replica_failures": 0, "spot_interruptions": 0}
        for _ in range(spec.initial_replicas):
            self._launch(warm=True)
        env.process(self._ticker())
        self.failures.start()

    @property
    def stats(self) -> dict[str, int]:
        """The deployment's counters: arrivals, requests that waited for a cold start, retried and failed requests,
        replica failures and spot interruptions."""
        return {"arrivals": self.n_arrivals, **self._stats}

    # -- requests ------------------------------------------------------------------------------------
    def submit(self, rid: int) -> None:
        self.n_arrivals += 1
        now = self.env.now  # _inflight(+1), inline (once per request)
        self.area += self.n_inflight * (now - self.t_last)
        self.t_last = now
        self.n_inflight += 1
        ready = self.ready
        if ready and self.limit is None:  # _place's common case, with _to_replica inline
            views, t = self.ready_views, self.totals
            if len(views) == 1:
                s = ready[0]
            elif t is None:
                s = ready[self.lb.choose(views, rid)]
            else:
                s = ready[self.lb.choose(views, rid, t.outstanding)]
            if t is not None:
                t.outstanding += 1
            s.assigned.add(rid)
            s.engine.submit(rid)
            return
        self._place(rid, first=True)

    def _place(self, rid: int, first: bool = False) -> None:
        if self.ready:
            if self.limit is None:
                self._to_replica(rid, self.ready, self.ready_views)
                return
            if not self.queue:
                free = [s for s in self.ready if s.engine.outstanding < self.limit]
                if free:
                    self._to_replica(rid, free, [s.engine.load for s in free])
                    return
        elif first:
            self._stats["requests_waited_cold_start"] += 1
        self.queue.push(rid)
        if not self.ready and not any(s.state != DRAINING for s in self.live):
            self._evaluate()  # scale from zero: don't wait for the next tick

    def _to_replica(self, rid: int, slots: list[ReplicaLife], views: list[LoadView]) -> None:
        t = self.totals
        if t is None:
            s = slots[self.lb.choose(views, rid) if len(views) > 1 else 0]
        else:  # slots are ready replicas; the ready ones' total is known when slots are all of them
            s = slots[self.lb.choose(views, rid, t.outstanding if slots is self.ready else -1) if len(views) > 1 else 0]
            t.outstanding += 1
        s.assigned.add(rid)
        s.engine.submit(rid)

    def track_load(self) -> LoadTotals:
        """Keep ``LoadTotals`` of the ready replicas from now on (``router_load`` and the balancer's mean
        load then cost O(1) per request instead of a sum over the ready replicas); returns them."""
        if self.totals is None:
            self.totals = LoadTotals()
            for e in self.ready_engines:
                self.totals.attach(e)
        return self.totals

    @property
    def queue_len(self) -> int:
        """Requests waiting in the deployment queue."""
        return len(self.queue)

    def _expire(self, rid: int) -> None:
        self._inflight(-1)
        self.rec.reject(rid, "queue_timeout", self.env.now)
        self.on_done_platform(rid)

    def _flush(self) -> None:
        while self.queue and self.ready:
            if self.limit is None:
                slots, views = self.ready, self.ready_views
            else:
                slots = [s for s in self.ready if s.engine.outstanding < self.limit]
                if not slots:
                    return
                views = [s.engine.load for s in slots]
            rid = self.queue.pop()
            self._to_replica(rid, slots, views)

    def _done(self, s: ReplicaLife, rid: int) -> None:
        s.assigned.discard(rid)
        if self.totals is not None and s.state == READY:
            self.totals.outstanding -= 1
        now = self.env.now  # _inflight(-1), inline (once per request)
        self.area += self.n_inflight * (now - self.t_last)
        self.t_last = now
        self.n_inflight -= 1
        if s.state == DRAINING and not s.assigned:
            self._stop(s, "scaled_down")
        if self.limit is not None:
            self._flush()
        self.on_done_platform(rid)

    def _inflight(self, delta: int) -> None:
        now = self.env.now
        self.area += self.n_inflight * (now - self.t_last)
        self.t_last = now
        self.n_inflight += delta

    def queued(self) -> list[int]:
        """Requests still in the deployment: queued or on a live replica (for the end-of-run record)."""
        return self.queue.ids() + [r for s in self.live for r in sorted(s.assigned)]

    def router_load(self) -> tuple[int, int, int]:
        """(waiting to start, in flight, ready replicas) as a load-aware router sees them (see
        ``platforms.dispatch``): the deployment queue plus the ready engines' scheduler queues are waiting."""
        t = self.totals or self.track_load()
        return self.queue_len + t.waiting, self.n_inflight, len(self.ready_engines)

    def router_waiting(self) -> int:
        """``router_load()[0]`` alone (what a spill bound reads per request): queue plus scheduler queues."""
        return len(self.queue.live) + (self.totals or self.track_load()).waiting  # the queue's len, without a call

    # -- autoscaler ----------------------------------------------------------------------------------
    def _ticker(self):
        while True:
            yield self.env.timeout(self.auto.tick)
            self._evaluate(tick=True)

    def view(self, tick: bool = False) -> ScaleView:
        now, w = self.env.now, self.auto.autoscaling_window
        self._inflight(0)
        h = self.hist
        h.append((now, self.area))
        while len(h) > 1 and h[1][0] <= now - w:
            h.popleft()
        t0, a0 = h[0]
        avg = (self.area - a0) / (now - t0) if now > t0 else float(self.n_inflight)
        if tick:
            eng = self.ready_engines
            self.kv_hist.append((now, sum(e.kv_usage for e in eng) / len(eng) if eng else 0.0))
            while self.kv_hist[0][0] <= now - w:
                self.kv_hist.popleft()
        kv = sum(k for _, k in self.kv_hist) / len(self.kv_hist) if self.kv_hist else 0.0
        n = [0] * 5
        for s in self.live:
            n[s.state] += 1
        return ScaleView(now, avg, kv, n[STARTING], n[LOADING], n[READY], n[DRAINING], self.queue_len)

    def _evaluate(self, tick: bool = False) -> None:
        target = self.policy.decide(self.view(tick)).replicas
        active = [s for s in self.live if s.state != DRAINING]
        if target >= len(active):
            for s in active:
                s.flag_t = None
            need = target - len(active)
            for s in [s for s in reversed(self.live) if s.state == DRAINING][:need]:
                self._undrain(s)
                need -= 1
            for _ in range(min(need, self.auto.max_replicas - len(self.live))):
                self._launch()
            return
        excess = len(active) - target
        for s in [s for s in reversed(active) if s.stage == "capacity_wait"][:excess]:
            self._stop(s, "cancelled")
            excess -= 1
        active = [s for s in self.live if s.state != DRAINING]
        flagged = sorted((s for s in active if s.flag_t is not None), key=lambda s: (-s.flag_t, -s.id))
        for s in flagged[:max(len(flagged) - excess, 0)]:
            s.flag_t = None
        if len(flagged) < excess:
            cands = sorted((s for s in active if s.flag_t is None),
                           key=lambda s: (s.state == READY, s.engine.outstanding if s.engine else 0, -s.id))
            for s in cands[:excess - len(flagged)]:
                self._flag(s)

    def _flag(self, s: ReplicaLife) -> None:
        s.flag_t = self.env.now
        s.flag_tok += 1
        tok = s.flag_tok
        if self.auto.scale_down_delay <= 0:
            self._flag_expired(s, tok)
        else:
            self.env.timeout(self.auto.scale_down_delay).callbacks.append(lambda _e: self._flag_expired(s, tok))

    def _flag_expired(self, s: ReplicaLife, tok: int) -> None:
        if s.flag_tok != tok or s.flag_t is None or s.state == STOPPED:
            return
        s.flag_t = None
        if s.state == READY:
            self._drain(s)
        else:
            self._stop(s, "scaled_down")

    # -- replica life --------------------------------------------------------------------------------
    def _launch(self, warm: bool = False) -> None:
        s = ReplicaLife(self.ids(), self.env.now)
        self.live.append(s)
        if self.pools is None or not self.prefs:
            self._granted(s, None, warm)
            return
        pool, ticket = self.pools.acquire(self.gpus, self.prefs, lambda p, s=s: self._granted(s, p, False))
        if pool is not None:
            self._granted(s, pool, warm)
        else:
            s.ticket = ticket
            self.bill.enter(s.id, "capacity_wait", self.env.now)

    def _granted(self, s: ReplicaLife, pool: str | None, warm: bool) -> None:
        s.pool, s.ticket, s.t_capacity = pool, 0, self.env.now
        if warm:
            self._ready(s, warm=True)
        else:
            self._stage(s, 0)

    def _stage(self, s: ReplicaLife, i: int) -> None:
        if i == len(CHAIN):
            self._ready(s)
            return
        name = CHAIN[i]
        s.stage, s.state = name, STARTING if i == 0 else LOADING
        self.bill.enter(s.id, name, self.env.now)
        cs = self.cs
        if name == "weight_load":
            s.cached = self.cached and cs.cache_gbps is not None
            d = self.weights_gb / (cs.cache_gbps if s.cached else cs.weights_gbps)
        else:
            d = {"provisioning": cs.provision, "image_pull": cs.image_pull, "warmup": cs.warmup}[name]
        g = s.gen
        self.env.timeout(d).callbacks.append(lambda _e: self._next(s, g, i))

    def _next(self, s: ReplicaLife, g: int, i: int) -> None:
        if s.gen != g:
            return
        if CHAIN[i] == "weight_load":
            self.cached = True
        self._stage(s, i + 1)

    def _ready(self, s: ReplicaLife, warm: bool = False) -> None:
        now = self.env.now
        s.state, s.stage, s.t_ready, s.warm = READY, "ready", now, warm
        self.bill.enter(s.id, "ready", now)
        s.engine = Replica(self.env, self.setup, self.reqs, self.rec, s.id, partial(self._done, s), self.chain_full)
        self._add_ready(s)
        self.failures.arm(s)
        self._flush()
        self.failures.arm_spot(s)

    def _add_ready(self, s: ReplicaLife) -> None:
        self.ready.append(s)
        self.ready_engines.append(s.engine)
        self.ready_views.append(s.engine.load)
        if self.index is not None:
            self.index.rebuild()
        if self.totals is not None:
            self.totals.attach(s.engine)

    def _unready(self, s: ReplicaLife) -> None:
        i = self.ready.index(s)
        del self.ready[i]
        del self.ready_engines[i]
        del self.ready_views[i]
        if self.index is not None:
            self.index.rebuild()
        if self.totals is not None:
            self.totals.detach(s.engine)

    def _drain(self, s: ReplicaLife) -> None:
        self._unready(s)
        s.state, s.stage = DRAINING, "draining"
        self.bill.enter(s.id, "draining", self.env.now)
        if not s.assigned:
            self._stop(s, "scaled_down")

    def _undrain(self, s: ReplicaLife) -> None:
        s.state, s.stage = READY, "ready"
        self.bill.enter(s.id, "ready", self.env.now)
        self._add_ready(s)
        self._flush()

    def _stop(self, s: ReplicaLife, reason: str) -> None:
        if s.state == STOPPED:
            return
        now = self.env.now
        if s.ticket:
            self.pools.cancel(s.ticket)
            s.ticket = 0
        if s.state == READY:
            self._unready(s)
        s.gen += 1
        s.flag_tok += 1
        s.state, s.stage, s.t_stop, s.reason = STOPPED, "stopped", now, reason
        self.bill.stop(s.id, now)
        if s.engine is not None:
            e = s.engine
            s.busy_s = e.busy_until(now)
        self.live.remove(s)
        self.dead.append(s)
        if s.pool is not None:
            self.pools.release(s.pool, self.gpus)

    def fail_replica(self, s: ReplicaLife) -> None:
        """The replica ``s`` fails now (``fleet.failures.ReplicaFailures.fail``)."""
        self.failures.fail(s)
