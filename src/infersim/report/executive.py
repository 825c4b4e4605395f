"""The one-page executive summary at the top of the report: the question, the answer in three numbers with
how far to trust each (validated bands, ``report.validation``), the chart that shows it, the assumptions the
numbers rest on, and the three assumptions the answer is most sensitive to (the sweep tornado, where a sweep
exists). Pure: tables in, blocks out (``memo`` renders them).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from infersim.report.findings import (
    OWNED_KINDS,
    SLO_TARGET,
    fmt_param,
    fmt_value,
    sustainability,
    wilson,
)
from infersim.report.load import RunDir, SweepDir
from infersim.report.validation import bands_by_platform

#: The owned-hardware cost model's defaults (``economics.owned_cost_breakdown``), stated beside any number that
#: rests on them.
OWNED_ASSUMPTIONS = ("straight-line over 4 years at the catalog list price, no residual value or cost of "
                     "capital; power at TDP x PUE 1.3 x $0.08/kWh; colocation $150 per kW-month; host servers, "
                     "networking and staff not included")


def _platform_entry(sc: dict, name: str) -> dict:
    for p in sc.get("platforms", []) or []:
        if str(p.get("name")) == name:
            return p
    return {}


def rests_on(sc: dict, row: pd.Series) -> list[str]:
    """The assumptions a platform's cost figures rest on, in words (owned-system sizing, prices and what
    they are a proxy for, GPU-hour prices)."""
    from infersim.catalog import default_catalog
    from infersim.core.errors import InfersimError

    p = _platform_entry(sc, str(row["platform"]))
    kind = p.get("kind") or row.get("kind")
    out = []
    if kind in OWNED_KINDS:
        units = pd.to_numeric(row.get("units_per_replica"), errors="coerce")
        reps = pd.to_numeric(row.get("replicas"), errors="coerce")
        sized = "as many chips/systems as the model needs" if not p.get("chips") and not p.get("systems") \
            else "the count the scenario states"
        n = f"{units:g}" if pd.notna(units) else "?"
        out.append(f"owned-system sizing: {n} {'systems' if kind == 'wafer' else 'chips'} per replica "
                   f"({sized}) x {reps:g} replica(s), owned and paid by the hour: {OWNED_ASSUMPTIONS}"
                   if pd.notna(reps) else f"owned-system sizing: {n} units per replica; {OWNED_ASSUMPTIONS}")
        try:
            hw = default_catalog().get_hardware(str(p.get("hardware")))
            out += [f"{hw.id}: {a}" for a in hw.assumptions if "price" in a or "tdp" in a.lower()]
        except InfersimError:
            pass
    if p.get("prices"):
        pr = p["prices"]
        out.append(f"customer prices ${pr.get('input_usd_per_mtok'):g} / ${pr.get('output_usd_per_mtok'):g} per "
                   f"million input / output tokens as the scenario states them (a price list, possibly "
                   f"quoted for a different model than the one simulated: see the scenario's comments)")
    if kind == "token_api" and p.get("preset"):
        try:
            from infersim.perf.token_api import token_api_preset

            e = token_api_preset(p["preset"])
            out += [f"token API preset {e.id}: {a}" for a in e.assumptions]
        except InfersimError:
            pass
    if kind == "gpu_fleet":
        for d in p.get("deployments", []) or []:
            if d.get("usd_per_gpu_hour") is not None:
                out.append(f"{d.get('name')}: ${d['usd_per_gpu_hour']:g}/GPU-hour set by the scenario")
        out.append("GPU-hour prices and provider costs from the catalog (sources under 'Assumptions and sources')")
    return out


def _slo_ci(row: pd.Series) -> str:
    a, n = pd.to_numeric(row.get("slo_attainment"), errors="coerce"), pd.to_numeric(row.get("requests"),
                                                                                     errors="coerce")
    if pd.isna(a) or pd.isna(n) or n <= 0:
        return ""
    lo, hi = wilson(a * n, n)
    return f" (95% CI {fmt_value('slo_attainment', lo)} to {fmt_value('slo_attainment', hi)})"


def baseline_answer(run: RunDir) -> list[tuple]:
    """Where the scenario marks a baseline platform: what each other platform saves the customer against it,
    with the provider's side, the quality kept, the SLO attainment and the tail-latency change, in words (the
    comparison routing exists for). Every figure is read from its own summary column."""
    s, sc = run.summary, run.scenario
    base = sc.get("baseline")
    if not base or "baseline_saving_share" not in s.columns or base not in set(s["platform"]):
        return []
    srow = s.set_index("platform").loc[base]
    lines = []
    for _, r in s.iterrows():
        if r["platform"] == base or pd.isna(pd.to_numeric(r.get("baseline_saving_share"), errors="coerce")):
            continue
        save = float(r["baseline_saving_share"])
        txt = (f"{r['platform']} costs the customer {fmt_value('baseline_saving_share', abs(save))} "
               f"{'less' if save >= 0 else 'more'} than {base} ({fmt_value('customer_usd', r.get('customer_usd'))} "
               f"vs {fmt_value('customer_usd', srow.get('customer_usd'))} for the run)")
        pc, bpc = (pd.to_numeric(r.get("provider_cost_usd"), errors="coerce"),
                   pd.to_numeric(srow.get("provider_cost_usd"), errors="coerce"))
        if pd.notna(pc) and pd.notna(bpc) and bpc > 0:
            d = 1.0 - float(pc) / float(bpc)
            txt += (f", costs its provider {fmt_value('baseline_saving_share', abs(d))} "
                    f"{'less' if d >= 0 else 'more'} to serve")
        q = pd.to_numeric(r.get("baseline_quality_ratio"), errors="coerce")
        txt += (f", keeps {fmt_value('quality_ratio', q)} of the baseline's acceptable-answer rate" if pd.notna(q)
                else ", answer quality not modelled for it")
        slo, bslo = (pd.to_numeric(r.get("slo_attainment"), errors="coerce"),
                     pd.to_numeric(srow.get("slo_attainment"), errors="coerce"))
        if pd.notna(slo) and pd.notna(bslo):
            txt += (f", meets its SLOs for {fmt_value('slo_attainment', slo)} of requests "
                    f"({fmt_value('slo_attainment', bslo)} on the baseline)")
        de = pd.to_numeric(r.get("baseline_e2e_p99_change_s"), errors="coerce")
        if pd.notna(de):
            txt += f"; E2E p99 {'+' if de >= 0 else '-'}{fmt_value('e2e_p99_s', abs(de))}"
        lines.append(txt + ".")
    if not lines:
        return []
    return [("p", f"**Against the baseline ({base}).** The scenario marks {base} as what the others replace; "
                  "dollars cover the whole run, latency and SLOs the measurement window; each platform's latency "
                  "band is in the comparison table below."), ("ul", lines)]


def run_summary(run: RunDir, chart_png: str | None, sensitivities: list[str] | None = None) -> list[tuple]:
    """Blocks of a run's executive summary."""
    s, sc = run.summary, run.scenario
    names = list(s["platform"])
    what = sc.get("description") or sc.get("name") or "this workload"
    generic = (f"of the {len(names)} platforms compared ({', '.join(names)}), which serves this workload cheapest "
               f"for the customer while meeting its latency targets (SLOs) for at least {SLO_TARGET:.0%} of "
               "requests, and can its provider sustain that price?")
    own = str(sc.get("question") or "").strip()
    b: list[tuple] = [("h", 2, "Executive summary"),
                      ("p", f"**Question.** {own} (And, as every run asks: {generic})" if own else
                            f"**Question.** {what.rstrip('.')}: {generic}")]
    cost_found, _ = sustainability(run)
    col = "customer_usd_per_mtok"
    have = s[pd.to_numeric(s[col], errors="coerce").notna()] if col in s.columns else s.iloc[0:0]
    if not len(have):
        b.append(("p", "**Answer.** This run recorded no customer price per million tokens, so no cost answer."))
        return b
    have = have.assign(_c=pd.to_numeric(have[col], errors="coerce"))
    ok = have[pd.to_numeric(have.get("slo_attainment"), errors="coerce") >= SLO_TARGET] \
        if "slo_attainment" in have.columns else have
    best = (ok if len(ok) else have).sort_values("_c").iloc[0]
    plat = str(best["platform"])
    ttft_band = bands_by_platform(sc, "ttft").get(plat, "not validated for this engine/GPU")
    tpot_band = bands_by_platform(sc, "tpot").get(plat, "not validated for this engine/GPU")
    b.append(("p", f"**Answer.** {cost_found[0]}"))
    rows = [["customer $ per million tokens (all tokens, whole run)", fmt_value(col, best["_c"]),
             "single run: no confidence interval; a price list times simulated tokens, so the model's latency "
             "error does not enter it", "; ".join(rests_on(sc, best)) or "catalog prices"],
            ["p99 time to first token (measurement window)", fmt_value("ttft_p99_s", best.get("ttft_p99_s")),
             ttft_band, "the engine profile and hardware datasheet (see 'Assumptions and sources')"],
            ["share of requests meeting every SLO", fmt_value("slo_attainment", best.get("slo_attainment"))
             + _slo_ci(best), f"TTFT {ttft_band}; TPOT {tpot_band}",
             "the scenario's SLO targets and workload"]]
    b += [("table", ["number", plat, "how far to trust it (validated band)", "rests on"], rows)]
    b += baseline_answer(run)
    if chart_png:
        b.append(("img", chart_png, "charts/cost_latency.png",
                  "The answer in one chart: cost against p99 time to first token per platform; lower-left is "
                  "better, circled points are on the Pareto frontier."))
    b.append(("p", "**Most sensitive assumptions.** " + ("; ".join(sensitivities) + "." if sensitivities else
              "not measured: this is a single run. A sweep of the scenario's uncertain inputs (prices, "
              "load, replica counts; see docs/sweeps.md) ranks them in its tornado chart, and its report names "
              "the three that move the answer most.")))
    return b


