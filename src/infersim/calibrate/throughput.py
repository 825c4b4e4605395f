"""Saturation-throughput calibration on the TensorRT-LLM max-throughput table.

Rows: ``shared/calibration/serving_benchmarks.csv`` (TensorRT-LLM perf-overview, H100, Llama 3.1 8B FP8
TP1 and Llama 3.3 70B FP8 TP2, ten input/output pairs each, requests fed at infinite rate). The model's
prediction is the fluid steady state of ``perf.analytic.steady_state_output_tok_s`` at the best batch
that fits the KV cache. Engine settings of the measured runs are not published per row; we assume
TensorRT-LLM's defaults ``max_num_tokens`` 8192 and a batch cap of 2048 (assumptions, docs/calibration.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from infersim.catalog import default_catalog
from infersim.perf import GpuConfig, GpuRoofline, PerfParams, plan_memory
from infersim.perf.analytic import estimate

TRT_MAX_NUM_TOKENS = 8192
TRT_MAX_BATCH = 2048
MODEL_IDS = {"Llama 3.1 8B": "llama-3.1-8b", "Llama 3.3 70B": "llama-3.3-70b"}


@dataclass(frozen=True)
class ThroughputRow:
    model: str
    tp: int
    input_tokens: int
    output_tokens: int
    measured_tok_s: float
    row: int  # 1-based data row in the CSV


def trtllm_rows(csv_path) -> list[ThroughputRow]:
    df = pd.read_csv(csv_path)
    rows = []
    for i, r in df.iterrows():
        if r["engine"] != "TensorRT-LLM" or r["model"] not in MODEL_IDS:
            continue
        rows.append(ThroughputRow(MODEL_IDS[r["model"]], int(r["num_gpus"]), int(r["isl"]), int(r["osl"]),
                                  float(r["value"]), int(i) + 1))
    return rows


def predict(row: ThroughputRow, params: PerfParams) -> float:
    cat = default_catalog()
    cfg = GpuConfig(cat.get_hardware("h100-sxm"), cat.get_model(row.model), "fp8", "fp8", row.tp, 1)
    plan = plan_memory(cfg, max_batched_tokens=TRT_MAX_NUM_TOKENS, max_num_seqs=TRT_MAX_BATCH,
                       gpu_memory_utilization=0.9)
    est = estimate(GpuRoofline(cfg, params, engine="trtllm"), plan, row.input_tokens, row.output_tokens,
                   max_num_seqs=TRT_MAX_BATCH, max_batched_tokens=TRT_MAX_NUM_TOKENS)
    return est.max_output_tok_s


def errors(rows: list[ThroughputRow], params: PerfParams) -> pd.DataFrame:
    out = []
    for r in rows:
        p = predict(r, params)
        out.append({"row": r.row, "model": r.model, "tp": r.tp, "input": r.input_tokens, "output": r.output_tokens,
                    "measured_tok_s": r.measured_tok_s, "predicted_tok_s": p,
                    "error_pct": 100.0 * (p - r.measured_tok_s) / r.measured_tok_s})
    return pd.DataFrame(out)


FIT_NAMES = ("compute_eff", "attn_eff", "memory_eff", "step_overhead_s")
BOUNDS = {"compute_eff": (0.2, 0.95), "attn_eff": (0.05, 0.95), "memory_eff": (0.4, 0.95),
          "step_overhead_s": (0.0, 0.05)}


def fit(rows: list[ThroughputRow], start: PerfParams | None = None,
        names: tuple[str, ...] = FIT_NAMES) -> PerfParams:
    """Least squares on log(predicted/measured) over the rows, within physical bounds."""
    from scipy.optimize import least_squares

    base = start or PerfParams()
    x0 = np.array([getattr(base, n) for n in names])
    lo = np.array([BOUNDS[n][0] for n in names])
    hi = np.array([BOUNDS[n][1] for n in names])

    def resid(x):
        p = base.with_(**dict(zip(names, x, strict=True)))
        return np.array([np.log(predict(r, p) / r.measured_tok_s) for r in rows])

    sol = least_squares(resid, np.clip(x0, lo, hi), bounds=(lo, hi), diff_step=1e-3)
    return base.with_(**dict(zip(names, sol.x, strict=True)))
