"""Per-operator step-time model for GPUs (and other HBM accelerators) with TP, PP, attention-DP and EP.

One engine step processes a batch: prefill chunks and one token per decoding sequence. The batch is split
over the ``dp`` attention ranks and, with ``pp`` stages, into ``m = min(pp, sequences)`` micro-batches that
flow through the stages. Per micro-batch and stage (per GPU), each operator is its own roofline
(``max(FLOPs / achieved FLOP/s, bytes / achieved bandwidth)``) and the operators add up:

- dense GEMMs (attention projections, dense MLP, shared experts, LM head): FLOPs = 2 x dense active
  parameters x tokens; bytes = the dense weights; efficiency = the hardware's measured matmul ceiling x the
  engine's ``compute_eff`` x ``M / (M + compute_half_tokens)`` with M the micro-batch's tokens;
- routed-expert GEMMs: tokens per expert = tokens x top-k / touched experts, grouped-GEMM efficiency by that M
  (``moe_half_tokens``), the expected load imbalance over ``ep`` ranks, bytes of the touched experts only;
- attention: prefill (query, key) pairs at ``attn_eff`` of the BF16 peak, or the KV bytes it reads; decode
  likewise (in practice the KV bytes);
- collectives: two TP all-reduces per layer (one per MoE layer when experts are expert-parallel), and an EP
  dispatch + combine all-to-all per MoE layer, each latency + bytes / (link bandwidth x ``comm_eff``); links are
  the scale-up domain's (``interconnect_gbps``) inside ``nvlink_domain_gpus``, the scale-out network beyond
  (counts, bytes and links in ``perf.collectives``).

step = CPU time (``step_overhead_s`` + ``per_seq_overhead_s`` x the sequences of one rank's engine core) +
pp x stage(micro-batch) + (pp - 1) stage-to-stage sends. With pp stages and m = pp micro-batches, a compute-bound step runs pp times the
work of one stage in the time of one (throughput scales with stages); a single sequence (m = 1) pays every stage
in turn (the pipeline bubble). Decode-only steps are affine in the batch's total context for a fixed number of
sequences (only decode attention depends on it), which the engine's exact fast-forward uses (``decode_affine``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from infersim.catalog import BYTES_PER_PARAM, Hardware, Model
from infersim.perf.base import StepTime, step_aggregates
from infersim.perf.collectives import collectives
from infersim.perf.gpu_step import GpuStep
from infersim.perf.kernels import gemm_prior, matmul_ceiling, moe_prior
from infersim.perf.params import PerfParams

#: GEMM kernels per layer (QKV, output, MLP up/gate, MLP down; MoE layers: the expert GEMMs in their place)
GEMMS_PER_LAYER = 4


@dataclass(frozen=True)
class GpuConfig:
    """A replica's hardware set-up: ``tp`` x ``pp`` x ``dp`` chips of one kind at a weight/KV precision.

    ``tp``: tensor-parallel degree (every dense layer sharded over ``tp`` chips); ``pp``: pipeline stages
    (layers split over ``pp`` groups of chips); ``dp``: attention data-parallel ranks inside the replica (each
    rank holds its own sequences and a full copy of the dense weights, sharded over ``tp``); ``ep``: expert-
    parallel degree of the MoE layers: 1 = experts sharded like the dense layers over ``tp``, otherwise
    ``ep == tp * dp`` (each chip of a stage holds ``num_experts / ep`` whole experts). ``gpus = tp * pp * dp``.
    ``expert_precision``: the routed experts' weights when they differ from the rest (NVFP4 experts with FP8
    attention and dense layers, as SGLang serves DeepSeek on GB200); None = ``precision``.
    """

    hardware: Hardware
    model: Model
    precision: str = "bf16"
    kv_precision: str = "bf16"
    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    expert_precision: str | None = None

    def __post_init__(self):
        for name in ("tp", "pp", "dp", "ep"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.ep != 1 and self.ep != self.tp * self.dp:
            raise ValueError(f"ep must be 1 or tp x dp = {self.tp * self.dp}, got {self.ep}")
        if self.expert_precision is not None and self.expert_precision not in BYTES_PER_PARAM:
            raise ValueError(f"expert_precision must be one of {', '.join(BYTES_PER_PARAM)}, "
                             f"got {self.expert_precision!r}")

    @property
    def moe_precision(self) -> str:
        """The routed experts' weight precision (``expert_precision``, else ``precision``)."""
        return self.expert_precision or self.precision

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp

    def weight_bytes_per_gpu(self) -> float:
        """Weight bytes one chip holds: the dense part over ``tp x pp`` (each dp rank a copy), the routed
        experts over ``ep x pp`` (or ``tp x pp`` when ``ep == 1``)."""
        m = self.model
        wb = BYTES_PER_PARAM[self.precision]
        dense = m.total_params_b * 1e9 * wb - m.expert_params_b * 1e9 * wb
        expert = m.expert_params_b * 1e9 * BYTES_PER_PARAM[self.moe_precision]
        expert_shards = (self.ep if self.ep > 1 else self.tp) * self.pp
        return dense / (self.tp * self.pp) + expert / expert_shards


