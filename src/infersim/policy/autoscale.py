"""Autoscaling policies: how many replicas a deployment wants (policy; no SimPy, no I/O).

A policy is an object built from its scenario spec with ``decide(view: ScaleView) -> ScaleTarget``. The
mechanism (``infersim.fleet.autoscaled``) calls it every ``tick`` seconds and whenever a request arrives at a
deployment with no replica; it owns the replicas, the scale-down delay and the cold starts. ``ScaleTarget``
is the number of *active* replicas wanted (starting, loading or ready — not draining), within
``[min_replicas, max_replicas]``.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ScaleView:
    """Read-only view of a deployment for a policy.

    ``inflight_avg``: time-average over the last ``autoscaling_window`` seconds of the requests in the
    deployment (queued + on replicas); ``kv_usage_avg``: time-average of the mean KV-cache usage (0-1) of
    the ready replicas over the same window; replica counts by state; ``queued``: requests waiting now in
    the deployment queue.
    """

    t_s: float
    inflight_avg: float
    kv_usage_avg: float
    starting: int  # waiting for capacity or provisioning
    loading: int
    ready: int
    draining: int
    queued: int

    @property
    def active(self) -> int:
        return self.starting + self.loading + self.ready


@dataclass(frozen=True)
class ScaleTarget:
    replicas: int


def _clip(n: int, spec) -> ScaleTarget:
    return ScaleTarget(min(max(n, spec.min_replicas), spec.max_replicas))


def _wake(view: ScaleView) -> int:
    """Scale from zero: while requests wait in the deployment queue, keep at least one replica (a windowed
    average still near zero must not cancel the cold start they are waiting for)."""
    return 1 if view.queued else 0


class Baseten:
    """Baseten's rule (docs.baseten.co/deploy/autoscaling): replicas needed so that the windowed average of
    in-flight requests per replica is at most ``concurrency_target`` x ``target_utilization``."""

    def __init__(self, spec):
        self.spec = spec
        self.per_replica = spec.concurrency_target * spec.target_utilization

    def decide(self, view: ScaleView) -> ScaleTarget:
        want = math.ceil(view.inflight_avg / self.per_replica - 1e-9)
        return _clip(max(want, _wake(view)), self.spec)


class KvLoad:
    """Keep the windowed mean KV usage of ready replicas at ``target_kv_usage``; any traffic keeps at least
    one replica."""

    def __init__(self, spec):
        self.spec = spec

    def decide(self, view: ScaleView) -> ScaleTarget:
        want = math.ceil(view.ready * view.kv_usage_avg / self.spec.target_kv_usage - 1e-9)
        if view.inflight_avg > 0 or view.queued:
            want = max(want, 1)
        return _clip(max(want, _wake(view)), self.spec)


class Scheduled:
    """Replicas by time of day (``t_s`` modulo ``period``), from the spec's ``schedule``."""

    def __init__(self, spec):
        self.spec = spec
        self.at = [e.at for e in spec.schedule]
        self.n = [e.replicas for e in spec.schedule]

    def decide(self, view: ScaleView) -> ScaleTarget:
        i = bisect.bisect_right(self.at, view.t_s % self.spec.period) - 1
        return _clip(max(self.n[i], _wake(view)), self.spec)  # i = -1 wraps to the last entry


POLICIES = {"baseten": Baseten, "kv_load": KvLoad, "scheduled": Scheduled}


def make_policy(spec):
    return POLICIES[spec.kind](spec)
