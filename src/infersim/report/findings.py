"""Key findings stated as numbers with their confidence intervals (pure; tables in, sentences out).

Single run: latency percentiles get a paired bootstrap over request ids (``stats.paired_bootstrap_quantile``,
``N_BOOT`` resamples): it measures how much the percentile depends on which requests happened to arrive in
this run, not seed-to-seed variation of the system. SLO attainment gets a Wilson score interval (requests
treated as independent). $ per million tokens gets no interval: the bill is one realisation of the fleet
(a sweep over ``seed`` with replications gives one). Sweep: means across replications with 95 % t intervals;
differences between platforms are paired by replication (the same seed serves every platform).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from infersim.report.charts import pick_cost_column
from infersim.report.load import RunDir, SweepDir
from infersim.report.stats import paired_bootstrap_quantile, percentile_ci, t_interval, tornado
from infersim.report.sweep_charts import metric_label, param_label

SLO_TARGET = 0.95
N_BOOT = 400


SHARE_COLUMNS = ("slo_attainment", "utilization", "gross_margin", "idle_share", "prefix_hit_rate", "quality",
                 "quality_ratio", "baseline_saving_share", "baseline_quality_ratio", "escalated_share",
                 "spilled_share", "kv_usage_max", "kv_usage_mean")
#: duration units, largest first: (threshold in seconds, scale, unit)
DURATION_UNITS = ((1.0, 1.0, "s"), (1e-3, 1e3, "ms"), (0.0, 1e6, "µs"))


def is_duration(col: str) -> bool:
    """True for a summary column that holds seconds (registry unit 's', or a latency-like ``*_s`` name)."""
    from infersim.core.quantities import QUANTITIES

    q = QUANTITIES.get(col)
    if q is not None:
        return q.unit == "s"
    return col.endswith("_s") and not col.endswith(("_per_s", "_req_s", "_tok_s"))


def duration_unit(values) -> tuple[float, str]:
    """(scale, unit) that suits a set of durations in seconds: chosen from their median, so one row or
    column of a table prints in one unit."""
    a = np.asarray([float(v) for v in values if v is not None], dtype=float)
    a = np.abs(a[np.isfinite(a)])
    ref = float(np.median(a)) if a.size else 1.0
    for threshold, scale, unit in DURATION_UNITS:
        if ref >= threshold:
            return scale, unit
    return DURATION_UNITS[-1][1], DURATION_UNITS[-1][2]


def fmt_duration(v, unit: tuple[float, str] | None = None) -> str:
    """A duration in seconds as '521 ms', '1.03 s', '475 µs' (3 significant digits); ``unit`` from
    ``duration_unit`` to print several in one unit."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    v = float(v)
    scale, u = unit or duration_unit([v])
    x = v * scale
    return f"{x:,.0f} {u}" if abs(x) >= 100 else f"{x:.3g} {u}"


def fmt_value(col: str, v) -> str:
    """How the report prints a value of summary column ``col``: durations with a unit, percent for shares,
    dollars with a $, else 3 significant digits."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, str):
        return v
    v = float(v)
    if is_duration(col):
        return fmt_duration(v)
    if "usd" in col and "margin" not in col and "share" not in col:
        return f"${v:,.0f}" if abs(v) >= 1000 else f"${v:.3g}"
    if col in SHARE_COLUMNS or col.startswith(tuple(c + "_" for c in SHARE_COLUMNS)):
        return f"{100 * v:.1f}%"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _ci(col: str, lo: float, hi: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no CI"
    return f"95% CI {fmt_value(col, lo)} to {fmt_value(col, hi)}"


def wilson(k: float, n: float, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (nan when n == 0)."""
    if n <= 0:
        return math.nan, math.nan
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return mid - half, mid + half


