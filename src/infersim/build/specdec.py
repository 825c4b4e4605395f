"""Speculative decoding built from a scenario's ``speculative`` block (``perf.specdec``), for GPU and SRAM engines."""

from __future__ import annotations

from infersim.catalog import Catalog
from infersim.core.errors import ScenarioError
from infersim.perf.gpu import GpuConfig, GpuRoofline
from infersim.perf.specdec import SpecConfig, SpeculativeStep, mtp_module
from infersim.scenario.competitors import Speculative


def spec_config(spec: Speculative, draft_step_model=None) -> SpecConfig:
    """The ``perf.specdec.SpecConfig`` of ``spec`` (``draft_step_model``: the draft model's step model, if any)."""
    return SpecConfig(spec.num_tokens, spec.acceptance_rate, draft_step_model, spec.draft_overhead)


def speculative_gpu(spec: Speculative, perf: GpuRoofline, catalog: Catalog,
                    path: str = "engine.speculative") -> SpeculativeStep:
    """``perf`` (a ``GpuRoofline``) wrapped for speculation; a draft model runs on the same GPUs at the
    same precision and parallelism, with the target's engine parameters. ``method: mtp`` drafts with the
    target's own multi-token-prediction module (``perf.specdec.mtp_module``) on the same GPUs, sharded as the
    target is (tp, pp, dp, ep) and inside the target's step: no CPU step overhead of its own."""
    draft = None
    cfg = perf.cfg
    if spec.method == "mtp":
        if cfg.model.mtp_layers < 1:
            raise ScenarioError(f"method 'mtp' needs a model that ships multi-token-prediction modules; "
                                f"{cfg.model.id} has none (expected 'draft_model' or 'ngram' for it)",
                                path=f"{path}.method")
        p = perf.p.with_(step_overhead_s=0.0, per_seq_overhead_s=0.0)
        draft = GpuRoofline(GpuConfig(cfg.hardware, mtp_module(cfg.model), cfg.precision, cfg.kv_precision,
                                      cfg.tp, cfg.pp, cfg.dp, cfg.ep), p, engine=perf.engine)
    elif spec.draft_model:
        m = catalog.get_model(spec.draft_model, path=f"{path}.draft_model")
        draft = GpuRoofline(GpuConfig(cfg.hardware, m, cfg.precision, cfg.kv_precision, cfg.tp, cfg.pp), perf.p,
                            engine=perf.engine)
    return SpeculativeStep(perf, spec_config(spec, draft))
