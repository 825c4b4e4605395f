"""Reproduce the speculative-decoding table of docs/competitors.md: TPOT and decode throughput by batch.

    python benchmarks/specdec_effect.py

Llama 3.1 70B at fp8 on 4 x H100 (vLLM profile), k = 4 proposals accepted i.i.d. with p = 0.8, 1,500 tokens of
context per sequence: no speculation, n-gram drafts (free) and an 8B draft model on the same GPUs. Then the
Cursor Fast Apply plausibility check (workloads.csv) and the Groq LPU with the same k and p.
"""

from __future__ import annotations

import numpy as np

from infersim.catalog import default_catalog
from infersim.perf import GpuConfig, GpuRoofline
from infersim.perf.profiles import shipped_profile
from infersim.perf.specdec import SpecConfig, SpeculativeStep, expected_tokens_per_round
from infersim.perf.sram.pipeline import pipeline_for

CAT = default_catalog()


def gpu(model: str, tp: int, engine: str = "vllm") -> GpuRoofline:
    cfg = GpuConfig(CAT.get_hardware("h100-sxm"), CAT.get_model(model), "fp8", "fp8", tp, 1)
    return GpuRoofline(cfg, shipped_profile(engine), engine=engine)


def main() -> None:
    base = gpu("llama-3.1-70b", 4)
    ngram = SpeculativeStep(base, SpecConfig(4, 0.8))
    draft = SpeculativeStep(base, SpecConfig(4, 0.8, gpu("llama-3.1-8b", 4)))
    print(f"E[tokens per round] = {expected_tokens_per_round(0.8, 4):.2f}")
    print("batch | TPOT ms plain / n-gram / 8B draft | tokens/s plain / n-gram / 8B draft")
    for b in (1, 16, 64, 256, 512):
        ctx = np.array([b * 1500.0])
        t = [m.decode_steps_s(b, ctx)[0] for m in (base, ngram, draft)]
        print(f"{b:5d} | " + " / ".join(f"{x * 1e3:.2f}" for x in t) + " | " + " / ".join(f"{b / x:,.0f}" for x in t))
    tp8 = gpu("llama-3.1-70b", 8, "trtllm")
    fast = SpeculativeStep(tp8, SpecConfig(8, 0.9))
    ctx = np.array([3000.0])
    print(f"Fast Apply check (ASSUMED TP 8, k 8, p 0.9): {1 / tp8.decode_steps_s(1, ctx)[0]:.0f} -> "
          f"{1 / fast.decode_steps_s(1, ctx)[0]:.0f} tok/s per user (published ~1,000)")
    lpu = pipeline_for("llama-2-70b", "groq-lpu", units=576)
    spec = SpeculativeStep(lpu, SpecConfig(4, 0.8))
    ctx = np.array([2048.0])
    print(f"Groq LPU Llama-2-70B: {1 / lpu.decode_steps_s(1, ctx)[0]:.0f} -> {1 / spec.decode_steps_s(1, ctx)[0]:.0f}"
          " tok/s per user")


if __name__ == "__main__":
    main()
