"""Charts of a sweep directory (``infersim sweep --out``): a metric against each swept value with 95 % CI
bands, a heatmap over two swept values, a tornado of which parameters move the metric most, cost vs p99
latency per point x platform with the Pareto frontier, and $ per million tokens with CIs across replications.
Each function returns the DataFrame it plotted (``attrs['paths']``, ``attrs['notes']``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from infersim.report.charts import (
    ChartSkipped,
    _draw_cost_latency,
    _finish,
    draw_bars,
    pick_cost_column,
    usd_measures,
)
from infersim.report.load import SweepDir
from infersim.report.stats import levels, marginal, pareto_mask, tornado
from infersim.report.style import OKABE_ITO, TALL, WIDE, new_figure, series_style

MAX_PANELS = 4
MAX_BARS = 40

METRIC_LABELS = {
    "customer_usd_per_mtok": "customer $ per million tokens (USD)",
    "provider_usd_per_mtok": "provider cost $ per million tokens (USD)",
    "cost_usd": "fleet cost of the run (USD)", "gross_margin": "gross margin (fraction of revenue)",
    "slo_attainment": "SLO attainment (share of requests)", "utilization": "utilization (busy share)",
    "throughput_req_s": "throughput (requests/s)", "output_tok_s": "output tokens/s",
    "output_tok_s_per_user": "output tokens/s per user (median)", "gpu_hours": "GPU-hours",
}


def metric_label(metric: str) -> str:
    """Axis label with units for a summary metric name (latency percentiles in seconds)."""
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    parts = metric.removesuffix("_s").split("_")
    if metric.endswith("_s") and len(parts) == 2:
        return f"{parts[0].upper()} {parts[1]} (seconds)"
    return metric


def metric_short(metric: str) -> str:
    """A short title form of a metric's label (no units in brackets)."""
    return metric_label(metric).split(" (")[0].capitalize()


#: Readable names, with units, of scenario fields a sweep varies (by the last name of the YAML path). Values
#: of duration-like fields are stored in seconds, rates per second, prices in USD.
PARAM_LABELS = {
    "duration": "simulated duration (s)", "warmup": "warm-up (s)", "drain": "drain (s)", "seed": "seed",
    "rate": "arrival rate (requests/s)", "peak_rate": "peak arrival rate (requests/s)",
    "trough_rate": "trough arrival rate (requests/s)", "share": "share of the workload",
    "rate_scale": "trace rate multiplier (x)", "replicas": "replicas", "min_replicas": "minimum replicas",
    "max_replicas": "maximum replicas", "concurrency_target": "concurrency target per replica (requests)",
    "target_utilization": "target utilization (share)", "scale_down_delay": "scale-down delay (s)",
    "usd_per_gpu_hour": "price ($ per GPU-hour)", "input_usd_per_mtok": "input price ($ per million tokens)",
    "output_usd_per_mtok": "output price ($ per million tokens)", "max_num_seqs": "max concurrent sequences",
    "max_batched_tokens": "max batched tokens per step", "tp": "tensor parallelism (GPUs)",
    "pp": "pipeline parallelism (stages)", "chips": "chips per replica", "systems": "systems per replica",
    "threshold": "router threshold", "ttft": "TTFT target (s)", "tpot": "TPOT target (s)", "e2e": "E2E target (s)",
    "median": "median tokens", "p99": "p99 tokens", "tokens": "prefix tokens", "unit": "billing unit (s)",
}


def param_label(path: str, scenario: dict | None = None) -> str:
    """A swept YAML path as a name with units: ``platforms[0].deployments[1].replicas`` -> ``replicas
    (platform baseten-h100, deployment big)`` (names from the scenario when given, else positions)."""
    import re

    parts = path.split(".")
    last = re.sub(r"\[\d+\]$", "", parts[-1])
    name = PARAM_LABELS.get(last, last.replace("_", " "))
    ctx, node = [], scenario or {}
    for seg in parts[:-1]:
        m = re.fullmatch(r"(\w+)\[(\d+)\]", seg)
        key, idx = (m.group(1), int(m.group(2))) if m else (seg, None)
        child = node.get(key) if isinstance(node, dict) else None
        if idx is not None:
            item = child[idx] if isinstance(child, list) and idx < len(child) else None
            label = (item or {}).get("name") if isinstance(item, dict) else None
            ctx.append(f"{key.rstrip('s')} {label or idx + 1}")
            node = item or {}
        else:
            if key in ("router", "token_api", "sweep"):
                ctx.append(key.replace("_", " "))
            node = child or {}
    base, _, unit = name.partition(" (")
    return (f"{base}, {', '.join(ctx)}" + (f" ({unit}" if unit else "")) if ctx else name


