"""Simulate an ``lpu`` or ``wafer`` platform: fixed replicas of SRAM-pipeline systems (mechanism).

Each replica runs the same continuous-batching engine as a GPU replica (``engine.replica.Replica``) with
the SRAM-pipeline performance model (``perf.sram.pipeline.SramPipeline``, optionally wrapped for speculative
decoding) behind the step interface. Fixed capacity is the point: a replica holds at most
``max_seqs`` sequences (the pipeline's slots, stages x micro-batch, or ``max_in_flight``), so per-user
speed does not depend on load until the slots are full; the rest wait in the platform's FIFO queue
(``fleet.deployment.Deployment`` with ``replica_concurrency``) and are rejected with reason
``queue_timeout`` after ``queue_timeout``. Assumptions: no prefix caching (the KV left in SRAM after the
weights is small; neither vendor documents prompt caching for these systems); a prompt enters the pipeline
whole (``max_batched_tokens`` = the model's context), as a pipeline streams a prompt's micro-batches
through its stages rather than chunking it across rounds.

Economics (``summary_extra``): revenue at per-token prices (``prices`` or the provider's published price);
provider cost = owned systems for the whole run (list price amortised, power, hosting:
``economics.owned_cost_breakdown``); footprint = chips (LPU chips or wafer systems, draft pipeline
included), racks (chips / ``footprint.units_per_rack`` of the profile, fractional as for GPU fleets) and kW
at TDP (``economics.footprint``). ``replicas_for_slo`` is the
M/M/c sizing of ``perf.sram.load.systems_for_load`` for the busiest minute's arrival rate and the mean lengths it saw.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from infersim.build.sram import (
    draft_pipeline,
    max_seqs,
    owned_usd_per_hour,
    sram_pipeline,
    sram_price_source,
    sram_prices,
    sram_setup,
)
from infersim.core.errors import CapacityError
from infersim.economics import customer_parts, economics_fields, footprint
from infersim.engine.clock import FleetClock
from infersim.engine.recorder import FINISHED, Recorder
from infersim.fleet.deployment import Deployment
from infersim.fleet.sampler import replica_sampler
from infersim.perf.sram.load import systems_for_load
from infersim.perf.sram.params import profile_for
from infersim.platforms.alone import run_on_fleet_clock
from infersim.platforms.arrivals import Arrivals, finish_run, new_clock, served_dispatch, served_streams
from infersim.platforms.platform_run import PlatformRun
from infersim.scenario import platform as schema
from infersim.scenario.schema import Scenario
from infersim.workload.generate import Requests

SLO_QUANTILE = 0.95  # replicas_for_slo holds this quantile of TTFT within the SLO
SIZING_WINDOW_S = 60.0  # replicas_for_slo sizes for the busiest window of this length (seconds)


def fleet_clock_ok(reqs: Requests) -> bool:
    """Whether an SRAM platform's run can go on ``run_on_fleet_clock`` (arrivals read from the workload's
    columns): open-loop arrivals; closed-loop clients go through ``platforms.arrivals.Arrivals``."""
    return not reqs.closed_loop


def simulate_sram(sc: Scenario, plat, reqs: Requests, catalog, *, seed: int, horizon_s: float, timeline_dt: float,
                  progress: Callable[[float], None] | None) -> PlatformRun:
    path = f"platforms.{plat.name}"
    pipe = sram_pipeline(plat, catalog, path)
    draft = draft_pipeline(plat, pipe, catalog, path)
    prices = sram_prices(plat, pipe.cfg.model.id, path)
    model = pipe.cfg.model
    setup = sram_setup(plat, pipe, draft)
    slots = setup.max_num_seqs
    spec = schema.Deployment(name=plat.name, model=model.id, hardware=pipe.cfg.hardware.id, replicas=plat.replicas,
                             replica_concurrency=slots, queue_timeout=plat.queue_timeout,
                             load_balancer={"kind": "least_outstanding"})
    rec = Recorder(len(reqs))
    serves = served_streams(reqs.stream_names, plat.streams)
    rows: dict[str, list] = {}
    if fleet_clock_ok(reqs):  # the fleet on its own calendar (platforms/alone.py): SimPy's numbers, faster
        clock = FleetClock()
        dep = Deployment(clock, setup, spec, reqs, rec, 0, clock.done, seed=seed, platform=plat.name,
                         chain_full=reqs.chain_full)
        route = np.where(serves, 0, -1).astype(np.int64)
        end_s = run_on_fleet_clock(clock, [dep], route, reqs, rec, horizon_s, timeline_dt, rows, progress)
        finish_run(rec, reqs.arrival_s, [rid for r in dep.replicas for rid in r.in_flight()] + dep.queued(), end_s)
    else:
        env = new_clock()
        dispatch = served_dispatch(env, reqs, rec, serves, lambda rid: dep.submit(rid), lambda rid: arrivals.done(rid))
        arrivals = Arrivals(env, reqs, sc.duration, dispatch)
        dep = Deployment(env, setup, spec, reqs, rec, 0, arrivals.done, seed=seed, platform=plat.name,
                         chain_full=reqs.chain_full)
        arrivals.start()
        env.process(replica_sampler(env, dep.replicas, [0] * len(dep.replicas), timeline_dt, rows, progress))
        end_s = arrivals.run(horizon_s)
        arrivals.finish(rec, [rid for r in dep.replicas for rid in r.in_flight()] + dep.queued(), end_s)
    tl = pd.DataFrame(rows)
    if len(tl):
        tl["deployment"] = plat.name
    extra = sram_summary(sc, plat, pipe, draft, prices, reqs, rec, serves, end_s)
    return PlatformRun(name=plat.name, kind=plat.kind, recorder=rec, end_s=end_s, deployments=[plat.name],
                       timeline=tl, summary_extra=extra,
                       deployment_rows=[{"deployment": plat.name, "model": model.id, **extra}])


def sram_summary(sc: Scenario, plat, pipe, draft, prices, reqs: Requests, rec: Recorder, serves: np.ndarray,
                 end_s: float) -> dict:
    """Economics, footprint and sizing of an SRAM platform's run (see the module docstring)."""
    fin = rec.outcome == FINISHED
    tok_in = float(reqs.input_tokens[fin].sum())
    tok_out = float(reqs.output_tokens[fin].sum())
    hw = pipe.cfg.hardware
    units = pipe.units + (draft.units if draft is not None else 0)
    per_hour = plat.replicas * owned_usd_per_hour(plat.cost, hw, units)
    charge = prices.cost_usd(tok_in, tok_out).item()
    out = economics_fields(customer_usd=charge,
                           provider_cost_usd=per_hour * end_s / 3600.0, input_tokens=tok_in, output_tokens=tok_out,
                           requests=int(fin.sum()))
    out.update(customer_parts(per_token_usd=charge))
    tdp_w = plat.cost.tdp_w if plat.cost.tdp_w is not None else hw.tdp_w
    out.update(footprint(plat.replicas * units, tdp_w, profile_for(hw).doc["footprint"]["units_per_rack"]))
    out.update({
        "price_usd_per_mtok_in": prices.input_usd_per_mtok, "price_usd_per_mtok_out": prices.output_usd_per_mtok,
        "replicas": plat.replicas, "units_per_replica": units, "pipeline_slots": max_seqs(plat, pipe),
        "owned_usd_per_hour": per_hour, "price_source": sram_price_source(plat, pipe.cfg.model.id),
    })
    out.update(replicas_for_slo(sc, pipe, reqs, rec, serves, max_seqs(plat, pipe)))
    return out


