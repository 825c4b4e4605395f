"""Roofline step-time model for GPUs (and other HBM accelerators) with tensor parallelism.

Per step (all per GPU of a TP group; ``pp`` stages run one after another, no micro-batch overlap):

- linear FLOPs = 2 x (active params without the input embedding) x tokens + 2 x vocab x hidden per
  sampled token (the LM head runs only for tokens that produce output);
- attention FLOPs = ``Model.attention_flops_per_context_token`` x (query, key) pairs;
- bytes = weights read (dense part + the routed experts the batch touches, uniform routing)
  + KV cache read (context of every sequence) + KV written (new tokens);
- communication = two ring all-reduces per layer of tokens x hidden x 2 bytes over the per-direction
  interconnect bandwidth, plus a fixed latency per all-reduce;
- time = overhead + max(compute, memory) + communication.

Efficiencies and overheads come from ``PerfParams`` (fitted; see docs/calibration.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from infersim.catalog import BYTES_PER_PARAM, COMPUTE_PRECISION, Hardware, Model
from infersim.perf.base import StepTime, step_aggregates
from infersim.perf.params import PerfParams

ACT_BYTES = 2.0  # activations travel in bf16 between layers (assumption, standard in TRT-LLM/vLLM)


@dataclass(frozen=True)
class GpuConfig:
    """A replica's hardware set-up: ``tp`` x ``pp`` x ``dp`` chips of one kind at a weight/KV precision.

    ``tp``: tensor-parallel degree (every dense layer sharded over ``tp`` chips); ``pp``: pipeline stages
    (layers split over ``pp`` groups of chips); ``dp``: attention data-parallel ranks inside the replica (each
    rank holds its own sequences and a full copy of the dense weights, sharded over ``tp``); ``ep``: expert-
    parallel degree of the MoE layers: 1 = experts sharded like the dense layers over ``tp``, otherwise
    ``ep == tp * dp`` (each chip of a stage holds ``num_experts / ep`` whole experts). ``gpus = tp * pp * dp``.
    """

    hardware: Hardware
    model: Model
    precision: str = "bf16"
    kv_precision: str = "bf16"
    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1

    def __post_init__(self):
        for name in ("tp", "pp", "dp", "ep"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.ep != 1 and self.ep != self.tp * self.dp:
            raise ValueError(f"ep must be 1 or tp x dp = {self.tp * self.dp}, got {self.ep}")

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp

    def weight_bytes_per_gpu(self) -> float:
        """Weight bytes one chip holds: the dense part over ``tp x pp`` (each dp rank a copy), the routed
        experts over ``ep x pp`` (or ``tp x pp`` when ``ep == 1``)."""
        m = self.model
        wb = BYTES_PER_PARAM[self.precision]
        expert = m.expert_params_b * 1e9 * wb
        dense = m.total_params_b * 1e9 * wb - expert
        expert_shards = (self.ep if self.ep > 1 else self.tp) * self.pp
        return dense / (self.tp * self.pp) + expert / expert_shards


class GpuRoofline:
    """The GPU variant of the step model. Construct once per deployment; calls are cheap."""

    def __init__(self, cfg: GpuConfig, params: PerfParams | None = None):
        self.cfg, self.p = cfg, params or PerfParams()
        m, hw = cfg.model, cfg.hardware
        tp, pp = cfg.tp, cfg.pp
        wb = BYTES_PER_PARAM[cfg.precision]
        self.peak_flops = hw.peak_flops(cfg.precision)
        if COMPUTE_PRECISION.get(cfg.precision, "bf16") != "bf16":  # 8/4-bit tensor cores: the profile's scale
            self.peak_flops *= getattr(self.p, "low_precision_compute_scale", 1.0)
        self.bw = hw.memory_bw_tbps * 1e12
        # interconnect_gbps is quoted bidirectional; a ring all-reduce streams one way per link. A TP group
        # larger than one scale-up domain runs its ring over the scale-out network (per direction).
        if tp * cfg.dp <= max(hw.nvlink_domain_gpus, 1):
            self.link_bw = max(hw.interconnect_gbps, 1e-9) * 1e9 / 2.0
        else:
            self.link_bw = max(hw.scaleout_gbps, 1e-9) * 1e9
        embed = m.vocab_size * m.hidden_size
        # FLOPs per token through the linear layers (input embedding is a lookup, LM head counted apart)
        n_embed = 2 if m.active_includes_embedding else 1  # input embedding + LM head inside "active"
        self.linear_flops_per_token = 2.0 * max(m.active_params_b * 1e9 - n_embed * embed, 0.0)
        self.head_flops_per_sample = 2.0 * embed
        self.attn_flops_per_pair = m.attention_flops_per_context_token()
        # weights: always-read part and the routed experts (per GPU)
        expert_b = m.expert_params_b * 1e9
        self.dense_weight_bytes = (m.total_params_b * 1e9 - expert_b) * wb / (tp * pp)
        self.expert_weight_bytes = expert_b * wb / (tp * pp)
        # KV per token per GPU: GQA heads shard over TP up to the number of KV heads; MLA replicates.
        kv_shard = 1 if m.kv_lora_rank else min(tp, max(m.num_kv_heads, 1))
        self.kv_bytes_per_token = m.kv_bytes_per_token(cfg.kv_precision) / kv_shard / pp
        self.full_frac = 1.0 - (m.sliding_window_layers / m.layers if m.sliding_window else 0.0)
        self.window = float(m.sliding_window or 0)
        self.n_allreduce = 2 * m.layers if tp > 1 else 0
        self.ar_bytes_per_token = m.hidden_size * ACT_BYTES * 2.0 * (tp - 1) / tp if tp > 1 else 0.0
        self.pp = pp
        self.pp_hop_s = (m.hidden_size * ACT_BYTES) / self.link_bw if pp > 1 else 0.0
        self.tp = tp
        self._affine_cache: dict[int, tuple] = {}  # decode_affine coefficients per batch size

    # -- pieces -------------------------------------------------------------------------------
    def _linear_eff(self, tokens: float | np.ndarray) -> float | np.ndarray:
        h = self.p.compute_half_tokens
        if h <= 0:
            return self.p.compute_eff
        return self.p.compute_eff * tokens / (tokens + h)

    def _weight_bytes(self, tokens: float | np.ndarray) -> float | np.ndarray:
        if self.expert_weight_bytes == 0.0:
            return self.dense_weight_bytes
        m = self.cfg.model
        frac = 1.0 - (1.0 - m.experts_per_token / m.num_experts) ** np.asarray(tokens, dtype=float)
        return self.dense_weight_bytes + self.expert_weight_bytes * frac

    def _effective_pairs(self, pairs: float | np.ndarray, queries: float | np.ndarray):
        """Pairs after sliding-window layers cap each query's keys at the window."""
        if self.full_frac >= 1.0:
            return pairs
        return self.full_frac * pairs + (1.0 - self.full_frac) * np.minimum(pairs, queries * self.window)

    def _time(self, tokens, sampled, pairs, kv_read_tokens, n_seqs):
        """Vectorisable core: arguments may be floats or equal-length arrays."""
        p = self.p
        tp = self.tp
        lin = (self.linear_flops_per_token * tokens + self.head_flops_per_sample * sampled) / tp
        attn = self.attn_flops_per_pair * pairs / tp
        compute = (lin / (self.peak_flops * self._linear_eff(np.maximum(tokens, 1.0)))
                   + attn / (self.peak_flops * p.attn_eff))
        bytes_ = self._weight_bytes(tokens) + self.kv_bytes_per_token * (kv_read_tokens + tokens)
        memory = bytes_ / (self.bw * p.memory_eff)
        comm = self.n_allreduce * (p.allreduce_latency_s
                                   + self.ar_bytes_per_token * tokens / (self.link_bw * p.comm_eff))
        overhead = p.step_overhead_s + p.per_seq_overhead_s * n_seqs
        stage = np.maximum(compute, memory)
        total = overhead + self.pp * stage + comm * 1.0 + (self.pp - 1) * self.pp_hop_s
        return total, compute, memory, comm, overhead

    # -- the StepModel interface --------------------------------------------------------------------
    def step(self, prefill_tokens, prefill_context, decode_context) -> StepTime:
        return self._step_parts(*step_aggregates(prefill_tokens, prefill_context, decode_context))

    def _step_parts(self, n_pre, pairs, n_pre_seqs, n_dec, dec_ctx, pre_ctx=None) -> StepTime:
        tokens = n_pre + n_dec
        eff_pairs = self._effective_pairs(pairs, n_pre) + self._effective_pairs(dec_ctx + n_dec, n_dec)
        # KV read: decodes read their context; a prefill chunk reads the context it attends to.
        kv_read = self._effective_pairs(dec_ctx, n_dec) + (pre_ctx if pre_ctx is not None else 0.0)
        total, c, mem, comm, ovh = self._time(tokens, n_dec + n_pre_seqs, eff_pairs, kv_read,
                                              n_dec + n_pre_seqs)
        return StepTime(float(total), float(c), float(mem), float(comm), float(ovh))

    def step_s(self, n_prefill_tokens, prefill_pairs, n_prefill_seqs, n_decode, decode_ctx_sum,
               prefill_ctx_sum=0.0) -> float:
        """Scalar fast path of ``step(...).total_s`` (the engine calls this once per step)."""
        p = self.p
        tokens = float(n_prefill_tokens + n_decode)
        n_seqs = n_decode + n_prefill_seqs
        pairs, dec_pairs, kv_read = float(prefill_pairs), decode_ctx_sum + n_decode, float(decode_ctx_sum)
        if self.full_frac < 1.0:
            f, w = self.full_frac, self.window
            pairs = f * pairs + (1 - f) * min(pairs, n_prefill_tokens * w)
            dec_pairs = f * dec_pairs + (1 - f) * min(dec_pairs, n_decode * w)
            kv_read = f * kv_read + (1 - f) * min(kv_read, n_decode * w)
        kv_read += prefill_ctx_sum
        h = p.compute_half_tokens
        lin_eff = p.compute_eff * (tokens / (tokens + h) if h > 0 else 1.0)
        tp = self.tp
        compute = ((self.linear_flops_per_token * tokens + self.head_flops_per_sample * n_seqs) / tp
                   / (self.peak_flops * lin_eff)
                   + self.attn_flops_per_pair * (pairs + dec_pairs) / tp / (self.peak_flops * p.attn_eff))
        if self.expert_weight_bytes:
            m = self.cfg.model
            wbytes = self.dense_weight_bytes + self.expert_weight_bytes * (
                1.0 - (1.0 - m.experts_per_token / m.num_experts) ** tokens)
        else:
            wbytes = self.dense_weight_bytes
        memory = (wbytes + self.kv_bytes_per_token * (kv_read + tokens)) / (self.bw * p.memory_eff)
        comm = self.n_allreduce * (p.allreduce_latency_s + self.ar_bytes_per_token * tokens / (self.link_bw * p.comm_eff))
        return (p.step_overhead_s + p.per_seq_overhead_s * n_seqs + self.pp * max(compute, memory) + comm
                + (self.pp - 1) * self.pp_hop_s)

    def decode_affine(self, n_decode: int) -> tuple[float, int, float, float, float, float] | None:
        """Coefficients ``(fixed, pp, compute0, compute_rate, memory0, memory_rate)`` of a decode-only step
        of ``n_decode`` sequences with total context ``ctx``: step = fixed + pp x max(compute0 +
        compute_rate x ctx, memory0 + memory_rate x ctx), the exact float operations of
        ``decode_steps_s``. None with sliding-window layers (not affine). Cached per ``n_decode``."""
        c = self._affine_cache.get(n_decode)
        if c is None:
            if self.full_frac < 1.0:
                return None
            fixed, lin, attn_rate, mem0, mem_rate = self._decode_coeffs(float(n_decode))
            c = self._affine_cache[n_decode] = (fixed, self.pp, lin + attn_rate * float(n_decode), attn_rate, mem0,
                                                mem_rate)
        return c

    def _decode_coeffs(self, n: float) -> tuple[float, float, float, float, float]:
        """``(fixed, linear compute, attention s per pair, memory0, memory s per context token)`` of a
        decode-only step of ``n`` sequences (the terms ``decode_affine`` and ``decode_steps_s`` share)."""
        p = self.p
        tp = self.tp
        lin_eff = p.compute_eff * (n / (n + p.compute_half_tokens) if p.compute_half_tokens > 0 else 1.0)
        attn_rate = self.attn_flops_per_pair / tp / (self.peak_flops * p.attn_eff)
        lin = (self.linear_flops_per_token * n + self.head_flops_per_sample * n) / tp / (self.peak_flops * lin_eff)
        mem_rate = self.kv_bytes_per_token / (self.bw * p.memory_eff)
        mem0 = (float(self._weight_bytes(n)) + self.kv_bytes_per_token * n) / (self.bw * p.memory_eff)
        fixed = (p.step_overhead_s + p.per_seq_overhead_s * n
                 + self.n_allreduce * (p.allreduce_latency_s + self.ar_bytes_per_token * n / (self.link_bw * p.comm_eff))
                 + (self.pp - 1) * self.pp_hop_s)
        return fixed, lin, attn_rate, mem0, mem_rate

    def decode_steps_s(self, n_decode: int, ctx_sums: np.ndarray) -> np.ndarray:
        """Decode-only steps: compute and memory are each affine in the total context, so the vector of
        step times is overhead + max(a_c + b_c x ctx, a_m + b_m x ctx) + comm (sliding-window layers cap
        each sequence's keys at the window)."""
        ctx = np.asarray(ctx_sums, dtype=float)
        if self.full_frac >= 1.0:
            fixed, pp, compute0, attn_rate, mem0, mem_rate = self.decode_affine(n_decode)
            return fixed + pp * np.maximum(compute0 + attn_rate * ctx, mem0 + mem_rate * ctx)
        n = float(n_decode)
        fixed, lin, attn_rate, mem0, mem_rate = self._decode_coeffs(n)
        f = self.full_frac
        capped = np.minimum(ctx, n * self.window)
        eff_ctx = f * ctx + (1 - f) * capped
        eff_pairs = f * (ctx + n) + (1 - f) * np.minimum(ctx + n, n * self.window)
        compute = lin + attn_rate * eff_pairs
        memory = mem0 + mem_rate * eff_ctx
        return fixed + self.pp * np.maximum(compute, memory)

    def verify_steps_s(self, n_seqs: int, tokens_per_seq: int, ctx_sums: np.ndarray) -> np.ndarray:
        """Speculative verification passes (``perf.specdec``): ``n_seqs`` sequences each run
        ``tokens_per_seq`` query tokens (k drafts + 1) over their context (total ``ctx_sums``, vectorised);
        every position goes through the LM head. With ``tokens_per_seq`` = 1 this is ``decode_steps_s``."""
        ctx = np.asarray(ctx_sums, dtype=float)
        n, q = float(n_seqs), float(tokens_per_seq)
        tokens = n * q
        pairs = self._effective_pairs(q * ctx + n * q * (q + 1) / 2.0, tokens)
        kv_read = self._effective_pairs(ctx, n)
        return self._time(tokens, tokens, pairs, kv_read, n)[0]

    # -- floors used by tests -----------------------------------------------------------------------
    def weight_stream_floor_s(self) -> float:
        """Weights of one GPU read once at peak bandwidth: no decode step can be faster."""
        return float(self._weight_bytes(1.0)) / self.bw * self.pp


def ceil_div(a: float, b: float) -> int:
    return int(math.ceil(a / b))
