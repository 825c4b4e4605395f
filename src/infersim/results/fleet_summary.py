"""A platform's fleet summary from its fleet timeline and per-deployment statistics (reporting; no SimPy).

Columns: ``peak_replicas``/``mean_replicas`` (alive replicas of all deployments, any state but stopped;
fixed deployments count their replicas; the mean is over timeline samples), ``gpu_hours`` and ``cost_usd``
(billed, segments rounded up to the billing unit), ``idle_share`` (share of billed replica time not spent
running engine steps), ``cold_starts`` with ``cold_start_p50_s``/``cold_start_p99_s`` (ready - asked for,
capacity wait included), ``capacity_wait_s`` (total), ``requests_waited_cold_start`` (arrived when no
replica was ready), ``replica_failures``, ``requests_retried``, ``requests_failed``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

STATES = ["starting", "loading", "ready", "draining"]


def fleet_summary(fleet: pd.DataFrame, stats: list[dict]) -> dict[str, float]:
    if not stats:
        return {}
    fixed = sum(s["peak_replicas"] for s in stats if not s["autoscaled"])
    if len(fleet):
        alive = fleet.assign(n=fleet[STATES].sum(axis=1)).groupby("t_s")["n"].sum()
        peak = max(int(alive.max()), max((s["peak_replicas"] for s in stats if s["autoscaled"]), default=0))
        mean = float(alive.mean())
    else:
        peak = sum(s["peak_replicas"] for s in stats if s["autoscaled"])
        mean = float(peak)
    billed = sum(s["billed_replica_s"] for s in stats)
    busy = sum(s["busy_replica_s"] for s in stats)
    cold = np.array([c for s in stats for c in s["cold_start_s"]], float)
    out = {
        "peak_replicas": int(peak + fixed), "mean_replicas": mean + fixed,
        "gpu_hours": float(sum(s["gpu_hours"] for s in stats)),
        "cost_usd": float(sum(s["cost_usd"] for s in stats)),
        "idle_share": float(1.0 - min(busy / billed, 1.0)) if billed > 0 else math.nan,
        "cold_starts": int(cold.size),
        "cold_start_p50_s": float(np.quantile(cold, 0.5)) if cold.size else math.nan,
        "cold_start_p99_s": float(np.quantile(cold, 0.99)) if cold.size else math.nan,
        "capacity_wait_s": float(sum(s["capacity_wait_s"] for s in stats)),
    }
    for k in ("requests_waited_cold_start", "replica_failures", "requests_retried", "requests_failed"):
        out[k] = int(sum(s.get(k, 0) for s in stats))
    return out
