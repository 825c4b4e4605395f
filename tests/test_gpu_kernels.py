"""benchmarks/gpu_kernels.py without a GPU: its shape plan, time budget, peak lookup, efficiency arithmetic and
table format (the measurements themselves need a GPU and PyTorch)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

from infersim.catalog import default_catalog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_kernels  # noqa: E402
import kernel_plan as kp  # noqa: E402

CAT = default_catalog()
H100 = kp.peaks_for("h100-sxm", CAT)


def shapes(model_id, tp=1):
    return {name: (n, k, per) for name, n, k, per in kp.gemm_shapes(CAT.models[model_id], tp)}


def test_gemm_shapes_follow_the_catalog_architecture():
    s = shapes("llama-3.1-8b")
    assert s["qkv"] == ((32 + 2 * 8) * 128, 4096, False)  # 6144 x 4096
    assert s["o"] == (4096, 32 * 128, False)
    assert s["gate_up"] == (2 * 14336, 4096, False)
    assert s["down"] == (4096, 14336, False)
    assert s["lm_head"] == (128256, 4096, False)
    s70 = shapes("llama-3.1-70b", tp=8)  # column-parallel N / 8, row-parallel K / 8
    assert s70["qkv"] == ((64 + 16) * 128 // 8, 8192, False) and s70["down"] == (8192, 28672 // 8, False)
    oss = shapes("gpt-oss-120b")
    assert oss["qkv"] == ((64 + 16) * 64, 2880, False) and oss["o"] == (2880, 64 * 64, False)
    assert oss["expert_gate_up"] == (2 * 2880, 2880, True) and oss["expert_down"] == (2880, 2880, True)
    assert "qkv" not in shapes("deepseek-v3")  # MLA projections are not in the catalog: not planned
    assert shapes("deepseek-v3")["expert_down"] == (7168, 2048, True)


def test_expert_gemms_get_the_tokens_routed_to_one_expert():
    mix = CAT.models["mixtral-8x7b"]
    assert kp.expert_tokens(mix, 16384) == 16384 * 2 // 8 and kp.expert_tokens(mix, 1) == 1
    oss = CAT.models["gpt-oss-120b"]
    assert kp.expert_tokens(oss, 4096) == 4096 * 4 // 128
    items = [i for i in kp.gemm_items(CAT) if i.label.startswith("gpt-oss-120b tp1 expert_gate_up")]
    assert {i.m for i in items} == {kp.expert_tokens(oss, t) for t in kp.M_FULL}
    assert all(i.n == 5760 and i.k == 2880 for i in items)


def test_plan_covers_m_from_1_to_16k_for_every_core_gemm_in_both_dtypes():
    plan = kp.make_plan(CAT, H100, 300)
    for mid in kp.CORE_MODELS:
        for name, n, k, per in kp.gemm_shapes(CAT.models[mid]):
            if per:
                continue
            for dtype in ("bf16", "fp8"):
                ms = {i.m for i in plan if i.kind == "gemm" and i.n == n and i.k == k and i.dtype == dtype}
                assert set(kp.M_FULL) <= ms, (mid, name, dtype)
    assert min(kp.M_FULL) == 1 and max(kp.M_FULL) == 16384
    kinds = {i.kind for i in plan}
    assert kinds == {"gemm", "attn_prefill", "attn_decode", "hbm_copy", "layer_prefill", "layer_decode"}
    assert {i.config for i in plan if i.kind.startswith("layer")} == set(kp.load_configs())


@pytest.mark.parametrize("budget_s", [300, 120, 60, 40])
def test_plan_fits_its_budget_by_its_own_estimate(budget_s):
    plan = kp.make_plan(CAT, H100, budget_s)
    assert plan and kp.plan_estimate_s(plan) <= budget_s * kp.PLAN_SHARE
    assert [i.priority for i in plan] == sorted(i.priority for i in plan)
    assert all(i.est_s > 0 for i in plan)
    assert plan[0].kind == "hbm_copy"


def test_a_short_budget_keeps_the_high_priority_items():
    full, short = kp.make_plan(CAT, H100, 300), kp.make_plan(CAT, H100, 32)
    assert len(short) < len(full)
    assert {i.kind for i in short} >= {"hbm_copy"}
    assert all(i.priority <= max(j.priority for j in short) for i in short)


def test_estimate_counts_warm_up_trials_and_set_up():
    small = kp._gemm("x", "bf16", 16, 4096, 4096, 3)
    big = kp._gemm("x", "bf16", 16384, 28672, 8192, 3)
    assert kp.estimate_s(small, H100) >= kp.TIMED_S  # short kernels: loops of TIMED_S seconds in all
    kernel = kp.roofline_s(big, H100) / kp.ASSUMED_EFF
    assert kp.estimate_s(big, H100) >= (kp.TRIALS + 3) * kernel  # long ones: a call per trial + 3 more


def test_device_names_map_to_catalog_entries_or_to_none():
    assert kp.catalog_id_for_device("NVIDIA H100 80GB HBM3", CAT) == "h100-sxm"
    assert kp.catalog_id_for_device("NVIDIA H200", CAT) == "h200"
    assert kp.catalog_id_for_device("NVIDIA A100-SXM4-80GB", CAT) == "a100-80g"
    assert kp.catalog_id_for_device("AMD Instinct MI300X", CAT) == "mi300x"
    assert kp.catalog_id_for_device("NVIDIA B200", CAT) == "b200"
    # other clocks or memory than the catalog entry of the family: no peaks rather than wrong ones
    for name in ("NVIDIA H100 PCIe", "NVIDIA H100 NVL", "NVIDIA GH200 480GB", "NVIDIA A100-SXM4-40GB", "Tesla T4"):
        assert kp.catalog_id_for_device(name, CAT) is None, name
    p = kp.peaks_for("h200", CAT)
    assert p.flops_per_s("bf16") == 989.4e12 and p.flops_per_s("fp8") == 1978.9e12 and p.memory_bw_tbps == 4.8
    assert kp.peaks_for("a100-80g", CAT).flops_per_s("fp8") is None


MACHINE = {"date_utc": "2026-12-02", "gpu_name": "NVIDIA H100 80GB HBM3", "driver": "570.1", "cuda": "12.8",
           "torch": "2.8.0", "triton": "3.4.0"}


def test_efficiency_is_roofline_over_measured_time():
    big = kp._gemm("x", "bf16", 8192, 8192, 8192, 3)  # compute-bound
    t_peak = 2 * 8192**3 / 989.4e12
    row = kp.table_row(big, MACHINE, H100, 2 * t_peak, "ok")
    assert row["bound"] == "compute" and row["efficiency"] == pytest.approx(0.5, abs=1e-4)
    assert row["achieved_tflops"] == pytest.approx(989.4 / 2, rel=1e-3) and row["peak_tflops"] == 989.4
    gemv = kp._gemm("x", "fp8", 1, 8192, 8192, 4)  # memory-bound: the weight read dominates
    t_mem = gemv.bytes / 3.35e12
    row = kp.table_row(gemv, MACHINE, H100, t_mem / 0.8, "ok")
    assert row["bound"] == "memory" and row["efficiency"] == pytest.approx(0.8, abs=1e-4)
    assert row["achieved_tbps"] == pytest.approx(3.35 * 0.8, rel=1e-3)
    copy = kp.copy_items()[1]
    row = kp.table_row(copy, MACHINE, H100, copy.bytes / 3.0e12, "ok")
    assert row["efficiency"] == pytest.approx(3.0 / 3.35, abs=1e-4) and row["achieved_tflops"] == ""


def test_rows_without_peaks_or_time_have_no_efficiency():
    it = kp._gemm("x", "fp8", 64, 4096, 4096, 4)
    assert kp.table_row(it, MACHINE, None, 1e-4, "ok")["efficiency"] == ""
    a100 = kp.peaks_for("a100-80g", CAT)
    assert kp.table_row(it, MACHINE, a100, 1e-4, "ok")["efficiency"] == ""  # no FP8 peak on an A100
    row = kp.table_row(it, MACHINE, H100, None, "skipped", "budget: 1.0 s left")
    assert row["efficiency"] == "" and row["time_s"] == "" and row["note"] == "budget: 1.0 s left"


def test_layer_shapes_from_the_committed_configs_match_the_catalog():
    cfgs = kp.load_configs()
    assert set(cfgs) == {"llama-3.1-8b", "qwen3-32b", "gpt-oss-120b", "mixtral-8x7b", "qwen3-30b-a3b"}
    for name in ("llama-3.1-8b", "qwen3-32b", "gpt-oss-120b", "mixtral-8x7b"):
        s, m = kp.LayerShape.from_config(cfgs[name]), CAT.models[name]
        assert (s.hidden, s.heads, s.kv_heads, s.head_dim, s.intermediate) == (
            m.hidden_size, m.num_heads, m.num_kv_heads, m.head_dim, m.intermediate_size), name
        assert (s.experts, s.top_k) == (m.num_experts, m.experts_per_token), name
    q3 = kp.LayerShape.from_config(cfgs["qwen3-30b-a3b"])
    assert (q3.experts, q3.top_k, q3.intermediate, q3.kv_heads) == (128, 8, 768, 4)
    assert kp.LayerShape.from_config(cfgs["gpt-oss-120b"]).bias
    assert (ROOT / "benchmarks" / "model_configs" / "README.md").read_text().count("huggingface.co/") >= 5


def test_layer_work_arithmetic():
    s = kp.LayerShape.from_config(kp.load_configs()["llama-3.1-8b"])
    attn = 4096 * (32 + 16) * 128 + 32 * 128 * 4096
    ffn = 3 * 4096 * 14336
    flops, moved = s.work(1000, 1000, decode=False)
    assert flops == pytest.approx(2 * 1000 * (attn + ffn) + 2 * 32 * 128 * 1000 * 1001)
    assert moved == pytest.approx(2 * (attn + ffn) + 1000 * 2 * 8 * 128 * 2 + 4 * 1000 * 4096 * 2)
    flops, moved = s.work(16, 2048, decode=True)
    assert flops == pytest.approx(2 * 16 * (attn + ffn) + 4 * 16 * 32 * 128 * 2048)
    assert moved == pytest.approx(2 * (attn + ffn) + 16 * 2048 * 2 * 8 * 128 * 2 + 4 * 16 * 4096 * 2)
    mix = kp.LayerShape.from_config(kp.load_configs()["mixtral-8x7b"])
    _, one = mix.work(1, 2048, decode=True)
    _, many = mix.work(256, 2048, decode=True)
    expert = 3 * 4096 * 14336 * 2
    assert one - 2048 * 2 * 8 * 128 * 2 == pytest.approx(2 * mix.attn_params() + 2 * expert + 4 * 4096 * 2)
    assert many > one + 5 * expert  # a big batch touches (nearly) all 8 experts


def test_table_csv_and_markdown(tmp_path):
    plan = kp.make_plan(CAT, H100, 300)[:40]
    rows = [kp.table_row(it, MACHINE, H100, (kp.roofline_s(it, H100) or 1e-3) * 1.5, "ok") for it in plan]
    rows.append(kp.table_row(plan[0], MACHINE, H100, None, "error", "RuntimeError: out of memory"))
    out = kp.default_out(MACHINE["gpu_name"], MACHINE["date_utc"], tmp_path)
    assert out.name == "gpu_kernels_nvidia-h100-80gb-hbm3_2026-12-02.csv" and out.parent.name == "results"
    md = kp.markdown(rows, {**MACHINE, "catalog_hardware": "h100-sxm"}, 300, 250)
    gpu_kernels.write_table(rows, out, md)
    with out.open() as f:
        back = list(csv.DictReader(f))
    assert list(back[0]) == list(kp.COLUMNS) and len(back) == len(rows)
    assert {r["gpu_name"] for r in back} == {MACHINE["gpu_name"]} and back[0]["date_utc"] == "2026-12-02"
    assert all(float(r["efficiency"]) == pytest.approx(1 / 1.5, abs=1e-3) for r in back[:-1])
    text = out.with_suffix(".md").read_text()
    assert "NVIDIA H100 80GB HBM3" in text and "2026-12-02" in text and "h100-sxm" in text
    assert "driver 570.1, CUDA 12.8, torch 2.8.0" in text and "out of memory" in text


def test_script_imports_and_plans_without_torch(capsys):
    assert gpu_kernels.main(["--plan-only", "--budget-s", "120"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "items, estimated" in last and "of 120 s" in last
    if importlib.util.find_spec("torch") is None:
        assert gpu_kernels.main(["--budget-s", "10"]) == 2
        assert "PyTorch is not installed" in capsys.readouterr().err
