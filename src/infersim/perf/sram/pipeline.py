"""SRAM-pipeline performance model for SRAM-only accelerators: Groq-like LPUs and Cerebras-like wafers.

Weights and KV cache live in on-chip SRAM, so a replica needs enough *units* (LPU chips, or wafer-scale
systems) to hold them: ``units = ceil((W + kv_tokens x kv_bytes_per_token) / (sram_bytes x usable_frac))``,
rounded up to the allocation granularity (8 LPUs per GroqNode; 1 wafer).

Geometry. The model's ``L`` layers are pipelined over ``P`` stages: ``P = min(L, units x stages_per_unit)``
(an LPU chip is at most one stage, so a model on fewer chips than layers has one stage per chip; a wafer
gives every layer its own region, ``P = L``). The units' SRAM bandwidth ``BW`` and FLOP/s ``F`` are spread
evenly over the stages, so for one stage (all constants per micro-batch of ``m`` tokens)::

    a_s = a x L / P                        fixed latency per stage (fitted: layer_latency_s = a)
    w_s = W / (units x BW x eta)           stream the stage's weights (eta = sram_bw_eff)
    k_s = kv_bytes_per_token / (units x BW x eta)        per context token read
    c_s = 2 x active_params / (units x F x ce)           per token computed (ce = compute_eff)
    t_s(m) = a_s + max(w_s + k_s x ctx_read, c_s x m + attn_s x pairs)

A token of one sequence crosses all ``P`` stages plus ``H = min(P, units) - 1`` unit-to-unit hops, each
``h + m x hidden x 2 B / link_bw``: its latency is ``T = P x t_s(1) + H x hop`` (the per-user TPOT when the
system is not saturated).

Batching and occupancy. The stages work on different micro-batches at once. A micro-batch holds up to
``k = max_microbatch`` decode sequences (default: the knee ``floor(w_s / c_s)``, the largest micro-batch
for which a stage is still weight-streaming bound, so batching up to it costs no per-user speed). The
pipeline therefore holds ``C = P x k`` decoding sequences at full per-user speed. A *step* (the
``StepModel`` interface) is one steady-state round of the pipeline: every decode sequence advances one
token and every prefill chunk passes through once. Its duration is::

    round = max(P x t_s(m) + H x hop,                 latency of a decode micro-batch (m = min(k, ceil(B/P)))
                (P - 1 + n_q) x t_s(q) + H x hop,     latency of a prompt chunk split into n_q micro-batches of q
                ceil(B/m) x t_s(m) + n_pmb x t_s(q))  busy time of the bottleneck stage

so per-user speed is independent of load while ``B <= C`` and falls as ``C / B`` beyond (the sequences
queue for the stages). Prompt micro-batches use ``q = sqrt(n a_s / ((P - 1) c_s))`` tokens (the size that
minimises the fill-plus-stream time of an ``n``-token chunk), at least ``k`` and at most ``n``. An engine
driving this model should set its sequence cap to ``max_in_flight(...)`` so that extra requests wait in its
queue. The fixed stage latency ``a_s`` is counted as busy time (conservative: if it were pure wire delay,
the pipeline could interleave more micro-batches); it is the parameter that dominates the fit.

Fitted parameters and the rows they come from are in ``perf/profiles/groq.yaml`` and ``cerebras.yaml``
(``benchmarks/fit_sram_profiles.py`` refits them). Mixture-of-experts models stream all their weights
(conservative; SRAM systems hold every expert on chip anyway).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from infersim.catalog import Catalog, Hardware, Model
from infersim.core.errors import CapacityError
from infersim.perf.base import StepTime, prefill_pairs, step_aggregates
from infersim.perf.sram.params import SramParams, SramProfile, profile_for
from infersim.perf.sram.round import PipelineRound
from infersim.perf.sram.sizing import chips_needed, resolve, unit_sram_bytes

ACT_BYTES = 2.0  # bf16 activations between stages (assumption, as in perf/gpu.py)


@dataclass(frozen=True)
class SramConfig:
    """A replica: ``units`` chips (LPU) or systems (wafer) holding one copy of ``model``."""

    hardware: Hardware
    model: Model
    units: int
    precision: str = "bf16"
    kv_precision: str = "bf16"


class SramPipeline:
    """The SRAM-pipeline variant of the step model (see the module docstring for the equations)."""

    def __init__(self, cfg: SramConfig, params: SramParams | None = None):
        self.cfg = cfg
        hw, m = cfg.hardware, cfg.model
        self.p = p = params or profile_for(hw).params
        if cfg.units < 1:
            raise CapacityError(f"a replica needs at least one {hw.id}, got {cfg.units}")
        n = float(cfg.units)
        self.units = cfg.units
        self.layers = m.layers
        self.stages = min(m.layers, cfg.units * p.stages_per_unit) if p.stages_per_unit else m.layers
        self.weight_bytes = m.weight_bytes(cfg.precision)
        self.kv_bytes_per_token = m.kv_bytes_per_token(cfg.kv_precision)
        usable = n * unit_sram_bytes(hw) * p.sram_usable_frac
        if self.weight_bytes > usable:
            need = chips_needed(m, cfg.precision, 0, hardware=hw, kv_precision=cfg.kv_precision, params=p)
            raise CapacityError(
                f"{m.id} at {cfg.precision} does not fit on {cfg.units}x {hw.id}: {self.weight_bytes / 1e9:.1f} GB "
                f"of weights but {usable / 1e9:.1f} GB of usable SRAM ({p.sram_usable_frac:.0%} of "
                f"{unit_sram_bytes(hw) / 1e9:g} GB per unit); needs at least {need}")
        self.kv_capacity_tokens = int((usable - self.weight_bytes) // self.kv_bytes_per_token)
        bw = hw.memory_bw_tbps * 1e12 * p.sram_bw_eff
        flops = hw.peak_flops(cfg.precision) * p.compute_eff
        P = float(self.stages)
        self.a_s = p.layer_latency_s * m.layers / P
        self.w_s = self.weight_bytes / (n * bw)
        self.kv_s = self.kv_bytes_per_token / (n * bw)
        self.c_s = 2.0 * m.active_params_b * 1e9 / (n * flops)
        self.attn_s = m.attention_flops_per_context_token() / (n * flops)
        self.hops = min(self.stages, cfg.units) - 1
        link = max(hw.interconnect_gbps, 1e-9) * 1e9
        self.hop_s = p.hop_latency_s
        self.act_s = m.hidden_size * ACT_BYTES / link
        self.knee = max(1, int(self.w_s // self.c_s)) if self.c_s > 0 else 1
        self.microbatch = p.max_microbatch or self.knee
        self.concurrency = self.stages * self.microbatch
        # the round's scalar form (compiled when the build can: the engine's hot path at every prefill round)
        self.round = PipelineRound(self.stages, self.microbatch, self.a_s, self.w_s, self.kv_s, self.c_s,
                                   self.attn_s, self.hops, self.hop_s, self.act_s)
        # the bound compiled methods in place of the delegating ones below (no Python frame per call)
        self.step_s = self.round.step_s  # type: ignore[method-assign]
        self.decode_affine = self.round.decode_affine  # type: ignore[method-assign]

    # -- pieces ---------------------------------------------------------------------------------------
    def _stage(self, m, kv_read, pairs):
        """(time, compute, memory) of one stage on a micro-batch of ``m`` tokens."""
        mem = self.w_s + self.kv_s * kv_read
        comp = self.c_s * m + self.attn_s * pairs
        return self.a_s + np.maximum(mem, comp), comp, mem

    def _hop_chain(self, m):
        return self.hops * (self.hop_s + m * self.act_s)

    def _decode(self, n_decode: int, ctx_sum):
        """Latency chain, stage busy time and the stage time of a decode round (ctx may be an array)."""
        b = int(n_decode)
        m = min(self.microbatch, -(-b // self.stages))
        n_mb = -(-b // m)
        ctx_mb = np.asarray(ctx_sum, dtype=float) / b * m
        t, comp, mem = self._stage(m, ctx_mb + m, ctx_mb + m)
        return self.stages * t + self._hop_chain(m), n_mb * t, (t, comp, mem, m, n_mb)

    def _prefill(self, n_tok: float, pairs: float, n_seqs: int, ctx_sum: float):
        n_bar = n_tok / n_seqs
        if self.stages > 1 and self.c_s > 0:
            q = math.sqrt(n_bar * self.a_s / ((self.stages - 1) * self.c_s))
        else:
            q = n_bar
        q = min(n_bar, max(q, float(self.microbatch)))
        n_per = math.ceil(n_bar / q - 1e-9)
        n_pmb = n_seqs * n_per
        t, comp, mem = self._stage(q, ctx_sum / n_seqs + n_bar / 2.0, pairs / n_pmb)
        return (self.stages - 1 + n_per) * t + self._hop_chain(q), n_pmb * t, (t, comp, mem, q, n_pmb)

    # -- the StepModel interface ---------------------------------------------------------------------
    def step_s(self, n_prefill_tokens, prefill_pairs, n_prefill_seqs, n_decode, decode_ctx_sum,
               prefill_ctx_sum=0.0) -> float:
        """Seconds of one pipeline round (see module docstring): ``perf.sram.round.PipelineRound.step_s``, the
        same equations and float operations as ``_decode`` / ``_prefill`` in scalar form (each instance binds
        its round's method in place of this one)."""
        return self.round.step_s(n_prefill_tokens, prefill_pairs, n_prefill_seqs, n_decode, decode_ctx_sum,
                                 prefill_ctx_sum)

    def step(self, prefill_tokens, prefill_context, decode_context) -> StepTime:
        agg = step_aggregates(prefill_tokens, prefill_context, decode_context)
        total = self.step_s(*agg)
        pt_sum, pairs, n_pt, n_dc, dc_sum, pc_sum = agg
        # Parts along one micro-batch's path (the latency chain), for reporting only.
        comp = mem = 0.0
        hops = 0.0
        if n_dc:
            _, _, (_, comp, mem, m, _) = self._decode(n_dc, dc_sum)
            hops = float(self._hop_chain(m))
        elif n_pt:
            _, _, (_, comp, mem, q, _) = self._prefill(pt_sum, pairs, n_pt, pc_sum)
            hops = float(self._hop_chain(q))
        P = self.stages
        return StepTime(total, float(comp) * P, float(mem) * P, hops, self.a_s * P)

    def decode_affine(self, n_decode: int) -> tuple[float, float, float, float, float, float] | None:
        """Coefficients ``(fixed, k, compute0, compute_rate, memory0, memory_rate)`` of a decode round of
        ``n_decode`` sequences with total context ``ctx``: round = fixed + k x max(compute0 + compute_rate x
        ctx, memory0 + memory_rate x ctx) (the engine's exact fast-forward, ``engine.fastforward``). A stage's
        time t = a_s + max(memory, compute) is affine in ``ctx`` but for the max; the round is
        max(P t + hops, n_mb t), which is the latency chain P t + hops whenever the micro-batches number no
        more than the stages (n_mb <= P: every round at the loads these systems are sized for), or n_mb t
        when there are no hops. Otherwise None (not affine: ``decode_steps_s`` takes the general path).
        Cached per ``n_decode`` (``PipelineRound.decode_affine``; each instance binds its round's method in place
        of this one)."""
        return self.round.decode_affine(n_decode)

    def decode_steps_s(self, n_decode: int, ctx_sums: np.ndarray) -> np.ndarray:
        """Vectorised decode-only rounds of ``n_decode`` sequences at total contexts ``ctx_sums``; where the
        round is affine (``decode_affine``) the same float operations as the engine's scalar fast-forward."""
        ctx = np.asarray(ctx_sums, dtype=float)
        if n_decode <= 0:
            return np.zeros_like(ctx)
        aff = self.decode_affine(n_decode)
        if aff is not None:
            fixed, k, c0, c_rate, m0, m_rate = aff
            return fixed + k * np.maximum(m0 + m_rate * ctx, c0 + c_rate * ctx)
        chain, busy, _ = self._decode(n_decode, ctx)
        return np.maximum(chain, busy)

    def verify_steps_s(self, n_seqs: int, tokens_per_seq: int, ctx_sums: np.ndarray) -> np.ndarray:
        """Speculative verification rounds (``perf.specdec``): like a decode round, but each sequence in a
        micro-batch carries ``tokens_per_seq`` positions (k drafts + 1), so stage compute grows with
        ``m x tokens_per_seq``; weights are still streamed once per micro-batch. ``tokens_per_seq`` = 1 is
        ``decode_steps_s``."""
        ctx = np.asarray(ctx_sums, dtype=float)
        b, q = int(n_seqs), float(tokens_per_seq)
        if b <= 0:
            return np.zeros_like(ctx)
        m = min(self.microbatch, -(-b // self.stages))
        n_mb = -(-b // m)
        ctx_mb = ctx / b * m
        t = self.a_s + np.maximum(self.w_s + self.kv_s * (ctx_mb + m * q),
                                  self.c_s * m * q + self.attn_s * (q * ctx_mb + m * q * (q + 1) / 2.0))
        return np.maximum(self.stages * t + self._hop_chain(m * q), n_mb * t)

    # -- closed forms --------------------------------------------------------------------------------
    def token_latency_s(self, context_tokens: float = 0.0) -> float:
        """Seconds per output token of one sequence alone (= TPOT while the pipeline is not full)."""
        return float(self.decode_steps_s(1, np.array([float(context_tokens)]))[0])

    def output_tok_s_per_user(self, context_tokens: float = 0.0) -> float:
        return 1.0 / self.token_latency_s(context_tokens)

    def prefill_s(self, input_tokens: int, n_prompts: int = 1) -> float:
        """Seconds to prefill ``n_prompts`` prompts of ``input_tokens`` arriving together on an idle replica
        (their first tokens come out at the end)."""
        n = max(int(n_prompts), 1)
        pairs = float(prefill_pairs(input_tokens, 0.0)) * n
        return self.step_s(input_tokens * n, pairs, n, 0, 0.0)

    def max_in_flight(self, tokens_per_seq: int | None = None) -> int:
        """Most sequences at full per-user speed: pipeline slots ``P x k``, capped by the KV cache that fits
        in the SRAM left after the weights when ``tokens_per_seq`` (input + output) is given."""
        if tokens_per_seq is None:
            return self.concurrency
        return int(min(self.concurrency, self.kv_capacity_tokens // max(int(tokens_per_seq), 1)))

    def steady_output_tok_s(self, batch: int, input_tokens: int, output_tokens: int) -> float:
        """Output tokens/s with ``batch`` requests always in flight: over one request lifetime the pipeline
        runs ``O`` decode rounds and prefills ``batch`` prompts, whose micro-batches fill idle stage slots
        (cycle = max(O x decode round, O x decode busy + batch x prompt busy))."""
        b, o = max(int(batch), 1), max(int(output_tokens), 1)
        ctx = b * (input_tokens + o / 2.0)
        chain, busy, _ = self._decode(b, ctx)
        _, p_busy, _ = self._prefill(float(input_tokens), float(prefill_pairs(input_tokens, 0.0)), 1, 0.0)
        cycle = max(o * float(max(chain, busy)), o * float(busy) + b * float(p_busy))
        return b * o / cycle


def pipeline_for(model: Model | str, hardware: Hardware | str, *, units: int | None = None,
                 precision: str | None = None, kv_precision: str = "bf16", kv_tokens: float = 0.0,
                 params: SramParams | None = None, catalog: Catalog | None = None) -> SramPipeline:
    """Build a pipeline with the shipped profile of ``hardware``; ``units`` defaults to
    ``chips_needed(model, precision, kv_tokens)``; ``precision`` to the profile's default."""
    m, hw = resolve(model, hardware, catalog)
    prof = profile_for(hw)
    p = params or prof.params
    prec = precision or prof.default_precision
    n = units if units is not None else chips_needed(m, prec, kv_tokens, hardware=hw, kv_precision=kv_precision,
                                                       params=p)
    return SramPipeline(SramConfig(hw, m, n, prec, kv_precision), p)



def sram_estimate(model: Model, hardware: Hardware, input_tokens: int, output_tokens: int, *, batch: int = 1,
                  precision: str | None = None, units: int | None = None, kv_precision: str = "bf16",
                  params: SramParams | None = None):
    """``infersim estimate`` for an SRAM system: units default to the fewest that hold the weights plus the
    KV cache of ``batch`` requests of ``input + output`` tokens; ``units`` that cannot hold that raise
    ``CapacityError`` with the numbers. Returns ``perf.analytic.Estimate`` with ``chips`` set."""
    from infersim.perf.analytic import Estimate

    prof = profile_for(hardware)
    p = params or prof.params
    prec = precision or prof.default_precision
    per_req = input_tokens + output_tokens
    kv_tokens = batch * per_req
    need = chips_needed(model, prec, kv_tokens, hardware=hardware, kv_precision=kv_precision, params=p)
    if units is None:
        units = need
    elif units < 1 or units * unit_sram_bytes(hardware) * p.sram_usable_frac < (
            model.weight_bytes(prec) + kv_tokens * model.kv_bytes_per_token(kv_precision)):
        w = model.weight_bytes(prec) / 1e9
        kv = kv_tokens * model.kv_bytes_per_token(kv_precision) / 1e9
        per = unit_sram_bytes(hardware) * p.sram_usable_frac / 1e9
        raise CapacityError(
            f"--chips {units}: {model.id} at {prec} does not fit on {units}x {hardware.id}: needs {w + kv:.1f} GB "
            f"({w:.1f} GB weights + {kv:.1f} GB KV cache for {batch} x {per_req} tokens) but {units} x {per:.2f} GB "
            f"= {units * per:.1f} GB of SRAM is usable ({p.sram_usable_frac:.0%} of {unit_sram_bytes(hardware) / 1e9:g} GB "
            f"each); needs at least {need}")
    pipe = SramPipeline(SramConfig(hardware, model, units, prec, kv_precision), p)
    ttft = pipe.prefill_s(input_tokens, batch)
    tpot = float(pipe.decode_steps_s(batch, np.array([batch * (input_tokens + output_tokens / 2.0)]))[0])
    max_batch = pipe.max_in_flight(per_req)
    best, best_b = 0.0, 0
    if max_batch >= 1:
        grid = np.unique(np.round(np.geomspace(1, max_batch, num=min(max_batch, 256))).astype(int))
        tput = [pipe.steady_output_tok_s(int(b), input_tokens, output_tokens) for b in grid]
        k = int(np.argmax(tput))
        best, best_b = float(tput[k]), int(grid[k])
    return Estimate(ttft_s=ttft, tpot_s=tpot, output_tok_s_per_user=1.0 / tpot,
                    kv_capacity_tokens=pipe.kv_capacity_tokens, max_batch=max_batch, max_output_tok_s=best,
                    best_batch=best_b, batch=batch, chips=units)

# -- calibration rows (kept in the profile files) -----------------------------------------------------------
def predict_row(row: dict, profile: SramProfile, params: SramParams | None = None) -> float:
    """Per-user output tokens/s the model predicts for a profile's ``calibration`` row: one sequence on
    ``units`` (default: ``chips_needed`` for the weights) at ``context_tokens`` of context."""
    pipe = pipeline_for(row["model"], profile.hardware, units=row.get("units"), precision=row["precision"],
                        params=params or profile.params)
    return pipe.output_tok_s_per_user(float(row.get("context_tokens", 0)))
