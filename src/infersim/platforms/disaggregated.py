"""Simulate a ``disaggregated`` platform: a prefill pool and a decode pool of one model on one SimPy clock,
the KV cache moving between them (``fleet.disaggregated``).

Outputs besides the common request columns: per request ``prefill_replica``, ``decode_replica``,
``prefill_end_s``, ``kv_transfer_start_s``, ``kv_transfer_end_s`` and ``kv_bytes``; in the summary the KV
transfer's share of TTFT (``kv_transfer_share_of_ttft``: mean transfer seconds over mean TTFT of finished
requests), the bytes sent and received (equal: conservation), the decode wait, both pools' GPUs (chips), their
cost (``provider_cost_usd`` = prefill + decode) and per-pool figures in the deployment rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from infersim.build.disagg import disagg_build
from infersim.economics import customer_parts, economics_fields, footprint, token_charge_usd
from infersim.engine.recorder import FINISHED, Recorder
from infersim.fleet.disaggregated import DisaggDeployment
from infersim.fleet.sampler import replica_sampler
from infersim.platforms.arrivals import Arrivals, new_clock, served_dispatch, served_streams
from infersim.platforms.platform_run import PlatformRun
from infersim.scenario.schema import Scenario
from infersim.workload.generate import Requests


def simulate_disaggregated(sc: Scenario, plat, reqs: Requests, catalog, *, seed: int, horizon_s: float,
                           timeline_dt: float, progress: Callable[[float], None] | None) -> PlatformRun:
    path = f"platforms.{plat.name}"
    b = disagg_build(plat, catalog, path, base_dir=sc.base_dir)
    env = new_clock()
    rec = Recorder(len(reqs))
    serves = served_streams(reqs.stream_names, plat.streams)

    dispatch = served_dispatch(env, reqs, rec, serves, lambda rid: dep.submit(rid), lambda rid: arrivals.done(rid))
    arrivals = Arrivals(env, reqs, sc.duration, dispatch)
    n_pre = b.prefill.n_max
    dep = DisaggDeployment(env, reqs, rec, b.prefill.setup, b.decode.setup, [b.link] * n_pre, arrivals.done,
                           kv_bytes_per_token=b.kv_bytes_per_token, prefill_pool=b.prefill.pool_kwargs(),
                           decode_pool=b.decode.pool_kwargs(), decode_wait_s=plat.decode_wait_timeout,
                           max_concurrent_transfers=b.max_concurrent_transfers,
                           first_token_at_prefill=b.first_token_at_prefill)
    arrivals.start()
    rows: dict[str, list] = {}
    reps = dep.prefill.replicas + dep.decode.replicas
    env.process(replica_sampler(env, reps, [0] * len(dep.prefill.replicas) + [1] * len(dep.decode.replicas),
                                timeline_dt, rows, progress))
    end_s = arrivals.run(horizon_s)
    arrivals.finish(rec, dep.in_flight(), end_s)
    dep.finish(end_s)
    tl = pd.DataFrame(rows)
    names = [f"{plat.name}/prefill", f"{plat.name}/decode"]
    if len(tl):
        tl["deployment"] = [names[d] for d in tl["deployment"]]
    extra, dep_rows = disagg_summary(plat, b, dep, reqs, rec, end_s, names)
    cols = {"prefill_replica": dep.prefill_replica, "decode_replica": dep.decode_replica,
            "prefill_end_s": dep.prefill_end_s, "kv_transfer_start_s": dep.kv_transfer_start_s,
            "kv_transfer_end_s": dep.kv_transfer_end_s, "kv_bytes": dep.kv_bytes}
    return PlatformRun(name=plat.name, kind=plat.kind, recorder=rec, end_s=end_s, deployments=[plat.name],
                       timeline=tl, summary_extra=extra, deployment_rows=dep_rows, request_columns=cols,
                       prefix_hit_tokens=sum(r.kv.hit_tokens for r in dep.prefill.replicas),
                       prefix_lookup_tokens=sum(r.kv.lookup_tokens for r in dep.prefill.replicas))


def disagg_summary(plat, b, dep: DisaggDeployment, reqs: Requests, rec: Recorder, end_s: float,
                   names: list[str]) -> tuple[dict, list[dict]]:
    fin = rec.outcome == FINISHED
    tin = float(reqs.input_tokens[fin].sum())
    tout = float(reqs.output_tokens[fin].sum())
    cost = dep.prefill.cost_usd + dep.decode.cost_usd
    cust = 0.0
    if plat.prices is not None:
        cust = float(token_charge_usd(tin, tout, plat.prices.input_usd_per_mtok, plat.prices.output_usd_per_mtok))
    out = economics_fields(customer_usd=cust, provider_cost_usd=cost, input_tokens=tin, output_tokens=tout,
                           requests=int(fin.sum()))
    out.update(customer_parts(per_token_usd=cust))  # the customer pays per token here, recorded where charged
    chips = dep.prefill.peak * b.prefill.units + dep.decode.peak * b.decode.units
    power_w = (dep.prefill.peak * b.prefill.units * b.prefill.setup.hardware.tdp_w
               + dep.decode.peak * b.decode.units * b.decode.setup.hardware.tdp_w)
    out.update(footprint(chips, power_w / max(chips, 1)))
    arrival = rec.arrival_s if rec.arrival_s is not None else reqs.arrival_s
    xfer = dep.kv_transfer_end_s - dep.kv_transfer_start_s
    ttft = rec.first_token_s - arrival
    ok = fin & ~np.isnan(xfer) & ~np.isnan(ttft)
    mean_ttft = float(ttft[ok].mean()) if ok.any() else float("nan")
    out.update({
        "decode_kind": b.decode.kind, "prefill_replicas": dep.prefill.peak, "decode_replicas": dep.decode.peak,
        "prefill_chips": dep.prefill.peak * b.prefill.units, "decode_chips": dep.decode.peak * b.decode.units,
        "prefill_cost_usd": dep.prefill.cost_usd, "decode_cost_usd": dep.decode.cost_usd,
        "kv_link": b.link.kind, "kv_link_gb_per_s": b.link.bandwidth_gb_per_s,
        "kv_bytes_sent": dep.kv_bytes_sent, "kv_bytes_received": dep.kv_bytes_received,
        "kv_transfer_mean_s": float(xfer[ok].mean()) if ok.any() else float("nan"),
        "kv_transfer_share_of_ttft": float(xfer[ok].mean()) / mean_ttft if ok.any() and mean_ttft > 0 else float("nan"),
        "decode_wait_mean_s": float((dep.kv_transfer_start_s - dep.prefill_end_s)[ok].mean()) if ok.any() else float("nan"),
        "decode_recomputed_blocks": dep.transfer_blocks - dep.inserted_blocks,
    })
    rows = []
    for name, pool, pb in ((names[0], dep.prefill, b.prefill), (names[1], dep.decode, b.decode)):
        rows.append({"deployment": name, "model": b.model.id, "hardware": pb.setup.hardware.id,
                     "replicas": pool.peak, "chips": pool.peak * pb.units, "provider_cost_usd": pool.cost_usd,
                     "gpu_hours": pool.gpu_hours})
    return out, rows