def run_findings(run: RunDir, n_boot: int = N_BOOT) -> tuple[list[str], pd.DataFrame]:
    """Findings for one run, and the table of intervals behind them (platform, metric, value, ci_lo, ci_hi,
    method)."""
    s = run.summary.copy()
    out, rows = [], []
    num = {c: pd.to_numeric(s[c], errors="coerce") for c in s.columns if c not in ("platform", "kind")}
    # latency percentiles: paired bootstrap over requests
    req = run.window_requests(columns=["request_id", "platform", "ttft_s"])
    boots = {}
    if len(req) and "ttft_s" in req.columns:
        wide = req.pivot_table(index="request_id", columns="platform", values="ttft_s", aggfunc="first",
                               observed=True)
        wide = wide.reindex(columns=[p for p in run.platforms if p in wide.columns])
        boots = paired_bootstrap_quantile({p: wide[p].to_numpy(dtype=float) for p in wide.columns}, 0.99,
                                          n_boot=n_boot, seed=0)
    p99 = dict(zip(s["platform"], num.get("ttft_p99_s", pd.Series(np.nan, index=s.index)), strict=True))
    for p, v in p99.items():
        lo, hi = percentile_ci(boots.get(p, []))
        rows.append({"platform": p, "metric": "ttft_p99_s", "value": v, "ci_lo": lo, "ci_hi": hi,
                     "method": f"paired bootstrap over requests ({n_boot} resamples)"})
    finite_p99 = {p: v for p, v in p99.items() if math.isfinite(v)}
    if finite_p99:
        fastest = min(finite_p99, key=finite_p99.get)
        parts = [f"{p} {fmt_value('ttft_p99_s', v)} ({_ci('ttft_p99_s', *percentile_ci(boots.get(p, [])))})"
                 for p, v in sorted(finite_p99.items(), key=lambda kv: kv[1])]
        out.append("p99 time to first token: " + "; ".join(parts) + ".")
        for p, v in sorted(finite_p99.items(), key=lambda kv: kv[1]):
            if p == fastest:
                continue
            gap = v - finite_p99[fastest]
            lo, hi = (percentile_ci(boots[p] - boots[fastest]) if p in boots and fastest in boots
                      else (math.nan, math.nan))
            out.append(f"p99 TTFT gap, {p} minus {fastest}: {fmt_value('ttft_p99_s', gap)} ({_ci('ttft_p99_s', lo, hi)}; "
                       f"paired bootstrap over the same requests).")
    # SLO attainment: Wilson interval
    if "slo_attainment" in num and "requests" in num:
        parts = []
        for p, a, n in zip(s["platform"], num["slo_attainment"], num["requests"], strict=True):
            if math.isfinite(a) and n > 0:
                lo, hi = wilson(a * n, n)
                rows.append({"platform": p, "metric": "slo_attainment", "value": a, "ci_lo": lo, "ci_hi": hi,
                             "method": "Wilson score interval over requests"})
                parts.append(f"{p} {fmt_value('slo_attainment', a)} ({_ci('slo_attainment', lo, hi)})")
        if parts:
            out.append("Share of requests meeting every SLO of their stream: " + "; ".join(parts) + ".")
    # cost: cheapest for the customer, and sustainable for the provider? (``sustainability``)
    picked = pick_cost_column(s)
    if picked is not None:
        for p, c in zip(s["platform"], num[picked[0]], strict=True):
            rows.append({"platform": p, "metric": picked[0], "value": c, "ci_lo": math.nan, "ci_hi": math.nan,
                         "method": "single run: none"})
    return out, pd.DataFrame(rows, columns=["platform", "metric", "value", "ci_lo", "ci_hi", "method"])


def fmt_param(v) -> str:
    """A swept value as written: 4.0 -> '4', 0.25 -> '0.25', strings unchanged."""
    return f"{v:g}" if isinstance(v, float) else str(v)


def _paired_diff(points: pd.DataFrame, metric: str, a: str, b: str, point) -> tuple[float, float, float, int]:
    """Mean and t interval of metric(a) - metric(b) at ``point``, paired by replication."""
    g = points[points["point"] == point].pivot_table(index="replication", columns="platform", values=metric,
                                                     aggfunc="first", observed=True)
    if a not in g.columns or b not in g.columns:
        return math.nan, math.nan, math.nan, 0
    return t_interval((g[a] - g[b]).to_numpy(dtype=float))


def _pname(path: str, sw: SweepDir) -> str:
    """A swept YAML path in words, with its unit (the path itself is in summary.csv)."""
    return param_label(path, sw.scenario)


def _mname(metric: str) -> str:
    """A summary metric in words (``ttft_p99_s`` -> 'TTFT p99')."""
    return metric_label(metric).split(" (")[0]


