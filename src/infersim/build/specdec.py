"""Speculative decoding built from a scenario's ``speculative`` block (``perf.specdec``), for GPU and SRAM engines."""

from __future__ import annotations

from infersim.catalog import Catalog
from infersim.perf.gpu import GpuConfig, GpuRoofline
from infersim.perf.specdec import SpecConfig, SpeculativeStep
from infersim.scenario.competitors import Speculative


def spec_config(spec: Speculative, draft_step_model=None) -> SpecConfig:
    """The ``perf.specdec.SpecConfig`` of ``spec`` (``draft_step_model``: the draft model's step model, if any)."""
    return SpecConfig(spec.num_tokens, spec.acceptance_rate, draft_step_model, spec.draft_overhead)


def speculative_gpu(spec: Speculative, perf: GpuRoofline, catalog: Catalog,
                    path: str = "engine.speculative") -> SpeculativeStep:
    """``perf`` (a ``GpuRoofline``) wrapped for speculation; a draft model runs on the same GPUs at the
    same precision and parallelism, with the target's engine parameters."""
    draft = None
    if spec.draft_model:
        cfg = perf.cfg
        m = catalog.get_model(spec.draft_model, path=f"{path}.draft_model")
        draft = GpuRoofline(GpuConfig(cfg.hardware, m, cfg.precision, cfg.kv_precision, cfg.tp, cfg.pp), perf.p)
    return SpeculativeStep(perf, spec_config(spec, draft))
