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


def test_bands_count_publications_and_before_after():
    import loso_report as lr

    srcs = [ls.Source("a/vllm/hopper", "vllm", "h100-sxm", "a", group="a"),
            ls.Source("b/vllm/hopper", "vllm", "h200", "b", group="b"),
            ls.Source("c/vllm/cdna3", "vllm", "mi300x", "c", group="c")]
    held = [{"source": s, "metric": "ttft", "error_pct": e, "row": i, "measured": 1.0, "predicted": 1.0}
            for i, (s, e) in enumerate([("a/vllm/hopper", 10.0), ("a/vllm/hopper", -30.0), ("b/vllm/hopper", 40.0),
                                        ("c/vllm/cdna3", 5.0)])]
    b = lr.bands(held, srcs, "2026-12-02")
    assert list(b.columns) == ["engine", "hardware_class", "metric", "median_abs_error_pct", "p90_abs_error_pct",
                               "n_heldout_sources", "n_rows", "sources", "generated_by"]
    hop = b[b["hardware_class"] == "hopper"].iloc[0]
    assert hop["n_heldout_sources"] == 2 and hop["n_rows"] == 3
    assert hop["median_abs_error_pct"] == 30.0  # median of the sources' medians (20, 40)
    ba = lr.before_after(b.assign(median_abs_error_pct=b["median_abs_error_pct"] * 2), b)
    assert list(ba["median before"]) == [10.0, 60.0] and list(ba["median after"]) == [5.0, 30.0]


def test_vllm_v0_long_context_default_chunks_prompts_in_512_token_steps():
    """vLLM 0.5-0.6 turned chunked prefill on by itself (max_num_batched_tokens 512) above a 32K max_model_len,
    unless prefix caching was on or chunked prefill was turned off; a recorded budget wins."""
    from loso_sources import vllm_v0_chunk

    row = {"engine": "vLLM", "engine_version": "0.6.3.post2", "max_model_len": "91680", "max_batched_tokens":
           "not recorded (engine default)", "chunked_prefill": "not recorded", "prefix_caching": "off"}
    assert vllm_v0_chunk(row, 131072) == 512
    assert vllm_v0_chunk({**row, "max_model_len": "24272"}, 131072) is None  # at most 32K: whole prompts
    assert vllm_v0_chunk({**row, "max_model_len": "model default"}, 131072) == 512  # the model's 128K context
    assert vllm_v0_chunk({**row, "max_model_len": "model default"}, 8192) is None
    assert vllm_v0_chunk({**row, "chunked_prefill": "off (--enable-chunked-prefill=False)"}, 131072) is None
    assert vllm_v0_chunk({**row, "prefix_caching": "on"}, 131072) is None
    assert vllm_v0_chunk({**row, "engine_version": "0.7.4.dev"}, 131072) is None  # not this rule's versions
    assert vllm_v0_chunk({**row, "engine": "SGLang"}, 131072) is None
    assert vllm_v0_chunk({**row, "max_batched_tokens": "2048"}, 131072) == 2048
