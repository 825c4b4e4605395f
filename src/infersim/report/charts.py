"""Charts of one run (a directory from ``infersim run --out``). Each function draws from the results tables,
writes ``<out_dir>/<name>.png`` and ``.svg`` and returns the DataFrame it plotted (``attrs['paths']``,
``attrs['notes']``). A chart that the tables cannot support raises ``ChartSkipped`` with the reason.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from infersim.core.errors import InfersimError
from infersim.report.load import RunDir
from infersim.report.stats import pareto_mask
from infersim.report.style import TALL, WIDE, footnote, log_axis, new_figure, save_figure, series_style

#: Cost columns for "cost vs latency", in order of preference: what the customer pays per million tokens,
#: what serving costs the platform per million tokens, then the fleet's whole-run bill.
COST_COLUMNS = (("customer_usd_per_mtok", "customer $ per million tokens (USD)"),
                ("provider_usd_per_mtok", "provider cost $ per million tokens (USD)"),
                ("cost_usd", "fleet cost of the run (USD)"))
CDF_QUANTILES = np.linspace(0.0, 1.0, 1001)


class ChartSkipped(InfersimError):
    """The tables hold nothing this chart could show (the message says why)."""


def _finish(df: pd.DataFrame, fig, out_dir: Path, name: str, notes: list[str], res) -> pd.DataFrame:
    """Footnote (``notes``) and provenance line (``res.provenance``), then both files; ``df`` annotated."""
    footnote(fig, "; ".join(notes), provenance=res.provenance)
    df.attrs["paths"] = [str(p) for p in save_figure(fig, out_dir, name)]
    df.attrs["notes"] = list(notes)
    return df


#: The two sides of the bill in $ per million tokens, with their bar labels.
USD_MEASURES = (("customer_usd_per_mtok", "customer pays"), ("provider_usd_per_mtok", "provider cost"))


def _has_finite(summary: pd.DataFrame, col: str) -> bool:
    return col in summary.columns and bool(np.isfinite(pd.to_numeric(summary[col], errors="coerce")).any())


def pick_cost_column(summary: pd.DataFrame, suffix: str = "") -> tuple[str, str] | None:
    """The first of ``COST_COLUMNS`` whose column (+ ``suffix``, e.g. ``_mean`` in a sweep summary) has a
    finite value for some platform: (column without the suffix, axis label)."""
    for col, label in COST_COLUMNS:
        if _has_finite(summary, col + suffix):
            return col, label
    return None


def usd_measures(summary: pd.DataFrame, suffix: str = "") -> list[tuple[str, str]]:
    """The ``USD_MEASURES`` present (column + ``suffix`` with a finite value)."""
    return [(c, lbl) for c, lbl in USD_MEASURES if _has_finite(summary, c + suffix)]


def latency_cdf(run: RunDir, out_dir: Path) -> pd.DataFrame:
    """Empirical CDFs of TTFT and E2E (seconds, log axis) per platform, over finished requests that arrived
    in the measurement window (the rows the summary's percentiles use, so the curve at 0.99 is
    ``ttft_p99_s``). Returned: platform, metric (ttft_s | e2e_s), cdf, value_s at 1001 evenly spaced
    quantiles (numpy's linear interpolation, as the summary)."""
    req = run.window_requests(columns=["platform", "ttft_s", "e2e_s"])
    if not len(req):
        raise ChartSkipped("no finished requests in the measurement window")
    fig, axes = new_figure(WIDE, 1, 2, sharey=True)
    rows, notes = [], ["markers at the 50th, 90th and 99th percentiles; grey horizontal line: 99%"]
    slos = {s.get("name"): s.get("slo") or {} for s in run.scenario.get("workload", {}).get("streams", [])}
    for ax, (metric, title, slo_key) in zip(axes[0], (("ttft_s", "Time to first token", "ttft"),
                                                     ("e2e_s", "End-to-end latency", "e2e")), strict=True):
        for i, plat in enumerate(run.platforms):
            v = req.loc[req["platform"] == plat, metric].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if not v.size:
                notes.append(f"{plat}: no finished requests for {metric}")
                continue
            qv = np.quantile(v, CDF_QUANTILES)
            rows.append(pd.DataFrame({"platform": plat, "metric": metric, "cdf": CDF_QUANTILES, "value_s": qv}))
            st = series_style(i)
            ax.plot(np.maximum(qv, 1e-4), CDF_QUANTILES, color=st["color"], linestyle=st["linestyle"],
                    marker=st["marker"], markevery=[500, 900, 990], lw=1.8, ms=6, label=plat)
        for sname, slo in slos.items():
            if slo.get(slo_key):
                ax.axvline(slo[slo_key], color="#555555", lw=0.9, ls=(0, (2, 2)))
                ax.annotate(f"SLO {sname}", (slo[slo_key], 0.02), rotation=90, fontsize=8, color="#333333",
                            xytext=(3, 0), textcoords="offset points", va="bottom")
        log_axis(ax)
        ax.set_title(title)
        ax.set_xlabel(f"{'TTFT' if metric == 'ttft_s' else 'E2E latency'} (seconds, log scale)")
        ax.set_ylim(0, 1.005)
        ax.axhline(0.99, color="#999999", lw=0.6)
    axes[0][0].set_ylabel("share of finished requests at or below")
    lo, hi = run.window()
    fig.suptitle(f"Latency per platform (arrivals {lo:g}-{hi:g} s)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    axes[0][-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="platform",
                       frameon=False)
    if not rows:
        raise ChartSkipped("no finished requests with a latency")
    return _finish(pd.concat(rows, ignore_index=True), fig, out_dir, "latency_cdf", notes, run)


def _label_points(ax, xs, ys, labels) -> None:
    for x, y, s in zip(xs, ys, labels, strict=True):
        ax.annotate(s, (x, y), xytext=(6, 5), textcoords="offset points", fontsize=9)


def cost_latency(run: RunDir, out_dir: Path, latency: str = "ttft_p99_s") -> pd.DataFrame:
    """Cost (``pick_cost_column``) against a latency percentile (seconds; default p99 TTFT), one point per
    platform; the Pareto frontier (cheaper or faster than every other, both minimised) is joined and marked.
    Returned: platform, latency_s, cost, cost_column, pareto."""
    s = run.summary
    picked = pick_cost_column(s)
    if picked is None:
        raise ChartSkipped("no cost column (" + ", ".join(c for c, _ in COST_COLUMNS) + ") has a value")
    if latency not in s.columns:
        raise ChartSkipped(f"summary has no '{latency}'")
    col, label = picked
    df = pd.DataFrame({"platform": s["platform"], "latency_s": pd.to_numeric(s[latency], errors="coerce"),
                       "cost": pd.to_numeric(s[col], errors="coerce"), "cost_column": col})
    notes = [f"{p}: no {col if not math.isfinite(c) else latency}, not shown"
             for p, c, lat in zip(df["platform"], df["cost"], df["latency_s"], strict=True)
             if not (math.isfinite(c) and math.isfinite(lat))]
    df["pareto"] = pareto_mask(df["latency_s"], df["cost"])
    fig, axes = new_figure(WIDE)
    ax = axes[0][0]
    _draw_cost_latency(ax, df, "platform")
    ax.set_xlabel(f"{_latency_label(latency)} (seconds{', log scale' if ax.get_xscale() == 'log' else ''})")
    ax.set_ylabel(label)
    ax.set_title(f"Cost vs {_latency_label(latency)} per platform (lower-left is better)")
    return _finish(df, fig, out_dir, "cost_latency", notes, run)


def _latency_label(col: str) -> str:
    parts = col.removesuffix("_s").split("_")
    return f"{parts[0].upper()} {parts[1]}" if len(parts) == 2 else col


def _draw_cost_latency(ax, df: pd.DataFrame, label_col: str) -> None:
    ok = np.isfinite(df["latency_s"]) & np.isfinite(df["cost"])
    plats = list(dict.fromkeys(df["platform"]))
    for i, plat in enumerate(plats):
        g = df[ok & (df["platform"] == plat)]
        st = series_style(i)
        ax.scatter(g["latency_s"], g["cost"], s=60, color=st["color"], marker=st["marker"], label=plat,
                   edgecolor="black", linewidth=0.6, zorder=3)
    front = df[ok & df["pareto"]].sort_values("latency_s")
    if len(front):
        ax.plot(front["latency_s"], front["cost"], drawstyle="steps-post", color="black", lw=1.2, ls="--",
                marker="o", ms=15, mfc="none", mew=1.2, zorder=4, label="Pareto frontier (circled)")
    if ok.sum() <= 12:
        _label_points(ax, df.loc[ok, "latency_s"], df.loc[ok, "cost"], df.loc[ok, label_col].astype(str))
    xs = df.loc[ok, "latency_s"]
    if len(xs) and xs.min() > 0 and xs.max() / xs.min() > 10:  # log only when latencies span a decade
        log_axis(ax)
    ax.margins(x=0.15, y=0.15)
    ax.legend(loc="best", fontsize=9, framealpha=0.9)


def replication_command(run: RunDir, replications: int = 5) -> str:
    """A sweep command that replicates this run with other seeds and that ``infersim sweep`` accepts: the
    scenario's own duration as the single swept value, ``replications`` seeds (docs/sweeps.md: sweeping
    ``seed`` itself refuses replications)."""
    f = run.meta.get("scenario_file") or run.scenario.get("name", "SCENARIO") + ".yaml"
    try:
        f = str(Path(f).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        pass
    dur = run.window()[1]
    return (f"infersim sweep {f} --set duration={dur:g}s --replications {replications} "
            f"--out {run.path.name}-seeds")


def usd_per_mtok(run: RunDir, out_dir: Path) -> pd.DataFrame:
    """Customer price and provider cost in $ per million tokens (input + output of finished requests) per
    platform, as horizontal bars. A single run has no confidence interval for these: the bill is one
    realisation of the fleet, so ``ci_lo``/``ci_hi`` are nan and the chart says so (sweep over ``seed`` with
    replications for one). Returned: platform, measure, usd_per_mtok, ci_lo, ci_hi."""
    s = run.summary
    measures = usd_measures(s)
    if not measures:
        raise ChartSkipped("no customer_usd_per_mtok or provider_usd_per_mtok in the summary")
    rows = [{"platform": p, "measure": c, "usd_per_mtok": float(v), "ci_lo": math.nan, "ci_hi": math.nan}
            for c, _ in measures for p, v in zip(s["platform"], pd.to_numeric(s[c], errors="coerce"), strict=True)]
    df = pd.DataFrame(rows)
    notes = ["single run: no confidence interval (one realisation of the bill); for one, replicate the run "
             f"with other seeds: {replication_command(run)}"]
    what = dict(USD_MEASURES)
    notes += [f"{r.platform}: {what[r.measure]} not known" + (" (a token API's own cost is not public)"
                                                             if r.measure == "provider_usd_per_mtok" else "")
              for r in df.itertuples() if not math.isfinite(r.usd_per_mtok)]
    fig = draw_bars(df, "platform", measures, "Dollars per million tokens per platform (input + output, whole run)")
    return _finish(df, fig, out_dir, "usd_per_mtok", notes, run)


def draw_bars(df: pd.DataFrame, label_col: str, measures, title: str):
    """Horizontal bars of ``usd_per_mtok`` per ``label_col`` and measure, with ``ci_lo``/``ci_hi`` whiskers
    where finite; returns the figure."""
    labels = list(dict.fromkeys(df[label_col]))
    fig, axes = new_figure((WIDE[0], max(3.2, min(9.0, 1.2 + 0.45 * len(labels) * len(measures)))))
    ax = axes[0][0]
    h = 0.8 / len(measures)
    y = np.arange(len(labels))
    for k, (col, lbl) in enumerate(measures):
        g = df[df["measure"] == col].set_index(label_col).reindex(labels)
        v = g["usd_per_mtok"].to_numpy(dtype=float)
        err = np.vstack([v - g["ci_lo"].to_numpy(float), g["ci_hi"].to_numpy(float) - v])
        st = series_style(k)
        ax.barh(y + (k - (len(measures) - 1) / 2) * h, np.nan_to_num(v), height=h * 0.9, color=st["color"],
                hatch=("", "//", "..")[k % 3], edgecolor="black", lw=0.6, label=lbl,
                xerr=np.where(np.isfinite(err), err, 0) if np.isfinite(err).any() else None, capsize=4)
        ends = np.fmax(v, g["ci_hi"].to_numpy(float))  # label past the whisker
        for yy, vv, end in zip(y + (k - (len(measures) - 1) / 2) * h, v, ends, strict=True):
            ax.annotate(f"${vv:,.3g}" if math.isfinite(vv) else "not reported", (end if math.isfinite(vv) else 0, yy),
                        xytext=(5, 0), textcoords="offset points", va="center", fontsize=9,
                        color="black" if math.isfinite(vv) else "#555555")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("USD per million tokens")
    ax.set_title(title)
    ax.margins(x=0.18)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return fig


def _accrual_share(t: np.ndarray, gpu_h: np.ndarray | None, end_s: float) -> np.ndarray:
    """Share of a run total accrued by each time: billed GPU-hours so far over the run's (autoscaled), or
    elapsed time over the run's length (fixed replicas, billed throughout)."""
    if gpu_h is not None and len(gpu_h) and np.isfinite(gpu_h[-1]) and gpu_h[-1] > 0:
        return gpu_h / gpu_h[-1]
    return np.clip(t / end_s, 0.0, 1.0) if end_s > 0 else np.zeros_like(t)


#: the two accrued dollar series of the fleet timeline: summary column, line style, label
ACCRUED = (("customer_usd", "-", "customer pays"), ("provider_cost_usd", "--", "provider cost"))


def _arrivals_once(run: RunDir) -> np.ndarray:
    """Each request's arrival time once, from its first row (``requests.drop_duplicates("request_id")``), read
    a row group at a time: two columns and a seen-flag per request, never the whole table."""
    seen = np.zeros(0, bool)
    out = []
    for chunk in run.iter_requests(["request_id", "arrival_s"]):
        ids = chunk["request_id"].to_numpy()
        if not len(ids):
            continue
        if ids.max() >= len(seen):
            seen = np.concatenate([seen, np.zeros(int(ids.max()) + 1 - len(seen), bool)])
        _, first = np.unique(ids, return_index=True)  # first row of each id in the chunk
        first = np.sort(first[~seen[ids[first]]])
        seen[ids[first]] = True
        out.append(chunk["arrival_s"].to_numpy(dtype=float)[first])
    return np.concatenate(out) if out else np.zeros(0)


def fleet_timeline(run: RunDir, out_dir: Path, bin_s: float | None = None) -> pd.DataFrame:
    """Four panels over simulated time (seconds): workload arrivals (req/s, from requests.parquet), replicas
    by state, queued requests, and dollars accrued, per platform (deployments summed). Autoscaled deployments
    come from fleet.parquet; platforms with fixed replicas only from timeline.parquet (replicas sampled,
    ``waiting`` summed as queue). The dollar panel shows both sides of the run table: what the customer pays
    and what serving costs the provider, each the run's total accrued in proportion to the billed GPU-hours so
    far (evenly over the run for fixed replicas). Returned long table: platform, series, t_s, value (series
    ``cost_usd`` is the fleet's GPU bill as sampled in fleet.parquet)."""
    fleet, tl = run.fleet, run.timeline
    if not len(fleet) and not len(tl):
        raise ChartSkipped("no fleet.parquet or timeline.parquet samples (no replicas to show)")
    rows, notes = [], []
    # workload: arrivals per second, each request once
    arr = _arrivals_once(run)
    if bin_s is None:
        span = float(np.nanmax(arr)) if arr.size else 1.0
        bin_s = max(1.0, float(np.ceil(span / 120)))
    edges = np.arange(0.0, (np.nanmax(arr) if arr.size else 0.0) + 2 * bin_s, bin_s)
    cnt, _ = np.histogram(arr, edges)
    full = edges[1:] <= (np.nanmax(arr) if arr.size else 0.0) + 1e-9  # a partial last bin would read low
    rows.append(pd.DataFrame({"platform": "(workload)", "series": "arrivals_per_s",
                              "t_s": (edges[:-1] + bin_s / 2)[full], "value": (cnt / bin_s)[full]}))
    fl_plats = set(fleet["platform"].astype(str)) if len(fleet) else set()
    summary = run.summary.set_index("platform")

    def accrued(plat: str, t: np.ndarray, gpu_h: np.ndarray | None) -> None:
        srow = summary.loc[plat]
        end = float(pd.to_numeric(srow.get("sim_end_s"), errors="coerce"))
        if not math.isfinite(end) or end <= 0:
            return
        keep = t < end
        t = np.append(t[keep], end)
        if gpu_h is not None:
            gpu_h = np.append(gpu_h[keep], gpu_h[keep][-1] if keep.any() else 0.0)
        share = _accrual_share(t, gpu_h, end)
        for col, _, _ in ACCRUED:
            total = float(pd.to_numeric(srow.get(col), errors="coerce"))
            if math.isfinite(total):
                rows.append(pd.DataFrame({"platform": plat, "series": col, "t_s": t, "value": total * share}))

    for plat in run.platforms:
        if plat in fl_plats:
            g = fleet[fleet["platform"].astype(str) == plat].groupby("t_s", sort=True)
            sums = g[["ready", "starting", "loading", "draining", "queued", "cost_usd", "gpu_hours"]].sum()
            sums["not_ready"] = sums["starting"] + sums["loading"]
            for ser in ("ready", "not_ready", "draining", "queued", "cost_usd"):
                rows.append(pd.DataFrame({"platform": plat, "series": ser, "t_s": sums.index, "value":
                                          sums[ser].to_numpy(dtype=float)}))
            accrued(plat, sums.index.to_numpy(dtype=float), sums["gpu_hours"].to_numpy(dtype=float))
        elif len(tl) and (tl["platform"].astype(str) == plat).any():
            g = tl[tl["platform"].astype(str) == plat].groupby("t_s", sort=True)
            rows.append(pd.DataFrame({"platform": plat, "series": "ready", "t_s": g.size().index,
                                      "value": g.size().to_numpy(dtype=float)}))
            rows.append(pd.DataFrame({"platform": plat, "series": "queued", "t_s": g.size().index,
                                      "value": g["waiting"].sum().to_numpy(dtype=float)}))
            accrued(plat, g.size().index.to_numpy(dtype=float), None)
        else:
            notes.append(f"{plat}: no replica samples (a token API has none)")
    df = pd.concat(rows, ignore_index=True)
    fig, axes = new_figure(TALL, 4, 1, sharex=True)
    a0, a1, a2, a3 = axes[:, 0]
    w = df[df["series"] == "arrivals_per_s"]
    a0.step(w["t_s"], w["value"], where="mid", color="black", lw=1.4)
    a0.set_ylabel("arrivals\n(requests/s)")
    a0.set_title(f"Workload arrivals ({bin_s:g} s bins)", fontsize=11, loc="left")
    states = (("ready", "-", "ready"), ("not_ready", "--", "starting or loading"), ("draining", ":", "draining"))
    # platforms whose replica counts coincide would draw one line over another: those (only those) are drawn a
    # small offset apart (a tenth of a replica at most, said in the footnote) so every line stays visible
    counts = {p: set(df[(df["platform"] == p) & (df["series"] == "ready")]["value"].round(6))
              for p in run.platforms}
    drawn = [p for p in run.platforms if counts[p] and any(counts[p] & counts[q] for q in run.platforms if q != p)]
    dodge = {p: (k - (len(drawn) - 1) / 2) * min(0.1, 0.3 / max(len(drawn), 1)) for k, p in enumerate(drawn)}
    for i, plat in enumerate(run.platforms):
        st = series_style(i)
        p = df[df["platform"] == plat]
        n_ready = len(p[p["series"] == "ready"])
        every = (i % max(1, n_ready // 12), max(1, n_ready // 12))  # markers staggered between platforms
        for ser, ls, lbl in states:
            s = p[p["series"] == ser]
            if len(s) and (ser == "ready" or s["value"].any()):
                a1.step(s["t_s"], s["value"] + dodge.get(plat, 0.0), where="post", color=st["color"], ls=ls,
                        lw=1.6, marker=st["marker"] if ser == "ready" else None, markevery=every, ms=5,
                        label=f"{plat}: {lbl}")
        s = p[p["series"] == "queued"]
        if len(s):
            a2.plot(s["t_s"], s["value"], color=st["color"], ls=st["linestyle"], marker=st["marker"],
                    markevery=every, ms=5, lw=1.3, label=plat)
        for col, ls, lbl in ACCRUED:
            s = p[p["series"] == col]
            if len(s):
                a3.plot(s["t_s"], s["value"], color=st["color"], ls=ls, lw=1.4 if ls == "-" else 1.2,
                        marker=st["marker"] if ls == "-" else None, markevery=every, ms=5, label=f"{plat}: {lbl}")
    a1.set_ylabel("replicas")
    a1.set_title("Replicas by state", fontsize=11, loc="left")
    a1.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5, frameon=False)
    a2.set_ylabel("queued\n(requests)")
    a2.set_title("Requests waiting for a replica", fontsize=11, loc="left")
    a3.set_ylabel("accrued\n(USD)")
    a3.set_title("Accrued: customer pays (solid) and provider cost (dashed)", fontsize=11, loc="left")
    notes.append("dollars: each platform's run totals (run table: customer pays, provider cost) accrued in "
                 "proportion to billed GPU-hours (evenly for fixed replicas)")
    if len(drawn) > 1:
        notes.append(f"replica lines of {', '.join(drawn)} drawn up to 0.1 replica apart so equal counts stay "
                     "visible")
    a3.set_xlabel("simulated time (seconds)")
    for ax in (a2, a3):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5, frameon=False)
    fig.suptitle("Fleet over time: load, replicas, queue and dollars")
    return _finish(df, fig, out_dir, "fleet_timeline", notes, run)


RUN_CHARTS = {"latency_cdf": latency_cdf, "cost_latency": cost_latency, "usd_per_mtok": usd_per_mtok,
              "fleet_timeline": fleet_timeline}
