"""Measured kernel ceilings per accelerator: the share of the datasheet peak a large matmul reaches.

These are hardware facts measured outside any serving engine (a brute-force search over GEMM shapes on one
chip), so they transfer across engines; an engine profile's ``compute_eff`` then scales this ceiling (1 = the
engine's GEMMs reach the measured ceiling at large M). Sources:

- BF16 "maximum achievable matmul FLOPS" (MAMF) table, stas00/ml-engineering ``compute/accelerator/README.md``:
  A100 SXM 267.9 / 312 = 85.9 % (CUDA 12.1), H100 SXM 792.1 / 989 = 80.1 % (CUDA 12.1), GH200 821.0 / 989 =
  83.0 %, MI300X 781.9 / 1300 = 60.1 % (ROCm 6.2).
- NVFP4 on B200: 6,624 of 9,000 dense FP4 TFLOPS = 73.6 % (MAMF reported by the same author for torch 2.14,
  2026-10-02, as quoted in a public gpt-oss NVFP4/MXFP4 study; MXFP4 6,087 = 67.6 %).

Entries without a measurement are ASSUMPTIONS named in :data:`ASSUMED`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

#: (hardware id, compute precision) -> share of the dense datasheet peak a large GEMM reaches.
MATMUL_CEILING: dict[tuple[str, str], float] = {
    ("a100-80g", "bf16"): 0.859,
    ("h100-sxm", "bf16"): 0.801,
    ("h200", "bf16"): 0.801,  # same GH100 die and clocks as H100 SXM (hardware.csv); GH200 measured 0.830
    ("mi300x", "bf16"): 0.601,
    ("mi325x", "bf16"): 0.601,  # ASSUMPTION: same CDNA3 compute die as MI300X (hardware.csv)
    ("b200", "fp4"): 0.736,
    ("gb200", "fp4"): 0.736,  # ASSUMPTION: same Blackwell die as B200
}
#: Ceiling of a (hardware, precision) pair with no measurement: ASSUMPTION, the H100's BF16 share (a mature
#: cuBLAS-class library on a current part reaches ~80 % of the datasheet peak).
DEFAULT_CEILING = 0.801
ASSUMED = ("mi325x bf16 = MI300X", "gb200 fp4 = B200", "every other (hardware, precision): 0.801, H100 BF16's share",
           "FP8 and INT8 GEMMs: the BF16 share of the 2x peak, times the profile's low_precision_compute_scale")


def matmul_ceiling(hardware_id: str, compute_precision: str) -> float:
    """Share of the datasheet dense peak a large GEMM reaches on ``hardware_id`` at ``compute_precision``
    (``bf16``, ``fp8``, ``int8``, ``fp4``). FP8/INT8 fall back to the part's BF16 share."""
    key = (hardware_id, compute_precision)
    if key in MATMUL_CEILING:
        return MATMUL_CEILING[key]
    if compute_precision in ("fp8", "int8"):
        return MATMUL_CEILING.get((hardware_id, "bf16"), DEFAULT_CEILING)
    return DEFAULT_CEILING


# -- kernels measured outside any engine (catalog/data/kernel_priors.csv, benchmarks/kernel_priors.py) ----------
#: Hardware without its own measurement takes the H100 SXM's (ASSUMPTION: a current NVIDIA-class library reaches
#: the same share of its part's matmul ceiling and HBM bandwidth on real layer shapes; named in docs/model.md).
MEASURED_FALLBACK = "h100-sxm"


@dataclass(frozen=True)
class GemmPrior:
    """Real-shape GEMMs of one accelerator, measured: ``share_of_ceiling`` (large-M FLOP/s of the projection
    GEMMs of Llama/CodeLlama layers over the matmul ceiling), ``half_tokens`` (tokens at which a GEMM reaches
    half of that), ``stream_share`` (bytes/s a skinny GEMM streams its weights at, over the datasheet HBM
    bandwidth), ``kernel_fixed_s`` (fixed time per GEMM kernel), ``measured_on`` (the hardware measured)."""

    share_of_ceiling: float
    half_tokens: float
    stream_share: float
    kernel_fixed_s: float
    measured_on: str


@cache
def _priors() -> dict[tuple[str, str, str], float]:
    path = files("infersim.catalog") / "data" / "kernel_priors.csv"
    with path.open() as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return {(r["hardware"], r["quantity"], r["tp"]): float(r["value"]) for r in rows}


def gemm_prior(hardware_id: str) -> GemmPrior:
    """The measured GEMM prior of ``hardware_id`` (the H100's where the part was not measured)."""
    p = _priors()
    hw = hardware_id if (hardware_id, "gemm_share_of_ceiling", "") in p else MEASURED_FALLBACK
    return GemmPrior(p[(hw, "gemm_share_of_ceiling", "")], p[(hw, "gemm_half_tokens", "")],
                     p[(hw, "weight_stream_share_of_bw", "")], p[(hw, "kernel_fixed_s", "")], hw)


