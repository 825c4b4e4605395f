"""Wide expert parallelism against published per-phase throughputs (data/calibration/wide_ep.csv).

H100 rows (SGLang's DeepSeek-V3 deployment on 12 nodes of 8 H100: prefill on 4 nodes at EP32, decode on 9 nodes at
EP72, with and without two-batch overlap) are in no fit. They are a weak check, not a held-out one: the all-to-all
byte count (FP8 dispatch, one network crossing per remote node, node-limited routing) and the two-batch-overlap
model were written from the DeepEP and DeepSeek-V3 documents while these rows were in view; no parameter was
fitted to them. Their KV cache is BF16 (SGLang's default then; before the column existed the check assumed FP8 KV
and put decode at +12 to +14 %, then +7 %; since the MoE kernels are measured, +21 to +34 %: see below).

GB200 NVL72 rows (SGLang's Part II post: decode on 48 ranks with NVFP4 experts and FP8 KV, prefill on 2-rank NVFP4
and 4-rank FP8 instances) were added after the model was written: an out-of-sample check of the Blackwell / NVL72
path (all-to-all over NVLink inside the 72-GPU domain, NVFP4 experts beside FP8 dense layers). docs/validation.md
prints the table.
"""

from pathlib import Path

import pytest

from infersim.calibrate.wide_ep import median_abs_error, wide_ep_checks
from infersim.catalog import default_catalog
from infersim.perf.gpu import GpuConfig, GpuRoofline
from infersim.perf.kernels import matmul_ceiling
from infersim.perf.profiles import shipped_profile

CSV = Path(__file__).resolve().parents[1] / "data" / "calibration" / "wide_ep.csv"


def test_wide_ep_phase_throughputs_over_predicted_by_a_fifth_to_two_fifths():
    """The model over-predicts every H100 row: prefill by 30-39 %, decode by 21-34 % (the band asserted is what
    the model meets). Until the engines' measured fused-MoE kernels timed the experts (docs/model.md), SGLang's
    fitted FP8 GEMM scale was 0.35 and these rows came within 8 %: that scale absorbed the slow MoE kernels of
    the FP8 MoE rows it was fitted on. It is now 0.79, as SGLang's own block-FP8 GEMMs measure on H100 (1,126
    TFLOP/s at large shapes against 729 in BF16, i.e. 0.77 of the BF16 share of the doubled peak; aiconfigurator
    collector, h100_sxm/gemm/sglang/0.5.10/gemm_perf), so the time these rows lack is elsewhere in the wide-EP
    step (DeepEP's all-to-all, MLA attention, the 2025 engine version): an open finding."""
    checks = [c for c in wide_ep_checks(CSV) if c.source_id == "sglang_large_scale_ep"]
    assert {c.phase for c in checks} == {"prefill", "decode"}
    for c in checks:
        assert 0.15 < c.error < 0.45, f"{c.label}: {c.predicted:,.0f} vs {c.measured:,.0f} tok/s per node"
    assert median_abs_error(checks) < 0.36


def test_gb200_nvl72_rows_out_of_sample_within_30_percent():
    """Out of sample (added after the model was written, nothing fitted to them): decode (NVFP4 experts, FP8 KV,
    EP48 over NVLink) under-predicted by 25 %, the FP8 prefill by 26 %, the NVFP4 prefill over-predicted by 26 %
    (the band asserted is what the model meets: each within 30 %, median within 27 %). Before the measured
    fused-MoE kernels they were -17, -29 and -14 % at SGLang's old FP8 scale (0.35; now 0.79, as its FP8 GEMMs
    measure, see above): the FP8 rows gained, the NVFP4 prefill (FP8 dense layers beside NVFP4 experts, which
    keep the dense form: no FP4 MoE kernel is measured) overshoots. In decode the fitted per-sequence CPU time
    (1408 sequences per rank) and the dense GEMMs dominate."""
    checks = [c for c in wide_ep_checks(CSV) if c.source_id == "sglang_gb200_nvl72"]
    assert {c.phase for c in checks} == {"prefill", "decode"} and len(checks) == 3
    for c in checks:
        assert -0.30 < c.error < 0.30, f"{c.label}: {c.predicted:,.0f} vs {c.measured:,.0f} tok/s per node"
    assert median_abs_error(checks) < 0.27


def test_two_batch_overlap_gain_in_decode_is_about_the_measured_one():
    """SGLang: TBO speeds decode at 256 tokens per device by 25.5 %. The model's gain comes from hiding the
    all-to-alls (58 MoE layers x dispatch + combine over InfiniBand) less the halves' extra expert-weight reads."""
    checks = {(c.phase, "TBO" in c.label): c for c in wide_ep_checks(CSV) if c.source_id == "sglang_large_scale_ep"}
    gain = checks[("decode", True)].predicted / checks[("decode", False)].predicted
    # 1.39 since the measured MoE kernels (faster FP8 dense layers leave the all-to-alls a larger share to hide)
    assert gain == pytest.approx(1.255, abs=0.15)


