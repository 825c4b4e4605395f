"""Fit an engine profile (``PerfParams``) to measured runs by simulating them.

Every evaluation simulates the rows (one replica, the row's closed-loop or Poisson load; see ``runner``)
and compares the metrics. The objective is a robust least squares (``soft_l1``: rows far off, such as
warm-up-dominated measurements, pull less than a plain square) on ``log(predicted / measured)`` of each
row's metrics, weighted per metric (ITL counts more than TTFT: TTFT of a closed-loop benchmark also
measures its start-up burst and its client, which a model of the engine does not see). Parameters move
within physical bounds (:data:`BOUNDS`); a fit may add residuals of other sources (the TensorRT-LLM
throughput table for the ``trtllm`` profile).

Simulations are deterministic, so the objective is a piecewise-smooth function of the parameters;
finite differences use a few-percent step to see through scheduling discontinuities.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from infersim.calibrate.measured import METRICS, MeasuredRow
from infersim.calibrate.runner import Simulated, simulate_row
from infersim.perf.params import PerfParams

#: Physical bounds of the fitted parameters (times in seconds). ``compute_eff`` is a share of the hardware's
#: measured matmul ceiling (a model's real GEMM shapes reach 60-100 % of the best shape's); ``attn_eff`` a share of
#: the BF16 peak (FlashAttention-2 forward reaches ~35-50 % on H100, FlashAttention-3 up to 75 %: FA3 paper, Shah
#: et al. 2024), so a fit cannot hide API-server or client time in an unphysically slow kernel.
BOUNDS: dict[str, tuple[float, float]] = {
    "compute_eff": (0.6, 1.0), "compute_half_tokens": (0.0, 4096.0), "attn_eff": (0.2, 0.9),
    "moe_half_tokens": (0.0, 1024.0), "fp4_compute_scale": (0.3, 1.0), "alltoall_latency_s": (0.0, 2e-4),
    "memory_eff": (0.4, 0.95), "step_overhead_s": (0.0, 0.05), "per_seq_overhead_s": (0.0, 5e-4), "layer_overhead_s": (0.0, 1e-4),
    "allreduce_latency_s": (0.0, 1e-4),
    "low_precision_compute_scale": (0.3, 1.0), "comm_eff": (0.1, 0.95), "schedule_delay_s": (0.0, 1.0),
    "schedule_delay_per_seq_s": (0.0, 0.002), "api_serial_s": (0.0, 0.005),
    "mixed_prefill_tokens": (0.0, 8192.0),
}
#: Typical magnitudes (scales of the optimizer's variables).
SCALES: dict[str, float] = {
    "compute_eff": 0.8, "compute_half_tokens": 64.0, "attn_eff": 0.3, "memory_eff": 0.8,
    "moe_half_tokens": 32.0, "fp4_compute_scale": 0.8, "alltoall_latency_s": 2e-5,
    "step_overhead_s": 3e-3, "per_seq_overhead_s": 3e-5, "layer_overhead_s": 2e-5, "allreduce_latency_s": 1e-5, "comm_eff": 0.5,
    "low_precision_compute_scale": 0.7,
    "schedule_delay_s": 0.05, "schedule_delay_per_seq_s": 1e-3, "api_serial_s": 2e-3, "mixed_prefill_tokens": 2048.0,
}
DEFAULT_WEIGHTS = {"itl_mean_ms": 1.0, "ttft_mean_ms": 0.5}


def predict(rows: Sequence[MeasuredRow], params: PerfParams | None = None, *, processes: int = 1,
            seed: int = 0) -> list[Simulated]:
    """Simulate every row (in ``processes`` worker processes when > 1)."""
    if processes <= 1 or len(rows) < 8:
        return [simulate_row(r, params, seed=seed) for r in rows]
    import multiprocessing as mp

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(processes) as pool:
        return pool.starmap(_sim_one, [(r, params, seed) for r in rows], chunksize=max(1, len(rows) // (4 * processes)))


def _sim_one(row, params, seed):
    return simulate_row(row, params, seed=seed)


def error_table(sims: Sequence[Simulated]) -> pd.DataFrame:
    """A row per (measured row, metric): measured, predicted and the signed % error."""
    out = []
    for s in sims:
        r = s.row
        base = {"row": r.row, "engine": r.engine, "model": r.model, "tp": r.tp, "precision": r.precision,
                "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
                "concurrency": r.concurrency, "rate_per_s": r.rate_per_s}
        for m, meas in r.metrics.items():
            pred = s.predicted.get(m, math.nan)
            err = 100.0 * (pred - meas) / meas if meas and not math.isnan(pred) else math.nan
            out.append({**base, "metric": m, "measured": meas, "predicted": pred, "error_pct": err,
                        "sim_error": s.error or ""})
    cols = ["row", "engine", "model", "tp", "precision", "input_tokens", "output_tokens", "concurrency",
            "rate_per_s", "metric", "measured", "predicted", "error_pct", "sim_error"]
    return pd.DataFrame(out, columns=cols)


def summarize_errors(table: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Median and worst absolute % error per metric (and per ``by`` group), with the row count."""
    t = table.dropna(subset=["error_pct"]).assign(abs_err=lambda d: d["error_pct"].abs())
    keys = [*by, "metric"]
    g = t.groupby(keys, sort=True)["abs_err"]
    return pd.DataFrame({"n": g.size(), "median_abs_pct": g.median(), "worst_abs_pct": g.max()}).reset_index()


