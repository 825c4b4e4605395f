"""A deployment: replicas of one model behind a load balancer, with an optional FIFO queue (mechanism).

Without ``replica_concurrency`` every request goes straight to the replica the balancer picks (each replica
queues internally, as vLLM does). With it, a replica holds at most that many requests; the rest wait in the
deployment queue in arrival order and are dispatched as replicas free up. A request that waits longer than
``queue_timeout`` is rejected with reason ``queue_timeout``, never dropped silently.
"""

from __future__ import annotations

from infersim.engine.replica import Replica
from infersim.fleet.load_totals import LoadTotals
from infersim.fleet.queue import TimedQueue
from infersim.policy.balancers import LeastOutstanding, PrefixAffinity, make_balancer
from infersim.policy.load import LoadIndex, least_outstanding


class Deployment:
    def __init__(self, env, setup, spec, reqs, rec, first_id: int, on_done, *, seed: int, platform: str,
                 chain_full=None):
        self.env, self.setup, self.spec, self.rec = env, setup, spec, rec
        self.on_done_platform = on_done
        self.limit = spec.replica_concurrency
        self.timeout = spec.queue_timeout
        self.queue = TimedQueue(env, self.timeout, self._expire)
        cb = self._replica_done if self.limit is not None else on_done
        self.replicas = [Replica(env, setup, reqs, rec, first_id + i, cb, chain_full) for i in range(spec.replicas)]
        self.views = [r.load for r in self.replicas]  # what the balancer reads, in replica order
        self.lb = make_balancer(spec, reqs, seed=seed, platform=platform, deployment=setup.name)
        # least outstanding over the replicas below the limit is least outstanding over all of them when that
        # one is below the limit (the first of the fewest, either way): one look-up (``index``), no list per request
        self.least = type(self.lb) is LeastOutstanding
        # balancers that pick the least outstanding replica (always, or prefix affinity's fallback) find it in
        # O(log n) through an index over ``views`` the replicas keep up to date; the others never scan
        self.index = LoadIndex(self.views) if self.least or isinstance(self.lb, PrefixAffinity) else None
        self.totals: LoadTotals | None = None  # load counters, once something reads them (``track_load``)
        if isinstance(self.lb, PrefixAffinity):
            self.track_load()

    def track_load(self) -> LoadTotals:
        """Keep ``LoadTotals`` of the replicas from now on (``router_load`` and the balancer's mean load
        then cost O(1) per request instead of a sum over the replicas); returns them."""
        if self.totals is not None:
            return self.totals
        self.totals = t = LoadTotals()
        for r in self.replicas:
            t.attach(r)
            if self.limit is None:
                r.on_done = self._left
        return t

    def _left(self, rid: int) -> None:
        self.totals.outstanding -= 1
        self.on_done_platform(rid)

    def submit(self, rid: int) -> None:
        reps = self.replicas
        if self.limit is None:
            t = self.totals
            if t is None:
                reps[self.lb.choose(self.views, rid) if len(reps) > 1 else 0].submit(rid)
                return
            r = reps[self.lb.choose(self.views, rid, t.outstanding) if len(reps) > 1 else 0]
            t.outstanding += 1
            r.submit(rid)
            return
        if self.least:
            if not self.queue.live:  # the queue is empty (its len, without a call)
                r = reps[least_outstanding(self.views) if len(reps) > 1 else 0]
                if r.load.outstanding < self.limit:
                    if self.totals is not None:  # _to, inline (once per request)
                        self.totals.outstanding += 1
                    r.submit(rid)
                    return
            self.queue.push(rid)
            return
        free = [r for r in reps if r.outstanding < self.limit]
        if free and not self.queue:
            self._to(free[self.lb.choose([r.load for r in free], rid) if len(free) > 1 else 0], rid)
            return
        self.queue.push(rid)

    def _to(self, r, rid: int) -> None:
        if self.totals is not None:
            self.totals.outstanding += 1
        r.submit(rid)

    @property
    def queue_len(self) -> int:
        """Requests waiting in the deployment queue."""
        return len(self.queue)

    def _expire(self, rid: int) -> None:
        self.rec.reject(rid, "queue_timeout", self.env.now)
        self.on_done_platform(rid)

    def _replica_done(self, rid: int) -> None:
        if self.totals is not None:
            self.totals.outstanding -= 1
        if self.queue.live:  # nothing to drain from an empty queue
            self._drain()
        self.on_done_platform(rid)

    def _drain(self) -> None:
        if self.least:
            reps = self.replicas
            while self.queue.live:
                r = reps[least_outstanding(self.views) if len(reps) > 1 else 0]
                if r.load.outstanding >= self.limit:
                    return
                self._to(r, self.queue.pop())
            return
        while self.queue.live:
            free = [r for r in self.replicas if r.outstanding < self.limit]
            if not free:
                return
            rid = self.queue.pop()
            self._to(free[self.lb.choose([r.load for r in free], rid) if len(free) > 1 else 0], rid)

    def queued(self) -> list[int]:
        """Requests waiting in the deployment queue (for the end-of-run record)."""
        return self.queue.ids()

    def router_load(self) -> tuple[int, int, int]:
        """(waiting to start, in flight, ready replicas) as a load-aware router sees them (see
        ``platforms.dispatch``): the deployment queue plus the engines' scheduler queues are waiting."""
        t = self.totals or self.track_load()
        q = self.queue_len
        return q + t.waiting, q + t.outstanding, len(self.replicas)

    def router_waiting(self) -> int:
        """``router_load()[0]`` alone (what a spill bound reads per request): queue plus scheduler queues."""
        return len(self.queue.live) + (self.totals or self.track_load()).waiting  # the queue's len, without a call
