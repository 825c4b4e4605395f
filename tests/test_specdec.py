"""Speculative decoding (perf/specdec.py): the acceptance arithmetic, the verification pass, and its effect on
TPOT (faster at small batch) and on throughput at high batch (slower once verification is compute-bound).

Reference: shared/calibration/workloads.csv row 'Cursor Fast Apply (code rewrite), output speed': ~1,000
tokens/s per request for a fine-tuned Llama-3-70B served by Fireworks with speculative decoding, on edits that
mostly copy the input (very high acceptance). Fireworks publishes neither the hardware, the number of
proposed tokens nor the acceptance rate, so the check below assumes them (stated there).
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from conftest import scenario
from infersim.build.gpu import deployment_setup
from infersim.catalog import default_catalog
from infersim.perf import GpuConfig, GpuRoofline
from infersim.perf.profiles import shipped_profile
from infersim.perf.specdec import SpecConfig, SpeculativeStep, expected_tokens_per_round
from infersim.perf.sram.pipeline import pipeline_for
from infersim.results.simulate import simulate
from infersim.scenario.competitors import Speculative

CAT = default_catalog()


def _gpu(model="llama-3.1-70b", tp=4, engine="trtllm"):
    cfg = GpuConfig(CAT.get_hardware("h100-sxm"), CAT.get_model(model), "fp8", "fp8", tp, 1)
    return GpuRoofline(cfg, shipped_profile(engine))


def test_expected_tokens_per_round():
    assert expected_tokens_per_round(0.0, 4) == 1.0  # nothing accepted: the target's own token
    assert expected_tokens_per_round(1.0, 4) == 5.0
    assert expected_tokens_per_round(0.8, 4) == pytest.approx((1 - 0.8 ** 5) / 0.2)  # 3.3616
    assert expected_tokens_per_round(0.5, 1) == pytest.approx(1.5)
    # the closed form is the mean of min(geometric, k) + 1 accepted tokens: check by simulation
    rng = np.random.default_rng(0)
    acc = rng.random((200_000, 6)) < 0.7
    first_reject = np.where(acc.all(axis=1), 6, acc.argmin(axis=1))
    assert (first_reject + 1).mean() == pytest.approx(expected_tokens_per_round(0.7, 6), rel=0.01)


@pytest.mark.parametrize("model", [lambda: _gpu(), lambda: pipeline_for("llama-2-70b", "groq-lpu", units=576),
                                   lambda: pipeline_for("llama-3.1-70b", "cerebras-wse3", units=4)])
def test_verification_of_one_token_is_a_decode_step(model):
    m = model()
    for b in (1, 7, 64, 300):
        ctx = b * np.array([100.0, 2000.0, 30000.0])
        assert m.verify_steps_s(b, 1, ctx) == pytest.approx(m.decode_steps_s(b, ctx), rel=1e-12)
        assert np.all(m.verify_steps_s(b, 5, ctx) >= m.decode_steps_s(b, ctx))


def test_tpot_falls_at_small_batch_and_throughput_falls_at_high_batch():
    base = _gpu()
    spec = SpeculativeStep(base, SpecConfig(k=4, acceptance=0.7))  # n-gram drafts, no draft cost
    e = expected_tokens_per_round(0.7, 4)  # 2.77 tokens per round
    ctx = 1500.0
    t1 = base.decode_steps_s(1, np.array([ctx]))[0]
    s1 = spec.decode_steps_s(1, np.array([ctx]))[0]
    assert t1 / s1 == pytest.approx(e, rel=0.1)  # memory-bound: verifying 5 positions costs ~ one decode
    # 512 sequences of 500 tokens: compute-bound (at 1,500 tokens the KV reads still dominate on an H100), so
    # 5 positions cost ~5x a decode's GEMMs and only 2.77 tokens come out
    tb = base.decode_steps_s(512, np.array([512 * 500.0]))[0]
    sb = spec.decode_steps_s(512, np.array([512 * 500.0]))[0]
    assert sb > tb
    # a draft model costs its k decode steps per round: slower than free n-gram drafts, faster than none
    draft = SpeculativeStep(base, SpecConfig(k=4, acceptance=0.7, draft=_gpu("llama-3.1-8b")))
    d1 = draft.decode_steps_s(1, np.array([ctx]))[0]
    assert s1 < d1 < t1
    # mixed steps: the token-weighted speed-up; decode-only and prefill-only steps match the pieces
    assert spec.step_s(0, 0.0, 0, 8, 8 * ctx) == pytest.approx(spec.decode_steps_s(8, np.array([8 * ctx]))[0])
    assert spec.step_s(512, 512 * 513 / 2, 1, 0, 0.0) == base.step_s(512, 512 * 513 / 2, 1, 0, 0.0)
    assert spec.step(np.array([512.0]), np.array([0.0]), np.full(8, ctx)).total_s == pytest.approx(
        spec.step_s(512, 512 * 513 / 2, 1, 8, 8 * ctx))


def test_fast_apply_speed_is_plausible():
    # ASSUMPTIONS (not published): Llama-3-70B fine-tune ~ llama-3.1-70b at fp8 on 8 H100s (TP 8, TensorRT-LLM
    # profile), prompt-lookup drafts of k=8 tokens accepted with p=0.9 (edits copy the file). Published: ~1,000
    # tokens/s per request (workloads.csv, Cursor Fast Apply). Without speculation the model says ~130 tok/s.
    base = _gpu(tp=8)
    spec = SpeculativeStep(base, SpecConfig(k=8, acceptance=0.9))
    ctx = 3000.0
    plain = 1 / base.decode_steps_s(1, np.array([ctx]))[0]
    fast = 1 / spec.decode_steps_s(1, np.array([ctx]))[0]
    assert plain < 200
    assert 500 < fast < 1500  # within 2x of the published ~1,000 tok/s


def test_lpu_speculation_speeds_per_user_output():
    pipe = pipeline_for("llama-2-70b", "groq-lpu", units=576)
    spec = SpeculativeStep(pipe, SpecConfig(k=4, acceptance=0.8))
    # the LPU is bound by a fixed time per layer, so verifying 5 positions costs ~ one token: ~E x faster
    gain = pipe.decode_steps_s(1, np.array([2000.0]))[0] / spec.decode_steps_s(1, np.array([2000.0]))[0]
    assert gain == pytest.approx(expected_tokens_per_round(0.8, 4), rel=0.05)


#: Step-model parameters this test's numbers were worked out with (the generic defaults, not a fitted engine
#: profile), so that refitting the shipped profiles does not move them.
PINNED = {"compute_eff": 0.55, "compute_half_tokens": 0.0, "attn_eff": 0.35, "memory_eff": 0.8,
          "step_overhead_s": 0.003, "per_seq_overhead_s": 0.0, "allreduce_latency_s": 8e-6, "comm_eff": 0.7,
          "schedule_delay_s": 0.0, "schedule_delay_per_seq_s": 0.0, "api_serial_s": 0.0,
          "low_precision_compute_scale": 1.0}


def test_schema_and_engine_end_to_end():
    with pytest.raises(ValidationError, match="needs 'draft_model'"):
        Speculative(method="draft_model", num_tokens=4, acceptance_rate=0.7)
    with pytest.raises(ValidationError, match="takes no 'draft_model'"):
        Speculative(method="ngram", draft_model="llama-3.1-8b", num_tokens=4, acceptance_rate=0.7)
    spec = {"method": "draft_model", "draft_model": "llama-3.1-8b", "num_tokens": 4, "acceptance_rate": 0.8}
    dep = "platforms[0].deployments[0]"
    changes = {f"{dep}.model": "llama-3.1-70b", f"{dep}.tp": 4, "duration": 20,
               "workload.streams[0].arrival": {"kind": "closed_loop", "concurrency": 1},
               "workload.streams[0].output_tokens.value": 300, f"{dep}.engine.perf": PINNED}
    plain = scenario(**changes)
    fast = scenario(**changes, **{f"{dep}.engine.speculative": spec})
    assert isinstance(deployment_setup(fast.platforms[0].deployments[0], CAT).perf, SpeculativeStep)
    a, b = simulate(plain).summary.iloc[0], simulate(fast).summary.iloc[0]
    # faster per user at batch 1; an 8B draft at TP 4 costs 4 vLLM steps per round, so the gain is modest (1.3x)
    assert b["tpot_p50_s"] < a["tpot_p50_s"] / 1.2
    assert b["finished"] > a["finished"]
    ngram = {"method": "ngram", "num_tokens": 4, "acceptance_rate": 0.8}
    c = simulate(scenario(**changes, **{f"{dep}.engine.speculative": ngram})).summary.iloc[0]
    assert c["tpot_p50_s"] < a["tpot_p50_s"] / 2.5  # free drafts: ~E = 3.36x
    hi = {"workload.streams[0].arrival": {"kind": "closed_loop", "concurrency": 256}, "duration": 20}
    a_hi = simulate(scenario(**{**changes, **hi})).summary.iloc[0]
    c_hi = simulate(scenario(**{**changes, **hi, f"{dep}.engine.speculative": ngram})).summary.iloc[0]
    # ... but less throughput at batch 256: at fixed concurrency, throughput = 256 x 300 tokens / E2E (Little)
    assert c_hi["e2e_p50_s"] > 1.03 * a_hi["e2e_p50_s"]  # 7 % slower: verification of 5 x 256 tokens is compute-bound
    assert c_hi["tpot_p50_s"] > a_hi["tpot_p50_s"]
    with pytest.raises(Exception, match=r"speculative\.draft_model: unknown model 'nope'"):
        scenario(**changes, **{f"{dep}.engine.speculative": {**spec, "draft_model": "nope"}})


def _lpu_scenario(**plat):
    from infersim.validate import load_scenario

    return load_scenario("t.yaml", data={
        "name": "t", "seed": 2, "duration": 20, "drain": 120,
        "workload": {"streams": [{"name": "s", "arrival": {"kind": "poisson", "rate": 2},
                                  "input_tokens": {"kind": "fixed", "value": 500},
                                  "output_tokens": {"kind": "fixed", "value": 300}}]},
        "platforms": [{"name": "lpu", "kind": "lpu", "model": "llama-3.1-70b", "chips": 576, **plat}]})


def test_lpu_platform_with_speculation():
    plain = simulate(_lpu_scenario()).summary.iloc[0]
    ngram = simulate(_lpu_scenario(speculative={"method": "ngram", "num_tokens": 4, "acceptance_rate": 0.8}))
    s = ngram.summary.iloc[0]
    # per-layer-latency bound: ~E = 3.36x the per-user speed (prompt rounds dilute it slightly)
    assert plain["tpot_p50_s"] / s["tpot_p50_s"] == pytest.approx(expected_tokens_per_round(0.8, 4), rel=0.1)
    assert s["chips"] == plain["chips"] == 576
    draft = simulate(_lpu_scenario(speculative={"method": "draft_model", "draft_model": "llama-3.1-8b",
                                                 "num_tokens": 4, "acceptance_rate": 0.8})).summary.iloc[0]
    assert s["tpot_p50_s"] < draft["tpot_p50_s"] < plain["tpot_p50_s"]  # the draft's 4 tokens cost time
    assert draft["chips"] > 576 and draft["provider_cost_usd"] > plain["provider_cost_usd"]  # and chips


def test_short_fast_forwards_are_timed_with_speculation():
    """The engine's fast-forward of <= PY_STEPS decode steps times them from ``decode_affine`` when the
    step model has one; a speculative wrapper must not pass the base model's through (its steps would be
    timed as plain decoding)."""
    from infersim.engine.fastforward import decode_times

    cat = default_catalog()
    base = GpuRoofline(GpuConfig(cat.get_hardware("a100-80g"), cat.get_model("llama-3.1-8b"), "bf16", "bf16", 1, 1),
                       shipped_profile("vllm"))
    spec = SpeculativeStep(base, SpecConfig(k=4, acceptance=0.8))
    for k in (10, 200):  # the scalar loop and the numpy path
        dts, cum = np.zeros(k), np.zeros(k)
        decode_times(spec, 8, 8 * 8000, k, dts, cum)
        want = spec.decode_steps_s(8, 8 * 8000 + 8 * np.arange(k, dtype=float))
        assert np.allclose(dts, want, rtol=1e-12) and float(cum[-1]) == pytest.approx(want.sum(), rel=1e-12)


# -- multi-token prediction (DeepSeek-V3's MTP module as the drafter) --------------------------------------

def test_mtp_module_is_one_layer_plus_shared_head_and_the_size_deepseek_publishes():
    from infersim.perf.specdec import mtp_module

    m = CAT.get_model("deepseek-v3")
    mod = mtp_module(m)
    # README_WEIGHTS.md: 685B on the Hub = 671B main model + 14B MTP module
    assert mod.total_params_b == pytest.approx(14.0, rel=0.06)
    assert mod.layers == mod.moe_layers == 1 and mod.expert_params_b == pytest.approx(m.expert_params_b / 58)
    assert mod.active_params_b < mod.total_params_b / 5  # 8 of 256 routed experts active, as in the main model
    with pytest.raises(Exception, match="ships no multi-token-prediction module"):
        mtp_module(CAT.get_model("llama-3.1-70b"))


def test_mtp_speeds_deepseek_decode_by_about_what_deepseek_reports():
    """DeepSeek-V3 Technical Report (arXiv 2412.19437) sec. 5.4.3: the second token's acceptance rate is
    85-90 % and MTP speculation gives 1.8x tokens per second. One MTP step (one MoE layer + the LM head) costs a
    few per cent of a TP-8 decode step, so the speed-up approaches E = 1 + a = 1.85 at batch 1 but cannot pass
    it; the verification pass reads more experts than one decode step, which takes some of it back."""
    from infersim.build.specdec import speculative_gpu

    base = GpuRoofline(GpuConfig(CAT.get_hardware("h200"), CAT.get_model("deepseek-v3"), "fp8", "fp8", 8, 1),
                       shipped_profile("sglang"))
    mtp = speculative_gpu(Speculative(method="mtp", num_tokens=1, acceptance_rate=0.85), base, CAT)
    ctx = np.array([3000.0])
    speedup = base.decode_steps_s(1, ctx)[0] / mtp.decode_steps_s(1, ctx)[0]
    assert 1.4 < speedup < 1.85
    assert 0.0 < mtp.draft_s(1, ctx)[0] < 0.1 * base.decode_steps_s(1, ctx)[0]
    # two MTP steps cost twice one (the module runs once per proposed token)
    two = speculative_gpu(Speculative(method="mtp", num_tokens=2, acceptance_rate=0.85), base, CAT)
    assert two.draft_s(1, ctx)[0] == pytest.approx(2 * mtp.draft_s(1, ctx)[0], rel=0.01)


def test_mtp_needs_a_model_with_the_module_and_no_draft_model():
    from infersim.core.errors import ScenarioError

    with pytest.raises(ValidationError, match="method 'mtp' takes no 'draft_model'"):
        Speculative(method="mtp", draft_model="llama-3.1-8b", num_tokens=1, acceptance_rate=0.8)
    dep = "platforms[0].deployments[0]"
    with pytest.raises(ScenarioError, match="ships multi-token-prediction modules") as e:  # at load, before a run
        scenario(**{f"{dep}.model": "llama-3.1-70b", f"{dep}.tp": 4,
                    f"{dep}.engine.speculative": {"method": "mtp", "num_tokens": 1, "acceptance_rate": 0.8}})
    assert e.value.path == f"{dep}.engine.speculative.method"
    with pytest.raises(ScenarioError, match="GPU engines only"):
        _lpu_scenario(speculative={"method": "mtp", "num_tokens": 1, "acceptance_rate": 0.8})
