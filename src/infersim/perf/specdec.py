"""Speculative decoding as a performance-model variant: the same step interface, amortised per token.

A speculative *round* on ``B`` decoding sequences: a drafter proposes ``k`` tokens per sequence (a small
draft model running ``k`` decode steps, or an n-gram / prompt-lookup matcher whose cost is a fixed
``draft_overhead_s``), then the target model *verifies* all ``k + 1`` positions of every sequence in one
forward pass (``verify_steps_s`` of the base model: ``B x (k + 1)`` query tokens over each sequence's
context). With i.i.d. per-token acceptance ``a`` the number of tokens a round emits per sequence
(accepted drafts plus the target's own next token) has the expectation (Leviathan et al. 2023, eq. 1)::

    E[tokens per round] = (1 - a^(k+1)) / (1 - a)        (= k + 1 when a = 1)

**We use the expectation, not per-round draws.** The engine advances each decoding sequence one token
per step; this wrapper makes a decode-only step last ``round_s / E``, so a sequence's tokens come out at
the average speculative rate and the engine keeps its O(1) events per request (fast-forward intact).
The spread of per-round accepted tokens (a truncated geometric) is therefore not visible in ITL
percentiles; TPOT means and throughput are exact under the i.i.d. assumption.

Steps that also carry prompt chunks run the chunks and the verification of every decode in one pass; the
engine then counts one token per decode, so the step's time is divided by the *token-weighted* speed-up
``E_eff = (n_prefill + B x E) / (n_prefill + B)`` (this keeps the total tokens per second of the step
right; the decodes are slightly slow and the chunk slightly fast in such a step). Draft-model weights and
KV are not subtracted from the target's KV memory (a 1-8B draft is small next to the target); the
token budget of a step counts one token per decode, as without speculation.

At small batch a verification pass costs about one decode step (memory-bound: weights are read once for
all ``k + 1`` positions), so TPOT falls by about ``E / (1 + draft share)``; at large batch the pass is
compute-bound and costs about ``k + 1`` decode steps, so throughput *falls* by about ``E / (k + 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from infersim.core.errors import InfersimError
from infersim.perf.base import StepTime, step_aggregates


def mtp_module(model):
    """The drafter of speculative ``method: mtp``: the model's multi-token-prediction modules as a model of their
    own, for the GPU step model. DeepSeek-V3 (Technical Report, arXiv 2412.19437, sec. 2.2) builds each module
    from one transformer block of the main model's kind plus a 2d -> d projection, sharing the embedding and
    output head; engines run the module k times per round to propose k tokens (SGLang's
    ``--speculative-num-steps``). So the module is ``mtp_layers`` layers with the main model's per-layer
    attention, shared and routed experts (each MoE layer's share of ``expert_params_b``), and the full
    embedding and LM head; its KV (one latent per token and layer) is not taken from the target's KV budget
    and the projection (2 x hidden^2 parameters) is counted with the layer's dense part. For DeepSeek-V3 this
    gives ~14B parameters, the size DeepSeek publishes for the module (README_WEIGHTS.md: 685B on the Hub =
    671B + 14B)."""
    n = int(model.mtp_layers)
    if n < 1:
        raise InfersimError(f"{model.id} ships no multi-token-prediction module (mtp_layers = 0)")
    embed_b = model.vocab_size * model.hidden_size / 1e9
    n_embed = 2  # input embedding and LM head (untied in DeepSeek-V3)
    moe = model.moe_layers or (model.layers if model.is_moe else 0)
    expert_layer_b = model.expert_params_b / moe if moe else 0.0
    dense_layer_b = (model.total_params_b - model.expert_params_b - n_embed * embed_b) / model.layers
    proj_b = 2.0 * model.hidden_size * model.hidden_size / 1e9
    k, e = model.experts_per_token, model.num_experts
    active_expert_b = expert_layer_b * k / e if e else 0.0
    layer_total = dense_layer_b + proj_b + expert_layer_b
    layer_active = dense_layer_b + proj_b + active_expert_b
    # the base model counts the published active figure with or without the input embedding: keep its convention
    active_embed = n_embed if model.active_includes_embedding else n_embed - 1
    return replace(model, id=f"{model.id}-mtp", name=f"{model.name} MTP module", layers=n,
                   moe_layers=n if moe else 0, total_params_b=n * layer_total + n_embed * embed_b,
                   active_params_b=n * layer_active + active_embed * embed_b,
                   expert_params_b=n * expert_layer_b, mtp_layers=0, aliases=())


def expected_tokens_per_round(acceptance: float, k: int) -> float:
    """Expected tokens one sequence emits per speculative round with ``k`` proposals and i.i.d. per-token
    acceptance probability ``acceptance`` in [0, 1]: (1 - a^(k+1)) / (1 - a); 1 when a = 0, k + 1 when 1."""
    a, k = float(acceptance), int(k)
    if not 0.0 <= a <= 1.0 or k < 1:
        raise InfersimError(f"speculative decoding needs acceptance in [0, 1] and k >= 1, got {a}, {k}")
    if a >= 1.0:
        return float(k + 1)
    return (1.0 - a ** (k + 1)) / (1.0 - a)


@dataclass(frozen=True)
class SpecConfig:
    """``k`` tokens proposed per round, per-token ``acceptance`` (i.i.d.), and the drafter: ``draft``, a step
    model of the draft model on the same hardware (its ``decode_steps_s`` is run ``k`` times per round), or
    None for n-gram / prompt-lookup drafting, which costs ``draft_overhead_s`` seconds per round."""

    k: int
    acceptance: float
    draft: object | None = None
    draft_overhead_s: float = 0.0

    @property
    def tokens_per_round(self) -> float:
        return expected_tokens_per_round(self.acceptance, self.k)


class SpeculativeStep:
    """Wraps a step model with ``verify_steps_s`` (``GpuRoofline``, ``SramPipeline``): same interface,
    times per emitted token (module docstring). Other attributes are the base model's."""

    def __init__(self, base, spec: SpecConfig):
        if not hasattr(base, "verify_steps_s"):
            raise InfersimError(f"{type(base).__name__} has no verification model for speculative decoding")
        self.base, self.spec = base, spec
        self.k = int(spec.k)
        self.tokens_per_round = spec.tokens_per_round

    def __getattr__(self, name):  # cfg, units, weight_stream_floor_s, ... of the base model
        return getattr(self.base, name)

    def decode_affine(self, n_decode: int) -> None:
        """No affine fast path: a speculative round is not the base model's decode step (without this the
        base model's ``decode_affine`` would be found through ``__getattr__`` and time short fast-forwards as
        plain decoding)."""
        return None

    def draft_s(self, n_decode: int, ctx_sums) -> np.ndarray:
        """Seconds of the drafting part of a round for ``n_decode`` sequences at total contexts ``ctx_sums``."""
        ctx = np.asarray(ctx_sums, dtype=float)
        if self.spec.draft is None:
            return np.full(ctx.shape, float(self.spec.draft_overhead_s))
        d = self.spec.draft
        out = np.full(ctx.shape, float(self.spec.draft_overhead_s))
        for j in range(self.k):
            out = out + d.decode_steps_s(n_decode, ctx + n_decode * j)
        return out

    def round_s(self, n_decode: int, ctx_sums) -> np.ndarray:
        """Seconds of whole decode-only rounds (draft + verification), vectorised over ``ctx_sums``."""
        ctx = np.asarray(ctx_sums, dtype=float)
        return self.draft_s(n_decode, ctx) + self.base.verify_steps_s(n_decode, self.k + 1, ctx)

    def decode_steps_s(self, n_decode: int, ctx_sums: np.ndarray) -> np.ndarray:
        """Seconds per emitted token of decode-only steps: ``round_s / E``."""
        if n_decode <= 0:
            return np.zeros_like(np.asarray(ctx_sums, dtype=float))
        return self.round_s(n_decode, ctx_sums) / self.tokens_per_round

    def step_s(self, n_prefill_tokens, prefill_pairs, n_prefill_seqs, n_decode, decode_ctx_sum,
               prefill_ctx_sum=0.0) -> float:
        """One engine step; decodes are verified ``k + 1`` positions each and the step is divided by the
        token-weighted speed-up (module docstring)."""
        if n_decode <= 0:
            return self.base.step_s(n_prefill_tokens, prefill_pairs, n_prefill_seqs, 0, 0.0, prefill_ctx_sum)
        if n_prefill_seqs <= 0 or n_prefill_tokens <= 0:
            return float(self.decode_steps_s(n_decode, np.array([float(decode_ctx_sum)]))[0])
        q = self.k + 1
        verify_pairs = q * float(decode_ctx_sum) + n_decode * q * (q + 1) / 2.0
        t = self.base.step_s(n_prefill_tokens + n_decode * q, prefill_pairs + verify_pairs,
                             n_prefill_seqs + n_decode, 0, 0.0, prefill_ctx_sum + decode_ctx_sum)
        t += float(self.draft_s(n_decode, np.array([float(decode_ctx_sum)]))[0])
        e_eff = (n_prefill_tokens + n_decode * self.tokens_per_round) / (n_prefill_tokens + n_decode)
        return t / e_eff

    def step(self, prefill_tokens, prefill_context, decode_context) -> StepTime:
        """The base model's parts, scaled so that ``total_s`` equals ``step_s`` (reporting only)."""
        total = self.step_s(*step_aggregates(prefill_tokens, prefill_context, decode_context))
        b = self.base.step(prefill_tokens, prefill_context, decode_context)
        f = total / b.total_s if b.total_s > 0 else 1.0
        return StepTime(total, b.compute_s * f, b.memory_s * f, b.comm_s * f, b.overhead_s * f)