#: Parts whose all-reduce profile is NCCL's (APEX+), the library the engines call; the others' profiles are
#: torch.distributed timings of rank 0 (Vidur's DGX A100: 10 us at 2 GPUs, 61 at 4, a step an NCCL ring inside one
#: NVSwitch node does not take) and are not used for the latency's growth with TP.
NCCL_PROFILED = ("h100-sxm", "h200")


@dataclass(frozen=True)
class MoePrior:
    """An engine's fused MoE layer on one part and weight format, measured (``kernel_priors.csv``,
    ``moe_*.<engine>.<format>``, from the aiconfigurator collector's MoE timings): the grouped expert GEMMs reach
    ``share_of_peak`` of the format's dense datasheet peak at large M, times ``M_e / (M_e + half_tokens)`` (M_e:
    tokens per touched expert) and ``N / (N + half_width)`` (N: the expert GEMM's width, intermediate size over
    TP); the touched experts' weights stream at ``stream_share`` of the HBM bandwidth; ``fixed_s`` is the
    layer's time at any batch (routing, permutation, launches). ``measured_on``: the part measured."""

    share_of_peak: float
    half_tokens: float
    half_width: float
    stream_share: float
    fixed_s: float
    measured_on: str


#: Parts measured in their stead where the MoE kernels were not measured on them:
#: Blackwell boards and racks the B200, the H200 NVL the H200 SXM (ASSUMPTION: the same kernels on the same
#: silicon; named in docs/model.md)
MOE_FALLBACK = {"gb200": "b200", "b300": "b200", "gb300": "b200", "h200-nvl": "h200"}
#: a MoE weight precision -> the measured format class (block-scaled FP8 for fp8: what FP8 MoE checkpoints ship)
MOE_FORMAT = {"bf16": "bf16", "fp16": "bf16", "fp8": "fp8"}


@cache
def moe_prior(hardware_id: str, engine: str | None, precision: str) -> MoePrior | None:
    """The measured fused-MoE kernel of ``engine`` on ``hardware_id`` (or the part of ``MOE_FALLBACK``) for
    experts stored at ``precision``; None where not measured (other parts, FP4 and INT formats, no engine): the
    step model then times the expert GEMMs like dense ones (``perf.gpu``)."""
    fmt = MOE_FORMAT.get(precision)
    if engine is None or fmt is None:
        return None
    p = _priors()
    q = f".{engine}.{fmt}"
    for hw in (hardware_id, MOE_FALLBACK.get(hardware_id, "")):
        if (hw, "moe_share_of_peak" + q, "") in p:
            return MoePrior(p[(hw, "moe_share_of_peak" + q, "")], p[(hw, "moe_half_tokens" + q, "")],
                            p[(hw, "moe_half_width" + q, "")], p[(hw, "moe_stream_share_of_bw" + q, "")],
                            p[(hw, "moe_fixed_s" + q, "")], hw)
    return None


def _interp_log2(pts: list[tuple[int, float]], tp: int) -> float:
    """``pts`` ((GPUs, value), ascending) interpolated in log2(GPUs), held at the end degrees beyond them."""
    xs, ys = [math.log2(t) for t, _ in pts], [v for _, v in pts]
    x = math.log2(tp)
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = next(j for j in range(1, len(xs)) if x <= xs[j])
    return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - xs[i - 1]) / (xs[i] - xs[i - 1])


@cache
def allreduce_latency_scale(hardware_id: str, tp: int) -> float:
    """How much longer one small all-reduce over ``tp`` GPUs of one node takes than over 2: the measured NCCL
    latency at ``tp`` over that at 2 (``kernel_priors.csv``; H100 SXM 8 / 12 / 18 us at 2 / 4 / 8 GPUs),
    interpolated in log2(tp) between measured degrees and held at the end ones beyond them. 1 at ``tp <= 2``.
    Parts without an NCCL profile take the H100's (ASSUMPTION: the latency of a one-node all-reduce grows with
    its GPUs as on an HGX H100; named in docs/model.md). An engine profile's ``allreduce_latency_s`` is the
    latency at 2 GPUs. (The engines' own custom all-reduce kernels barely grow with the GPUs when timed alone,
    4.3 / 4.6 / 4.8 us for vLLM on H100 SXM; taking that growth instead was worse out of sample: docs/model.md.)"""
    if tp <= 2:
        return 1.0
    hw = hardware_id if hardware_id in NCCL_PROFILED else MEASURED_FALLBACK
    degrees = sorted({int(k[2]) for k in _priors() if k[0] == hw and k[1] == "allreduce_latency_s" and k[2]})
    pts = [(t, m[0]) for t in degrees if (m := allreduce_measured(hw, t)) is not None]
    base = dict(pts).get(2)
    if not base:
        return 1.0
    return _interp_log2(pts, tp) / base


def allreduce_measured(hardware_id: str, tp: int) -> tuple[float, float] | None:
    """``(latency_s, algorithm bandwidth in bytes/s)`` of a measured NCCL all-reduce over ``tp`` GPUs of one
    node, or None where not measured."""
    p = _priors()
    key = (hardware_id, "allreduce_latency_s", str(tp))
    if key not in p:
        return None
    return p[key], p[(hardware_id, "allreduce_algbw_gbps", str(tp))] * 1e9