def _log_residuals(sims: Sequence[Simulated], weights: dict[str, float]) -> np.ndarray:
    res = []
    for s in sims:
        for m, meas in s.row.metrics.items():
            w = weights.get(m, 0.0)
            if w <= 0:
                continue
            pred = s.predicted.get(m, math.nan)
            if s.error or not (pred > 0) or math.isnan(pred):
                res.append(w * 5.0)  # a row that cannot run (or finishes nothing) counts as far off
            else:
                res.append(w * math.log(pred / meas))
    return np.asarray(res, dtype=float)


@dataclass
class FitResult:
    params: PerfParams
    names: tuple[str, ...]
    cost: float
    evaluations: int
    success: bool
    message: str


def fit_rows(rows: Sequence[MeasuredRow], start: PerfParams, names: Sequence[str], *,
             weights: dict[str, float] | None = None, processes: int = 1,
             extra: Callable[[PerfParams], np.ndarray] | None = None, max_nfev: int = 60,
             diff_step: float = 0.03, loss: str = "soft_l1", f_scale: float = 0.15,
             log: Callable[[str], None] | None = None) -> FitResult:
    """Least squares over simulations of ``rows`` for the parameters ``names`` (others stay at ``start``).

    ``extra(params)`` may return more (already weighted, log-ratio) residuals to fit jointly.
    """
    from scipy.optimize import least_squares

    names = tuple(names)
    weights = weights or DEFAULT_WEIGHTS
    if not any(m in weights for r in rows for m in r.metrics) and extra is None:
        raise ValueError("no measured metric to fit (need ttft_mean_ms or itl_mean_ms, or weights for others)")
    scale = np.array([SCALES[n] for n in names])
    lo = np.array([BOUNDS[n][0] for n in names]) / scale
    hi = np.array([BOUNDS[n][1] for n in names]) / scale
    x0 = np.clip(np.array([getattr(start, n) for n in names]) / scale, lo, hi)
    calls = {"n": 0}

    def params_of(x) -> PerfParams:
        return start.with_(**{n: float(v) for n, v in zip(names, x * scale, strict=True)})

    def resid(x):
        p = params_of(x)
        r = _log_residuals(predict(rows, p, processes=processes), weights)
        if extra is not None:
            r = np.concatenate([r, extra(p)])
        calls["n"] += 1
        if log is not None:
            log(f"  eval {calls['n']:3d}: cost {0.5 * float(np.sum(r * r)):.4f}  " +
                " ".join(f"{n}={v:.4g}" for n, v in p.as_dict().items() if n in names))
        return r

    # x in units of SCALES; a relative finite-difference step
    sol = least_squares(resid, x0, bounds=(lo, hi), diff_step=diff_step, loss=loss, f_scale=f_scale,
                        max_nfev=max_nfev, x_scale=1.0)
    return FitResult(params_of(sol.x), names, float(sol.cost), calls["n"], bool(sol.success), str(sol.message))


def profile_document(engine: str, params: PerfParams, table: pd.DataFrame, *, version: str, fitted_on: str,
                     method: str, extra: dict | None = None) -> dict:
    """The YAML document of a fitted profile: parameters, provenance and residuals per (model, tp) group."""
    import datetime as dt

    summ = summarize_errors(table, by=("model", "tp"))
    groups = []
    for (model, tp), g in summ.groupby(["model", "tp"], sort=True):
        entry: dict = {"model": str(model), "tp": int(tp)}
        for r in g.itertuples():
            entry[f"{_short(r.metric)}_n"] = int(r.n)
            entry[f"{_short(r.metric)}_median_abs_pct"] = round(float(r.median_abs_pct), 1)
            entry[f"{_short(r.metric)}_worst_abs_pct"] = round(float(r.worst_abs_pct), 1)
        groups.append(entry)
    overall = summarize_errors(table)
    doc: dict = {
        "engine": engine,
        "version": version,
        "fitted": dt.date.today().isoformat(),
        "method": method,
        "fitted_on": fitted_on,
        "params": {k: _round(v) for k, v in params.as_dict().items()},
        "median_abs_error_pct": {_short(r.metric): round(float(r.median_abs_pct), 1) for r in overall.itertuples()},
        "worst_abs_error_pct": {_short(r.metric): round(float(r.worst_abs_pct), 1) for r in overall.itertuples()},
        "residuals_by_group": groups,
    }
    if extra:
        doc.update(extra)
    doc["rows"] = [
        {"row": int(r.row), "model": r.model, "tp": int(r.tp), "precision": r.precision,
         "input": int(r.input_tokens), "output": int(r.output_tokens),
         **({"concurrency": int(r.concurrency)} if r.concurrency == r.concurrency and r.concurrency is not None
            else {"rate_per_s": float(r.rate_per_s)}),
         "metric": _short(r.metric), "measured": float(r.measured),
         "predicted": round(float(r.predicted), 3) if r.predicted == r.predicted else None,
         "error_pct": round(float(r.error_pct), 1) if r.error_pct == r.error_pct else None}
        for r in table.itertuples()]
    return doc


def _short(metric: str) -> str:
    return metric.replace("_mean_ms", "").replace("_ms", "")


def _round(v: float) -> float:
    if v == 0 or not math.isfinite(v):
        return float(v)
    return float(f"{v:.6g}")


__all__ = ["BOUNDS", "FitResult", "METRICS", "error_table", "fit_rows", "predict", "profile_document",
           "summarize_errors"]