def short_param(path: str) -> str:
    """The last name of a dotted parameter path (``platforms[0].deployments[1].replicas`` -> ``replicas``)."""
    return path.split(".")[-1]


def _swept(res: SweepDir, min_values: int = 2) -> list[str]:
    pts = res.points
    return [p for p in res.parameters if p in pts.columns and pts[p].nunique() >= min_values]


def _numeric_x(values: pd.Series) -> tuple[np.ndarray, list | None]:
    """Plot positions for parameter values: the values when numeric, else 0..k-1 with tick labels."""
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float), None
    cats = list(dict.fromkeys(values.astype(str)))
    return np.array([cats.index(str(v)) for v in values], dtype=float), cats


def sweep_lines(res: SweepDir, out_dir: Path, metric: str) -> pd.DataFrame:
    """``metric`` against each swept parameter (one panel per parameter, up to 4), a line per platform with
    its 95 % CI band across replications; other parameters averaged (``stats.marginal``). Returned: platform,
    parameter, value, mean, ci_lo, ci_hi, n."""
    params = _swept(res)
    if not params:
        raise ChartSkipped("no swept parameter takes two or more values")
    notes = list(res.notes)
    if len(params) > MAX_PANELS:
        notes.append(f"first {MAX_PANELS} of {len(params)} parameters shown")
        params = params[:MAX_PANELS]
    ncols = min(2, len(params))
    nrows = math.ceil(len(params) / ncols)
    fig, axes = new_figure(WIDE if nrows == 1 else TALL, nrows, ncols, sharey=True)
    frames = []
    plats = res.platforms
    for k, p in enumerate(params):
        ax = axes[k // ncols][k % ncols]
        mg = marginal(res.points, p, metric)
        mg = mg.rename(columns={p: "value"}).assign(parameter=p)
        frames.append(mg)
        for i, plat in enumerate(plats):
            g = mg[mg["platform"] == plat].sort_values("value")
            if not len(g):
                continue
            x, cats = _numeric_x(g["value"])
            st = series_style(i)
            ax.plot(x, g["mean"], color=st["color"], ls=st["linestyle"], marker=st["marker"], ms=6, lw=1.8,
                    label=plat)
            if np.isfinite(g["ci_lo"]).any():
                ax.fill_between(x, g["ci_lo"], g["ci_hi"], color=st["color"], alpha=0.18, lw=0)
                ax.plot(x, g["ci_lo"], color=st["color"], lw=0.7, ls=":")
                ax.plot(x, g["ci_hi"], color=st["color"], lw=0.7, ls=":")
            if cats:
                ax.set_xticks(range(len(cats)), cats)
            elif g["value"].nunique() <= 8:
                ax.set_xticks(sorted(set(x)), [f"{v:g}" for v in sorted(set(x))])
        ax.set_xlabel(param_label(p, res.scenario), fontsize=9.5)
        if k % ncols == 0:
            ax.set_ylabel(metric_label(metric))
    for k in range(len(params), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    axes[0][-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="platform",
                       frameon=False)
    fig.suptitle(f"{metric_short(metric)} vs each swept value (95% CI bands)")
    df = pd.concat(frames, ignore_index=True)[["platform", "parameter", "value", "mean", "ci_lo", "ci_hi", "n"]]
    if (df["n"] < 2).all():
        notes.append("one replication per point: no CI bands")
    return _finish(df, fig, out_dir, "sweep_lines", notes, res)


def sweep_heatmap(res: SweepDir, out_dir: Path, metric: str) -> pd.DataFrame:
    """Mean ``metric`` over the first two swept parameters (rows x columns), one panel per platform (up to 4),
    each cell annotated with its value; other parameters and replications averaged. Returned: platform,
    the two parameter columns, mean."""
    params = _swept(res)
    if len(params) < 2:
        raise ChartSkipped("needs two swept parameters with two or more values each")
    p1, p2 = params[:2]
    pts = res.points.copy()
    pts[p1], pts[p2] = levels(pts[p1]), levels(pts[p2])
    df = pts.groupby(["platform", p1, p2], observed=True)[metric].mean().reset_index(name="mean")
    plats = res.platforms[:MAX_PANELS]
    notes = list(res.notes) + ([f"first {MAX_PANELS} platforms shown"] if len(res.platforms) > MAX_PANELS else [])
    ncols = min(2, len(plats))
    nrows = math.ceil(len(plats) / ncols)
    fig, axes = new_figure(WIDE if nrows == 1 else TALL, nrows, ncols)
    vmin, vmax = np.nanmin(df["mean"]), np.nanmax(df["mean"])
    im = None
    for k, plat in enumerate(plats):
        ax = axes[k // ncols][k % ncols]
        grid = df[df["platform"] == plat].pivot(index=p1, columns=p2, values="mean").sort_index().sort_index(axis=1)
        im = ax.imshow(grid.to_numpy(dtype=float), cmap="cividis", vmin=vmin, vmax=vmax, aspect="auto",
                       origin="lower")
        ax.grid(False)
        ax.set_xticks(range(grid.shape[1]), [f"{v:g}" if isinstance(v, float) else str(v) for v in grid.columns],
                      fontsize=8.5, rotation=30)
        ax.set_yticks(range(grid.shape[0]), [f"{v:g}" if isinstance(v, float) else str(v) for v in grid.index],
                      fontsize=8.5)
        for (r, c), v in np.ndenumerate(grid.to_numpy(dtype=float)):
            if math.isfinite(v):
                red, green, blue, _ = im.cmap(im.norm(v))
                light = 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.5  # text contrasting the cell
                ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=10, fontweight="bold",
                        color="black" if light else "white")
        ax.set_title(plat, fontsize=11)
        ax.set_xlabel(param_label(p2, res.scenario), fontsize=9)
        ax.set_ylabel(param_label(p1, res.scenario), fontsize=9)
    for k in range(len(plats), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fig.colorbar(im, ax=axes.ravel().tolist(), label=metric_label(metric), shrink=0.9)
    fig.suptitle(f"{metric_short(metric)} over two swept values (mean across replications)")
    return _finish(df, fig, out_dir, "sweep_heatmap", notes, res)


def tornado_chart(res: SweepDir, out_dir: Path, metric: str) -> pd.DataFrame:
    """Which swept parameters move ``metric`` most: per platform, a bar from the parameter's lowest-value
    marginal mean (hatched) to its highest-value one (solid), around the overall mean; sorted by swing.
    Method in ``stats.tornado``. Returned: its table (platform, parameter, low/high value, at_low, at_high,
    base, swing)."""
    params = _swept(res)
    if not params:
        raise ChartSkipped("no swept parameter takes two or more values")
    df = tornado(res.points, params, metric)
    plats = res.platforms[:MAX_PANELS]
    notes = list(res.notes) + ["bars: mean at the lowest (hatched) and highest (solid) value, other parameters "
                               "averaged; dots: the means at every swept value; vertical line: overall mean; "
                               "one x-axis for all panels"]
    nrows, ncols = len(plats), 1  # one panel per platform, stacked: the long parameter names share one margin
    # one x-axis for every panel: a parameter that moves one platform by 0.6 % must not fill its panel
    fig, axes = new_figure((WIDE[0], min(13.0, max(WIDE[1], 1.2 + (0.9 + 0.55 * len(params)) * nrows))),
                           nrows, ncols, sharex=True)
    for k, plat in enumerate(plats):
        ax = axes[k // ncols][k % ncols]
        g = df[df["platform"] == plat].iloc[::-1]
        y = np.arange(len(g))
        base = float(g["base"].iloc[0]) if len(g) else 0.0
        ax.barh(y, g["at_low"] - base, left=base, height=0.6, color=OKABE_ITO[1], hatch="//", edgecolor="black",
                lw=0.6, label="at lowest value")
        ax.barh(y, g["at_high"] - base, left=base, height=0.6, color=OKABE_ITO[0], edgecolor="black", lw=0.6,
                alpha=0.85, label="at highest value")
        ax.axvline(base, color="black", lw=1)
        for yy, lv in zip(y, g["levels"], strict=True):  # every level: a dip or peak between the extremes shows
            ax.plot(lv, [yy] * len(lv), ls="none", marker="o", ms=3.5, color="black", zorder=3)
        for yy, lo_v, hi_v in zip(y, g["at_low"], g["at_high"], strict=True):
            for v in (lo_v, hi_v):
                ax.annotate(f"{v:.3g}", (v, yy), xytext=(4 if v >= base else -4, 0), textcoords="offset points",
                            ha="left" if v >= base else "right", va="center", fontsize=8.5)
        ax.set_yticks(y, [f"{p}\n({lo:g} → {hi:g})" if isinstance(lo, int | float) else f"{p}\n({lo} → {hi})"
                          for p, lo, hi in zip(g["parameter"], g["low_value"], g["high_value"], strict=True)],
                      fontsize=8.5)
        ax.set_title(plat, fontsize=11, loc="left", fontweight="bold")
        if k == len(plats) - 1:
            ax.set_xlabel(metric_label(metric))
        ax.tick_params(labelbottom=True)
        ax.margins(x=0.35)
        if k == 0:
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=9, frameon=False)
    for k in range(len(plats), axes.size):
        axes.ravel()[k].set_visible(False)
    fig.suptitle(f"What moves {metric_short(metric).lower()} most")
    return _finish(df, fig, out_dir, "tornado", notes, res)


def sweep_cost_latency(res: SweepDir, out_dir: Path, metric: str, latency: str = "ttft_p99_s") -> pd.DataFrame:
    """Mean cost against mean p99 TTFT, one point per point x platform; Pareto frontier over all of them.
    Returned: platform, point, latency_s, cost, cost_column, pareto."""
    s = res.summary
    picked = pick_cost_column(s, "_mean")
    col = picked[0] if picked else None
    if col is None or f"{latency}_mean" not in s.columns:
        raise ChartSkipped(f"sweep summary lacks a cost mean or {latency}_mean")
    df = pd.DataFrame({"platform": s["platform"], "point": s["point"],
                       "latency_s": pd.to_numeric(s[f"{latency}_mean"], errors="coerce"),
                       "cost": pd.to_numeric(s[f"{col}_mean"], errors="coerce"), "cost_column": col})
    df["pareto"] = pareto_mask(df["latency_s"], df["cost"])
    df["label"] = "pt " + df["point"].astype(str)
    fig, axes = new_figure(WIDE)
    ax = axes[0][0]
    _draw_cost_latency(ax, df, "label")
    ax.set_xlabel(f"mean p99 TTFT across replications (seconds{', log scale' if ax.get_xscale() == 'log' else ''})")
    ax.set_ylabel(picked[1] + ", mean")
    ax.set_title("Cost vs p99 TTFT per sweep point and platform (lower-left is better)")
    return _finish(df, fig, out_dir, "cost_latency", list(res.notes), res)


def sweep_usd_per_mtok(res: SweepDir, out_dir: Path, metric: str) -> pd.DataFrame:
    """$ per million tokens per point x platform (mean and 95 % t interval across replications, from the
    sweep summary), cheapest first, up to 40 rows. Returned: label, platform, point, measure, usd_per_mtok,
    ci_lo, ci_hi."""
    s = res.summary
    measures = usd_measures(s, "_mean")
    if not measures:
        raise ChartSkipped("sweep summary has no customer_usd_per_mtok_mean or provider_usd_per_mtok_mean")
    params = [p for p in res.parameters if p in s.columns]
    short = [short_param(p) for p in params]
    lab = (s["platform"] + " @ " + s[params].apply(lambda r: ", ".join(f"{n}={v:g}" if isinstance(v, float)
                                                                       else f"{n}={v}"
                                                                       for n, v in zip(short, r, strict=True)),
                                                   axis=1)) if params else s["platform"]
    rows = []
    for c, _ in measures:
        rows.append(pd.DataFrame({"label": lab, "platform": s["platform"], "point": s["point"], "measure": c,
                                  "usd_per_mtok": s[f"{c}_mean"], "ci_lo": s.get(f"{c}_ci_lo", np.nan),
                                  "ci_hi": s.get(f"{c}_ci_hi", np.nan)}))
    df = pd.concat(rows, ignore_index=True)
    order = df[df["measure"] == measures[0][0]].sort_values("usd_per_mtok")["label"].tolist()
    notes = list(res.notes)
    if len(order) > MAX_BARS:
        notes.append(f"cheapest {MAX_BARS} of {len(order)} point x platform rows shown")
        order = order[:MAX_BARS]
    df = df[df["label"].isin(order)].copy()
    df["label"] = pd.Categorical(df["label"], order, ordered=True)
    df = df.sort_values(["label", "measure"]).reset_index(drop=True)
    df["label"] = df["label"].astype(str)
    notes.append("whiskers: 95% t interval across replications" if np.isfinite(df["ci_lo"]).any()
                 else "one replication per point: no confidence interval")
    fig = draw_bars(df, "label", measures, "$ per million tokens per sweep point (mean, 95% CI)")
    return _finish(df, fig, out_dir, "usd_per_mtok", notes, res)


SWEEP_CHARTS = {"sweep_lines": sweep_lines, "sweep_heatmap": sweep_heatmap, "tornado": tornado_chart,
                "cost_latency": sweep_cost_latency, "usd_per_mtok": sweep_usd_per_mtok}
