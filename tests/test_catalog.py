"""The shipped hardware and model catalogs: completeness, sources, cross-checks, lookups."""

from __future__ import annotations

import pytest

from conftest import SHARED, require_shared
from infersim.catalog import _norm, default_catalog
from infersim.core.errors import ScenarioError

HARDWARE_IDS = [
    "a100-80g", "h100-sxm", "h200", "b200", "gb200", "mi300x", "mi325x", "l40s", "l4",
    "tpu-v5e", "tpu-v6e", "inferentia2", "trainium2", "groq-lpu", "cerebras-wse3",
    "b300", "gb300", "h200-nvl", "mi355x",
]
MODEL_IDS = [
    "llama-2-7b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.3-70b", "llama-3.1-405b",
    "codellama-34b", "mixtral-8x7b", "qwen2.5-coder-7b", "qwen2.5-coder-32b", "qwen3-32b", "deepseek-v3",
    "gpt-oss-120b", "gpt-oss-20b", "kimi-k2", "qwen3-235b-a22b", "qwen3-30b-a3b", "qwen3-coder-480b-a35b",
]
MOE_IDS = ["mixtral-8x7b", "deepseek-v3", "gpt-oss-120b", "gpt-oss-20b", "kimi-k2", "qwen3-235b-a22b",
           "qwen3-30b-a3b", "qwen3-coder-480b-a35b"]
HARDWARE_CSV = SHARED / "calibration" / "hardware.csv"
#: catalog id -> the ``name`` column of shared/calibration/hardware.csv
CSV_ROWS = {
    "h100-sxm": "NVIDIA H100 SXM5 80GB",
    "h200": "NVIDIA H200 SXM 141GB",
    "b200": "NVIDIA B200 (HGX, 1000 W)",
    "a100-80g": "NVIDIA A100 80GB SXM",
    "mi300x": "AMD Instinct MI300X",
}


@pytest.fixture(scope="module")
def cat():
    return default_catalog()


@pytest.fixture(scope="module")
def hw_csv():
    pd = pytest.importorskip("pandas")
    require_shared("calibration/hardware.csv")
    return pd.read_csv(HARDWARE_CSV).set_index("name")


# -- completeness and sources -------------------------------------------------------------------------

@pytest.mark.parametrize("hw_id", HARDWARE_IDS)
def test_hardware_entry_loads_with_source(cat, hw_id):
    h = cat.hardware[hw_id]
    assert h.id == hw_id
    assert h.source and h.source.get("spec"), f"{hw_id} has no source.spec"
    assert h.kind in {"gpu", "tpu", "asic", "lpu", "wafer"}
    assert h.tflops and set(h.tflops) <= {"bf16", "fp8", "fp4", "int8"}
    assert all(v > 0 for v in h.tflops.values())
    assert h.memory_bw_tbps > 0
    assert h.usd_per_hour is None or h.usd_per_hour > 0
    if h.usd_per_hour is not None:
        assert h.source.get("usd_per_hour"), f"{hw_id} has a price but no source.usd_per_hour"
    if h.list_price_usd is not None:
        assert h.source.get("list_price_usd"), f"{hw_id} has a list price but no source.list_price_usd"


def test_hardware_ids_exact(cat):
    assert sorted(cat.hardware) == sorted(HARDWARE_IDS)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_model_entry_loads_with_source(cat, model_id):
    m = cat.models[model_id]
    assert m.id == model_id
    assert m.source and m.source.get("config"), f"{model_id} has no source.config"
    assert m.source.get("params"), f"{model_id} has no source.params"
    assert m.hf_id
    assert 0 < m.active_params_b <= m.total_params_b
    assert m.max_context > 0


def test_every_model_has_config_source(cat):
    for m in cat.models.values():
        assert m.source.get("config"), m.id


def test_a100_has_no_fp8(cat):
    a100 = cat.get_hardware("a100-80g")
    assert "fp8" not in a100.tflops
    assert not a100.supports("fp8")
    assert cat.get_hardware("h100-sxm").supports("fp8")


def test_sram_only_parts(cat):
    groq = cat.get_hardware("groq-lpu")
    assert groq.memory_gb == 0 and groq.sram_mb == 230 and groq.memory_bw_tbps == 80
    wse = cat.get_hardware("cerebras-wse3")
    assert wse.memory_gb == 44 and wse.sram_mb == 44000 and wse.memory_bw_tbps == 21000
    assert any("sparse" in a for a in wse.assumptions)


# -- cross-check against the calibration table --------------------------------------------------------

