"""The GPU step time is written several ways; they must stay one function.

``GpuRoofline.step`` (per-request arrays, for reporting), ``step_s`` (aggregates: the engine's hot path),
``decode_affine`` (coefficients of a decode-only step, affine in the total context), ``decode_steps_s``
(vectorised decode-only steps) and ``engine.fastforward.decode_times`` (the fast-forward of k decode steps,
compiled when built) agree over catalog models, hardware, parallelism and batch shapes. A change to one
formulation that forgets another fails here, not as a slow drift in results.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infersim.build.gpu import tp_problem
from infersim.catalog import default_catalog
from infersim.engine import fastforward
from infersim.perf import GpuConfig, GpuRoofline
from infersim.perf.base import prefill_pairs, step_aggregates
from infersim.perf.profiles import shipped_profile

CAT = default_catalog()
GPUS = sorted(h.id for h in CAT.hardware.values() if h.kind == "gpu")
MODELS = sorted(CAT.models)
REL = 1e-12  # the formulations do the same float operations up to reassociation; today they agree to 4e-16


@st.composite
def setups(draw):
    hw = CAT.get_hardware(draw(st.sampled_from(GPUS)))
    m = CAT.get_model(draw(st.sampled_from(MODELS)))
    prec = draw(st.sampled_from(sorted(p for p in hw.tflops if p in ("bf16", "fp8", "fp4"))))
    tps = [t for t in (1, 2, 4, 8) if tp_problem(m, t) is None]
    tp = draw(st.sampled_from(tps))
    pp = draw(st.sampled_from([1, 2]))
    engine = draw(st.sampled_from(["vllm", "sglang", "trtllm"]))
    return GpuRoofline(GpuConfig(hw, m, prec, "bf16" if prec == "bf16" else "fp8", tp, pp), shipped_profile(engine))


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(abs(a), abs(b))


@settings(max_examples=150, deadline=None)
@given(perf=setups(), ctx=st.lists(st.integers(1, 65536), min_size=1, max_size=300), k=st.integers(1, 200))
def test_decode_only_formulations_agree(perf, ctx, k):
    n, total = len(ctx), int(sum(ctx))
    via_step = perf.step(np.zeros(0), np.zeros(0), np.asarray(ctx, dtype=float)).total_s
    via_step_s = perf.step_s(0, 0.0, 0, n, float(total))
    via_vector = float(perf.decode_steps_s(n, np.array([float(total)]))[0])
    assert _close(via_step, via_step_s), (via_step, via_step_s)
    assert _close(via_step_s, via_vector), (via_step_s, via_vector)
    aff = perf.decode_affine(n)
    if aff is not None:
        fixed, pp, c0, c_rate, m0, m_rate = aff
        assert _close(via_step_s, fixed + pp * max(c0 + c_rate * total, m0 + m_rate * total))
    else:
        assert perf.full_frac < 1.0  # only sliding-window models lack the affine form
    # a fast-forward of k steps: each step one token more per sequence
    dts, cum = np.empty(k), np.empty(k)
    fastforward.decode_times(perf, n, total, k, dts, cum)
    want = perf.decode_steps_s(n, float(total) + n * np.arange(k, dtype=float))
    assert np.allclose(dts, want, rtol=REL, atol=0.0)
    assert np.allclose(cum, np.cumsum(want), rtol=1e-11, atol=0.0)
    assert _close(float(dts[-1]), perf.step_s(0, 0.0, 0, n, float(total + n * (k - 1))))


@settings(max_examples=100, deadline=None)
@given(perf=setups(),
       chunks=st.lists(st.tuples(st.integers(1, 8192), st.integers(0, 32768)), min_size=1, max_size=8),
       ctx=st.lists(st.integers(1, 65536), min_size=0, max_size=200))
def test_mixed_step_from_arrays_equals_step_from_aggregates(perf, chunks, ctx):
    tokens = np.array([c for c, _ in chunks], dtype=float)
    cached = np.array([p for _, p in chunks], dtype=float)
    dec = np.asarray(ctx, dtype=float)
    via_step = perf.step(tokens, cached, dec).total_s
    n_pre, pairs, n_seqs, n_dec, dec_ctx, *rest = step_aggregates(tokens, cached, dec)
    assert pairs == pytest.approx(float(np.sum(prefill_pairs(tokens, cached))), rel=REL)
    via_step_s = perf.step_s(n_pre, pairs, n_seqs, n_dec, dec_ctx, *rest)
    assert _close(via_step, via_step_s), (via_step, via_step_s)
    assert via_step_s > 0
