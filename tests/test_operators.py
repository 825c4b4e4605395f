"""Mechanism tests of the per-operator step model (perf/gpu.py), each term checked by hand arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from infersim.catalog import BYTES_PER_PARAM, default_catalog
from infersim.engine.fastforward import decode_times
from infersim.perf.gpu import GpuConfig, GpuRoofline
from infersim.perf.kernels import gemm_prior, matmul_ceiling
from infersim.perf.params import PerfParams

CAT = default_catalog()
BARE = PerfParams(compute_eff=1.0, compute_half_tokens=0.0, moe_half_tokens=0.0, attn_eff=0.5, memory_eff=1.0,
                  step_overhead_s=0.0, per_seq_overhead_s=0.0, allreduce_latency_s=0.0, alltoall_latency_s=0.0)


#: measured H100 kernels (catalog/data/kernel_priors.csv): real-shape GEMMs over the matmul ceiling, weight
#: streaming over the datasheet bandwidth, fixed time per GEMM kernel
H100 = gemm_prior("h100-sxm")
GEMM_SHARE, STREAM, KFIX = H100.share_of_ceiling, H100.stream_share, H100.kernel_fixed_s


def perf(model="llama-3.1-8b", hw="h100-sxm", prec="bf16", params=BARE, **kw) -> GpuRoofline:
    return GpuRoofline(GpuConfig(CAT.get_hardware(hw), CAT.get_model(model), prec, "bf16", **kw), params)


def test_batch1_decode_is_the_weights_over_bandwidth_plus_the_kv_it_reads():
    m = CAT.get_model("llama-3.1-8b")
    p = perf()
    ctx = 1000
    kv = m.kv_bytes_per_token("bf16") * (ctx + 1)
    expect = (m.total_params_b * 1e9 * 2 + kv) / (3.35e12 * STREAM) + KFIX * 4 * m.layers
    assert p.step_s(0, 0.0, 0, 1, float(ctx)) == pytest.approx(expect, rel=1e-9)
    assert p.step_s(0, 0.0, 0, 1, float(ctx)) >= p.weight_stream_floor_s()


def test_large_prefill_is_gemm_flops_at_the_measured_matmul_ceiling_plus_attention():
    m = CAT.get_model("llama-3.1-8b")
    p = perf()
    n = 8192
    embed = m.vocab_size * m.hidden_size
    gemm = (2 * (m.active_params_b * 1e9 - 2 * embed) * n + 2 * embed) / (
        989.4e12 * matmul_ceiling("h100-sxm", "bf16") * GEMM_SHARE)
    attn = m.attention_flops_per_context_token() * n * (n + 1) / 2 / (989.4e12 * 0.5)
    assert p.step_s(n, n * (n + 1) / 2, 1, 0, 0.0) == pytest.approx(gemm + attn + KFIX * 4 * m.layers, rel=1e-9)


def test_gemm_efficiency_ramps_with_tokens_in_the_step():
    p = perf(params=BARE.with_(compute_half_tokens=64.0))
    full = perf()
    # 64 tokens: half the large-M efficiency, so the GEMM part takes twice as long (when compute-bound)
    n = 4096
    assert p._gemm_eff(64.0, 64.0) == pytest.approx(full.gemm_flops / 2)
    assert p.step_s(n, 0.0, 1, 0, 0.0) > full.step_s(n, 0.0, 1, 0, 0.0)


def test_two_tp_allreduces_per_layer_with_latency_and_ring_bytes():
    m = CAT.get_model("llama-3.1-70b")
    base = perf("llama-3.1-70b", tp=4)
    lat = perf("llama-3.1-70b", tp=4, params=BARE.with_(allreduce_latency_s=1e-4))
    # the profile's latency is the one at 2 GPUs; at 4 an H100 SXM's NCCL all-reduce takes 12 us against 8 at 2
    assert lat.step_s(0, 0.0, 0, 8, 8000.0) - base.step_s(0, 0.0, 0, 8, 8000.0) == pytest.approx(2 * 80 * 1e-4 * 1.5)
    lat2 = perf("llama-3.1-70b", tp=2, params=BARE.with_(allreduce_latency_s=1e-4))
    base2 = perf("llama-3.1-70b", tp=2)
    assert lat2.step_s(0, 0.0, 0, 8, 8000.0) - base2.step_s(0, 0.0, 0, 8, 8000.0) == pytest.approx(2 * 80 * 1e-4)
    # bytes: tokens x hidden x 2 B x 2(tp-1)/tp per all-reduce, over NVLink's 450 GB/s per direction x comm_eff
    t = 4096
    ring = 2 * 80 * t * m.hidden_size * 2 * 2 * 3 / 4 / (900e9 / 2 * 0.7)
    slow = perf("llama-3.1-70b", tp=4, params=BARE.with_(comm_eff=1e-3))
    assert slow.step_s(t, 0.0, 1, 0, 0.0) - base.step_s(t, 0.0, 1, 0, 0.0) == pytest.approx(ring * 699, rel=1e-3)


def test_a_tp_group_beyond_the_nvlink_domain_runs_over_the_scale_out_network():
    assert perf("llama-3.1-405b", tp=16).ar_bw == pytest.approx(50e9 * 0.7)  # 400 Gb/s ConnectX-7 per GPU
    assert perf("llama-3.1-405b", hw="gb200", tp=16).ar_bw == pytest.approx(900e9 * 0.7)  # NVL72 domain


def test_expert_parallel_all_to_all_dispatch_and_combine_bytes():
    m = CAT.get_model("mixtral-8x7b")
    kw = dict(model="mixtral-8x7b", tp=1, dp=8, ep=8)
    base = perf(**kw)
    slow = perf(**kw, params=BARE.with_(comm_eff=1e-3))
    lat = perf(**kw, params=BARE.with_(alltoall_latency_s=1e-4))
    # dispatch + combine per MoE layer (32): each GPU sends its 1/8 of the tokens to k=2 experts, 7/8 remote
    assert lat.step_s(0, 0.0, 0, 64, 64000.0) - base.step_s(0, 0.0, 0, 64, 64000.0) == pytest.approx(2 * 32 * 1e-4)
    t = 8 * 1024
    a2a = 2 * 32 * (t / 8) * 2 * m.hidden_size * 2 * (7 / 8) / (900e9 / 2 * 0.7)
    assert slow.step_s(t, 0.0, 8, 0, 0.0) - base.step_s(t, 0.0, 8, 0, 0.0) == pytest.approx(a2a * 699, rel=1e-3)
    assert base.ar_count == 0  # tp = 1: no all-reduce


def test_moe_tokens_per_expert_and_touched_expert_bytes():
    m = CAT.get_model("mixtral-8x7b")
    p = perf("mixtral-8x7b", prec="fp8", params=BARE.with_(moe_half_tokens=16.0))
    # one token touches 2 of 8 experts: the dense part plus a quarter of the experts' bytes
    assert p._weight_bytes(1.0) == pytest.approx((m.total_params_b - m.expert_params_b * 6 / 8) * 1e9)
    # 64 tokens x top-2 over 8 experts (all touched) = 16 tokens per expert: half the grouped-GEMM efficiency
    assert p._gemm_eff(64 * 2 / 8, 16.0) == pytest.approx(p.gemm_flops / 2)


def test_expert_parallel_imbalance_makes_the_busiest_gpu_slower_than_the_mean():
    m = CAT.get_model("mixtral-8x7b")
    ep = perf("mixtral-8x7b", tp=1, dp=8, ep=8, params=BARE.with_(comm_eff=1e9))  # links free: GEMMs only
    n = 16 * 1024  # a compute-bound prefill micro-batch over 8 ranks (2,048 tokens each)
    mean = n * 2 / 8  # token-expert assignments per GPU (top-2, one expert per GPU)
    busiest = mean + np.sqrt(2 * mean * np.log(8) * 7 / 8)  # expected max of 8 multinomial counts
    flops_per_assign = 2 * m.expert_params_b * 1e9 / 8  # one token through one expert (all layers)
    peak = 989.4e12 * matmul_ceiling("h100-sxm", "bf16") * GEMM_SHARE
    dense_flops = (2 * (m.active_params_b * 1e9 - 2 * m.vocab_size * m.hidden_size) - 2 * flops_per_assign) * n / 8
    expect = (dense_flops + 2 * m.vocab_size * m.hidden_size * 1) / peak + flops_per_assign * busiest / peak
    assert ep._stage_fixed(n / 8, 1.0, n) == pytest.approx(expect + KFIX * 4 * m.layers, rel=1e-6)
    assert busiest / mean == pytest.approx(1.0 + np.sqrt(2 * np.log(8) * 7 / 8 / mean))


def test_pipeline_throughput_scales_with_stages_and_a_lone_sequence_pays_every_stage():
    one = perf("llama-3.1-70b", tp=4)
    two = perf("llama-3.1-70b", tp=4, pp=2)
    # compute-bound: 64 sequences of 256 prefill tokens, split into 2 micro-batches over 2 stages of 4 GPUs
    big = (64 * 256, 64 * 256 * 257 / 2, 64, 0, 0.0)
    assert two.step_s(*big) == pytest.approx(one.step_s(*big) / 2, rel=0.05)
    # one sequence decoding: its token crosses both stages in turn, each reading half the weights: same as pp=1
    assert two.step_s(0, 0.0, 0, 1, 2000.0) == pytest.approx(one.step_s(0, 0.0, 0, 1, 2000.0), rel=0.01)


def test_attention_data_parallel_ranks_split_the_batch():
    one = perf("llama-3.1-8b")
    four = perf("llama-3.1-8b", dp=4)
    # 4 ranks each run a quarter of the sequences: like one rank with a quarter of the batch
    assert four.step_s(0, 0.0, 0, 64, 64 * 2000.0) == pytest.approx(one.step_s(0, 0.0, 0, 16, 16 * 2000.0))


def test_fp4_computes_at_the_measured_blackwell_fp4_ceiling():
    p = perf("llama-3.3-70b", hw="b200", prec="fp4", params=BARE.with_(fp4_compute_scale=0.9))
    # B200 has no kernel measurement of its own: the H100's real-shape share (ASSUMPTION, perf/kernels.py)
    assert p.gemm_flops == pytest.approx(9000e12 * 0.736 * GEMM_SHARE * 0.9)
    assert p.dense_bytes == pytest.approx(CAT.get_model("llama-3.3-70b").total_params_b * 1e9 * BYTES_PER_PARAM["fp4"])


@pytest.mark.parametrize("model,kw", [("llama-3.1-8b", {}), ("mixtral-8x7b", {"tp": 2}), ("llama-3.1-70b", {"tp": 4, "pp": 2}),
                                      ("mixtral-8x7b", {"tp": 2, "dp": 2, "ep": 4}), ("gpt-oss-20b", {}),
                                      ("deepseek-v3", {"tp": 8, "prec": "fp8"})])
def test_fast_forward_equals_stepping_one_by_one_exactly(model, kw):
    from infersim.perf.profiles import shipped_profile

    prec = kw.pop("prec", "bf16")
    p = perf(model, hw="h200", prec=prec, params=shipped_profile("vllm"), **kw)
    for n in (1, 3, 64):
        ctx0, k = n * 517, 200
        dts, cum = np.zeros(k), np.zeros(k)
        decode_times(p, n, ctx0, k, dts, cum)
        one_by_one = [p.step_s(0, 0.0, 0, n, float(ctx0 + n * i)) for i in range(k)]
        assert dts.tolist() == one_by_one  # bit for bit
        assert p.decode_steps_s(n, ctx0 + n * np.arange(k, dtype=float)).tolist() == one_by_one
        assert cum[-1] == pytest.approx(sum(one_by_one), rel=1e-12)


def test_allreduce_latency_grows_with_the_gpus_as_measured_nccl():
    """kernel_priors.csv: NCCL all-reduce latency on H100 SXM 8 / 12 / 18 us and on H200 7 / 10 / 16 us at
    2 / 4 / 8 GPUs (APEX+ profiles); the step model scales the profile's (2-GPU) latency by that growth."""
    from infersim.perf.kernels import allreduce_latency_scale as scale

    assert scale("h100-sxm", 1) == scale("h100-sxm", 2) == 1.0
    assert scale("h100-sxm", 4) == pytest.approx(12 / 8)
    assert scale("h100-sxm", 8) == pytest.approx(18 / 8)
    assert scale("h200", 8) == pytest.approx(16 / 7)
    assert scale("h100-sxm", 16) == scale("h100-sxm", 8)  # held at the largest measured degree
    assert 1.0 < scale("h100-sxm", 3) < 1.5 < scale("h100-sxm", 6) < 2.25  # log2(tp) interpolation
    # torch.distributed timings (the A100 profile) and unprofiled parts take the H100's NCCL growth
    assert scale("a100-80g", 8) == scale("b200", 8) == scale("h100-sxm", 8)
    p8 = perf("llama-3.1-70b", tp=8, params=BARE.with_(allreduce_latency_s=1e-5))
    assert p8.ar_latency_s == pytest.approx(1e-5 * 18 / 8)
    assert p8.fast.ar_latency_s == p8.ar_latency_s