def test_across_nodes_a_token_crosses_the_network_once_per_remote_node_at_most_topk_group():
    """DeepEP's internode dispatch sends a token once to each remote node holding one of its experts (then NVLink
    inside it); DeepSeek-V3 routes each token to at most 4 nodes. The bytes per token fall below k copies, and
    the cap binds only when the experts would touch more nodes."""
    cat = default_catalog()
    hw, m = cat.get_hardware("h100-sxm"), cat.get_model("deepseek-v3")
    wide = GpuRoofline(GpuConfig(hw, m, "fp8", "fp8", 1, 1, 72, 72))
    copies = 8 * m.hidden_size * 1.5 * (71 / 72) / 72  # k copies at the mean of FP8 dispatch and BF16 combine
    assert wide.a2a_bytes_tok == pytest.approx(m.hidden_size * 1.5 * 4 * (8 / 9) / 72)  # 9 nodes, capped at 4
    assert wide.a2a_bytes_tok < 0.5 * copies
    inside = GpuRoofline(GpuConfig(hw, m, "fp8", "fp8", 1, 1, 8, 8))  # one node: NVLink, k copies
    assert inside.a2a_bytes_tok == pytest.approx(8 * m.hidden_size * 1.5 * (7 / 8) / 8)
    bf16 = GpuRoofline(GpuConfig(cat.get_hardware("b200"), cat.get_model("mixtral-8x7b"), "bf16", "bf16", 1, 1, 8, 8))
    assert bf16.a2a_bytes_tok == pytest.approx(2 * 4096 * 2.0 * (7 / 8) / 8)  # BF16 both ways


def test_ep48_inside_an_nvl72_rack_all_to_alls_over_nvlink_with_k_copies():
    """48 ranks of a GB200 NVL72 rack are one NVLink domain (72 GPUs): no network crossing, each token goes to
    its 8 experts, 47/48 of them remote, at half the bidirectional 1.8 TB/s per direction; the same 48 ranks on
    8-GPU HGX B200 boards go over the 50 GB/s scale-out network, at most 4 nodes per token."""
    cat = default_catalog()
    m = cat.get_model("deepseek-v3")
    p = shipped_profile("sglang")
    rack = GpuRoofline(GpuConfig(cat.get_hardware("gb200"), m, "fp8", "fp8", 1, 1, 48, 48), p)
    assert rack.a2a_bytes_tok == pytest.approx(8 * m.hidden_size * 1.5 * (47 / 48) / 48)
    assert rack.a2a_bw == pytest.approx(900e9 * p.comm_eff)
    boards = GpuRoofline(GpuConfig(cat.get_hardware("b200"), m, "fp8", "fp8", 1, 1, 48, 48), p)
    assert boards.a2a_bw == pytest.approx(50e9 * p.comm_eff)
    assert boards.a2a_bytes_tok == pytest.approx(m.hidden_size * 1.5 * 4 * (5 / 6) / 48)  # 6 boards, capped at 4


def test_expert_precision_changes_only_the_experts_and_their_dispatch():
    """NVFP4 experts beside FP8 dense layers: the experts' bytes at 4.5 bits, their GEMMs at the FP4 rate, the
    dispatch in NVFP4 (SGLang fuses NVFP4 quantization into DeepEP); dense layers, KV and the BF16 combine as at
    FP8. Naming the experts' precision equal to the dense one changes nothing (same floats)."""
    cat = default_catalog()
    hw, m = cat.get_hardware("gb200"), cat.get_model("deepseek-v3")
    p = shipped_profile("sglang")
    same = GpuRoofline(GpuConfig(hw, m, "fp8", "fp8", 1, 1, 48, 48), p)
    named = GpuRoofline(GpuConfig(hw, m, "fp8", "fp8", 1, 1, 48, 48, expert_precision="fp8"), p)
    for args in ((0, 0.0, 0, 48 * 256, 48 * 256 * 2000.0), (16384, 16384 * 2000.0 / 2, 8, 0, 0.0)):
        assert named.step_s(*args) == same.step_s(*args)
    fp4 = GpuRoofline(GpuConfig(hw, m, "fp8", "fp8", 1, 1, 48, 48, expert_precision="nvfp4"), p)
    assert fp4.dense_bytes == same.dense_bytes and fp4.gemm_flops == same.gemm_flops
    assert fp4.expert_bytes == pytest.approx(same.expert_bytes * 4.5 / 8)
    # the FP4 rate x fp4_compute_scale against the FP8 rate x low_precision_compute_scale (no engine: no measured
    # MoE kernel, the dense form for both)
    assert fp4.expert_gemm_flops / same.expert_gemm_flops == pytest.approx(
        hw.peak_flops("nvfp4") * matmul_ceiling(hw.id, "fp4") * p.fp4_compute_scale
        / (hw.peak_flops("fp8") * matmul_ceiling(hw.id, "fp8") * p.low_precision_compute_scale))
    assert fp4.expert_gemm_flops > 2 * same.expert_gemm_flops
    assert fp4.a2a_bytes_tok == pytest.approx(same.a2a_bytes_tok * (4.5 / 8 + 2.0) / (1.0 + 2.0))
    cfg = GpuConfig(hw, m, "fp8", "fp8", 1, 1, 48, 48, expert_precision="nvfp4")
    dense = (m.total_params_b - m.expert_params_b) * 1e9
    assert cfg.weight_bytes_per_gpu() == pytest.approx(dense + m.expert_params_b * 1e9 * 4.5 / 8 / 48)
    assert fp4.step_s(0, 0.0, 0, 48 * 1408, 48 * 1408 * 2000.0) < same.step_s(0, 0.0, 0, 48 * 1408, 48 * 1408 * 2000.0)
    with pytest.raises(ValueError, match="expert_precision"):
        GpuConfig(hw, m, "fp8", "fp8", 1, 1, 48, 48, expert_precision="fp6")