def sweep_findings(sw: SweepDir, metric: str) -> list[str]:
    """Findings for a sweep on ``metric`` (and p99 TTFT when present): each platform's range across points
    with CIs, who is best how often and by how much (paired by replication), and the parameter that moves the
    metric most (tornado)."""
    s, pts = sw.summary, sw.points
    out = []
    params = [p for p in sw.parameters if p in s.columns]

    def where(row) -> str:
        return ", ".join(f"{_pname(p, sw)} = {fmt_param(row[p])}" for p in params) or f"point {row['point']}"

    for m in dict.fromkeys([metric, "ttft_p99_s"]):
        if f"{m}_mean" not in s.columns:
            continue
        for plat, g in s.groupby("platform", sort=False):
            g = g[np.isfinite(pd.to_numeric(g[f"{m}_mean"], errors="coerce"))]
            if not len(g):
                continue
            lo_r, hi_r = g.loc[g[f"{m}_mean"].idxmin()], g.loc[g[f"{m}_mean"].idxmax()]
            out.append(f"{plat}: {_mname(m)} ranges from {fmt_value(m, lo_r[f'{m}_mean'])} "
                       f"({_ci(m, lo_r.get(f'{m}_ci_lo', math.nan), lo_r.get(f'{m}_ci_hi', math.nan))}) at "
                       f"{where(lo_r)} to {fmt_value(m, hi_r[f'{m}_mean'])} "
                       f"({_ci(m, hi_r.get(f'{m}_ci_lo', math.nan), hi_r.get(f'{m}_ci_hi', math.nan))}) at "
                       f"{where(hi_r)}.")
        plats = list(dict.fromkeys(s["platform"]))
        if len(plats) > 1 and m in pts.columns:
            lower_better = not m.startswith(("slo_attainment", "throughput", "output_tok", "gross_margin",
                                             "goodput"))
            best_counts: dict[str, int] = {}
            diffs = []
            for point, g in s.groupby("point", sort=True):
                g = g[np.isfinite(pd.to_numeric(g[f"{m}_mean"], errors="coerce"))].sort_values(
                    f"{m}_mean", ascending=lower_better)
                if len(g) < 2:
                    continue
                b, r = g["platform"].iloc[0], g["platform"].iloc[1]
                best_counts[b] = best_counts.get(b, 0) + 1
                diffs.append((point, b, r, *_paired_diff(pts, m, r, b, point)))
            if best_counts:
                top = max(best_counts, key=best_counts.get)
                n_pts = sum(best_counts.values())
                word = "lowest" if lower_better else "highest"
                d = [x for x in diffs if x[1] == top]
                gaps = [x[3] for x in d if math.isfinite(x[3])]
                msg = f"{top} has the {word} {_mname(m)} at {best_counts[top]} of {n_pts} sweep points"
                if gaps:
                    k = int(np.argmin(np.abs(gaps)))
                    point, _, r, mean, lo, hi, n = [x for x in d if math.isfinite(x[3])][k]
                    msg += (f"; its narrowest lead: {r} minus {top} = {fmt_value(m, mean)} at point {point} "
                            f"({_ci(m, lo, hi)}, paired by replication, n = {n})")
                    if lo <= 0 <= hi:
                        msg += "; that interval includes zero: no clear difference there"
                out.append(msg + ".")
    swept = [p for p in params if p in pts.columns and pts[p].nunique() > 1]
    if swept and metric in pts.columns:
        tor = tornado(pts, swept, metric)
        for plat, g in tor.groupby("platform", sort=False):
            r = g.iloc[0]
            if not r["swing"] > 1e-12 * max(1.0, abs(r["base"])):
                out.append(f"{plat}: no swept parameter changes {_mname(metric)} (it stays at "
                           f"{fmt_value(metric, r['base'])}).")
                continue
            msg = (f"{plat}: {_pname(r['parameter'], sw)} moves {_mname(metric)} most, from "
                   f"{fmt_value(metric, r['at_low'])} at {fmt_param(r['low_value'])} to "
                   f"{fmt_value(metric, r['at_high'])} at {fmt_param(r['high_value'])}")
            inner = [v for v in (r["at_min"], r["at_max"]) if v not in (r["at_low"], r["at_high"])]
            if inner:  # not monotone: the extreme values alone understate the swing
                msg += (f", passing through {' and '.join(fmt_value(metric, v) for v in inner)} at a value in "
                        "between")
            out.append(msg + f" (other parameters averaged; swing {fmt_value(metric, r['swing'])}).")
    if not out:
        out.append(f"The sweep summary holds no finite values of {metric}.")
    return out