def sweep_sensitivities(sw: SweepDir, metric: str, top: int = 3) -> list[str]:
    """The ``top`` swept parameters that move ``metric`` most (largest swing over all platforms), in words."""
    from infersim.report.stats import tornado
    from infersim.report.sweep_charts import metric_label, param_label

    pts = sw.points
    params = [p for p in sw.parameters if p in pts.columns and pts[p].nunique() > 1]
    if not params or metric not in pts.columns:
        return []
    tor = tornado(pts, params, metric)
    if not len(tor):
        return []
    best = tor.loc[tor.groupby("parameter")["swing"].idxmax()].sort_values("swing", ascending=False).head(top)
    out = []
    for r in best.itertuples():
        out.append(f"{param_label(r.parameter)} ({fmt_param(r.low_value)} → {fmt_param(r.high_value)}) moves "
                   f"{metric_label(metric).split(' (')[0]} for {r.platform} from {fmt_value(metric, r.at_low)} to "
                   f"{fmt_value(metric, r.at_high)}")
    return out


def sweep_summary(sw: SweepDir, metric: str, chart_png: str | None) -> list[tuple]:
    """Blocks of a sweep's executive summary: the question, the best platform's range of the metric with its
    interval, its latency band, and the three parameters that move the metric most."""
    from infersim.report.sweep_charts import metric_label, param_label

    s, sc = sw.summary, sw.scenario
    swept = [param_label(p) for p in sw.parameters]
    mlabel = metric_label(metric)
    b: list[tuple] = [("h", 2, "Executive summary"),
                      ("p", f"**Question.** How does {mlabel} of {', '.join(sw.platforms)} change as "
                            f"{', '.join(swept)} vary over the swept values, and which of them matters most?")]
    mcol = f"{metric}_mean"
    if mcol not in s.columns or not np.isfinite(pd.to_numeric(s[mcol], errors="coerce")).any():
        b.append(("p", f"**Answer.** The sweep holds no finite values of {mlabel}."))
        return b
    lower_better = not metric.startswith(("slo_attainment", "throughput", "output_tok", "gross_margin", "goodput"))
    g = s.assign(_m=pd.to_numeric(s[mcol], errors="coerce")).dropna(subset=["_m"])
    best = g.sort_values("_m", ascending=lower_better).iloc[0]
    params = [p for p in sw.parameters if p in s.columns]
    where = ", ".join(f"{param_label(p)} = {fmt_param(best[p])}" for p in params)
    lo, hi = best.get(f"{metric}_ci_lo", math.nan), best.get(f"{metric}_ci_hi", math.nan)
    ci = (f" (95% CI {fmt_value(metric, lo)} to {fmt_value(metric, hi)} across replications)"
          if pd.notna(lo) and pd.notna(hi) else " (one replication: no interval)")
    bands = bands_by_platform(sc, "ttft")
    rng = g[g["platform"] == best["platform"]]["_m"]
    rows = [[f"best {mlabel}", fmt_value(metric, best["_m"]) + ci, f"{best['platform']} at {where}"],
            [f"range of {mlabel} for {best['platform']} over the sweep",
             f"{fmt_value(metric, rng.min())} to {fmt_value(metric, rng.max())}", "means across replications"],
            ["latency figures: how far to trust them", bands.get(str(best["platform"]),
                                                              "not validated for this engine/GPU"),
             "validated band for the engine and GPU in use"]]
    b += [("p", f"**Answer.** {'Lowest' if lower_better else 'Highest'} {mlabel}: {best['platform']} at {where}, "
                f"{fmt_value(metric, best['_m'])}{ci}."),
          ("table", ["number", "value", "where / basis"], rows)]
    if chart_png:
        b.append(("img", chart_png, "charts/tornado.png",
                  "The answer in one chart: which swept values move the metric most (tornado)."))
    sens = sweep_sensitivities(sw, metric)
    b.append(("p", "**The three assumptions it is most sensitive to** (largest swing in the tornado, other "
                   "parameters averaged): " + ("; ".join(sens) + "." if sens else "none of the swept values "
                                                                                  "changes it.")))
    return b
