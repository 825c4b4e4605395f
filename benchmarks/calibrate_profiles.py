"""Refit the shipped TensorRT-LLM profile on the TensorRT-LLM max-throughput table and write it.

    python benchmarks/calibrate_profiles.py [--shared ../shared] [--check]

Writes src/infersim/perf/profiles/trtllm.yaml with the fitted parameters, the rows they were fitted on
and the residual error per row. ``--check`` only prints the current profile's errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import yaml

from infersim.calibrate.throughput import errors, fit, trtllm_rows
from infersim.perf.profiles import shipped_profile

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    csv = Path(args.shared) / "calibration" / "serving_benchmarks.csv"
    rows = trtllm_rows(csv)
    params = shipped_profile("trtllm") if args.check else fit(rows)
    err = errors(rows, params)
    print(err.round(1).to_string(index=False))
    print(f"median |error| {err.error_pct.abs().median():.1f}%, worst {err.error_pct.abs().max():.1f}%")
    if args.check:
        return
    doc = {
        "engine": "trtllm",
        "version": "1.0 (PyTorch backend, perf-overview table)",
        "fitted": dt.date.today().isoformat(),
        "method": "least squares on log(predicted/measured) saturation output tokens/s; "
                  "fluid steady state of chunked-prefill continuous batching (infersim.perf.analytic); "
                  "assumed max_num_tokens 8192, batch cap 2048, FP8 weights and KV cache, 90% of HBM",
        "fitted_on": "shared/calibration/serving_benchmarks.csv rows 1-20 (TensorRT-LLM, H100, "
                     "Llama 3.3 70B FP8 TP2 and Llama 3.1 8B FP8 TP1; NVIDIA/TensorRT-LLM "
                     "docs/source/performance/perf-overview.md @ 00f37686)",
        "params": {k: round(float(v), 6) for k, v in params.as_dict().items()},
        "residuals": [{"row": int(r.row), "model": r.model, "tp": int(r.tp), "input": int(r.input),
                       "output": int(r.output), "measured_tok_s": float(r.measured_tok_s),
                       "predicted_tok_s": round(float(r.predicted_tok_s), 1),
                       "error_pct": round(float(r.error_pct), 1)} for r in err.itertuples()],
        "median_abs_error_pct": round(float(err.error_pct.abs().median()), 1),
        "worst_abs_error_pct": round(float(err.error_pct.abs().max()), 1),
    }
    out = ROOT / "src" / "infersim" / "perf" / "profiles" / "trtllm.yaml"
    header = "# TensorRT-LLM profile, fitted by benchmarks/calibrate_profiles.py; do not edit by hand.\n"
    out.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=110))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
