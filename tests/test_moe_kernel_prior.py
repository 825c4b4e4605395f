"""The routed experts' time follows each engine's fused MoE kernel as measured (aiconfigurator collector rows in
data/calibration/kernel_profiles.csv; the fit is benchmarks/kernel_priors.py): the step model's MoE layer (its
expert GEMMs plus the measured fixed time per layer) against every measured row of the kernel, per engine, part
and weight format; where nothing was measured the expert GEMMs stay timed like dense ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infersim.catalog import default_catalog
from infersim.perf import GpuConfig, GpuRoofline
from infersim.perf.kernels import moe_prior
from infersim.perf.params import PerfParams

ROOT = Path(__file__).resolve().parents[1]
CAT = default_catalog()
HW = {"H100-SXM-80GB": "h100-sxm", "H200-SXM-141GB": "h200", "B200-SXM-180GB": "b200"}
#: catalog models with the measured expert shapes (hidden, intermediate, top-k, experts)
SHAPES = {(4096, 1536, 8, 128): "qwen3-235b-a22b", (4096, 14336, 2, 8): "mixtral-8x7b",
          (2048, 768, 8, 128): "qwen3-30b-a3b", (7168, 2048, 8, 256): "deepseek-v3",
          (6144, 16384, 2, 8): "mixtral-8x22b"}
BARE = PerfParams(compute_eff=1.0, memory_eff=1.0, step_overhead_s=0.0, per_seq_overhead_s=0.0)


def _rows() -> pd.DataFrame:
    k = pd.read_csv(ROOT / "data" / "calibration" / "kernel_profiles.csv")
    m = k[(k.operator == "moe") & (k.source_id == "aiconfigurator_collector")].copy()
    for c in ("topk", "experts"):
        m[c] = m.notes.str.extract(rf"{c}=(\d+)", expand=False).astype(int)
    m["engine"] = m.notes.str.extract(r"engine=(\w+)", expand=False)
    m["model"] = [SHAPES.get((int(r.n_embd), int(r.n_expanded_embd), r.topk, r.experts))
                  for r in m.itertuples()]
    return m[m.model.notna() & m.dtype.isin(["bf16", "fp8_block", "fp8"])]  # NVFP4 rows: data, not the model


ROWS = _rows()


def layer_s(perf: GpuRoofline, tokens: int) -> float:
    """One MoE layer of ``perf``: its expert GEMMs and the kernel's measured fixed time (in the step it stands
    in ``kernel_fixed_s`` for the two MLP GEMMs' fixed time)."""
    layers = perf.cfg.model.moe_layers or perf.cfg.model.layers
    return perf._experts_s(float(tokens), float(tokens)) / layers + perf.moe_kernel.fixed_s


@pytest.mark.parametrize("key", sorted({(r.engine, r.hardware, r.dtype) for r in ROWS.itertuples()}))
def test_the_moe_layer_follows_the_engines_measured_kernel(key):
    engine, hardware, dtype = key
    rows = ROWS[(ROWS.engine == engine) & (ROWS.hardware == hardware) & (ROWS.dtype == dtype)]
    prec = "bf16" if dtype == "bf16" else "fp8"
    errs = []
    for (model, tp), g in rows.groupby(["model", "tp"]):
        try:
            perf = GpuRoofline(GpuConfig(CAT.get_hardware(HW[hardware]), CAT.get_model(model), prec, prec, int(tp)),
                               BARE, engine=engine)
        except Exception:  # a layout the catalog model cannot take (e.g. more TP than KV heads allow)
            continue
        assert perf.moe_kernel is not None
        for r in g.itertuples():
            errs.append(layer_s(perf, int(r.num_tokens)) / (r.time_mean_ms * 1e-3) - 1.0)
    errs = np.abs(np.array(errs))
    assert len(errs) >= 20
    print(key, len(errs), round(float(np.median(errs)), 3))
    assert np.median(errs) < 0.2, f"{key}: median |error| {np.median(errs):.2f} over {len(errs)} rows"


def test_unmeasured_moe_kernels_keep_the_dense_gemm_form():
    """No engine, FP4 experts or an unmeasured part: no MoE prior; the expert GEMMs take the dense ceiling."""
    assert moe_prior("h100-sxm", None, "fp8") is None
    assert moe_prior("h100-sxm", "vllm", "fp4") is None
    assert moe_prior("mi300x", "vllm", "bf16") is None
    assert moe_prior("gb200", "vllm", "fp8") == moe_prior("b200", "vllm", "fp8")
    cfg = GpuConfig(CAT.get_hardware("h100-sxm"), CAT.get_model("mixtral-8x7b"), "bf16", "bf16", 2)
    plain, measured = GpuRoofline(cfg, BARE), GpuRoofline(cfg, BARE, engine="vllm")
    assert plain.moe_kernel is None and plain.expert_bw == plain.bw and plain.moe_half == BARE.moe_half_tokens
    assert measured.kernel_fixed_s > plain.kernel_fixed_s  # the fused MoE layer's fixed time
    # decode of 16 tokens: the measured kernel is slower than the dense-GEMM form (fixed time, weight streaming)
    assert measured.step_s(0, 0.0, 0, 16, 16 * 1000.0) > plain.step_s(0, 0.0, 0, 16, 16 * 1000.0)
