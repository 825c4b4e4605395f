"""Economics and routing outputs of a ``gpu_fleet`` run (glue between the fleet's records and the pure
arithmetic of ``infersim.economics``), plus spot-pool interruptions.

Customer side (``economics.customer``): ``per_gpu_minute`` charges each deployment's billed replica time
(the deployment's ``billing`` clock: per minute, Baseten's billed stages) x GPUs x the price per GPU-minute
(Baseten's list, ``baseten_prices.yaml``; see ``economics.customer_usd_per_gpu_minute`` for fallbacks);
``per_token`` charges the finished requests' tokens. Requests served by an external token API are passed
through at the API's token price on both sides (the platform buys them for the customer at cost).

Provider side: a replica from a priced pool costs that pool's rate (``on_demand``/``spot``: billed replica
time; ``reserved``/``owned``: the pool's whole ``limit_gpus`` for the whole run, used or idle); a replica
from no pool costs the on-demand provider rate (``economics.provider_usd_per_gpu_hour``, price list,
catalog) for its provider-billed time, or, with ``economics.owned``, the deployment's peak GPUs at owned cost
for the whole run. Provider-billed time runs from image pull to stop (``PROVIDER_STAGES``: a cloud bills a
node once it has booted; ASSUMPTION) and is rounded per ``provider_billing_unit``. Fixed deployments are
billed from 0 to the end of the run on both sides.

Routing outputs: per request the expected P(acceptable) of its answer (``p_acceptable``; the deployment's
model at the request's task and true difficulty, or the cascade's outcome), ``quality`` = its mean over
finished and rejected requests (a rejected request counts 0), ``quality_strongest`` = the same requests
answered by the strongest model of the platform, ``quality_ratio`` = their ratio.
"""

from __future__ import annotations

import math

import numpy as np

from infersim import economics as econ
from infersim.engine.recorder import FINISHED, REJECTED
from infersim.fleet.autoscaled import AutoscaledDeployment
from infersim.platforms.dispatch import quality_model
from infersim.policy.quality import QualityModel

PROVIDER_STAGES = ("image_pull", "weight_load", "warmup", "ready", "draining")


def spot_pools(plat) -> dict[str, float]:
    """Spot pool name -> mean GPU-hours between interruptions (pool's value or the price list default)."""
    default = econ.price_list().spot_interruption_mtbf_gpu_hours
    return {p.name: p.pricing.interruption_mtbf_gpu_hours or default for p in plat.pools
            if p.pricing.kind == "spot"}


def _pool_rate(pool, hw, econ_spec) -> float:
    pr = pool.pricing
    if pr.usd_per_gpu_hour is not None:
        return pr.usd_per_gpu_hour
    if pr.kind == "owned":
        return _owned_rate(hw, pr.owned)
    return econ.provider_usd_per_gpu_hour(hw.id, hw.usd_per_hour, pr.kind, econ_spec.provider_usd_per_gpu_hour)


def _owned_rate(hw, o) -> float:
    price = o.list_price_usd or hw.list_price_usd
    return econ.owned_usd_per_hour(price if price else math.nan, hw.tdp_w, 1, amortization_years=o.amortization_years,
                                   pue=o.pue, usd_per_kwh=o.usd_per_kwh,
                                   hosting_usd_per_kw_month=o.hosting_usd_per_kw_month)["total"]


