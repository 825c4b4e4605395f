"""Simulate a ``gpu_fleet`` platform: deployments of GPU replicas (fixed or autoscaled) on one clock.

Arrivals (open-loop times, or closed-loop clients) are dispatched to a deployment by the platform's
``router`` (``infersim.platforms.dispatch``) or, without one, to the first deployment serving the request's
stream; then to a replica by the deployment's load balancer; the recorder keeps the per-request columns.
The run's economics and routing outputs (``summary_extra``, ``deployment_rows``) come from
``infersim.platforms.fleet_economics``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from infersim.build.gpu import deployment_setup
from infersim.build.pools import build_pools
from infersim.engine.clock import FleetClock
from infersim.engine.recorder import Recorder
from infersim.fleet import collect as fleet_collect
from infersim.fleet.autoscaled import AutoscaledDeployment
from infersim.fleet.billing import BillingClock
from infersim.fleet.deployment import Deployment
from infersim.fleet.sampler import FleetSampler, replica_sampler
from infersim.platforms.alone import fixed_fleet, replicas_independent, run_on_fleet_clock, run_replicas_alone
from infersim.platforms.arrivals import Arrivals, finish_run, new_clock
from infersim.platforms.dispatch import RoutedDispatch
from infersim.platforms.fleet_economics import PROVIDER_STAGES, fleet_outputs, spot_pools
from infersim.platforms.platform_run import PlatformRun
from infersim.scenario.schema import Scenario
from infersim.workload.generate import Requests


def simulate_gpu_fleet(sc: Scenario, plat, reqs: Requests, catalog, *, seed: int, horizon_s: float,
                       timeline_dt: float, progress: Callable[[float], None] | None) -> PlatformRun:
    n = len(reqs)
    rec = Recorder(n)
    if fixed_fleet(plat, reqs):  # fixed deployments, open loop: on their own calendar (platforms/alone.py)
        env = FleetClock()
        arrivals = None
        on_done = env.done
    else:  # routers, autoscalers, closed-loop clients: SimPy's semantics on the same calendar (engine.clock)
        env = new_clock()
        arrivals = Arrivals(env, reqs, sc.duration, lambda rid: dispatch(rid))  # open and closed loop
        on_done = arrivals.done

    chain_full = reqs.chain_full
    routed: list[RoutedDispatch] = []
    leg_done = (lambda rid: routed[0].leg_done(rid)) if plat.router is not None else on_done
    spot = spot_pools(plat)
    prov_unit = plat.economics.provider_billing_unit
    deps: list[Deployment] = []
    next_id = 0
    pools = build_pools(plat, catalog)
    scaled_ids = iter(range(sum(s.replicas for s in plat.deployments if s.autoscaling is None), 2**31 - 1))
    for di, spec in enumerate(plat.deployments):
        setup = deployment_setup(spec, catalog, path=f"platforms.{plat.name}.deployments[{di}]",
                                 base_dir=sc.base_dir)
        if spec.autoscaling is not None:  # replicas come and go; ids from a shared counter after the fixed ones
            d = AutoscaledDeployment(env, setup, spec, reqs, rec, scaled_ids.__next__, leg_done, seed=seed,
                                     platform=plat.name, pools=pools, chain_full=chain_full, interruptions=spot)
            d.provider_bill = BillingClock(prov_unit, PROVIDER_STAGES, float("nan"), setup.config.gpus)
            d.provider_bill.open.update(d.bill.open)  # replicas warm at t=0 are already billed as ready
            d.bill.also.append(d.provider_bill)
            deps.append(d)
            continue
        deps.append(Deployment(env, setup, spec, reqs, rec, next_id, leg_done, seed=seed, platform=plat.name,
                               chain_full=chain_full))
        next_id += spec.replicas
    stream_names = list(reqs.stream_names)
    route = np.full(len(stream_names), -1, np.int64)
    for si, name in enumerate(stream_names):
        for di, spec in enumerate(plat.deployments):
            if spec.streams is None or name in spec.streams:
                route[si] = di
                break

    if plat.router is not None:
        tasks = {si: s.task for si, s in enumerate(sc.workload.streams)}
        routed.append(RoutedDispatch(env, plat.router, plat, deps, [d.setup.model for d in deps], reqs, rec, on_done,
                                     tasks=tasks, streams=list(sc.workload.streams), catalog=catalog, seed=seed))
        # the lambdas above stand in for the dispatcher only until it exists: bind its methods now (a Python
        # frame less per request and per leg)
        r0 = routed[0]
        if arrivals is not None:
            arrivals.dispatch = r0.dispatch
        for d in deps:
            if d.on_done_platform is leg_done:
                d.on_done_platform = r0.leg_done
            for r in d.replicas:
                if r.on_done is leg_done:
                    r.on_done = r0.leg_done

    def dispatch(rid: int) -> None:
        if routed:
            routed[0].dispatch(rid)
            return
        d = route[reqs.stream[rid]]
        if d < 0:
            rec.reject(rid, "no_deployment", env.now)
            on_done(rid)
            return
        rec.deployment[rid] = d
        deps[d].submit(rid)

    all_replicas = [r for d in deps for r in d.replicas]
    rows: dict[str, list] = {}
    fleet_sampler = FleetSampler(env, deps, timeline_dt)
    if replicas_independent(plat, reqs):  # each replica on its own clock (platforms/alone.py): same numbers, faster
        end_s = run_replicas_alone(deps, route, reqs, rec, horizon_s, timeline_dt, rows, progress)
    elif arrivals is None:  # the fleet on one FleetClock: SimPy's numbers, without its per-event machinery
        end_s = run_on_fleet_clock(env, deps, route, reqs, rec, horizon_s, timeline_dt, rows, progress)
    else:
        arrivals.start()
        dep_of = [di for di, d in enumerate(deps) for _ in d.replicas]
        env.process(replica_sampler(env, all_replicas, dep_of, timeline_dt, rows, progress))
        end_s = arrivals.run(horizon_s)
    in_flight = [rid for r in all_replicas for rid in r.in_flight()] + [q for d in deps for q in d.queued()]
    if routed:
        in_flight += routed[0].in_flight()
    # any other arrival without an outcome is counted as lost
    if arrivals is None:
        finish_run(rec, reqs.arrival_s, in_flight, end_s)
    else:
        arrivals.finish(rec, in_flight, end_s)
    fleet = fleet_collect.finish(plat, deps, fleet_sampler, end_s)
    scaled = [s.engine for d in deps if isinstance(d, AutoscaledDeployment) for s in d.dead if s.engine]
    rep_tl = fleet.pop("replica_timeline")
    tl = pd.DataFrame(rows)
    if len(rep_tl):
        tl = (pd.concat([tl, rep_tl], ignore_index=True) if len(tl) else rep_tl).sort_values(
            ["t_s", "replica"], kind="stable", ignore_index=True)
    tl["deployment"] = [plat.deployments[d].name or plat.deployments[d].model for d in tl["deployment"]]
    summary_extra, deployment_rows, p_acceptable = fleet_outputs(
        sc, plat, reqs, rec, deps, fleet["fleet_stats"], end_s, catalog, routed[0] if routed else None)
    api = [routed[0].api.name] if routed and routed[0].api is not None else []
    return PlatformRun(
        name=plat.name, kind=plat.kind, recorder=rec, summary_extra=summary_extra, deployment_rows=deployment_rows,
        request_columns={"p_acceptable": p_acceptable},
        deployments=[d.setup.name for d in deps] + api, setups=[d.setup for d in deps],
        replicas_per_deployment=[st["peak_replicas"] for st in fleet["fleet_stats"]], timeline=tl,
        prefix_hit_tokens=sum(r.kv.hit_tokens for r in all_replicas + scaled),
        prefix_lookup_tokens=sum(r.kv.lookup_tokens for r in all_replicas + scaled), end_s=end_s, **fleet)