OWNED_KINDS = ("lpu", "wafer")


def _num(row: pd.Series, col: str) -> float:
    v = pd.to_numeric(row.get(col), errors="coerce")
    return float(v) if v is not None and pd.notna(v) else math.nan


def scale_fraction(sc: dict) -> float | None:
    """The share of the real traffic the scenario simulates (``workload.scale.fraction``), when stated."""
    scale = (sc.get("workload") or {}).get("scale")
    if isinstance(scale, dict):
        f = scale.get("fraction")
        if isinstance(f, int | float) and 0 < f <= 1:
            return float(f)
    return None


def margin_reason(row: pd.Series, sc: dict | None = None, short: bool = False) -> str:
    """Why a platform's margin is what it is, in words a memo can quote; ``short``: a table cell's form."""
    m = _num(row, "gross_margin")
    if not math.isfinite(m):
        return ("no provider cost: a token API's own serving cost is not public" if row.get("kind") == "token_api"
                else "no provider cost recorded")
    cust, prov = _num(row, "customer_usd_per_mtok"), _num(row, "provider_usd_per_mtok")
    util = _num(row, "utilization")
    price_cost = (f"customers pay {fmt_value('customer_usd_per_mtok', cust)} per million tokens and serving them "
                  f"costs the provider {fmt_value('provider_usd_per_mtok', prov)}")
    if row.get("kind") in OWNED_KINDS:
        units, per_h = _num(row, "units_per_replica"), _num(row, "owned_usd_per_hour")
        reps = _num(row, "replicas")
        what = "wafer system" if row.get("kind") == "wafer" else "chips"
        sized = (f"{units:g} {what}" if math.isfinite(units) else "the hardware") + \
            (f" x {reps:g} replicas" if math.isfinite(reps) and reps > 1 else "")
        frac = scale_fraction(sc or {})
        traffic = f"serving a {100 * frac:.3g} % slice of the traffic" if frac and frac < 1 else \
            "serving this scenario's traffic"
        cost_h = f" at ${per_h:,.3g}/h, amortised with power and hosting" if math.isfinite(per_h) else ""
        if short:
            full = prov * util if math.isfinite(util) and 0 < util < 1 and math.isfinite(prov) else math.nan
            s = f"owned {sized} paid by the hour, " + (f"{traffic}; " if frac and frac < 1 else "")
            s += f"busy {fmt_value('utilization', util)}" if math.isfinite(util) else "load not recorded"
            if m < 0 and math.isfinite(full):
                s += ("; price below cost even fully used" if full > cust else
                      "; would pay with more traffic on the same system")
            return s
        if m >= 0:
            return (f"owned system of {sized}{cost_h} {traffic}: {price_cost}; the price covers the hardware at "
                    f"this load")
        s = (f"an owned system sized to hold the model ({sized}{cost_h}) is paid for every hour whatever the "
             f"load, {traffic}: {price_cost}")
        if math.isfinite(util) and 0 < util < 1 and math.isfinite(prov):
            full = prov * util
            s += (f"; it is busy {fmt_value('utilization', util)} of the time, so even fully used it would cost "
                  f"about {fmt_value('provider_usd_per_mtok', full)} per million tokens (a linear estimate)"
                  + (", still above the price" if full > cust else ", below the price: more traffic on the same "
                     "system would make it pay"))
        return s
    idle = _num(row, "idle_share")
    if short:
        return ("rented GPUs billed at a mark-up over their cost" if m >= 0 else
                "provider cost above what customers pay" + (f"; idle {fmt_value('idle_share', idle)} of billed "
                                                            "time" if math.isfinite(idle) else ""))
    if m >= 0:
        return f"{price_cost}; rented GPUs are billed to the customer at a mark-up over their cost"
    s = price_cost
    if math.isfinite(idle):
        s += f"; replicas are idle {fmt_value('idle_share', idle)} of the billed time"
    return s


