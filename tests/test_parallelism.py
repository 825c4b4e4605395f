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