class GpuRoofline:
    """The GPU variant of the step model. Construct once per deployment; calls are cheap."""

    def __init__(self, cfg: GpuConfig, params: PerfParams | None = None, *, overlap: bool = False,
                 engine: str | None = None):
        self.cfg, self.p = cfg, params or PerfParams()
        # the serving engine (vllm, sglang, trtllm) whose measured fused-MoE kernel times the routed experts
        # (perf.kernels.moe_prior); None: the experts' GEMMs are timed like dense ones
        self.engine = engine
        # two-batch overlap (SGLang --enable-two-batch-overlap): two micro-batches alternate so that one's
        # collectives run under the other's compute; ASSUMPTION: perfectly hidden, a stage lasts
        # max(compute, communication). Only with collectives to hide.
        self.overlap = bool(overlap) and (cfg.tp > 1 or cfg.ep > 1)
        p, m, hw = self.p, cfg.model, cfg.hardware
        tp, pp, dp, ep = cfg.tp, cfg.pp, cfg.dp, cfg.ep
        self.tp, self.pp, self.dp, self.ep = tp, pp, dp, ep
        comp = hw.compute_path(cfg.precision) or "bf16"  # FP4 weights without FP4 tensor cores: BF16 GEMMs
        scale = {"bf16": 1.0, "fp4": p.fp4_compute_scale}.get(comp, p.low_precision_compute_scale)
        # achieved large-M GEMM FLOP/s; attention computes in BF16 (FlashAttention-class kernels)
        # measured real-shape GEMMs and weight streaming of the part (perf.kernels.gemm_prior); the engine's
        # compute_eff and memory_eff scale them (1 = the measured kernels)
        prior = gemm_prior(hw.id)
        self.gemm_flops = (hw.peak_flops(cfg.precision) * matmul_ceiling(hw.id, comp) * prior.share_of_ceiling
                           * p.compute_eff * scale)
        # the routed experts' grouped GEMMs at their own precision (the same expression when it is the dense one)
        ecomp = hw.compute_path(cfg.moe_precision) or "bf16"
        escale = {"bf16": 1.0, "fp4": p.fp4_compute_scale}.get(ecomp, p.low_precision_compute_scale)
        self.expert_gemm_flops = (hw.peak_flops(cfg.moe_precision) * matmul_ceiling(hw.id, ecomp)
                                  * prior.share_of_ceiling * p.compute_eff * escale)
        self.peak_flops = hw.peak_flops(cfg.precision)
        self.attn_flops = hw.peak_flops("bf16") * p.attn_eff
        self.bw = hw.memory_bw_tbps * 1e12 * prior.stream_share * p.memory_eff
        # fixed time of one stage's layers: its GEMM kernels' launch and tail (GEMMS_PER_LAYER per layer, measured)
        # and the engine's non-GEMM kernels (``layer_overhead_s`` per layer; + 0.0 leaves the sum bit-identical)
        self.kernel_fixed_s = (prior.kernel_fixed_s * GEMMS_PER_LAYER + p.layer_overhead_s) * m.layers / pp
        # the routed experts' grouped GEMMs as the engine's fused MoE kernel was measured on this part and format
        # (perf.kernels.moe_prior): their large-M rate, M ramp (tokens per expert), width ramp, weight streaming
        # and fixed time per MoE layer, which replaces the fixed time of the two MLP GEMMs it stands for.
        # Unmeasured (another part, FP4, no engine): the dense GEMM expressions above, the profile's ramp.
        self.moe_half, self.expert_bw = p.moe_half_tokens, self.bw
        mp = moe_prior(hw.id, engine, cfg.moe_precision) if m.num_experts and m.expert_params_b > 0 else None
        self.moe_kernel = mp
        if mp is not None:
            moe_layers = m.moe_layers or m.layers
            width = m.expert_params_b * 1e9 / (moe_layers * m.num_experts * 3.0 * m.hidden_size)
            width /= (tp if ep == 1 else 1)  # expert parallelism: whole experts
            self.expert_gemm_flops = (hw.peak_flops(cfg.moe_precision) * mp.share_of_peak * width
                                      / (width + mp.half_width) * p.compute_eff)
            self.moe_half = mp.half_tokens
            self.expert_bw = hw.memory_bw_tbps * 1e12 * mp.stream_share * p.memory_eff
            self.kernel_fixed_s += (mp.fixed_s - 2.0 * prior.kernel_fixed_s) * moe_layers / pp
        self.raw_bw = hw.memory_bw_tbps * 1e12
        wb = BYTES_PER_PARAM[cfg.precision]
        embed = m.vocab_size * m.hidden_size
        n_embed = 2 if m.active_includes_embedding else 1  # input embedding + LM head inside "active"
        linear = 2.0 * max(m.active_params_b * 1e9 - n_embed * embed, 0.0)  # FLOPs per token, all layers
        k, n_exp = m.experts_per_token, m.num_experts
        expert_active = 2.0 * m.expert_params_b * 1e9 * k / n_exp if n_exp else 0.0
        # per GPU of one stage: dense FLOPs per token and per sampled sequence (LM head; ASSUMPTION: spread
        # evenly over stages), dense weight bytes
        self.dense_flops_tok = (linear - expert_active) / (tp * pp)
        self.head_flops_seq = 2.0 * embed / (tp * pp)
        expert_b = m.expert_params_b * 1e9
        self.dense_bytes = (m.total_params_b * 1e9 - expert_b) * wb / (tp * pp)
        self.moe = n_exp > 0 and expert_b > 0
        self.k, self.n_exp = float(k), float(n_exp)
        self.expert_flops_assign = expert_active / max(k, 1) / pp  # per (token, expert) assignment, one stage
        ewb = BYTES_PER_PARAM[cfg.moe_precision]
        self.expert_bytes = expert_b * ewb / ((ep if ep > 1 else tp) * pp)  # this GPU's experts, one stage
        self.local_experts = n_exp / (ep if ep > 1 else 1)
        self.ln_ep = math.log(ep) if ep > 1 else 0.0
        # attention per GPU of one stage
        self.attn_flops_pair = m.attention_flops_per_context_token() / (tp * pp)
        kv_shard = 1 if m.kv_lora_rank else min(tp, max(m.num_kv_heads, 1))
        self.kv_bytes_per_token = m.kv_bytes_per_token(cfg.kv_precision) / kv_shard / pp
        self.full_frac = 1.0 - (m.sliding_window_layers / m.layers if m.sliding_window else 0.0)
        self.window = float(m.sliding_window or 0)
        # collectives per stage and micro-batch (perf.collectives)
        c = collectives(cfg, p.comm_eff, self.moe, comp)
        self.ar_count, self.ar_bytes_tok, self.ar_bw = c.ar_count, c.ar_bytes_tok, c.ar_bw
        # one TP all-reduce's latency: the engine's (at 2 GPUs) x the measured growth with tp (x 1.0 at tp <= 2
        # leaves it bit-identical)
        self.ar_latency_s = p.allreduce_latency_s * c.ar_latency_scale
        self.a2a_count, self.a2a_bytes_tok, self.a2a_bw = c.a2a_count, c.a2a_bytes_tok, c.a2a_bw
        self.hop_bytes_tok, self.hop_bw = c.hop_bytes_tok, c.hop_bw
        self._affine_cache: dict[int, tuple] = {}  # decode_affine coefficients per batch size
        self._fixed_cache: dict[int, tuple[float, float]] = {}
        self._bind_step()

    def _bind_step(self) -> None:
        # the step's scalar form (compiled when the build can: the engine calls it at every prefill step);
        # ``step_s`` calls it, so a test that patches the class's ``step_s`` or ``decode_affine`` still rules
        self.fast = None if self.overlap else GpuStep(self)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("fast", None)
        return state

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        self._bind_step()

    # -- operators of one stage and micro-batch (scalars) --------------------------------------------------
    def _gemm_eff(self, m_tokens: float, half: float) -> float:
        return self.gemm_flops * (m_tokens / (m_tokens + half) if half > 0 else 1.0)

    def _stage_fixed(self, t: float, s: float, t_all: float) -> float:
        """Operators of a stage that do not depend on context: dense GEMMs, expert GEMMs, collectives.
        ``t`` tokens and ``s`` sampled sequences of this GPU's rank, ``t_all`` tokens of the micro-batch over
        all dp ranks (what the expert-parallel layers see)."""
        p = self.p
        tm = max(t, 1.0)
        dense = max((self.dense_flops_tok * t + self.head_flops_seq * s) / self._gemm_eff(tm, p.compute_half_tokens),
                    self.dense_bytes / self.bw)
        experts = self._experts_s(t, t_all) if self.moe else 0.0
        comm = 0.0
        if self.ar_count:
            comm += self.ar_count * (self.ar_latency_s + self.ar_bytes_tok * t / self.ar_bw)
        if self.a2a_count:
            comm += self.a2a_count * (p.alltoall_latency_s + self.a2a_bytes_tok * t_all / self.a2a_bw)
        return dense + experts + comm + self.kernel_fixed_s

    def _experts_s(self, t: float, t_all: float) -> float:
        """Routed-expert GEMMs of a stage (MoE models): ``t`` tokens of this GPU's rank, ``t_all`` of the
        micro-batch over all dp ranks."""
        toks = t_all if self.ep > 1 else t  # tokens routed over this GPU's experts
        frac = 1.0 - (1.0 - self.k / self.n_exp) ** max(toks, 1.0)
        mean = toks * self.k / (self.ep if self.ep > 1 else 1)  # assignments per GPU (per tp shard: all)
        busiest = min(toks * self.k, mean + math.sqrt(2.0 * mean * self.ln_ep * (1.0 - 1.0 / self.ep))) \
            if self.ep > 1 else mean
        per_expert = max(busiest / (self.local_experts * frac), 1.0)
        flops = self.expert_flops_assign * busiest / (self.tp if self.ep == 1 else 1)
        half = self.moe_half
        eff = self.expert_gemm_flops * (per_expert / (per_expert + half) if half > 0 else 1.0)
        return max(flops / eff, self.expert_bytes * frac / self.expert_bw)

    def _split(self, n_seqs: int) -> tuple[float, float]:
        """``(share of the batch one GPU's rank handles per micro-batch, micro-batches)``. The batch spreads over
        ``min(dp, sequences)`` ranks and ``min(pp, sequences)`` micro-batches (ASSUMPTION: evenly)."""
        n = max(n_seqs, 1)
        mb = float(min(self.pp, n))
        return 1.0 / (min(self.dp, n) * mb), mb

    def _windowed(self, pairs: float, queries: float) -> float:
        if self.full_frac >= 1.0:
            return pairs
        f = self.full_frac
        return f * pairs + (1.0 - f) * min(pairs, queries * self.window)

    # -- the StepModel interface --------------------------------------------------------------------
    def step(self, prefill_tokens, prefill_context, decode_context) -> StepTime:
        return self._step_parts(*step_aggregates(prefill_tokens, prefill_context, decode_context))

    def _step_parts(self, n_pre, pairs, n_pre_seqs, n_dec, dec_ctx, pre_ctx=0.0) -> StepTime:
        """The step's total with its parts (compute / memory split of the roofline operators, reporting)."""
        total = self.step_s(n_pre, pairs, n_pre_seqs, n_dec, dec_ctx, pre_ctx)
        p = self.p
        n_seqs = n_dec + n_pre_seqs
        g, mb = self._split(n_seqs)
        t = (n_pre + n_dec) * g
        overhead = p.step_overhead_s + p.per_seq_overhead_s * self._rank_seqs(n_seqs)
        comm = 0.0
        if self.ar_count:
            comm += self.ar_count * (self.ar_latency_s + self.ar_bytes_tok * t / self.ar_bw)
        if self.a2a_count:
            comm += self.a2a_count * (p.alltoall_latency_s + self.a2a_bytes_tok * (n_pre + n_dec) / mb / self.a2a_bw)
        comm *= self.pp
        flops = ((self.dense_flops_tok * t + self.head_flops_seq * n_seqs * g) / self._gemm_eff(max(t, 1.0),
                 p.compute_half_tokens) + self.attn_flops_pair * (pairs + dec_ctx + n_dec) * g / self.attn_flops)
        memory = (self.dense_bytes + self.kv_bytes_per_token * (dec_ctx + pre_ctx + n_pre + n_dec) * g) / self.bw
        rest = max(total - overhead - comm, 0.0)
        share = flops / (flops + memory) if flops + memory > 0 else 0.5
        return StepTime(float(total), float(rest * share), float(rest * (1 - share)), float(comm), float(overhead))

    def step_s(self, n_prefill_tokens, prefill_pairs, n_prefill_seqs, n_decode, decode_ctx_sum,
               prefill_ctx_sum=0.0) -> float:
        """Seconds of one step from aggregates (the engine calls this once per step). A decode-only step
        evaluates the ``decode_affine`` coefficients, so it equals a fast-forward's step exactly.

        Without two-batch overlap this is ``perf.gpu_step.GpuStep.step_s``: the operators of ``_split``,
        ``_stage_fixed``, ``_experts_s`` and ``_windowed`` written out with the same float operations in the
        same order (bit-identical results,
        ``tests/test_perf_step_speed.py``), compiled when the build can: a mixed step is evaluated once per
        engine step, and interpreted, the calls and ``max`` lookups cost more than the arithmetic."""
        if self.overlap:
            return self._overlapped_s(n_prefill_tokens, prefill_pairs, n_prefill_seqs, n_decode, decode_ctx_sum,
                                      prefill_ctx_sum)
        return self.fast.step_s(n_prefill_tokens, prefill_pairs, n_prefill_seqs, n_decode, decode_ctx_sum,
                                prefill_ctx_sum)

    def _rank_seqs(self, n_seqs: int) -> float:
        """Sequences whose per-sequence CPU time one engine core pays: all of them with one attention rank;
        with ``dp`` ranks each rank's engine core schedules its own share in parallel (vLLM runs one EngineCore
        process per data-parallel rank; ASSUMPTION: an even split, as ``_split``)."""
        dp = self.dp
        if dp == 1 or n_seqs <= 1:
            return n_seqs
        return n_seqs / (dp if dp <= n_seqs else n_seqs)

    def _overlapped_s(self, n_pre, pairs, n_pre_seqs, n_dec, dec_ctx, pre_ctx=0.0) -> float:
        """A step under two-batch overlap: each stage's batch runs as two halves, one's collectives under the
        other's compute, so a stage lasts the longer of twice a half's compute (GEMMs at half the M, the touched
        experts' weights read once per half, attention, kernel fixed time) and the whole batch's collectives."""
        p = self.p
        n_seqs = n_dec + n_pre_seqs
        g, mb = self._split(n_seqs)
        tokens = float(n_pre + n_dec)
        t = tokens * g
        t_all = tokens / mb
        halves = 2.0 if n_seqs > 1 else 1.0  # one sequence cannot be split
        th = t / halves
        tm = max(th, 1.0)
        dense = max((self.dense_flops_tok * th + self.head_flops_seq * n_seqs * g / halves) / self._gemm_eff(tm,
                    p.compute_half_tokens), self.dense_bytes / self.bw)
        compute = halves * (dense + (self._experts_s(th, t_all / halves) if self.moe else 0.0) + self.kernel_fixed_s)
        if n_pre:
            compute += max(self.attn_flops_pair * self._windowed(float(pairs), float(n_pre)) * g / self.attn_flops,
                           self.kv_bytes_per_token * (pre_ctx + n_pre) * g / self.bw)
        if n_dec:
            dec_pairs = self._windowed(dec_ctx + n_dec, float(n_dec)) * g
            dec_read = (self._windowed(float(dec_ctx), float(n_dec)) + n_dec) * g
            compute += max(self.attn_flops_pair * dec_pairs / self.attn_flops, self.kv_bytes_per_token * dec_read / self.bw)
        comm = 0.0
        if self.ar_count:
            comm += self.ar_count * (self.ar_latency_s + self.ar_bytes_tok * t / self.ar_bw)
        if self.a2a_count:
            comm += self.a2a_count * (p.alltoall_latency_s + self.a2a_bytes_tok * t_all / self.a2a_bw)
        hop = (self.pp - 1) * (p.allreduce_latency_s + self.hop_bytes_tok * t / self.hop_bw) if self.pp > 1 else 0.0
        return p.step_overhead_s + p.per_seq_overhead_s * self._rank_seqs(n_seqs) + self.pp * max(compute, comm) + hop

    def decode_affine(self, n_decode: int) -> tuple[float, int, float, float, float, float] | None:
        """Coefficients ``(fixed, pp, compute0, compute_rate, memory0, memory_rate)`` of a decode-only step
        of ``n_decode`` sequences with total context ``ctx``: step = fixed + pp x max(compute0 + compute_rate x
        ctx, memory0 + memory_rate x ctx) (decode attention is the only operator that depends on context).
        None with sliding-window layers (not affine). Cached per ``n_decode``."""
        c = self._affine_cache.get(n_decode)
        if c is None:
            if self.full_frac < 1.0 or self.overlap:  # a max of compute and communication is not affine
                return None
            c = self._affine_cache[n_decode] = self._decode_coeffs(n_decode)
        return c

    def _decode_fixed(self, n_decode: int) -> tuple[float, float]:
        """``(seconds of a decode-only step of n sequences that do not depend on context, rank share g)``."""
        c = self._fixed_cache.get(n_decode)
        if c is None:
            p = self.p
            n = float(n_decode)
            g, mb = self._split(n_decode)
            t = n * g
            hop = (self.pp - 1) * (p.allreduce_latency_s + self.hop_bytes_tok * t / self.hop_bw) if self.pp > 1 else 0.0
            fixed = (p.step_overhead_s + p.per_seq_overhead_s * self._rank_seqs(n_decode)
                     + self.pp * self._stage_fixed(t, t, n / mb) + hop)
            c = self._fixed_cache[n_decode] = (fixed, g)
        return c

    def _decode_coeffs(self, n_decode: int) -> tuple[float, int, float, float, float, float]:
        fixed, g = self._decode_fixed(n_decode)
        n = float(n_decode)
        c_rate = self.attn_flops_pair * g / self.attn_flops
        m_rate = self.kv_bytes_per_token * g / self.bw
        return fixed, self.pp, c_rate * n, c_rate, m_rate * n, m_rate

    def _window_decode_s(self, n_decode: int, ctx: float) -> float:
        """A decode-only step with sliding-window layers: the operations of ``decode_steps_s``, scalar."""
        fixed, g = self._decode_fixed(n_decode)
        n, f, w = float(n_decode), self.full_frac, self.window
        pairs = (f * (ctx + n) + (1 - f) * min(ctx + n, n * w)) * g
        read = (f * ctx + (1 - f) * min(ctx, n * w) + n) * g
        return fixed + self.pp * max(self.attn_flops_pair * pairs / self.attn_flops,
                                     self.kv_bytes_per_token * read / self.bw)

    def decode_steps_s(self, n_decode: int, ctx_sums: np.ndarray) -> np.ndarray:
        """Decode-only steps of ``n_decode`` sequences with total contexts ``ctx_sums`` (vectorised):
        the affine form, or with sliding-window layers each sequence's keys capped at the window (the same
        float operations as ``step_s``)."""
        ctx = np.asarray(ctx_sums, dtype=float)
        if self.overlap:
            return np.array([self._overlapped_s(0, 0.0, 0, n_decode, float(c)) for c in ctx.ravel()]).reshape(ctx.shape)
        if self.full_frac >= 1.0:
            fixed, pp, c0, c_rate, m0, m_rate = self.decode_affine(n_decode)
            return fixed + pp * np.maximum(c0 + c_rate * ctx, m0 + m_rate * ctx)
        fixed, g = self._decode_fixed(n_decode)
        n, f, w = float(n_decode), self.full_frac, self.window
        pairs = (f * (ctx + n) + (1 - f) * np.minimum(ctx + n, n * w)) * g
        read = (f * ctx + (1 - f) * np.minimum(ctx, n * w) + n) * g
        return fixed + self.pp * np.maximum(self.attn_flops_pair * pairs / self.attn_flops,
                                            self.kv_bytes_per_token * read / self.bw)

    def verify_steps_s(self, n_seqs: int, tokens_per_seq: int, ctx_sums: np.ndarray) -> np.ndarray:
        """Speculative verification passes (``perf.specdec``): ``n_seqs`` sequences each run
        ``tokens_per_seq`` query tokens (k drafts + 1) over their context (total ``ctx_sums``, vectorised);
        every position goes through the LM head. With ``tokens_per_seq`` = 1 this is ``decode_steps_s``."""
        ctx = np.asarray(ctx_sums, dtype=float)
        n, q = int(n_seqs), int(tokens_per_seq)
        if q == 1:
            return self.decode_steps_s(n, ctx)
        if self.overlap:  # k + 1 query tokens per sequence: the prefill form of q tokens on c cached
            return np.array([self._overlapped_s(n * q, q * c + n * q * (q + 1) / 2.0, n, 0, 0.0, c)
                             for c in ctx.ravel()]).reshape(ctx.shape)
        p = self.p
        g, mb = self._split(n)
        tokens = float(n * q)
        t = tokens * g
        stage = self._stage_fixed(t, t, tokens / mb)
        hop = (self.pp - 1) * (p.allreduce_latency_s + self.hop_bytes_tok * t / self.hop_bw) if self.pp > 1 else 0.0
        fixed = p.step_overhead_s + p.per_seq_overhead_s * self._rank_seqs(n) + self.pp * stage + hop
        out = np.empty_like(ctx)
        for i, c in enumerate(ctx.tolist()):
            pairs = self._windowed(q * c + n * q * (q + 1) / 2.0, tokens) * g
            read = (self._windowed(c, float(n)) + tokens) * g
            out[i] = fixed + self.pp * max(self.attn_flops_pair * pairs / self.attn_flops,
                                           self.kv_bytes_per_token * read / self.bw)
        return out

    # -- floors used by tests -----------------------------------------------------------------------
    def _weight_bytes(self, tokens: float) -> float:
        """Weight bytes one GPU reads for a micro-batch of ``tokens`` (dense + touched experts), one stage."""
        if not self.moe:
            return self.dense_bytes
        return self.dense_bytes + self.expert_bytes * (1.0 - (1.0 - self.k / self.n_exp) ** max(tokens, 1.0))

    def weight_stream_floor_s(self) -> float:
        """Weights of one GPU read once per stage at peak bandwidth: no decode step can be faster."""
        return float(self._weight_bytes(1.0)) / self.raw_bw * self.pp


def ceil_div(a: float, b: float) -> int:
    return int(math.ceil(a / b))