def sustainability(run: RunDir) -> tuple[list[str], list[list[str]]]:
    """Cheapest for the customer, and sustainable for the provider? Findings and a table (platform, SLO met,
    customer $/Mtok, provider $/Mtok, margin, sustainable?, why) over the platforms with a customer price."""
    s = run.summary
    sc = run.scenario
    rows, out = [], []
    have = s[pd.to_numeric(s.get("customer_usd_per_mtok"), errors="coerce").notna()] \
        if "customer_usd_per_mtok" in s.columns else s.iloc[0:0]
    if not len(have):
        return ["No customer $ per million tokens in this run's summary: cost findings skipped."], []
    have = have.assign(_c=pd.to_numeric(have["customer_usd_per_mtok"], errors="coerce")).sort_values("_c")
    for _, r in have.iterrows():
        m, att = _num(r, "gross_margin"), _num(r, "slo_attainment")
        sust = "–" if not math.isfinite(m) else ("yes" if m >= 0 else "no")
        rows.append([str(r["platform"]), fmt_value("slo_attainment", att),
                     fmt_value("customer_usd_per_mtok", r["_c"]),
                     fmt_value("provider_usd_per_mtok", _num(r, "provider_usd_per_mtok")),
                     fmt_value("gross_margin", m), sust, margin_reason(r, sc, short=True)])
    at_slo = have[pd.to_numeric(have.get("slo_attainment"), errors="coerce") >= SLO_TARGET] \
        if "slo_attainment" in have.columns else have
    pool, qual = (at_slo, f"among platforms meeting their SLOs for at least {SLO_TARGET:.0%} of requests") \
        if len(at_slo) else (have, f"no platform meets its SLOs for {SLO_TARGET:.0%} of requests; over all")
    best = pool.iloc[0]
    bm = _num(best, "gross_margin")
    msg = (f"Cheapest for the customer ({qual}): {best['platform']} at "
           f"{fmt_value('customer_usd_per_mtok', best['_c'])} per million tokens")
    if len(pool) > 1:
        nxt = pool.iloc[1]
        msg += f", then {nxt['platform']} at {fmt_value('customer_usd_per_mtok', nxt['_c'])}"
    if math.isfinite(bm):
        msg += (f". Sustainable for the provider? {'Yes' if bm >= 0 else 'No'}: margin "
                f"{fmt_value('gross_margin', bm)}" + ("" if bm >= 0 else f", because {margin_reason(best, sc)}"))
    else:
        msg += f". Sustainable for the provider? Not known: {margin_reason(best, sc)}"
    out.append(msg + ".")
    ok = pool[pd.to_numeric(pool.get("gross_margin"), errors="coerce") >= 0] if "gross_margin" in pool.columns \
        else pool.iloc[0:0]
    if len(ok) and ok.iloc[0]["platform"] != best["platform"]:
        o = ok.iloc[0]
        out.append(f"Cheapest that is also sustainable ({qual}): {o['platform']} at "
                   f"{fmt_value('customer_usd_per_mtok', o['_c'])} per million tokens, margin "
                   f"{fmt_value('gross_margin', _num(o, 'gross_margin'))}.")
    elif not len(ok):
        anyok = have[pd.to_numeric(have.get("gross_margin"), errors="coerce") >= 0] \
            if "gross_margin" in have.columns else have.iloc[0:0]
        if len(anyok):
            o = anyok.iloc[0]
            out.append(f"No platform meeting its SLOs for {SLO_TARGET:.0%} of requests has a positive margin; "
                       f"the cheapest sustainable one is {o['platform']} at "
                       f"{fmt_value('customer_usd_per_mtok', o['_c'])} (margin "
                       f"{fmt_value('gross_margin', _num(o, 'gross_margin'))}, SLO met "
                       f"{fmt_value('slo_attainment', _num(o, 'slo_attainment'))}).")
    for _, r in have.iterrows():
        m = _num(r, "gross_margin")
        if math.isfinite(m) and m < 0 and r["platform"] != best["platform"]:
            out.append(f"{r['platform']} loses money (margin {fmt_value('gross_margin', m)}): "
                       f"{margin_reason(r, sc)}.")
    out.append("No confidence interval from a single run: the bill is one realisation of the fleet; "
               f"replicate with other seeds for one ({_replication_hint(run)}).")
    return out, rows


def _replication_hint(run: RunDir) -> str:
    from infersim.report.charts import replication_command

    return f"`{replication_command(run)}`"


SUSTAINABILITY_HEAD = ["platform", "SLO met", "customer $/Mtok", "provider $/Mtok", "margin", "sustainable?",
                       "why"]
