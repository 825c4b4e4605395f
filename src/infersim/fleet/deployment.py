"""A deployment: replicas of one model behind a load balancer, with an optional FIFO queue (mechanism).

Without ``replica_concurrency`` every request goes straight to the replica the balancer picks (each replica
queues internally, as vLLM does). With it, a replica holds at most that many requests; the rest wait in the
deployment queue in arrival order and are dispatched as replicas free up. A request that waits longer than
``queue_timeout`` is rejected with reason ``queue_timeout``, never dropped silently.
"""

from __future__ import annotations

from infersim.engine.replica import Replica
from infersim.fleet.queue import TimedQueue
from infersim.policy.balancers import make_balancer


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
        self.lb = make_balancer(spec, reqs, seed=seed, platform=platform, deployment=setup.name)

    def submit(self, rid: int) -> None:
        reps = self.replicas
        if self.limit is None:
            reps[self.lb.choose(reps, rid) if len(reps) > 1 else 0].submit(rid)
            return
        free = [r for r in reps if r.outstanding < self.limit]
        if free and not self.queue:
            free[self.lb.choose(free, rid) if len(free) > 1 else 0].submit(rid)
            return
        self.queue.push(rid)

    @property
    def queue_len(self) -> int:
        """Requests waiting in the deployment queue."""
        return len(self.queue)

    def _expire(self, rid: int) -> None:
        self.rec.reject(rid, "queue_timeout", self.env.now)
        self.on_done_platform(rid)

    def _replica_done(self, rid: int) -> None:
        self._drain()
        self.on_done_platform(rid)

    def _drain(self) -> None:
        while self.queue:
            free = [r for r in self.replicas if r.outstanding < self.limit]
            if not free:
                return
            rid = self.queue.pop()
            free[self.lb.choose(free, rid) if len(free) > 1 else 0].submit(rid)

    def queued(self) -> list[int]:
        return self.queue.ids()
