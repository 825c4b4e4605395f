"""Leave-one-source-out units (benchmarks/loso_sources.py): one fold per publication, whatever name its rows
arrive under, so a publication's harness never leaks from the fit into its own check."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "benchmarks"))

import loso_sources as ls  # noqa: E402


def test_same_publication_is_one_group():
    assert ls.group_of("aiconfigurator_silicon") == ls.group_of("aic") == "aiconfigurator"
    assert ls.group_of("apex_plus") == ls.group_of("apex-plus")
    assert ls.group_of("dstack_deepseek_r1") == ls.group_of("dstack_llama405b")
    assert ls.group_of("nim_benchmarking") == "nim_benchmarking"
    assert ls.unit_id("dstack", "vllm", "mi300x") == "dstack/vllm/cdna3"


def test_architecture_twin_resolves():
    assert ls.fit_catalog().get_model("deepseek-ai/DeepSeek-R1").id == "deepseek-v3"


def test_precision_text():
    assert ls._precision("fp8 weights (--quantization fp8, dynamic), fp8 KV cache (--kv-cache-dtype fp8)") == \
        ("fp8", "fp8")
    assert ls._precision("bfloat16 (model default; not stated)") == ("bf16", None)


@pytest.mark.skipif(not (SHARED / "calibration" / "engine_latency.csv").exists(), reason="needs ../shared")
def test_loaded_units_merge_and_never_split_a_publication():
    srcs, skipped = ls.load_sources(SHARED, ROOT / "data" / "calibration")
    ids = [s.id for s in srcs]
    assert len(ids) == len(set(ids))
    for s in srcs:
        assert s.id.startswith(s.group + "/")
        assert all(r.engine == s.engine for r in s.rows)
        assert {ls.hardware_class(r.hardware) for r in s.rows} <= {s.hardware_class}
    groups = {s.group for s in srcs}
    assert "aiconfigurator" in groups and "aiconfigurator_silicon" not in groups and "dstack" in groups
    aic = next(s for s in srcs if s.id == "aiconfigurator/vllm/hopper")
    assert {r.hardware for r in aic.rows} >= {"h100-sxm", "h200"}  # shared rows and the extra file's, one unit
    assert any("not in the catalog" in m or "unknown model" in m for m in skipped)