def _provider_costs(plat, deps, stats, end_s, catalog) -> tuple[list[float], float, float, tuple[float, float]]:
    """Per deployment provider cost (commitments attributed by GPU-seconds used), unused commitment, total,
    and (GPU-seconds used, GPU-seconds committed) over the reserved and owned pools."""
    es = plat.economics
    pools = {p.name: p for p in plat.pools}
    fixed_pools = {n for n, p in pools.items() if p.pricing.kind in ("reserved", "owned")}
    used = {n: np.zeros(len(deps)) for n in fixed_pools}  # pool -> GPU-seconds per deployment
    cost = [0.0] * len(deps)
    for di, d in enumerate(deps):
        hw, g, spec = d.setup.hardware, d.setup.config.gpus, plat.deployments[di]
        if not isinstance(d, AutoscaledDeployment):
            if es.owned is not None:
                cost[di] = econ.commitment_usd(len(d.replicas) * g, _owned_rate(hw, es.owned), end_s)
            else:
                rate = econ.provider_usd_per_gpu_hour(hw.id, hw.usd_per_hour, "on_demand", es.provider_usd_per_gpu_hour)
                cost[di] = econ.billed_usd([end_s] * len(d.replicas), es.provider_billing_unit, rate, g)
            continue
        pb = d.provider_bill
        if es.owned is not None and not spec.pools:
            cost[di] = econ.commitment_usd(stats[di]["peak_replicas"] * g, _owned_rate(hw, es.owned), end_s)
            continue
        od = econ.provider_usd_per_gpu_hour(hw.id, hw.usd_per_hour, "on_demand", es.provider_usd_per_gpu_hour)
        for s in d.dead:
            segs = pb.segments.get(s.id, [])
            if s.pool in fixed_pools:
                used[s.pool][di] += sum(segs) * g
            elif s.pool is not None:
                cost[di] += econ.billed_usd(segs, es.provider_billing_unit, _pool_rate(pools[s.pool], hw, es), g)
            elif es.owned is None:
                cost[di] += econ.billed_usd(segs, es.provider_billing_unit, od, g)
    unused = 0.0
    used_s = committed_s = 0.0
    for name in fixed_pools:
        p = pools[name]
        hw = catalog.get_hardware(p.hardware)
        total = econ.commitment_usd(p.limit_gpus, _pool_rate(p, hw, es), end_s)
        u = used[name]
        used_s += float(u.sum())
        committed_s += p.limit_gpus * max(end_s, 0.0)
        if u.sum() > 0:
            for di in range(len(deps)):
                cost[di] += total * u[di] / u.sum()
        else:
            unused += total
    return cost, unused, sum(cost) + unused, (used_s, committed_s)


def _p_acceptable(plat, reqs, rec, deps, routed, tasks) -> tuple[np.ndarray, np.ndarray]:
    """Per request: expected P(acceptable) of its answer, and the strongest model's P for the same request."""
    qm = quality_model(plat.router) if plat.router is not None else QualityModel()
    models = [d.setup.model for d in deps]
    caps = np.array([[qm.model_capability(m.id, m.total_params_b, tasks[s]) for m in models]
                     for s in range(len(reqs.stream_names))]).reshape(len(reqs.stream_names), -1)
    s = reqs.stream  # small integer codes index as they are (no int64 copy per request)
    strong = qm.p_acceptable(caps.max(axis=1)[s], reqs.difficulty)
    if routed is not None:
        p = routed.p_ok.copy()
    else:
        dep = rec.deployment
        ok = (dep >= 0) & (dep < len(deps))
        p = np.full(len(reqs), np.nan)
        p[ok] = qm.p_acceptable(caps[s[ok], dep[ok]], reqs.difficulty[ok])
    p[rec.outcome == REJECTED] = 0.0
    return p, strong


