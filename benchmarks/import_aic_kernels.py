"""Import the engines' own all-reduce and MoE kernel timings into ``data/calibration/kernel_profiles.csv``.

    python benchmarks/import_aic_kernels.py REPO_GIT_DIR [--commit SHA]

``REPO_GIT_DIR``: a clone of github.com/ai-dynamo/aiconfigurator (Apache-2.0). Its collector publishes, per GPU
and serving-engine version, the time of the all-reduce kernel the engine itself calls inside a CUDA graph
(``aic-core/src/aiconfigurator_core/systems/data/<gpu>/comm/<engine>/<version>/custom_allreduce_perf.parquet``:
vLLM's and SGLang's custom all-reduce, TensorRT-LLM's), by GPUs (2, 4, 8 of one node) and message size in bf16
elements (the collector's ``message_size`` = tokens x hidden size). The CUDA-graph variant is kept (the engines
replay decode steps as graphs); the eager one is left out. (Tried as the step model's all-reduce latency and
not adopted: docs/model.md.)

The same collector times each engine's fused MoE layer (``.../moe/<engine>/<version>/moe_perf.parquet``:
routing, permutation and the grouped expert GEMMs of one MoE layer) by tokens, hidden and intermediate size,
top-k, experts, the MoE layer's TP and EP, weight format and routing distribution; the step model uses these
(``perf.kernels.moe_prior``). Kept: balanced routing, no expert
parallelism, BF16 and block-scaled FP8 weights (per-tensor FP8 where an engine has no block-scaled rows), NVFP4
weights on B200, the engine's default kernel per format, TP 1-8 and 1 to 16,384 tokens in powers of four.

And each engine's dense GEMM (``.../gemm/<engine>/<version>/gemm_perf.parquet``) by M, N, K and format; kept: the
large shapes (M 4,096 and 8,192; N and K 4,096, 8,192 and 16,384) in BF16 and per-tensor FP8, whose ratio is the
engine's FP8 GEMM rate relative to its BF16 one, a check of the profiles' fitted ``low_precision_compute_scale``
(tests/test_fp8_gemm_scale.py).

The published ``latency`` (ms) goes to ``time_mean_ms`` (the collector does not say whether it is a mean or a
median). Rows of this source already in the CSV are replaced; the others are kept in order.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "data" / "calibration" / "kernel_profiles.csv"
SOURCE_ID = "aiconfigurator_collector"
REPO = "github.com/ai-dynamo/aiconfigurator"
BASE = "aic-core/src/aiconfigurator_core/systems/data"
#: (collector GPU folder, calibration spelling)
GPUS = {"h100_sxm": "H100-SXM-80GB", "h200_sxm": "H200-SXM-141GB", "b200_sxm": "B200-SXM-180GB"}
#: engine (also its collector folder) -> its version per GPU folder (the same for every table)
VERSIONS = {"vllm": {"h100_sxm": "0.14.0", "h200_sxm": "0.14.0", "b200_sxm": "0.19.0"},
            "sglang": {"h100_sxm": "0.5.10", "h200_sxm": "0.5.10", "b200_sxm": "0.5.10"},
            "trtllm": {"h100_sxm": "1.3.0rc10", "h200_sxm": "1.3.0rc10", "b200_sxm": "1.3.0rc10"}}
#: engine -> the all-reduce kernel_source kept (CUDA graph)
ALLREDUCE = {"vllm": "vLLM_custom_graph", "sglang": "SGLang_CustomAllReduce_graph", "trtllm": "TRTLLM"}
#: engine -> its default MoE kernels (per format)
MOE = {"vllm": ("vllm_fused_moe", "vllm_flashinfer_trtllm_moe_fp4"),
       "sglang": ("sglang_fused_moe_triton", "sglang_flashinfer_cutedsl_moe"),
       "trtllm": ("moe_torch_flow_cutlass",)}
MOE_TOKENS = {4 ** i for i in range(8)}  # 1, 4, 16, ... 16,384
#: the collector's weight formats kept: BF16, block and per-tensor FP8, NVFP4 (FP4 tensor cores; kept as data: not
#: the model's kernel, docs/model.md); its MXFP4 rows (gpt-oss's shapes, 8-16 per engine and part) are left out
MOE_DTYPES = {"bfloat16": "bf16", "fp8_block": "fp8_block", "fp8": "fp8", "nvfp4": "nvfp4"}
GEMM_M, GEMM_NK = (4096, 8192), (4096, 8192, 16384)
GEMM_DTYPES = {"bfloat16": "bf16", "fp8": "fp8"}


def _tables(git_dir: str, commit: str, kind: str, table: str, required: bool = True):
    """``(engine, calibration hardware name, path, DataFrame)`` of every engine's and GPU's ``kind/table``
    parquet (``required=False``: skip the ones the collector does not publish)."""
    for engine, versions in VERSIONS.items():
        for gpu, hw in GPUS.items():
            path = f"{BASE}/{gpu}/{kind}/{engine}/{versions[gpu]}/{table}.parquet"
            try:
                blob = subprocess.run(["git", "-C", git_dir, "show", f"{commit}:{path}"], check=True,
                                      capture_output=True).stdout
            except subprocess.CalledProcessError:
                if required:
                    raise
                continue
            yield engine, hw, path, pd.read_parquet(io.BytesIO(blob))


def _row(commit: str, path: str, hw: str, **cols) -> dict:
    return {"source_id": SOURCE_ID, "source_repo": REPO, "source_path": path, "commit": commit, "hardware": hw,
            **cols}


def moe_rows(git_dir: str, commit: str) -> list[dict]:
    out = []
    for engine, hw, path, d in _tables(git_dir, commit, "moe", "moe_perf", required=False):
        d = d[(d.op_name == "moe") & d.kernel_source.isin(MOE[engine]) & (d.distribution == "balanced")
              & (d.moe_ep_size == 1) & d.moe_tp_size.isin([1, 2, 4, 8]) & d.num_tokens.isin(MOE_TOKENS)
              & d.moe_dtype.isin(list(MOE_DTYPES))]
        if (d.moe_dtype == "fp8_block").any():
            d = d[d.moe_dtype != "fp8"]
        for r in d.sort_values(["moe_dtype", "hidden_size", "inter_size", "num_experts", "moe_tp_size",
                                "num_tokens"]).itertuples():
            out.append(_row(commit, path, hw, tp=int(r.moe_tp_size), operator="moe", num_tokens=int(r.num_tokens),
                            dtype=MOE_DTYPES[r.moe_dtype], time_mean_ms=float(r.latency), n_embd=int(r.hidden_size),
                            n_expanded_embd=int(r.inter_size),
                            notes=f"topk={int(r.topk)} experts={int(r.num_experts)} ep=1 balanced; engine={engine}"))
    return out


def gemm_rows(git_dir: str, commit: str) -> list[dict]:
    out = []
    for engine, hw, path, d in _tables(git_dir, commit, "gemm", "gemm_perf", required=False):
        d = d[d.m.isin(GEMM_M) & d.n.isin(GEMM_NK) & d.k.isin(GEMM_NK) & d.gemm_dtype.isin(list(GEMM_DTYPES))]
        for r in d.sort_values(["gemm_dtype", "m", "n", "k"]).itertuples():
            out.append(_row(commit, path, hw, tp=1, operator="gemm", num_tokens=int(r.m),
                            dtype=GEMM_DTYPES[r.gemm_dtype], time_mean_ms=float(r.latency), n_embd=int(r.k),
                            n_expanded_embd=int(r.n),
                            notes=f"gemm M x N x K = {int(r.m)} x {int(r.n)} x {int(r.k)} ({r.kernel_source}); "
                                  f"engine={engine}"))
    return out


def rows(git_dir: str, commit: str) -> list[dict]:
    out = []
    for engine, hw, path, d in _tables(git_dir, commit, "comm", "custom_allreduce_perf"):
        kernel, version = ALLREDUCE[engine], path.split("/")[-2]
        d = d[(d.op_name == "all_reduce") & (d.kernel_source == kernel)]
        for r in d.sort_values(["num_gpus", "message_size"]).itertuples():
            out.append(_row(commit, path, hw, tp=int(r.num_gpus), operator="all_reduce",
                            size_elements=int(r.message_size), dtype="bf16", time_mean_ms=float(r.latency),
                            notes=(f"{engine} {version} all-reduce kernel ({kernel}, CUDA graph) of "
                                   f"{int(r.message_size)} bf16 elements over {int(r.num_gpus)} GPUs x 1 node(s) of "
                                   f"one engine's kernel; engine={engine}; time_mean_ms = the published latency (ms)")))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("git_dir")
    ap.add_argument("--commit", default="HEAD")
    args = ap.parse_args(argv)
    commit = subprocess.run(["git", "-C", args.git_dir, "rev-parse", args.commit], check=True,
                            capture_output=True, text=True).stdout.strip()
    k = pd.read_csv(CSV, dtype=str, keep_default_na=False)
    new = pd.DataFrame(rows(args.git_dir, commit) + moe_rows(args.git_dir, commit) + gemm_rows(args.git_dir, commit),
                       dtype=str).reindex(columns=k.columns, fill_value="")
    k = pd.concat([k[k.source_id != SOURCE_ID], new], ignore_index=True)
    k.to_csv(CSV, index=False, lineterminator="\r\n")
    print(f"{len(new)} rows of {SOURCE_ID} written to {CSV.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