@pytest.mark.parametrize("hw_id", sorted(CSV_ROWS))
def test_hardware_matches_calibration_csv(cat, hw_csv, hw_id):
    row = hw_csv.loc[CSV_ROWS[hw_id]]
    h = cat.get_hardware(hw_id)
    assert h.tflops["bf16"] == pytest.approx(float(row["bf16_fp16_dense_tflops"]))
    assert h.memory_gb == pytest.approx(float(row["memory_gb"]))
    assert h.memory_bw_tbps == pytest.approx(float(row["memory_bw_tbps"]))
    assert CSV_ROWS[hw_id] in h.source["spec"]


# -- architecture vs. published parameter counts ------------------------------------------------------

def _dense_param_estimate_b(m) -> float:
    """Attention (Q, O and GQA K, V) + gated MLP per layer + untied input/output embeddings, billions."""
    attn = 2 * m.hidden_size * m.num_heads * m.head_dim + 2 * m.hidden_size * m.num_kv_heads * m.head_dim
    mlp = 3 * m.hidden_size * m.intermediate_size
    return (m.layers * (attn + mlp) + 2 * m.vocab_size * m.hidden_size) / 1e9


@pytest.mark.parametrize("model_id", [i for i in MODEL_IDS if i not in MOE_IDS])
def test_dense_param_count_matches_architecture(cat, model_id):
    m = cat.get_model(model_id)
    assert not m.is_moe
    assert m.active_params_b == m.total_params_b
    est = _dense_param_estimate_b(m)
    assert est == pytest.approx(m.total_params_b, rel=0.06), f"{model_id}: estimate {est:.2f}B"


@pytest.mark.parametrize("model_id", MOE_IDS)
def test_moe_fields_consistent(cat, model_id):
    m = cat.get_model(model_id)
    assert m.is_moe and 0 < m.experts_per_token < m.num_experts
    assert 0 < m.moe_layers <= m.layers
    assert 0 < m.expert_params_b < m.total_params_b
    derived = m.moe_layers * m.num_experts * 3 * m.hidden_size * m.intermediate_size / 1e9
    assert derived == pytest.approx(m.expert_params_b, rel=0.01)
    # active = always-on part + the top-k share of the routed experts; some cards leave out the input
    # embedding (a lookup), so accept either convention.
    active = (m.total_params_b - m.expert_params_b) + m.expert_params_b * m.experts_per_token / m.num_experts
    embed = m.vocab_size * m.hidden_size / 1e9
    assert (active == pytest.approx(m.active_params_b, rel=0.03)
            or active - embed == pytest.approx(m.active_params_b, rel=0.03))


def test_sliding_window_models(cat):
    for model_id, n in (("gpt-oss-120b", 18), ("gpt-oss-20b", 12)):
        m = cat.get_model(model_id)
        assert m.sliding_window == 128 and m.sliding_window_layers == n == m.layers // 2
    assert cat.get_model("mixtral-8x7b").sliding_window == 0


# -- KV cache -----------------------------------------------------------------------------------------

def test_kv_bytes_gqa(cat):
    assert cat.get_model("llama-3.1-8b").kv_bytes_per_token("bf16") == 2 * 32 * 8 * 128 * 2 == 131072
    assert cat.get_model("llama-3.1-8b").kv_bytes_per_token("fp8") == 65536


def test_kv_bytes_mla(cat):
    assert cat.get_model("deepseek-v3").kv_bytes_per_token("bf16") == 61 * 576 * 2
    assert cat.get_model("kimi-k2").kv_bytes_per_token("bf16") == 61 * 576 * 2  # same MLA dims as V3


def test_kv_bytes_qwen3_moe(cat):
    # config.json: 94 layers x 4 KV heads x head_dim 128, K and V, bf16
    assert cat.get_model("qwen3-235b-a22b").kv_bytes_per_token("bf16") == 2 * 94 * 4 * 128 * 2
    assert cat.get_model("qwen3-coder-480b-a35b").kv_bytes_per_token("fp8") == 2 * 62 * 8 * 128


def test_rack_scale_nvlink_domains(cat):
    assert cat.get_hardware("GB300 NVL72").nvlink_domain_gpus == 72
    assert cat.get_hardware("gb200").nvlink_domain_gpus == 72
    assert cat.get_hardware("HGX B300").nvlink_domain_gpus == 8
    assert cat.get_hardware("H200 NVL").nvlink_domain_gpus == 4
    assert cat.get_hardware("MI355X").nvlink_domain_gpus == 8
    # Blackwell Ultra: FP4 ~1.5x B200, INT8 cut to almost nothing
    b200, b300 = cat.get_hardware("b200"), cat.get_hardware("b300")
    assert b300.tflops["fp4"] / b200.tflops["fp4"] == pytest.approx(14 / 9)
    assert b300.tflops["int8"] < 0.05 * b200.tflops["int8"]
    # H200 NVL: same die and memory as H200 SXM at a lower power cap, so lower clocks
    h200, nvl = cat.get_hardware("h200"), cat.get_hardware("h200-nvl")
    assert nvl.memory_gb == h200.memory_gb and nvl.tflops["bf16"] < h200.tflops["bf16"] and nvl.tdp_w < h200.tdp_w
    for hw in ("b300", "gb300", "h200-nvl", "mi355x"):
        h = cat.get_hardware(hw)
        assert h.source.get("nvlink_domain_gpus") and h.source.get("scaleout_gbps"), hw


