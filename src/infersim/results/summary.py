"""Latency, SLO and throughput summaries from the per-request table.

Definitions (per platform, over requests that *arrived* in the measurement window
``[warmup, duration)``):

- TTFT = first token - arrival; E2E = finish - arrival; TPOT = (finish - first token) / (output - 1)
  for requests with more than one output token; ITL percentiles come from the token-weighted histogram
  of decode step durations (every decoding sequence in a step waits that step's duration).
- SLO attainment: share of requests meeting every target set for their stream; rejected and unfinished
  requests count as misses. Goodput: requests per second that met their SLO.
- Throughput: finished requests, input and output tokens per second of window.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from infersim.engine.recorder import itl_bin_edges

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
              timeline: pd.DataFrame | None = None, warmup_s: float = 0.0) -> dict[str, float]:
    """One platform's (or one stream's) summary row from its requests (already cut to the window)."""
    fin = df[df["outcome"] == "finished"]
    out: dict[str, float] = {
        "requests": int(len(df)),
        "finished": int(len(fin)),
        "rejected": int((df["outcome"] == "rejected").sum()),
        "in_flight": int((df["outcome"] == "in_flight").sum()),
        "lost": int((df["outcome"] == "lost").sum()),  # arrived, no outcome ever written: 0 unless a bug
    }
    out.update(_stats(fin["ttft_s"], "ttft"))
    out.update(_stats(fin["tpot_s"], "tpot"))
    if itl_hist is not None:
        out.update(hist_quantiles(itl_hist))
    out.update(_stats(fin["e2e_s"], "e2e"))
    tpot = fin["tpot_s"].to_numpy(dtype=float)
    tpot = tpot[tpot > 0]
    out["output_tok_s_per_user"] = float(np.median(1.0 / tpot)) if tpot.size else math.nan
    met = slo_met(df, slos)
    out["slo_attainment"] = float(met.mean()) if len(df) else math.nan
    out["goodput_req_s"] = float(met.sum() / window_s)
    out["throughput_req_s"] = float(len(fin) / window_s)
    out["input_tok_s"] = float(fin["input_tokens"].sum() / window_s)
    out["output_tok_s"] = float(fin["output_tokens"].sum() / window_s)
    started = df[df["outcome"] != "rejected"]
    tot_in = float(started["input_tokens"].sum())
    out["prefix_hit_rate"] = float(started["cached_tokens"].sum() / tot_in) if tot_in else 0.0
    out["preemptions"] = int(df["preemptions"].sum())
    if timeline is not None and len(timeline):
        tl = timeline[timeline["t_s"] > warmup_s]
        if len(tl):
            out["utilization"] = float(tl["busy"].mean())
            out["kv_usage_mean"] = float(tl["kv_usage"].mean())
            out["kv_usage_max"] = float(tl["kv_usage"].max())
    return out
