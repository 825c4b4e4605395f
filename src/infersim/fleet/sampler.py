"""Timeline samplers of a platform's run (SimPy processes): every autoscaled deployment's fleet state and its
replicas (``FleetSampler``), or every engine replica of fixed deployments (``replica_sampler``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from infersim.engine.replica import REPLICA_SAMPLE
from infersim.fleet.autoscaled import DRAINING, READY, STARTING, AutoscaledDeployment

FLEET_COLUMNS = ("t_s", "deployment", "arrivals_per_s", "starting", "loading", "ready", "draining", "queued",
                 "in_flight", "utilization", "kv_usage", "billed_replicas", "gpu_hours", "cost_usd")
REPLICA_ROWS = ("t_s", "deployment", "replica", *REPLICA_SAMPLE)


class FleetSampler:
    """Samples every autoscaled deployment of a platform every ``dt`` s (a SimPy process)."""

    def __init__(self, env, deps: list, dt: float):
        self.env, self.dt = env, dt
        self.deps = [(di, d) for di, d in enumerate(deps) if isinstance(d, AutoscaledDeployment)]
        self.rows: dict[str, list] = {k: [] for k in FLEET_COLUMNS}
        self._rep: list[tuple] = []  # (t_s, deployment, replica, Replica.sample row) per replica row
        self.last_arrivals = {di: 0 for di, _ in self.deps}
        if self.deps:
            env.process(self._run())

    @property
    def rep_rows(self) -> dict[str, list]:
        """The replica rows as columns (``REPLICA_ROWS``), built from the rows the sampler kept as tuples."""
        rows = [(t, di, sid, *row) for t, di, sid, row in self._rep]
        cols = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in REPLICA_ROWS]
        return dict(zip(REPLICA_ROWS, cols, strict=True))

    def _run(self):
        """Every ``dt``: one fleet row per deployment and one replica row per ready or draining replica
        (kept as a tuple with the replica's ``sample``: one append per replica, columns made at the end)."""
        rows, dt = self.rows, self.dt
        rep = self._rep
        fcols = [rows[k] for k in FLEET_COLUMNS]
        while True:
            yield self.env.timeout(dt)
            now = self.env.now
            for di, d in self.deps:
                n = [0] * 5
                busy, kv = [], []
                for s in d.live:
                    st = s.state
                    n[st] += 1
                    if st == READY or st == DRAINING:
                        row = s.engine.sample(now, dt)  # busy share, KV usage, running, waiting
                        busy.append(row[0])
                        kv.append(row[1])
                        rep.append((now, di, s.id, row))
                arr = d.n_arrivals
                bill = d.bill
                billed = bill.billed_s(now)  # once for both: gpu_hours and cost_usd are multiples of it
                vals = (now, di, (arr - self.last_arrivals[di]) / dt, n[STARTING], n[1], n[READY], n[DRAINING],
                        d.queue_len, d.n_inflight, _mean(busy) if busy else math.nan,
                        _mean(kv) if kv else math.nan, len(bill.open), billed * bill.gpus / 3600.0,
                        billed * bill.usd_per_s)
                self.last_arrivals[di] = arr
                for col, v in zip(fcols, vals, strict=True):
                    col.append(v)


def _mean(xs: list[float]) -> float:
    """``float(np.mean(xs))`` of a non-empty list of floats, to the last bit (NumPy's mean is its add.reduce,
    pairwise, divided by the count), without ``np.mean``'s Python layers (twice per deployment per sample)."""
    return float(_add_reduce(xs)) / len(xs)


_add_reduce = np.add.reduce


def replica_sampler(env, replicas: list, deployment_of: list[int], dt_s: float, rows: dict[str, list],
                    progress: Callable[[float], None] | None = None):
    """A SimPy process appending every ``dt_s`` one row per engine replica to ``rows`` (columns t_s,
    deployment, replica and the ``REPLICA_SAMPLE`` columns of ``Replica.sample``)."""
    for k in ("t_s", "deployment", "replica", *REPLICA_SAMPLE):
        rows.setdefault(k, [])
    cols = [rows[k] for k in REPLICA_SAMPLE]
    while True:
        yield env.timeout(dt_s)
        now = env.now
        for i, r in enumerate(replicas):
            rows["t_s"].append(now)
            rows["deployment"].append(deployment_of[i])
            rows["replica"].append(r.id)
            for col, v in zip(cols, r.sample(now, dt_s), strict=True):
                col.append(v)
        if progress:
            progress(now)