def replicas_for_slo(sc: Scenario, pipe, reqs: Requests, rec: Recorder, serves: np.ndarray,
                     max_slots: int | None = None) -> dict:
    """``replicas_for_slo``: fewest replicas for the busiest minute's arrival rate the platform saw (served
    streams; ``slo_sizing_rate_req_s``; the whole run's rate when it is shorter than a minute; capacity is
    bought for the peak, burstiness within the minute is left to the queueing formula) at the mean
    input/output lengths, with the ``SLO_QUANTILE`` of TTFT within the
    tightest TTFT target and TPOT within the tightest TPOT target of the served streams (no target: no
    limit, i.e. the fewest replicas that keep the queue stable). Erlang-C sizing (``systems_for_load``):
    Poisson arrivals, so burstier traffic needs more. ``nan`` when no replica count can meet it (an idle
    replica already misses the SLO, or a request does not fit its KV cache)."""
    arrival = rec.arrival_s
    mine = serves[reqs.stream] & ~np.isnan(arrival) & (arrival < sc.duration)
    t = arrival[mine]
    if sc.duration >= SIZING_WINDOW_S:
        n_bins = int(sc.duration // SIZING_WINDOW_S)
        counts = np.bincount((t[t < n_bins * SIZING_WINDOW_S] // SIZING_WINDOW_S).astype(np.int64), minlength=n_bins)
        rate = float(counts.max() / SIZING_WINDOW_S)
    else:
        rate = float(t.size / sc.duration)
    out = {"replicas_for_slo": math.nan, "slo_sizing_rate_req_s": rate}
    if not mine.any():
        return out
    slos = [s.slo for s, ok in zip(sc.workload.streams, serves, strict=True) if ok]
    ttft = min((s.ttft for s in slos if s.ttft is not None), default=math.inf)
    tpot = min((s.tpot for s in slos if s.tpot is not None), default=math.inf)
    try:
        size = systems_for_load(pipe, out["slo_sizing_rate_req_s"], int(round(reqs.input_tokens[mine].mean())),
                                int(round(reqs.output_tokens[mine].mean())), ttft, tpot, quantile=SLO_QUANTILE,
                                max_slots=max_slots)
    except CapacityError:
        return out
    out["replicas_for_slo"] = size.replicas
    return out
