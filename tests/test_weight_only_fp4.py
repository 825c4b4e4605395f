"""FP4 (MXFP4/NVFP4) weights on GPUs without FP4 tensor cores run weight-only: 4-bit weight bytes, BF16 GEMMs
(vLLM serves gpt-oss-120b on H100 with its Marlin / Triton MXFP4 kernels). FP8 without FP8 tensor cores
stays an error: there is no weight-only path the model describes for it."""

import pytest

from infersim.catalog import BYTES_PER_PARAM, default_catalog
from infersim.perf import GpuConfig, GpuRoofline
from infersim.perf.params import PerfParams
from infersim.results.simulate import simulate
from infersim.validate import load_scenario

CAT = default_catalog()


def test_compute_path():
    h100, b200, a100 = (CAT.get_hardware(h) for h in ("h100-sxm", "b200", "a100-80g"))
    assert h100.compute_path("fp4") == "bf16" and h100.supports("fp4")
    assert b200.compute_path("fp4") == "fp4"
    assert h100.compute_path("fp8") == "fp8"
    assert a100.compute_path("fp8") is None and not a100.supports("fp8")
    assert a100.compute_path("int4") == "bf16"


def test_fp4_on_hopper_is_bf16_compute_with_4bit_weights():
    hw, m = CAT.get_hardware("h100-sxm"), CAT.get_model("gpt-oss-120b")
    p = PerfParams()
    fp4 = GpuRoofline(GpuConfig(hw, m, "fp4", "bf16", 2), p)
    bf16 = GpuRoofline(GpuConfig(hw, m, "bf16", "bf16", 2), p)
    assert fp4.gemm_flops == bf16.gemm_flops and fp4.expert_gemm_flops == bf16.expert_gemm_flops
    assert fp4.dense_bytes == pytest.approx(bf16.dense_bytes * BYTES_PER_PARAM["fp4"] / BYTES_PER_PARAM["bf16"])
    # a memory-bound decode step reads ~a quarter of the weight bytes, so it is faster; a large prefill, compute-
    # bound at the same BF16 rate, barely (only its expert-weight reads shrink)
    assert fp4.step([], [], [1000] * 4).total_s < bf16.step([], [], [1000] * 4).total_s
    assert fp4.step([8192], [0], []).total_s == pytest.approx(bf16.step([8192], [0], []).total_s, rel=0.15)


def test_gpt_oss_on_one_h100_runs():
    data = {"name": "oss", "seed": 1, "duration": 20, "warmup": 2,
            "workload": {"streams": [{"name": "s", "arrival": {"kind": "poisson", "rate": 2},
                                      "input_tokens": {"kind": "fixed", "value": 500},
                                      "output_tokens": {"kind": "fixed", "value": 100}}]},
            "platforms": [{"name": "p", "kind": "gpu_fleet", "deployments": [{
                "model": "gpt-oss-120b", "hardware": "h100-sxm", "precision": "fp4", "replicas": 1}]}]}
    res = simulate(load_scenario("oss.yaml", data=data))
    q = res.requests
    assert (q["outcome"] == "finished").sum() > 0 and q["tpot_s"].median() > 0
