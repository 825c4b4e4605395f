"""Measured kernel priors for the step model, derived from ``data/calibration/kernel_profiles.csv``.

    python benchmarks/kernel_priors.py [--check]

The step model's hardware-level efficiencies come from kernels measured outside any serving engine, not from
the latency rows the engine profiles are fitted and checked on:

- **GEMMs** (Vidur's operator profiles, ``vidur_profiles``: the QKV, output, gated-MLP up and down projections
  of Llama-2-7B/70B, Llama-3-8B/70B and CodeLlama-34B at TP 1-8, 1 to 4,096 tokens, FP16, on A100 80GB and H100
  SXM): each operator is a roofline ``max(FLOPs / (F x M / (M + h)), bytes / B)`` with M the tokens, fitted per
  accelerator in log space: ``F`` (large-M FLOP/s, reported as a share of the dense BF16 datasheet peak and of
  the measured matmul ceiling, ``perf/kernels.py``), ``h`` (tokens at which the GEMM reaches half of ``F``) and
  ``B`` (bytes/s a skinny GEMM streams its weights at, as a share of the datasheet HBM bandwidth).
- **All-reduce** (APEX+'s NCCL profiles, ``apex_plus``, H100 and H200 SXM; Vidur's torch.distributed profiles,
  A100/H100): per accelerator and TP degree inside one node, the latency (median time of messages up to
  64 KiB) and the large-message algorithm bandwidth (message bytes / (time - latency), median over messages of
  16 MiB and more).

The result is ``src/infersim/catalog/data/kernel_priors.csv`` (one row per accelerator, quantity and TP, with
the rows it rests on and its source); ``perf/kernels.py`` reads it. ``--check`` recomputes it and fails if the
committed file differs (tests run this).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "data" / "calibration" / "kernel_profiles.csv"
OUT = ROOT / "src" / "infersim" / "catalog" / "data" / "kernel_priors.csv"
#: Calibration spellings -> catalog hardware ids
HARDWARE = {"A100 80GB": "a100-80g", "A100-SXM-80GB": "a100-80g", "H100-SXM-80GB": "h100-sxm",
            "H200-SXM-141GB": "h200", "B200-SXM-180GB": "b200"}
GEMMS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
FIELDS = ["hardware", "quantity", "tp", "value", "unit", "rows", "source"]
CITE = {"vidur_profiles": "github.com/microsoft/vidur data/profiling (kernel_profiles.csv, source_id vidur_profiles)",
        "apex_plus": "github.com/microsoft/apex_plus profile/comm (kernel_profiles.csv, source_id apex_plus)",
        "aiconfigurator_collector": "github.com/ai-dynamo/aiconfigurator systems/data/*/moe/<engine>/moe_perf "
                                    "(kernel_profiles.csv, source_id aiconfigurator_collector)"}


def gemm_shape(r) -> tuple[float, float, float]:
    """(M, N, K) of one operator row; weights sharded over ``tp`` (column-parallel QKV and up, row-parallel
    output and down; the up projection fuses gate and up: gated MLP)."""
    d, e, h, kv, tp = r.n_embd, r.n_expanded_embd, r.n_head, r.n_kv_head, r.tp
    hd = d / h
    m = r.num_tokens
    if r.operator == "attn_pre_proj":
        return m, (h + 2 * kv) * hd / tp, d
    if r.operator == "attn_post_proj":
        return m, d, h * hd / tp
    if r.operator == "mlp_up_proj":
        return m, 2 * e / tp, d
    return m, d, e / tp


def fit_gemms(k: pd.DataFrame, catalog) -> list[dict]:
    out = []
    g = k[k.operator.isin(GEMMS) & (k.dtype == "fp16") & k.time_median_ms.notna()].copy()
    g["hw"] = g.hardware.map(HARDWARE)
    for hw_id, rows in sorted(g.groupby("hw"), key=lambda t: t[0]):
        hw = catalog.get_hardware(hw_id)
        peak, bw = hw.peak_flops("bf16"), hw.memory_bw_tbps * 1e12
        mnk = np.array([gemm_shape(r) for r in rows.itertuples()])
        m, n, kk = mnk.T
        flops, nbytes = 2 * m * n * kk, 2.0 * (n * kk + m * kk + m * n)
        t = rows.time_median_ms.to_numpy() * 1e-3

        def model(x, m=m, flops=flops, nbytes=nbytes, peak=peak, bw=bw):
            f, half, b, t0 = x[0] * peak, x[1], x[2] * bw, x[3] * 1e-6
            return t0 + np.maximum(flops / (f * m / (m + half)), nbytes / b)

        sol = least_squares(lambda x, t=t: np.log(model(x) / t), [0.7, 32.0, 0.8, 5.0],
                            bounds=([0.1, 0.0, 0.1, 0.0], [1.0, 4096.0, 1.0, 50.0]), loss="soft_l1", f_scale=0.1)
        f, half, b, t0 = sol.x
        resid = np.abs(model(sol.x) / t - 1.0)
        from infersim.perf.kernels import matmul_ceiling

        n_rows, src = len(rows), CITE["vidur_profiles"]
        out += [
            {"hardware": hw_id, "quantity": "gemm_share_of_peak", "tp": "", "value": round(f, 4), "unit": "fraction",
             "rows": n_rows, "source": src},
            {"hardware": hw_id, "quantity": "gemm_share_of_ceiling", "tp": "",
             "value": round(f / matmul_ceiling(hw_id, "bf16"), 4), "unit": "fraction", "rows": n_rows, "source": src},
            {"hardware": hw_id, "quantity": "gemm_half_tokens", "tp": "", "value": round(half, 2), "unit": "tokens",
             "rows": n_rows, "source": src},
            {"hardware": hw_id, "quantity": "weight_stream_share_of_bw", "tp": "", "value": round(b, 4),
             "unit": "fraction", "rows": n_rows, "source": src},
            {"hardware": hw_id, "quantity": "kernel_fixed_s", "tp": "", "value": float(f"{t0 * 1e-6:.3g}"),
             "unit": "s", "rows": n_rows, "source": src},
            {"hardware": hw_id, "quantity": "gemm_fit_median_abs_error", "tp": "",
             "value": round(float(np.median(resid)), 4), "unit": "fraction", "rows": n_rows, "source": src},
        ]
    return out


def fit_allreduce(k: pd.DataFrame) -> list[dict]:
    a = k[(k.operator == "all_reduce") & k.notes.str.contains(r"\(1 node\(s\)\)|x 1 node", regex=True)
          & k.source_id.isin(["apex_plus", "vidur_profiles"])].copy()
    a["hw"] = a.hardware.map(HARDWARE)
    a["bytes"] = np.where(a.size_kib.notna(), a.size_kib * 1024.0, a.size_elements * 2.0)
    a["t"] = a.time_median_ms.fillna(a.time_mean_ms) * 1e-3
    out = []
    # NCCL (APEX+) where measured, torch.distributed (Vidur) otherwise: NCCL is what the engines call
    for (hw_id, tp), rows in sorted(a.groupby(["hw", "tp"]), key=lambda t: (t[0][0], t[0][1])):
        src_id = "apex_plus" if (rows.source_id == "apex_plus").any() else "vidur_profiles"
        rows = rows[rows.source_id == src_id]
        small = rows[rows.bytes <= 64 * 1024]
        big = rows[rows.bytes >= 16 * 2 ** 20]
        if small.empty or big.empty:
            continue
        lat = float(small.t.median())
        algbw = float(np.median(big.bytes / (big.t - lat)))
        out += [
            {"hardware": hw_id, "quantity": "allreduce_latency_s", "tp": int(tp), "value": float(f"{lat:.4g}"),
             "unit": "s", "rows": len(small), "source": CITE[src_id]},
            {"hardware": hw_id, "quantity": "allreduce_algbw_gbps", "tp": int(tp), "value": round(algbw / 1e9, 1),
             "unit": "GB/s (message bytes / time)", "rows": len(big), "source": CITE[src_id]},
        ]
    return out


#: weight format of a MoE row -> the step model's precision class (block-scaled FP8 is what FP8 checkpoints ship)
#: (the collector's NVFP4 rows are not fitted: as the model's NVFP4 expert kernel they were worse out of sample,
#: docs/model.md)
MOE_CLASS = {"bf16": "bf16", "fp8_block": "fp8", "fp8": "fp8"}
MOE_BYTES = {"bf16": 2.0, "fp8": 1.0}


def fit_moe(k: pd.DataFrame, catalog) -> list[dict]:
    """Each engine's fused MoE layer per accelerator and weight format (aiconfigurator collector, balanced
    routing, no expert parallelism): ``t = t0 + max(FLOPs / (F x M_e / (M_e + h) x N / (N + n)), bytes / B)``
    with ``FLOPs = 2 x 3 x hidden x inter / tp`` per (token, expert) assignment (gated experts), ``bytes`` the
    touched experts' weights (share ``1 - (1 - k/E)^tokens``), ``M_e`` tokens per touched expert and ``N`` the
    expert GEMM's width (``inter / tp``), fitted in log space: ``F`` (share of the format's dense datasheet
    peak), ``h`` (tokens per expert at half of ``F``), ``n`` (width at half), ``B`` (share of HBM bandwidth),
    ``t0`` (fixed time of the layer: routing, permutation, launches)."""
    m = k[(k.operator == "moe") & (k.source_id == "aiconfigurator_collector")].copy()
    m["hw"] = m.hardware.map(HARDWARE)
    m["engine"] = m.notes.str.extract(r"engine=(\w+)", expand=False)
    m["topk"] = m.notes.str.extract(r"topk=(\d+)", expand=False).astype(float)
    m["experts"] = m.notes.str.extract(r"experts=(\d+)", expand=False).astype(float)
    m["cls"] = m.dtype.map(MOE_CLASS)
    out = []
    src = CITE["aiconfigurator_collector"]
    for (engine, hw_id, cls), rows in sorted(m.groupby(["engine", "hw", "cls"])):
        hw = catalog.get_hardware(hw_id)
        peak, bw = hw.peak_flops(cls), hw.memory_bw_tbps * 1e12
        wb = MOE_BYTES[cls]
        h_, i_, tp = (rows[c].to_numpy(float) for c in ("n_embd", "n_expanded_embd", "tp"))
        toks, kk, e = rows.num_tokens.to_numpy(float), rows.topk.to_numpy(float), rows.experts.to_numpy(float)
        frac = 1.0 - (1.0 - kk / e) ** toks
        per_expert = 3.0 * h_ * i_ / tp
        flops, nbytes = 2.0 * per_expert * toks * kk, per_expert * e * frac * wb
        me, width = toks * kk / (e * frac), i_ / tp
        t = rows.time_mean_ms.to_numpy(float) * 1e-3

        def model(x, flops=flops, nbytes=nbytes, me=me, width=width, peak=peak, bw=bw):
            f, half, b, t0, nh = x[0] * peak, x[1], x[2] * bw, x[3] * 1e-6, x[4]
            return t0 + np.maximum(flops / (f * me / (me + half) * width / (width + nh)), nbytes / b)

        sol = least_squares(lambda x, t=t: np.log(model(x) / t), [0.5, 50.0, 0.8, 20.0, 200.0],
                            bounds=([0.02, 0.0, 0.1, 0.0, 0.0], [1.0, 4096.0, 1.0, 500.0, 20000.0]),
                            loss="soft_l1", f_scale=0.1)
        f, half, b, t0, nh = sol.x
        resid = np.abs(model(sol.x) / t - 1.0)
        q = f"{engine}.{cls}"
        n_rows = len(rows)
        for name, value, unit in (("moe_share_of_peak", round(f, 4), "fraction"),
                                  ("moe_half_tokens", round(half, 2), "tokens per expert"),
                                  ("moe_half_width", round(nh, 1), "columns"),
                                  ("moe_stream_share_of_bw", round(b, 4), "fraction"),
                                  ("moe_fixed_s", float(f"{t0 * 1e-6:.3g}"), "s"),
                                  ("moe_fit_median_abs_error", round(float(np.median(resid)), 4), "fraction")):
            out.append({"hardware": hw_id, "quantity": f"{name}.{q}", "tp": "", "value": value, "unit": unit,
                        "rows": n_rows, "source": src})
    return out


def fit_fp8_scale(k: pd.DataFrame, catalog) -> list[dict]:
    """Each engine's FP8 GEMM rate relative to its BF16 one, per accelerator: the median achieved share of the
    FP8 datasheet peak over its large GEMMs (M 4,096-8,192, N and K 4,096-16,384; per-tensor FP8) divided by
    the median share of the BF16 peak over the same shapes in BF16 (the step model's
    ``low_precision_compute_scale``: 1 = FP8 reaches the same share of its doubled peak as BF16 of its own)."""
    g = k[(k.operator == "gemm") & (k.source_id == "aiconfigurator_collector")].copy()
    g["hw"] = g.hardware.map(HARDWARE)
    g["engine"] = g.notes.str.extract(r"engine=(\w+)", expand=False)
    g["flops"] = 2.0 * g.num_tokens * g.n_embd * g.n_expanded_embd / (g.time_mean_ms * 1e-3)
    out = []
    for (engine, hw_id), rows in sorted(g.groupby(["engine", "hw"])):
        hw = catalog.get_hardware(hw_id)
        share = {dt: float(np.median(r.flops)) / hw.peak_flops(dt) for dt, r in rows.groupby("dtype")}
        if {"bf16", "fp8"} <= set(share):
            out.append({"hardware": hw_id, "quantity": f"fp8_gemm_scale.{engine}", "tp": "",
                        "value": round(share["fp8"] / share["bf16"], 4), "unit": "fraction", "rows": len(rows),
                        "source": CITE["aiconfigurator_collector"].replace("moe/<engine>/moe_perf",
                                                                           "gemm/<engine>/gemm_perf")})
    return out


def derive() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from infersim.catalog import default_catalog

    k = pd.read_csv(SRC)
    cat = default_catalog()
    rows = fit_gemms(k, cat) + fit_allreduce(k) + fit_moe(k, cat) + fit_fp8_scale(k, cat)
    buf = io.StringIO()
    buf.write("# Measured kernel priors of the step model, derived by benchmarks/kernel_priors.py from "
              "data/calibration/kernel_profiles.csv; do not edit by hand.\n")
    w = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed table differs from a fresh derivation")
    args = ap.parse_args(argv)
    text = derive()
    if args.check:
        same = OUT.exists() and OUT.read_text() == text
        print("kernel_priors.csv is up to date" if same else "kernel_priors.csv differs from a fresh derivation")
        return 0 if same else 1
    OUT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
