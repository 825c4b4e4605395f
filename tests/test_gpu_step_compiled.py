"""``perf/gpu_step.py`` (the GPU step's scalar form, compiled with the engine where the build can) gives the
same floats as its Python source: dense and MoE models, TP, PP, attention DP, expert parallelism and
sliding-window layers; decode-only, prefill-only and mixed steps. A ``GpuRoofline`` still pickles (the bound
step is rebuilt, not pickled)."""

from __future__ import annotations

import importlib.util
import os
import pickle
import random

import pytest

from infersim.catalog import default_catalog
from infersim.perf import GpuConfig, GpuRoofline
from infersim.perf.profiles import shipped_profile

CAT = default_catalog()


def _source_module(name: str):
    """``infersim.<name>`` imported from its ``.py`` source, whether or not the build compiled it."""
    import infersim

    path = os.path.join(os.path.dirname(infersim.__file__), *name.split(".")) + ".py"
    spec = importlib.util.spec_from_file_location(f"_source_{name.replace('.', '_')}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

CONFIGS = [
    ("h100-sxm", "llama-3.1-8b", "fp8", {}, "vllm"),
    ("h100-sxm", "llama-3.1-70b", "bf16", {"tp": 4}, "sglang"),
    ("h100-sxm", "llama-3.1-405b", "fp8", {"tp": 4, "pp": 2}, "trtllm"),
    ("h200", "mixtral-8x7b", "fp8", {"tp": 2}, "vllm"),
    ("h200", "deepseek-v3", "fp8", {"tp": 8, "dp": 2, "ep": 16}, "sglang"),
    ("h100-sxm", "gpt-oss-120b", "bf16", {"tp": 2}, "vllm"),
]


@pytest.mark.parametrize(("hw", "model", "prec", "par", "engine"), CONFIGS)
def test_gpu_step_compiled_and_source_agree_bit_for_bit(hw, model, prec, par, engine):
    perf = GpuRoofline(GpuConfig(CAT.get_hardware(hw), CAT.get_model(model), prec, "bf16", **par),
                       shipped_profile(engine))
    twin = _source_module("perf.gpu_step").GpuStep(perf)
    rng = random.Random(11)
    for _ in range(1500):
        n_dec = rng.choice([0, 1, 2, rng.randint(1, 512)])
        n_seq = rng.choice([0, 0, 1, rng.randint(1, 8)]) if n_dec else rng.choice([1, rng.randint(1, 8)])
        tok = n_seq * rng.randint(1, 4000)
        pctx = float(rng.choice([0, rng.randint(0, 30000)])) if n_seq else 0.0
        pairs = tok * pctx / max(n_seq, 1) + tok * (tok + 1) / 2.0
        ctx = float(n_dec * rng.randint(1, 30000))
        args = (tok, pairs, n_seq, n_dec, ctx, pctx)
        assert perf.step_s(*args) == twin.step_s(*args), (model, args)
        assert perf.step_s(*map(float, args)) == twin.step_s(*args), (model, args)  # float aggregates too


def test_gpu_roofline_pickles_with_its_bound_step():
    perf = GpuRoofline(GpuConfig(CAT.get_hardware("h100-sxm"), CAT.get_model("llama-3.1-8b"), "fp8"),
                       shipped_profile("vllm"))
    back = pickle.loads(pickle.dumps(perf))
    args = (512, 512 * 513 / 2.0, 1, 7, 7000.0, 0.0)
    assert back.step_s(*args) == perf.step_s(*args)
    assert back.step_s(0, 0.0, 0, 9, 9000.0) == perf.step_s(0, 0.0, 0, 9, 9000.0)
