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
        self.rep_rows: dict[str, list] = {k: [] for k in REPLICA_ROWS}
        self.last_arrivals = {di: 0 for di, _ in self.deps}
        if self.deps:
            env.process(self._run())

    def _run(self):
        rows, rr, dt = self.rows, self.rep_rows, self.dt
        while True:
            yield self.env.timeout(dt)
            now = self.env.now
            for di, d in self.deps:
                n = [0] * 5
                busy, kv = [], []
                for s in d.live:
                    n[s.state] += 1
                    if s.state in (READY, DRAINING):
                        row = s.engine.sample(now, dt)  # busy share, KV usage, running, waiting
                        busy.append(row[0])
                        kv.append(row[1])
                        for k, v in zip(REPLICA_ROWS, (now, di, s.id, *row), strict=True):
                            rr[k].append(v)
                arr = d.stats["arrivals"]
                vals = (now, di, (arr - self.last_arrivals[di]) / dt, n[STARTING], n[1], n[READY], n[DRAINING],
                        d.queue_len, d.n_inflight, float(np.mean(busy)) if busy else math.nan,
                        float(np.mean(kv)) if kv else math.nan, len(d.bill.open), d.bill.gpu_hours(now),
                        d.bill.cost_usd(now))
                self.last_arrivals[di] = arr
                for k, v in zip(FLEET_COLUMNS, vals, strict=True):
                    rows[k].append(v)


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
