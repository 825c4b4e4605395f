"""Latency, SLO and throughput summaries from the per-request table.

Definitions (per platform, over requests that *arrived* in the measurement window
``[warmup, duration)``):

- TTFT = first token - arrival; E2E = finish - arrival; TPOT = (finish - first token) / (output - 1)
  for requests with more than one output token; ITL percentiles come from the token-weighted histogram
  of decode step durations (every decoding sequence in a step waits that step's duration).
- SLO attainment: share of requests meeting every target set for their stream; rejected and unfinished
  requests count as misses. Goodput: requests per second that met their SLO.
- Throughput (served): finished requests, input and output tokens per second of window. Offered load:
  arrived requests and the output tokens they ask for per second of window (the same for every platform).
- Counts: ``requests`` (arrived in the window) = ``finished`` + ``rejected`` + ``in_flight`` (+ ``lost``), each
  counted from its own outcome; ``rejected_<reason>`` split ``rejected`` by the recorder's reason.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from infersim.engine.recorder import REASONS, itl_bin_edges

QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


def _stats(x: pd.Series | np.ndarray, prefix: str) -> dict[str, float]:
    a = np.asarray(x, dtype=float)
    a = a[~np.isnan(a)]
    out = {f"{prefix}_mean_s": float(a.mean()) if a.size else math.nan}
    for name, q in QUANTILES:
        out[f"{prefix}_{name}_s"] = float(np.quantile(a, q)) if a.size else math.nan
    return out


def hist_quantiles(hist: np.ndarray, prefix: str = "itl") -> dict[str, float]:
    """Mean and percentiles of a histogram over ``itl_bin_edges()`` (bin centres are the edges)."""
    total = float(hist.sum())
    edges = itl_bin_edges()
    out = {f"{prefix}_mean_s": float((hist * edges).sum() / total) if total else math.nan}
    cdf = np.cumsum(hist) / total if total else None
    for name, q in QUANTILES:
        out[f"{prefix}_{name}_s"] = float(edges[np.searchsorted(cdf, q)]) if total else math.nan
    return out


def slo_met(df: pd.DataFrame, slos: dict[str, dict[str, float | None]]) -> np.ndarray:
    """Boolean per row: the request finished and met every SLO target set for its stream."""
    ok = (df["outcome"] == "finished").to_numpy(dtype=bool).copy()
    for stream, slo in slos.items():
        m = (df["stream"] == stream).to_numpy(dtype=bool)
        for key, col in (("ttft", "ttft_s"), ("tpot", "tpot_s"), ("e2e", "e2e_s")):
            lim = slo.get(key)
            if lim is not None:
                v = df[col].to_numpy()
                ok[m] &= np.nan_to_num(v[m], nan=0.0 if col == "tpot_s" else np.inf) <= lim
    return ok


def summarize(df: pd.DataFrame, *, window_s: float, slos: dict[str, dict], itl_hist: np.ndarray | None = None,
              timeline: pd.DataFrame | None = None, warmup_s: float = 0.0,
              rows: np.ndarray | None = None) -> dict[str, float]:
    """One platform's (or one stream's) summary row from its requests (already cut to the window).

    ``rows``: a boolean mask selecting the requests to summarise (the window, a stream), the same as passing
    ``df[rows]`` but without copying the rows: each statistic reads only its own column under its own mask
    (a run's table of millions of rows is summarised per platform and per stream without a copy of it).
    """
    outcome = df["outcome"]
    fin, rej, in_fl, lost = ((outcome == o).to_numpy(dtype=bool) for o in ("finished", "rejected", "in_flight",
                                                                           "lost"))
    if rows is not None:  # (the comparisons' arrays are read-only views: new arrays, not in place)
        fin, rej, in_fl, lost = fin & rows, rej & rows, in_fl & rows, lost & rows
    n = int(len(df) if rows is None else np.count_nonzero(rows))
    n_fin = int(np.count_nonzero(fin))
    out: dict[str, float] = {
        "requests": n,
        "finished": n_fin,
        "rejected": int(np.count_nonzero(rej)),
        "in_flight": int(np.count_nonzero(in_fl)),
        "lost": int(np.count_nonzero(lost)),  # arrived, no outcome ever written: 0 unless a bug
    }
    del in_fl, lost
    reasons = df["reason"][rej] if "reason" in df.columns else None
    for reason in REASONS[1:]:  # each reason its own recorded count (core/quantities: rejected_<reason>)
        out[f"rejected_{reason}"] = int((reasons == reason).sum()) if reasons is not None else 0
    out.update(_stats(df["ttft_s"][fin], "ttft"))
    tpot = df["tpot_s"][fin]
    out.update(_stats(tpot, "tpot"))
    if itl_hist is not None:
        out.update(hist_quantiles(itl_hist))
    out.update(_stats(df["e2e_s"][fin], "e2e"))
    tpot = tpot.to_numpy(dtype=float)
    tpot = tpot[tpot > 0]
    out["output_tok_s_per_user"] = float(np.median(1.0 / tpot)) if tpot.size else math.nan
    del tpot
    met = slo_met(df, slos)
    if rows is not None:
        met = met[rows]
    out["slo_attainment"] = float(met.mean()) if n else math.nan
    out["goodput_req_s"] = float(met.sum() / window_s)
    del met
    out["offered_req_s"] = float(n / window_s)  # the workload: arrivals in the window, every platform alike
    out_tok = df["output_tokens"] if rows is None else df["output_tokens"][rows]
    out["offered_output_tok_s"] = float(out_tok.sum() / window_s)
    del out_tok
    out["throughput_req_s"] = float(n_fin / window_s)
    out["input_tok_s"] = float(df["input_tokens"][fin].sum() / window_s)
    out["output_tok_s"] = float(df["output_tokens"][fin].sum() / window_s)
    started = ~rej if rows is None else rows & ~rej
    tot_in = float(df["input_tokens"][started].sum())
    out["prefix_hit_rate"] = float(df["cached_tokens"][started].sum() / tot_in) if tot_in else 0.0
    out["preemptions"] = int((df["preemptions"] if rows is None else df["preemptions"][rows]).sum())
    if timeline is not None and len(timeline):
        tl = timeline[timeline["t_s"] > warmup_s]
        if len(tl):
            out["utilization"] = float(tl["busy"].mean())
            out["kv_usage_mean"] = float(tl["kv_usage"].mean())
            out["kv_usage_max"] = float(tl["kv_usage"].max())
    return out


HOURS_PER_MONTH_30D = 720.0  # a 30-day month, as the run-rate columns say


def run_rates(row: dict, *, duration_s: float, scale_fraction: float | None) -> dict[str, float]:
    """Per-hour and per-30-day-month run rates of a platform's bill at the simulated load.

    Time-billed dollars (GPU-minutes; owned or rented hardware on the provider side) accrue over the run's
    billed span, ``sim_end_s``; per-token dollars (the platform's own token prices, token-API spill) accrue
    with the arrivals, over ``duration_s``. Each part is divided by its own span, so neither the drain's
    billed tail nor the arrivals' span is counted twice. The full-scale columns divide by the scenario's
    ``workload.scale.fraction``: a linear extrapolation (capacity scaling with the load), not a simulation.
    """
    end_s = float(row.get("sim_end_s") or duration_s)
    end_s = max(end_s, duration_s) if end_s > 0 else duration_s

    def g(k):
        v = row.get(k)
        return 0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    per_token = g("customer_per_token_usd") + g("customer_token_api_usd")
    cust_h = 3600.0 * (g("customer_gpu_minutes_usd") / end_s + per_token / duration_s)
    prov = row.get("provider_cost_usd")
    prov_nan = prov is None or (isinstance(prov, float) and math.isnan(prov))
    # the provider's spill is the token API's charge (passed through); the rest is billed hardware time
    prov_h = math.nan if prov_nan else 3600.0 * ((float(prov) - g("customer_token_api_usd")) / end_s
                                                 + g("customer_token_api_usd") / duration_s)
    if row.get("customer_usd") is None or math.isnan(float(row.get("customer_usd"))):
        cust_h = math.nan
    out = {"customer_usd_per_hour": cust_h, "customer_usd_per_month": cust_h * HOURS_PER_MONTH_30D,
           "provider_cost_usd_per_hour": prov_h, "provider_cost_usd_per_month": prov_h * HOURS_PER_MONTH_30D}
    if scale_fraction:
        out["customer_usd_per_month_full_scale"] = out["customer_usd_per_month"] / scale_fraction
        out["provider_cost_usd_per_month_full_scale"] = out["provider_cost_usd_per_month"] / scale_fraction
    return out


def against_baseline(rows: list[dict], baseline: str | None) -> None:
    """Add the baseline columns to every row (in place): cost saved, quality kept, E2E p99 change."""
    if baseline is None:
        return
    base = next((r for r in rows if r["platform"] == baseline), None)
    if base is None:
        return

    def num(r, k):
        v = r.get(k)
        return math.nan if v is None else float(v)

    for r in rows:
        bc = num(base, "customer_usd")
        r["baseline_saving_share"] = 1.0 - num(r, "customer_usd") / bc if bc else math.nan
        bq = num(base, "quality")
        r["baseline_quality_ratio"] = num(r, "quality") / bq if bq else math.nan
        r["baseline_e2e_p99_change_s"] = num(r, "e2e_p99_s") - num(base, "e2e_p99_s")
