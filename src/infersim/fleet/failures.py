"""Replica failures of an autoscaled deployment (mechanism, on the SimPy clock): random failures at a mean
time between failures, failures at given times, and spot interruptions of replicas on spot pools (handled as
failures). A failed replica stops at once; each of its requests is retried through the deployment up to
``max_retries`` times, else rejected with ``replica_failed``; the autoscaler then replaces it."""

from __future__ import annotations

import numpy as np

from infersim.core.rng import rng
from infersim.fleet.replica_life import DRAINING, READY


def spot_pools(spec, interruptions: dict[str, float] | None) -> dict[str, float]:
    """The deployment's pools that are spot capacity: pool -> mean GPU-hours between interruptions."""
    return {p: m for p, m in (interruptions or {}).items() if p in (spec.pools or ())}


def with_failure_defaults(spec, spot: dict[str, float]):
    """``spec`` with a default ``failures`` block when it runs on spot pools without one (retries then apply to
    interrupted replicas' requests)."""
    if spot and spec.failures is None:
        from infersim.scenario.fleet import Failures

        return spec.model_copy(update={"failures": Failures()})
    return spec


class ReplicaFailures:
    """Fails the replicas of ``dep`` (an ``AutoscaledDeployment``): ``arm`` a replica that became ready, ``fail``
    one now. Random streams ``platform/<platform>/failures/<name>`` and ``.../spot/<name>``."""

    def __init__(self, dep, spot: dict[str, float], *, seed: int, platform: str, name: str):
        self.dep, self.spec, self.spot = dep, dep.spec.failures, spot
        self.rng = rng(seed, "platform", platform, "failures", name)
        self.spot_rng = rng(seed, "platform", platform, "spot", name) if spot else None
        self.retries: dict[int, int] = {}

    def start(self) -> None:
        """Start the failures at given times (``failures.at``), if any."""
        if self.spec is not None and self.spec.at:
            self.dep.env.process(self._scheduled(sorted(self.spec.at)))

    def arm(self, s) -> None:
        """A random failure of the ready replica ``s`` after an exponential time (mean MTBF / its GPUs)."""
        if self.spec is not None and self.spec.mtbf_gpu_hours:
            ttf = float(self.rng.exponential(self.spec.mtbf_gpu_hours * 3600.0 / self.dep.gpus))
            g = s.gen
            self.dep.env.timeout(ttf).callbacks.append(lambda _e: self.fail(s) if s.gen == g else None)

    def arm_spot(self, s) -> None:
        """A spot interruption of the ready replica ``s`` if its pool is spot capacity."""
        if s.pool in self.spot:
            ttf = float(self.spot_rng.exponential(self.spot[s.pool] * 3600.0 / self.dep.gpus))
            g = s.gen
            self.dep.env.timeout(ttf).callbacks.append(lambda _e: self._interrupt(s) if s.gen == g else None)

    def _interrupt(self, s) -> None:
        """A spot interruption: counted, then handled as a replica failure."""
        if s.state in (READY, DRAINING):
            self.dep._stats["spot_interruptions"] += 1
        self.fail(s)

    def _scheduled(self, times):
        dep, now = self.dep, 0.0
        for t in times:
            if t > now:
                yield dep.env.timeout(t - now)
                now = t
            victims = dep.ready or [s for s in dep.live if s.state == DRAINING]
            if victims:
                self.fail(victims[0])

    def fail(self, s) -> None:
        """The replica ``s`` fails now: it stops (billing stops) and its requests are retried or rejected."""
        dep = self.dep
        if s.state not in (READY, DRAINING):
            return
        s.engine.fail(dep.env.now)  # requests still in its scheduling delay are handled below
        rids = sorted(s.assigned)
        s.assigned = set()
        dep._stop(s, "failed")
        stats = dep._stats
        stats["replica_failures"] += 1
        rec, now = dep.rec, dep.env.now
        for rid in rids:
            n = self.retries.get(rid, 0) + 1
            self.retries[rid] = n
            if n > self.spec.max_retries:
                stats["requests_failed"] += 1
                dep._inflight(-1)
                rec.reject(rid, "replica_failed", now, s.id)
                dep.on_done_platform(rid)
            else:
                stats["requests_retried"] += 1
                rec.first_token_s[rid] = np.nan
                rec.cached_tokens[rid] = 0
                rec.replica[rid] = -1
                dep._place(rid)
        dep._evaluate()
