"""Performance model: roofline floor, memory plan, calibration rows, `infersim estimate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infersim.catalog import BYTES_PER_PARAM, default_catalog
from infersim.cli import main
from infersim.core.errors import CapacityError
from infersim.perf import GpuConfig, GpuRoofline, PerfParams, plan_memory
from infersim.perf.kernels import gemm_prior
from infersim.perf.profiles import shipped_profile

CAT = default_catalog()
GPUS = sorted(h.id for h in CAT.hardware.values() if h.kind in ("gpu", "tpu", "asic") and h.interconnect_gbps > 0)
MODELS = sorted(CAT.models)


@settings(max_examples=200, deadline=None)
@given(hw=st.sampled_from(GPUS), model=st.sampled_from(MODELS), prec=st.sampled_from(["bf16", "fp8", "fp4", "int4"]),
       tp=st.sampled_from([1, 2, 4, 8]), batch=st.integers(1, 512), ctx=st.integers(1, 32768),
       engine=st.sampled_from(["vllm", "sglang", "trtllm"]))
def test_decode_never_faster_than_streaming_the_weights(hw, model, prec, tp, batch, ctx, engine):
    h, m = CAT.get_hardware(hw), CAT.get_model(model)
    if not h.supports(prec):
        prec = "bf16"
    cfg = GpuConfig(h, m, prec, "bf16", tp, 1)
    perf = GpuRoofline(cfg, shipped_profile(engine))
    t = perf.step(np.zeros(0), np.zeros(0), np.full(batch, float(ctx))).total_s
    # the dense part of the weights (and at least one expert's share) must stream from memory every step
    floor = perf.weight_stream_floor_s()
    assert t >= floor
    dense_bytes = (m.total_params_b - m.expert_params_b) * 1e9 * BYTES_PER_PARAM[prec] / tp
    assert t >= dense_bytes / (h.memory_bw_tbps * 1e12)
    # and more work never takes less time
    assert perf.step(np.zeros(0), np.zeros(0), np.full(batch + 1, float(ctx))).total_s >= t
    assert perf.step(np.zeros(0), np.zeros(0), np.full(batch, float(ctx) + 100)).total_s >= t


def test_batch1_decode_llama8b_h100_floor_by_hand():
    # 8.03e9 params x 1 byte (fp8) / 3.35e12 B/s = 2.40 ms: a decode step can't beat it
    cfg = GpuConfig(CAT.get_hardware("h100-sxm"), CAT.get_model("llama-3.1-8b"), "fp8", "fp8", 1, 1)
    perf = GpuRoofline(cfg, PerfParams(memory_eff=1.0, step_overhead_s=0.0, compute_eff=1.0, attn_eff=1.0))
    t = perf.step(np.zeros(0), np.zeros(0), np.array([1.0])).total_s
    assert t >= perf.weight_stream_floor_s()
    # at the measured weight-streaming rate of an H100 (kernel_priors.csv), plus 32 layers x 4 GEMM kernels
    k = gemm_prior("h100-sxm")
    by_hand = (8.03e9 + 65536 * 2) / (3.35e12 * k.stream_share) + 32 * 4 * k.kernel_fixed_s
    assert t == pytest.approx(by_hand, rel=1e-3)


def test_moe_reads_only_touched_experts():
    cfg = GpuConfig(CAT.get_hardware("h200"), CAT.get_model("mixtral-8x7b"), "fp8", "fp8", 1, 1)
    perf = GpuRoofline(cfg, PerfParams())
    one = perf._weight_bytes(1.0)
    many = perf._weight_bytes(256.0)
    m = CAT.get_model("mixtral-8x7b")
    # one token touches 2 of 8 experts; a big batch touches all of them
    assert one == pytest.approx((m.total_params_b - m.expert_params_b * 6 / 8) * 1e9, rel=1e-6)
    assert many == pytest.approx(m.total_params_b * 1e9, rel=1e-3)


def test_memory_plan_numbers_and_capacity_error():
    cfg = GpuConfig(CAT.get_hardware("h100-sxm"), CAT.get_model("llama-3.1-8b"), "fp8", "fp8", 1, 1)
    plan = plan_memory(cfg, max_batched_tokens=8192, max_num_seqs=256)
    assert plan.weights_gb == pytest.approx(8.03)
    kv_gb = 80 * 0.9 - plan.weights_gb - plan.activations_gb - plan.reserve_gb
    assert plan.kv_capacity_tokens == int(kv_gb * 1e9 // 65536)  # 32 layers x 8 kv heads x 128 x 2 x 1 byte
    big = GpuConfig(CAT.get_hardware("l4"), CAT.get_model("llama-3.1-405b"), "bf16", "bf16", 1, 1)
    with pytest.raises(CapacityError, match=r"needs .* GB per GPU .* but .* GB is usable"):
        plan_memory(big)


def test_estimate_json_keys(capsys):
    rc = main(["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--tp", "1", "--precision", "fp8",
               "--input", "1000", "--output", "1000", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    for k in ("ttft_s", "tpot_s", "output_tok_s_per_user", "kv_capacity_tokens", "max_batch", "max_output_tok_s"):
        assert k in d and d[k] > 0
    assert d["output_tok_s_per_user"] == pytest.approx(1 / d["tpot_s"])


def test_estimate_bad_input_exits_2(capsys):
    assert main(["estimate", "--model", "llama-3.1-405b", "--hardware", "l4", "--precision", "bf16"]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert main(["estimate", "--model", "llama-3.1-8b", "--hardware", "h10O"]) == 2
    assert "did you mean 'h100-sxm'" in capsys.readouterr().err


def _est(capsys, *args):
    rc = main(["estimate", "--model", "gpt-oss-120b", "--hardware", "b200", "--precision", "mxfp4", "--input", "1024",
               "--output", "1024", "--batch", "32", "--json", *args])
    assert rc == 0
    return json.loads(capsys.readouterr().out)


def test_estimate_disaggregated_lone_ttft_and_lesser_pool_capacity(capsys):
    """1P3D on one HGX B200 node: a lone request's TTFT is its prefill + the KV transfer over NVLink + the first
    decode step (by arithmetic from the parts printed); the deployment's capacity is the lesser pool's, and with
    1,024-token prompts one prefill GPU outruns three decode GPUs, so decode binds."""
    from infersim.catalog import default_catalog
    from infersim.perf.kv_link import kv_bytes

    d = _est(capsys, "--prefill-replicas", "1", "--decode-replicas", "3", "--placement", "same_domain")
    m = default_catalog().get_model("gpt-oss-120b")
    assert d["transfer_s"] == pytest.approx(10e-6 + kv_bytes(m, "fp8", 1024) / 900e9)
    assert d["prefill_s"] + d["transfer_s"] < d["ttft_s"] < d["prefill_s"] + d["transfer_s"] + d["tpot_s"]
    assert d["bottleneck"] == "decode" and d["prefill_req_s"] > d["decode_req_s"]
    assert d["max_output_tok_s"] == pytest.approx(d["decode_req_s"] * 1024)
    assert d["gpus"] == 4 and d["output_tok_s_per_gpu"] == pytest.approx(d["max_output_tok_s"] / 4)
    # three times the decode replicas: three times the decode capacity, the prefill pool's unchanged
    e = _est(capsys, "--prefill-replicas", "1", "--decode-replicas", "9", "--placement", "rdma")
    assert e["decode_req_s"] == pytest.approx(3 * d["decode_req_s"])
    assert e["prefill_req_s"] == pytest.approx(d["prefill_req_s"])
    assert e["transfer_s"] > d["transfer_s"]  # 50 GB/s ConnectX-7 instead of 900 GB/s NVLink
    # the prefill side streaming the first token (DistServe): TTFT is the prefill alone, capacity unchanged
    f = _est(capsys, "--prefill-replicas", "1", "--decode-replicas", "3", "--placement", "same_domain",
             "--first-token", "prefill")
    assert f["ttft_s"] == f["prefill_s"] == d["prefill_s"]
    assert f["max_output_tok_s"] == d["max_output_tok_s"] and f["tpot_s"] == d["tpot_s"]


def test_estimate_expert_and_data_parallel_layout(capsys):
    one = _est(capsys)
    wide = _est(capsys, "--dp", "4", "--ep", "4")
    assert wide["kv_capacity_tokens"] > 4 * one["kv_capacity_tokens"]  # experts spread: more room per GPU
    assert wide["max_output_tok_s"] > 3 * one["max_output_tok_s"]


def test_estimate_bad_layouts_exit_2_naming_the_flag(capsys):
    base = ["estimate", "--model", "gpt-oss-120b", "--hardware", "b200", "--precision", "mxfp4"]
    assert main([*base, "--ep", "2"]) == 2
    assert "ep must be 1 or tp x dp" in capsys.readouterr().err
    assert main([*base, "--prefill-replicas", "1"]) == 2
    assert "--decode-replicas" in capsys.readouterr().err
    assert main([*base, "--decode-tp", "2"]) == 2
    assert "apply to a disaggregated estimate" in capsys.readouterr().err
    assert main([*base, "--first-token", "prefill"]) == 2
    assert "--first-token applies to a disaggregated estimate" in capsys.readouterr().err
    assert main(["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--dp", "2", "--ep", "2"]) == 2
    assert "--ep: ep=2 needs a mixture-of-experts model" in capsys.readouterr().err
    assert main([*base, "--tp", "4", "--decode-tp", "8", "--prefill-replicas", "1", "--decode-replicas", "1",
                 "--placement", "same_domain"]) == 2  # a 4-GPU and an 8-GPU replica in one 8-GPU NVLink domain
    assert "do not fit one NVLink domain" in capsys.readouterr().err
