"""Parallelism of a GPU replica (tp, pp, dp, ep) and the hardware's communication fields."""

import pytest

from infersim.catalog import default_catalog
from infersim.perf.gpu import GpuConfig
from infersim.perf.memory import plan_memory


def _cfg(hw="h100-sxm", model="llama-3.1-8b", **kw):
    cat = default_catalog()
    return GpuConfig(cat.get_hardware(hw), cat.get_model(model), "bf16", "bf16", **kw)


def test_every_accelerator_states_its_scale_up_domain_and_scale_out_bandwidth_with_a_source():
    for hw in default_catalog().hardware.values():
        assert hw.nvlink_domain_gpus >= 1, hw.id
        assert hw.scaleout_gbps >= 0, hw.id
        assert "nvlink_domain_gpus" in hw.source and "scaleout_gbps" in hw.source, hw.id
    cat = default_catalog()
    assert cat.get_hardware("gb200").nvlink_domain_gpus == 72
    assert cat.get_hardware("h100-sxm").nvlink_domain_gpus == 8
    assert cat.get_hardware("h100-sxm").scaleout_gbps == 50.0  # 400 Gb/s ConnectX-7 per GPU
    assert cat.get_hardware("l40s").nvlink_domain_gpus == 1


def test_gpus_count_tp_pp_and_dp_and_ep_must_span_tp_times_dp():
    assert _cfg(tp=2, pp=3, dp=4, ep=8).gpus == 24
    with pytest.raises(ValueError, match="ep must be 1 or tp x dp"):
        _cfg(tp=2, dp=2, ep=2)
    with pytest.raises(ValueError, match="dp must be"):
        _cfg(dp=0)


def test_dp_ranks_each_hold_their_own_kv_and_a_copy_of_the_dense_weights():
    one, four = plan_memory(_cfg()), plan_memory(_cfg(dp=4))
    assert four.weights_gb == pytest.approx(one.weights_gb)
    assert four.kv_capacity_tokens == 4 * one.kv_capacity_tokens


def test_expert_parallel_shards_experts_over_ep_and_dense_weights_over_tp():
    m = default_catalog().get_model("mixtral-8x7b")
    cfg = _cfg(model="mixtral-8x7b", tp=1, dp=8, ep=8)
    expert_b, dense_b = m.expert_params_b * 1e9 * 2, (m.total_params_b - m.expert_params_b) * 1e9 * 2
    assert cfg.weight_bytes_per_gpu() == pytest.approx(dense_b + expert_b / 8)
    assert _cfg(model="mixtral-8x7b", tp=8).weight_bytes_per_gpu() == pytest.approx((dense_b + expert_b) / 8)


# -- a scenario's dp / ep reach the replica (build.gpu.deployment_setup) ---------------------------------------

def _setup(tmp_path, **dep):
    from infersim.build.gpu import deployment_setup
    from infersim.validate import load_scenario

    d = {"model": "gpt-oss-120b", "hardware": "b200", "precision": "mxfp4", **dep}
    data = {"name": "t", "duration": 10, "workload": {"streams": [{"name": "s", "arrival": {"kind": "poisson",
            "rate": 1}, "input_tokens": {"kind": "fixed", "value": 100}, "output_tokens": {"kind": "fixed",
            "value": 10}}]}, "platforms": [{"name": "p", "kind": "gpu_fleet", "deployments": [d]}]}
    p = tmp_path / "s.yaml"
    p.write_text("{}")
    sc = load_scenario(p, data=data)
    return deployment_setup(sc.platforms[0].deployments[0], default_catalog(), "platforms[0].deployments[0]")


def test_scenario_dp_and_ep_set_the_replicas_gpus_kv_limits_and_step_model(tmp_path):
    one = _setup(tmp_path)
    wide = _setup(tmp_path, tp=1, dp=4, ep=4, engine={"kind": "sglang", "max_num_seqs": 64})
    assert (wide.config.dp, wide.config.ep, wide.config.gpus) == (4, 4, 4)  # billed as 4 GPUs
    # each dp rank is an engine core with its own limits and KV; experts spread over 4 GPUs free room for KV
    assert wide.max_num_seqs == 4 * 64
    # SGLang's default chunked prefill on a B200 (180 GB: at least 160 GiB) is 16,384 tokens, vLLM's 8,192
    assert (wide.max_batched_tokens, one.max_batched_tokens) == (4 * 16384, 8192)
    assert wide.memory.weights_gb < one.memory.weights_gb
    assert wide.memory.kv_capacity_tokens > 4 * one.memory.kv_capacity_tokens
    # the step model splits the batch over the ranks: 64 sequences per rank (256 in all) decode faster than 64
    # on one GPU, which reads most of the model's experts where each wide GPU reads its quarter; one sequence
    # per rank is slower than one on a lone GPU (two all-to-alls per MoE layer, latency-bound)
    same = _setup(tmp_path, engine={"kind": "sglang", "max_num_seqs": 64})
    ctx = 2000.0
    assert wide.perf.step_s(0, 0, 0, 256, 256 * ctx) < 0.8 * same.perf.step_s(0, 0, 0, 64, 64 * ctx)
    assert wide.perf.step_s(0, 0, 0, 4, 4 * ctx) > same.perf.step_s(0, 0, 0, 1, ctx)


def test_expert_parallelism_needs_a_moe_model_and_no_more_ranks_than_experts(tmp_path):
    from infersim.core.errors import ScenarioError

    with pytest.raises(ScenarioError, match="needs a mixture-of-experts model") as e:
        _setup(tmp_path, model="llama-3.1-8b", precision="bf16", tp=1, dp=2, ep=2)
    assert e.value.path == "platforms[0].deployments[0].ep"
    with pytest.raises(ScenarioError, match="exceeds gpt-oss-120b's 128 routed experts") as e:
        _setup(tmp_path, tp=1, dp=256, ep=256)
    assert e.value.path == "platforms[0].deployments[0].ep"