def test_block_scaled_fp4_formats():
    from infersim.catalog import BYTES_PER_PARAM, COMPUTE_PRECISION
    # NVFP4: 4-bit values + an FP8 scale per 16; MXFP4: 4-bit values + an 8-bit scale per 32
    assert BYTES_PER_PARAM["nvfp4"] == pytest.approx((16 * 4 + 8) / 16 / 8)
    assert BYTES_PER_PARAM["mxfp4"] == pytest.approx((32 * 4 + 8) / 32 / 8)
    assert BYTES_PER_PARAM["fp4"] < BYTES_PER_PARAM["mxfp4"] < BYTES_PER_PARAM["nvfp4"] < BYTES_PER_PARAM["fp8"]
    assert COMPUTE_PRECISION["nvfp4"] == COMPUTE_PRECISION["mxfp4"] == "fp4"


def test_deepseek_r1_is_v3_alias(cat):
    assert cat.get_model("deepseek-ai/DeepSeek-R1").id == "deepseek-v3"


# -- lookups ------------------------------------------------------------------------------------------

def test_alias_lookup(cat):
    assert cat.get_hardware("H100-SXM-80GB").id == "h100-sxm"
    assert cat.get_hardware("h100").id == "h100-sxm"
    assert cat.get_hardware("cs-3").id == "cerebras-wse3"
    assert cat.get_model("meta-llama/Llama-3.1-70B").id == "llama-3.1-70b"
    assert cat.get_model("Qwen/Qwen3-32B").id == "qwen3-32b"
    assert cat.get_model("openai/gpt-oss-120b").id == "gpt-oss-120b"


def test_hf_id_resolves_to_its_entry(cat):
    for m in cat.models.values():
        assert cat.get_model(m.hf_id) is m


@pytest.mark.parametrize("section", ["hardware", "models"])
def test_aliases_unique(cat, section):
    """No name (id or alias, as the lookup normalises it) may point at two entries."""
    owner: dict[str, str] = {}
    for entry in getattr(cat, section).values():
        for name in {_norm(entry.id), *(_norm(a) for a in entry.aliases)}:
            assert name not in owner, f"'{name}' names both {owner[name]} and {entry.id}"
            owner[name] = entry.id


def test_unknown_name_raises(cat):
    with pytest.raises(ScenarioError, match="unknown accelerator 'h10O'.*did you mean"):
        cat.get_hardware("h10O")
    with pytest.raises(ScenarioError, match="unknown model"):
        cat.get_model("llama-9-1b")


def test_unknown_name_suggests_h100(cat):
    with pytest.raises(ScenarioError, match="did you mean 'h100-sxm'"):
        cat.get_hardware("h10O")


def test_user_catalog_file_extends_the_catalog(tmp_path):
    """A scenario can name its own catalog file; its entries are usable like shipped ones."""
    import yaml

    from infersim.results.simulate import simulate
    from infersim.validate import load_scenario

    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"hardware": [{
        "id": "h100-cheap", "name": "H100 at a negotiated price", "vendor": "NVIDIA", "kind": "gpu",
        "tflops": {"bf16": 989.4, "fp8": 1978.9}, "memory_gb": 80, "memory_bw_tbps": 3.35,
        "interconnect_gbps": 900, "usd_per_hour": 2.0, "source": {"spec": "as h100-sxm; price: my contract"}}]}))
    sc = {"name": "u", "duration": 10, "catalog": ["mine.yaml"],
          "workload": {"streams": [{"name": "s", "arrival": {"kind": "poisson", "rate": 1},
                                    "input_tokens": {"kind": "fixed", "value": 100},
                                    "output_tokens": {"kind": "fixed", "value": 10}}]},
          "platforms": [{"name": "p", "kind": "gpu_fleet", "deployments": [
              {"model": "llama-3.1-8b", "hardware": "h100-cheap", "precision": "fp8"}]}]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sc))
    res = simulate(load_scenario(path))
    assert (res.requests["outcome"] == "finished").all()
