"""Fleet records of a platform's run: the fleet timeline and replica log (sampled by ``fleet.sampler``) and
per-deployment statistics (cost, GPU-hours, cold starts). Glue between the simulation loop and ``Results``.

Tables (one row each):
- fleet timeline, per deployment x sample: ``arrivals_per_s`` (arrivals in the sample interval / its length),
  replicas by state (``starting`` = waiting for capacity or provisioning, ``loading``, ``ready``, ``draining``),
  ``queued`` (deployment queue), ``in_flight``, ``utilization`` (busy share of ready and draining replicas in
  the interval), ``kv_usage`` (their mean), ``billed_replicas``, ``gpu_hours`` and ``cost_usd`` accrued so far
  (open segments as elapsed, closed ones rounded up to the billing unit);
- replica log, per replica of an autoscaled deployment: when it was asked for, got capacity, became ready and
  stopped (and why: ``scaled_down``, ``failed``, ``cancelled``, ``end`` of the run), its cold start
  (ready - asked, capacity wait included; nan for replicas warm at t=0), billed and busy seconds, cost.

Fixed deployments (no ``autoscaling``) have no fleet rows; they are billed as ready from 0 to the end of the
run, each replica as one segment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from infersim.economics import billed_seconds, deployment_usd_per_gpu_hour
from infersim.fleet.autoscaled import AutoscaledDeployment
from infersim.fleet.sampler import FleetSampler


def finish(plat, deps: list, sampler: FleetSampler, end_s: float) -> dict:
    """Close every billing clock at ``end_s``; return the fleet tables and per-deployment statistics."""
    names = [d.name or d.model for d in plat.deployments]
    fleet = pd.DataFrame(sampler.rows)
    fleet["deployment"] = [names[i] for i in fleet["deployment"]]
    rep_tl = pd.DataFrame(sampler.rep_rows)
    logs, stats = [], []
    for di, d in enumerate(deps):
        spec = plat.deployments[di]
        if not isinstance(d, AutoscaledDeployment):
            stats.append(_fixed_stats(names[di], spec, d, end_s))
            continue
        for s in list(d.live):
            d._stop(s, "end")
        log = _replica_log(names[di], d)
        logs.append(log)
        st = {"deployment": names[di], "autoscaled": True,
              "peak_replicas": int(fleet.loc[fleet["deployment"] == names[di], ["starting", "loading", "ready",
                                                                                 "draining"]].sum(axis=1).max())
              if len(fleet) else len(d.dead),
              "gpu_hours": float(log["billed_s"].sum() * d.gpus / 3600.0),
              "cost_usd": float(log["cost_usd"].sum()), "billed_replica_s": float(log["billed_s"].sum()),
              "busy_replica_s": float(log["busy_s"].sum()), "cold_start_s": log["cold_start_s"].dropna().tolist(),
              "capacity_wait_s": float(log["capacity_wait_s"].sum())}
        st.update(d.stats)
        stats.append(st)
    replicas = pd.concat(logs, ignore_index=True) if logs else pd.DataFrame()
    return {"fleet": fleet, "replica_log": replicas, "replica_timeline": rep_tl, "fleet_stats": stats}


def _replica_log(name: str, d: AutoscaledDeployment) -> pd.DataFrame:
    ss = sorted(d.dead, key=lambda s: s.id)
    bill = d.bill
    billed = np.array([bill.rounded_s.get(s.id, 0.0) for s in ss])
    t_req = np.array([s.t_request for s in ss])
    t_ready = np.array([s.t_ready for s in ss])
    warm = np.array([s.warm for s in ss], bool)
    return pd.DataFrame({
        "deployment": name, "replica": [s.id for s in ss], "warm_start": warm, "pool": [s.pool or "" for s in ss],
        "requested_s": t_req, "capacity_s": [s.t_capacity for s in ss], "ready_s": t_ready,
        "stopped_s": [s.t_stop for s in ss], "stop_reason": [s.reason for s in ss],
        "capacity_wait_s": np.array([s.t_capacity for s in ss]) - t_req,
        "cold_start_s": np.where(warm, np.nan, t_ready - t_req),
        "weights_from_cache": [s.cached for s in ss],
        "ready_time_s": np.nan_to_num(np.array([s.t_stop for s in ss]) - t_ready, nan=0.0),
        "billed_s": billed, "billed_raw_s": [bill.raw_s.get(s.id, 0.0) for s in ss],
        "busy_s": [s.busy_s for s in ss], "cost_usd": billed * bill.usd_per_s,
    })


def _fixed_stats(name: str, spec, d, end_s: float) -> dict:
    setup = d.setup
    gpus = setup.config.gpus
    price = deployment_usd_per_gpu_hour(spec, setup.hardware)
    billed = len(d.replicas) * billed_seconds(end_s, spec.billing.unit)
    busy = sum(r.busy_until(end_s) for r in d.replicas)
    return {"deployment": name, "autoscaled": False, "peak_replicas": len(d.replicas),
            "gpu_hours": billed * gpus / 3600.0, "cost_usd": billed * gpus * price / 3600.0,
            "billed_replica_s": billed, "busy_replica_s": busy, "cold_start_s": [], "capacity_wait_s": 0.0}