def fleet_outputs(sc, plat, reqs, rec, deps, stats, end_s, catalog, routed) -> tuple[dict, list[dict], np.ndarray]:
    """``summary_extra`` (economics fields, footprint, routing quality), one row per deployment (plus one
    for the token API when the router spills to one), and per request its expected P(acceptable)."""
    es = plat.economics
    tasks = {si: st.task for si, st in enumerate(sc.workload.streams)}
    fin = rec.outcome == FINISHED
    done = fin | (rec.outcome == REJECTED)
    # token sums over integer columns: exact, as the float sums were (totals far below 2**53)
    inp, out = reqs.input_tokens, reqs.output_tokens
    p, strong = _p_acceptable(plat, reqs, rec, deps, routed, tasks)
    dep = rec.deployment
    first = routed.first_dep if routed is not None else dep
    esc = routed.escalated if routed is not None else np.zeros(len(reqs), bool)
    arrived = ~np.isnan(rec.arrival_s) if rec.arrival_s is not None else np.ones(len(reqs), bool)
    n_arrived = max(int(arrived.sum()), 1)
    prov, unused, prov_total, (used_s, committed_s) = _provider_costs(plat, deps, stats, end_s, catalog)
    rows, cust_total, chips, power = [], 0.0, 0, 0.0
    per_token = es.customer.kind == "per_token"
    for di, d in enumerate(deps):
        su, st = d.setup, stats[di]
        g = su.config.gpus
        legs = (first == di) | ((dep == di) & esc)  # first legs here, and second legs of escalations here
        leg_fin = (fin & (dep == di)) | (esc & (first == di))
        tin, tout = float(inp[leg_fin].sum()), float(out[leg_fin].sum())
        if per_token:
            cust = econ.token_charge_usd(tin, tout, es.customer.input_usd_per_mtok, es.customer.output_usd_per_mtok)
            src = "per_token"
        else:
            spec = plat.deployments[di]
            fallback = econ.deployment_usd_per_gpu_hour(spec, su.hardware)
            price, src = econ.customer_usd_per_gpu_minute(su.hardware.id, fallback, es.customer.usd_per_gpu_minute)
            cust = st["billed_replica_s"] / 60.0 * g * price
        cust_total += cust
        peak = int(st["peak_replicas"]) * g
        chips += peak
        power += peak * su.hardware.tdp_w / 1e3
        billed, busy = st["billed_replica_s"], st["busy_replica_s"]
        util = min(busy / billed, 1.0) if billed > 0 else math.nan
        n_fin = int(leg_fin.sum())
        rows.append({
            "deployment": su.name, "model": su.model.id, "hardware": su.hardware.id, "gpus_per_replica": g,
            "peak_replicas": int(st["peak_replicas"]), "requests": int(legs.sum()),
            "share": float((arrived & (first == di)).sum() / n_arrived),
            "escalated_in": int((esc & (dep == di)).sum()), "finished": n_fin,
            "quality": float(np.nanmean(p[fin & (dep == di)])) if (fin & (dep == di)).any() else math.nan,
            "input_tokens": tin, "output_tokens": tout, "gpu_hours": float(st["gpu_hours"]),
            "utilization": util, "idle_share": 1.0 - util if billed > 0 else math.nan,
            "customer_price_source": src, "idle_cost_usd": prov[di] * (1.0 - util) if billed > 0 else math.nan,
            **econ.economics_fields(customer_usd=cust, provider_cost_usd=prov[di], input_tokens=tin,
                                    output_tokens=tout, requests=n_fin),
        })
    api_usd = 0.0
    if routed is not None and routed.api is not None:
        a = routed.api
        m = fin & (dep == a.index)
        tin, tout = float(inp[m].sum()), float(out[m].sum())
        api_usd = float(a.prices.cost_usd(tin, tout))
        rows.append({"deployment": a.name, "model": a.preset.model, "hardware": "token_api",
                     "requests": int((first == a.index).sum()), "share": float((arrived & (first == a.index)).sum()
                                                                               / n_arrived),
                     "finished": int(m.sum()), "quality": float(np.nanmean(p[m])) if m.any() else math.nan,
                     "input_tokens": tin, "output_tokens": tout, "customer_price_source": "token_api",
                     **econ.economics_fields(customer_usd=api_usd, provider_cost_usd=api_usd, input_tokens=tin,
                                             output_tokens=tout, requests=int(m.sum()))})
    n_fin = int(fin.sum())
    extra = econ.economics_fields(customer_usd=cust_total + api_usd, provider_cost_usd=prov_total + api_usd,
                                  input_tokens=float(inp[fin].sum()), output_tokens=float(out[fin].sum()),
                                  requests=n_fin)
    if per_token:
        extra["price_usd_per_mtok_in"] = es.customer.input_usd_per_mtok
        extra["price_usd_per_mtok_out"] = es.customer.output_usd_per_mtok
        models = sorted({d.setup.model.id for d in deps})
        extra["price_source"] = es.customer.label(models[0]) if len(models) == 1 else (
            es.customer.source or "typed in the scenario (no source given)")
    extra.update(econ.footprint(chips, 0.0))
    extra["power_kw"] = power
    extra["unused_commitment_usd"] = unused
    if committed_s > 0:  # reserved / owned pools: the share of their GPU-seconds that replicas held
        extra["committed_gpu_hours"] = committed_s / 3600.0
        extra["committed_utilization"] = min(used_s / committed_s, 1.0)
    extra["spot_interruptions"] = int(sum(s.get("spot_interruptions", 0) for s in stats))
    q_fin = done & ~np.isnan(p)
    extra["quality"] = float(p[q_fin].mean()) if q_fin.any() else math.nan
    extra["quality_strongest"] = float(strong[q_fin].mean()) if q_fin.any() else math.nan
    extra["quality_ratio"] = (extra["quality"] / extra["quality_strongest"]
                              if extra["quality_strongest"] > 0 else math.nan)
    if routed is not None:
        extra["escalated_share"] = float(esc[arrived].mean()) if arrived.any() else math.nan
        extra["spilled_share"] = float(routed.spilled[arrived].mean()) if arrived.any() else math.nan
    return extra, rows, p
