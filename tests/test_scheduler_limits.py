"""An engine left without scheduler limits runs with the engine's own defaults on its GPU (perf/profiles/<engine>.yaml
``scheduler_limits``, each with its source), in a scenario and in ``infersim calibrate`` alike."""

from __future__ import annotations

import pytest

from infersim.build.gpu import deployment_setup
from infersim.calibrate.measured import MeasuredRow
from infersim.calibrate.runner import row_limits, scenario_data
from infersim.catalog import default_catalog
from infersim.core.errors import ScenarioError
from infersim.perf import profiles
from infersim.validate import load_scenario

CAT = default_catalog()


def _setup(tmp_path, hardware="h100-sxm", model="llama-3.1-8b", precision="bf16", **engine):
    data = {"name": "t", "duration": 10, "workload": {"streams": [{"name": "s", "arrival": {"kind": "poisson",
            "rate": 1}, "input_tokens": {"kind": "fixed", "value": 100}, "output_tokens": {"kind": "fixed",
            "value": 10}}]}, "platforms": [{"name": "p", "kind": "gpu_fleet", "deployments": [{
                "model": model, "hardware": hardware, "precision": precision, "engine": engine}]}]}
    p = tmp_path / "s.yaml"
    p.write_text("{}")
    sc = load_scenario(p, data=data)
    return deployment_setup(sc.platforms[0].deployments[0], CAT, "platforms[0].deployments[0]")


def _limits(engine, hw_id):
    hw = CAT.get_hardware(hw_id)
    d = profiles.default_limits(engine, hw)
    return d.max_num_seqs, d.max_batched_tokens


def test_vllm_defaults_follow_its_rule_by_gpu_memory_and_keep_a100_small():
    # EngineArgs.get_batch_defaults, API server: >= 70 GiB and not an A100 -> 8192 tokens, 1024 sequences
    for hw in ("h100-sxm", "h200", "b200", "mi300x"):
        assert _limits("vllm", hw) == (1024, 8192), hw
    for hw in ("a100-80g", "l40s", "l4"):  # an 80 GB A100 is kept small by name; the others by memory
        assert _limits("vllm", hw) == (256, 2048), hw


def test_sglang_chunked_prefill_by_memory_and_trtllm_serve_defaults():
    assert [_limits("sglang", hw)[1] for hw in ("l4", "l40s", "h100-sxm", "h200", "b200", "mi300x")] == \
        [2048, 4096, 8192, 8192, 16384, 16384]
    assert {_limits("trtllm", hw) for hw in ("a100-80g", "h100-sxm", "b200")} == {(2048, 8192)}
    for e in ("vllm", "sglang", "trtllm"):
        assert profiles.scheduler_limits(e, "h100-sxm", 74.5).source  # every default names its source


def test_scenario_without_limits_takes_the_engines_and_explicit_values_win(tmp_path):
    s = _setup(tmp_path)
    assert (s.max_num_seqs, s.max_batched_tokens) == (1024, 8192)
    s = _setup(tmp_path, hardware="a100-80g")
    assert (s.max_num_seqs, s.max_batched_tokens) == (256, 2048)
    s = _setup(tmp_path, max_num_seqs=64)  # one given: the other is the engine's default
    assert (s.max_num_seqs, s.max_batched_tokens) == (64, 8192)
    s = _setup(tmp_path, kind="trtllm", max_num_seqs=32, max_batched_tokens=1024)
    assert (s.max_num_seqs, s.max_batched_tokens) == (32, 1024)
    s = _setup(tmp_path, kind="sglang", hardware="b200", model="gpt-oss-120b", precision="mxfp4")
    assert (s.max_num_seqs, s.max_batched_tokens) == (1024, 16384)


def test_calibrate_rows_use_the_same_defaults_raised_to_the_concurrency():
    row = MeasuredRow(row=1, model="llama-3.1-8b", hardware="h100-sxm", tp=1, engine="vllm", precision="bf16",
                      input_tokens=100, output_tokens=10, concurrency=8, rate_per_s=None, num_requests=64,
                      metrics={})
    assert row_limits(row) == (1024, 8192)
    eng = scenario_data(row)["platforms"][0]["deployments"][0]["engine"]
    assert (eng["max_num_seqs"], eng["max_batched_tokens"]) == (1024, 8192)
    big = MeasuredRow(row=2, model="llama-3.1-8b", hardware="a100-80g", tp=1, engine="vllm", precision="bf16",
                      input_tokens=100, output_tokens=10, concurrency=512, rate_per_s=None, num_requests=1024,
                      metrics={})
    assert row_limits(big) == (512, 2048)
    given = MeasuredRow(row=3, model="llama-3.1-8b", hardware="h100-sxm", tp=1, engine="vllm", precision="bf16",
                        input_tokens=100, output_tokens=10, concurrency=8, rate_per_s=None, num_requests=64,
                        metrics={}, max_num_seqs=16, max_batched_tokens=512)
    assert row_limits(given) == (16, 512)


def test_a_profile_without_a_last_tier_is_a_clear_error(monkeypatch):
    doc = {"scheduler_limits": {"tiers": [{"below_gib": 40, "max_num_seqs": 8, "max_batched_tokens": 64}]}}
    monkeypatch.setattr(profiles, "_shipped_doc", lambda engine: doc)
    profiles.scheduler_limits.cache_clear()
    try:
        assert profiles.scheduler_limits("vllm", "l4", 22.4).max_num_seqs == 8
        with pytest.raises(ScenarioError, match="no tier for hardware 'h100-sxm'"):
            profiles.scheduler_limits("vllm", "h100-sxm", 74.5)
        doc["scheduler_limits"]["tiers"] = [{"max_num_seqs": 0, "max_batched_tokens": 64}]
        with pytest.raises(ScenarioError, match="max_num_seqs"):
            profiles.scheduler_limits("vllm", "b200", 167.6)
    finally:
        profiles.scheduler_limits.cache_clear()


def test_estimate_takes_the_engines_limits_unless_given():
    from infersim.core.errors import InfersimError
    from infersim.estimate import run_estimate

    kw = dict(model="llama-3.1-8b", hardware="h100-sxm", input_tokens=1000, output_tokens=200)
    own = run_estimate(engine="vllm", **kw)[0]
    given = run_estimate(engine="vllm", max_num_seqs=1024, max_batched_tokens=8192, **kw)[0]
    small = run_estimate(engine="vllm", max_num_seqs=64, **kw)[0]
    assert own == given  # vLLM's own limits on an H100
    assert small.max_output_tok_s < own.max_output_tok_s  # 64 sequences cap the batch
    with pytest.raises(InfersimError, match="--max-num-seqs"):
        run_estimate(engine="vllm", max_num_seqs=0, **kw)
    with pytest.raises(InfersimError, match="--engine"):
        run_estimate(engine="tgi", **kw)
