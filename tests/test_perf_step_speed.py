"""``GpuRoofline.step_s`` writes its operators out for speed; it must stay bit-identical to the model as
the operator methods state it (``_split``, ``_stage_fixed``, ``_windowed``): dense and MoE models, TP, PP,
attention DP and expert parallelism, sliding-window layers, prefill-only and mixed steps."""

from __future__ import annotations

import numpy as np
import pytest

from infersim.catalog import default_catalog
from infersim.perf import GpuConfig, GpuRoofline
from infersim.perf.profiles import shipped_profile

CAT = default_catalog()


def reference_step_s(perf: GpuRoofline, n_pre, pairs, n_pre_seqs, n_dec, dec_ctx, pre_ctx=0.0) -> float:
    """The step as the operator methods compose it (the form before ``step_s`` was written out)."""
    p = perf.p
    n_seqs = n_dec + n_pre_seqs
    g, mb = perf._split(n_seqs)
    tokens = float(n_pre + n_dec)
    t = tokens * g
    stage = perf._stage_fixed(t, n_seqs * g, tokens / mb)
    if n_pre:
        pre_pairs = perf._windowed(float(pairs), float(n_pre)) * g
        stage += max(perf.attn_flops_pair * pre_pairs / perf.attn_flops,
                     perf.kv_bytes_per_token * (pre_ctx + n_pre) * g / perf.bw)
    if n_dec:
        dec_pairs = perf._windowed(dec_ctx + n_dec, float(n_dec)) * g
        dec_read = (perf._windowed(float(dec_ctx), float(n_dec)) + n_dec) * g
        stage += max(perf.attn_flops_pair * dec_pairs / perf.attn_flops, perf.kv_bytes_per_token * dec_read / perf.bw)
    hop = (perf.pp - 1) * (p.allreduce_latency_s + perf.hop_bytes_tok * t / perf.hop_bw) if perf.pp > 1 else 0.0
    return p.step_overhead_s + p.per_seq_overhead_s * perf._rank_seqs(n_seqs) + perf.pp * stage + hop


CONFIGS = [
    ("h100-sxm", "llama-3.1-8b", "fp8", {}, "vllm"),
    ("h100-sxm", "llama-3.1-70b", "bf16", {"tp": 4}, "sglang"),
    ("h100-sxm", "llama-3.1-405b", "fp8", {"tp": 4, "pp": 2}, "trtllm"),
    ("h200", "mixtral-8x7b", "fp8", {"tp": 2}, "vllm"),
    ("h200", "deepseek-v3", "fp8", {"tp": 8, "dp": 2, "ep": 16}, "sglang"),
    ("h100-sxm", "gpt-oss-120b", "bf16", {"tp": 2}, "vllm"),
]


@pytest.mark.parametrize(("hw", "model", "prec", "par", "engine"), CONFIGS)
def test_written_out_step_equals_the_operator_composition(hw, model, prec, par, engine):
    perf = GpuRoofline(GpuConfig(CAT.get_hardware(hw), CAT.get_model(model), prec, "bf16", **par),
                       shipped_profile(engine), engine=engine)
    # the MoE rows take the engine's measured fused-MoE kernel (perf.kernels.moe_prior) where it was measured
    assert (perf.moe_kernel is not None) == (model in ("mixtral-8x7b", "deepseek-v3", "gpt-oss-120b"))
    g = np.random.default_rng(7)
    for _ in range(400):
        n_pre_seqs = int(g.integers(0, 6))
        n_pre = int(g.integers(1, 8192)) if n_pre_seqs else 0
        n_dec = int(g.integers(0 if n_pre_seqs else 1, 300))
        pre_ctx = float(g.integers(0, 20000)) if n_pre_seqs else 0.0
        pairs = n_pre * pre_ctx / max(n_pre_seqs, 1) + n_pre * (n_pre + 1) / 2.0
        dec_ctx = float(g.integers(0, 4000) * max(n_dec, 1))
        args = (n_pre, pairs, n_pre_seqs, n_dec, dec_ctx, pre_ctx)
        if n_pre_seqs == 0:  # decode-only: the affine form (its own exactness is tested with the engine)
            continue
        assert perf.step_s(*args) == reference_step_s(perf, *args), args
