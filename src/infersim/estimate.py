"""``infersim estimate``: the analytic calculator for a single deployment."""

from __future__ import annotations

from infersim.build.gpu import kv_precision_for
from infersim.catalog import PRECISIONS, default_catalog
from infersim.core.errors import CapacityError, InfersimError, ScenarioError
from infersim.perf import GpuConfig, GpuRoofline, plan_memory
from infersim.perf.analytic import Estimate, estimate
from infersim.perf.profiles import shipped_profile


def run_estimate(*, model: str, hardware: str, tp: int = 1, pp: int = 1, precision: str = "bf16",
                 input_tokens: int = 1000, output_tokens: int = 1000, batch: int = 1, engine: str = "trtllm",
                 max_num_seqs: int = 2048, max_batched_tokens: int = 8192,
                 chips: int | None = None) -> tuple[Estimate, dict]:
    cat = default_catalog()
    hw = cat.get_hardware(hardware, path="--hardware")
    m = cat.get_model(model, path="--model")
    if precision not in PRECISIONS:
        raise InfersimError(f"--precision: unknown precision '{precision}' (expected one of {', '.join(PRECISIONS)})")
    for flag, v in (("--tp", tp), ("--pp", pp), ("--input", input_tokens), ("--output", output_tokens),
                    ("--batch", batch)):
        if v < 1:
            raise InfersimError(f"{flag}: expected a positive integer, got {v}")
    if not hw.supports(precision):
        raise ScenarioError(f"{hw.id} has no {precision} tensor cores (it has: {', '.join(sorted(hw.tflops))})",
                            path="--precision")
    if hw.kind in ("lpu", "wafer"):
        # SRAM-pipeline model (perf/sram/pipeline.py): --tp/--pp/--engine/--max-* do not apply; --chips sets the
        # chips (LPU) or systems (wafer) of the replica, default the fewest holding weights + KV of --batch.
        from infersim.perf.sram.pipeline import sram_estimate

        if chips is not None and chips < 1:
            raise InfersimError(f"--chips: expected a positive integer, got {chips}")
        try:
            est = sram_estimate(m, hw, input_tokens, output_tokens, batch=batch, precision=precision, units=chips)
        except CapacityError as exc:
            raise InfersimError(str(exc)) from None
        return est, {"model": m.id, "hardware": hw.id, "chips": est.chips}
    cfg = GpuConfig(hw, m, precision, kv_precision_for(precision, "auto"), tp, pp)
    perf = GpuRoofline(cfg, shipped_profile(engine))
    try:
        plan = plan_memory(cfg, max_batched_tokens=max_batched_tokens, max_num_seqs=max_num_seqs)
    except CapacityError as exc:
        raise InfersimError(str(exc)) from None
    est = estimate(perf, plan, input_tokens, output_tokens, batch=batch, max_num_seqs=max_num_seqs,
                   max_batched_tokens=max_batched_tokens)
    return est, {"model": m.id, "hardware": hw.id}
