"""Collectives of a GPU replica's step (physics, no clock): which links they use, how many per stage, how many
bytes per token. ``perf.gpu.GpuRoofline`` times them (latency + bytes / (bandwidth x ``comm_eff``)).

- Links: a group of GPUs inside one scale-up domain (``Hardware.nvlink_domain_gpus``: 8 on HGX boards, 72 in a
  GB200/GB300 NVL72 rack) talks over its links at half the published bidirectional ``interconnect_gbps``; a
  larger group over the per-GPU scale-out network (``scaleout_gbps``, e.g. a 400 Gb/s ConnectX-7 = 50 GB/s).
- Tensor parallelism: two all-reduces per layer (one per MoE layer fewer when the experts are expert-parallel),
  a ring moving ``2 (tp - 1) / tp`` of the activations; its latency is the engine's at 2 GPUs times the measured
  NCCL growth with the GPUs (``perf.kernels.allreduce_latency_scale``: 1.5x at 4, 2.25x at 8 on H100 SXM).
- Expert parallelism: a dispatch and a combine all-to-all per MoE layer (``a2a_bytes_per_token``).
- Pipeline stages: one activation send per stage boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infersim.catalog import BYTES_PER_PARAM, COMPUTE_PRECISION
from infersim.perf.kernels import allreduce_latency_scale

ACT_BYTES = 2.0  # activations travel in bf16 between layers (assumption, standard in TRT-LLM/vLLM)


def link_bw(hw, group: int) -> float:
    """Per-direction bytes/s of a collective over ``group`` GPUs of ``hw``: the scale-up domain's links
    (``interconnect_gbps`` is bidirectional) inside one domain, the scale-out network beyond."""
    if group <= max(hw.nvlink_domain_gpus, 1):
        return max(hw.interconnect_gbps, 1e-9) * 1e9 / 2.0
    return max(hw.scaleout_gbps, 1e-9) * 1e9


def a2a_bytes_per_token(model, hw, ep: int, compute_precision: str, dispatch_bytes: float | None = None) -> float:
    """Bytes one GPU sends per all-to-all (the mean of dispatch and combine), per token of the micro-batch over
    all ranks (a GPU holds ``1/ep`` of them). Dispatch travels in FP8 when the model computes in 8 or 4 bits,
    combine in BF16 (DeepEP: FP8 dispatch, BF16 combine; github.com/deepseek-ai/DeepEP). Inside one scale-up
    domain each token goes to its k experts, ``(ep - 1)/ep`` of them on other GPUs. Across domains (``ep`` >
    ``nvlink_domain_gpus``) a token crosses the network once per remote domain holding one of its experts and
    is forwarded over NVLink there (DeepEP's internode kernels): with k experts uniform over n domains that is
    ``(n - 1)(1 - (1 - 1/n)^k)`` domains, at most the model's ``topk_group`` (DeepSeek-V3's node-limited routing
    sends a token to at most 4 nodes, Technical Report sec. 2.1.2; ASSUMPTION: expert groups map onto
    domains). ``dispatch_bytes`` (bytes per element) overrides the dispatch format: experts of their own
    precision receive their GEMM's input format (``dispatch_bytes_for``)."""
    if dispatch_bytes is None:
        dispatch_bytes = 1.0 if compute_precision != "bf16" else ACT_BYTES
    b = (dispatch_bytes + ACT_BYTES) / 2.0
    domain = max(hw.nvlink_domain_gpus, 1)
    k = float(model.experts_per_token)
    if ep <= domain:
        return k * model.hidden_size * b * (ep - 1) / ep / ep
    n = math.ceil(ep / domain)
    touched = n * (1.0 - (1.0 - 1.0 / n) ** k)
    if model.topk_group:
        touched = min(touched, float(model.topk_group))
    return model.hidden_size * b * touched * (n - 1) / n / ep


def dispatch_bytes_for(expert_precision: str | None) -> float | None:
    """Bytes per element of the dispatched activations when the experts have their own precision: the expert
    GEMM's input format, BF16 for 16-bit experts, FP8 for 8-bit ones, and block-scaled FP4 for FP4 ones
    (SGLang fuses NVFP4 quantization into DeepEP's dispatch, halving the traffic: LMSYS blog "Deploying
    DeepSeek on GB200 NVL72 with PD and Large Scale EP (Part II)", 2025-09-25). None: the dense precision's
    rule (FP8 dispatch for any 8- or 4-bit model)."""
    if expert_precision is None:
        return None
    comp = COMPUTE_PRECISION.get(expert_precision, "bf16")
    if comp == "bf16":
        return ACT_BYTES
    return BYTES_PER_PARAM[expert_precision] if comp == "fp4" else 1.0


@dataclass(frozen=True)
class Collectives:
    """Per stage and micro-batch: all-reduces (count, bytes per token, bandwidth), all-to-alls (likewise) and
    the stage-to-stage send (bytes per token, bandwidth); bandwidths include ``comm_eff`` where it applies."""

    ar_count: float
    ar_bytes_tok: float
    ar_bw: float
    ar_latency_scale: float
    a2a_count: float
    a2a_bytes_tok: float
    a2a_bw: float
    hop_bytes_tok: float
    hop_bw: float


def collectives(cfg, comm_eff: float, moe: bool, compute_precision: str) -> Collectives:
    """The collectives of one replica set-up ``cfg`` (``perf.gpu.GpuConfig``)."""
    m, hw = cfg.model, cfg.hardware
    tp, pp, dp, ep = cfg.tp, cfg.pp, cfg.dp, cfg.ep
    moe_layers = (m.moe_layers or m.layers) if moe else 0
    n_ar = (2 * m.layers - (moe_layers if ep > 1 else 0)) if tp > 1 else 0
    return Collectives(
        ar_count=n_ar / pp,
        ar_bytes_tok=m.hidden_size * ACT_BYTES * 2.0 * (tp - 1) / tp if tp > 1 else 0.0,
        ar_bw=link_bw(hw, tp) * comm_eff,
        ar_latency_scale=allreduce_latency_scale(hw.id, tp) if tp > 1 else 1.0,
        a2a_count=2.0 * moe_layers / pp if ep > 1 else 0.0,
        a2a_bytes_tok=(a2a_bytes_per_token(m, hw, ep, compute_precision, dispatch_bytes_for(cfg.expert_precision))
                       if ep > 1 else 0.0),
        a2a_bw=link_bw(hw, ep) * comm_eff,
        hop_bytes_tok=m.hidden_size * ACT_BYTES,
        hop_bw=link_bw(hw, tp * dp * pp))
