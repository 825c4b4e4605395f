"""``infersim estimate``: the analytic calculator for a single deployment."""

from __future__ import annotations

from infersim.build.gpu import kv_precision_for, parallelism_problem
from infersim.catalog import PRECISIONS, default_catalog
from infersim.core.errors import CapacityError, InfersimError, ScenarioError
from infersim.perf import GpuConfig, GpuRoofline, plan_memory
from infersim.perf.analytic import DisaggEstimate, Estimate, disagg_estimate, estimate
from infersim.perf.kv_link import kv_bytes, link_for
from infersim.perf.profiles import default_limits, shipped_profile


def run_estimate(*, model: str, hardware: str, tp: int = 1, pp: int = 1, precision: str = "bf16",
                 input_tokens: int = 1000, output_tokens: int = 1000, batch: int = 1, engine: str = "trtllm",
                 max_num_seqs: int | None = None, max_batched_tokens: int | None = None,
                 chips: int | None = None, dp: int = 1, ep: int = 1, prefill_replicas: int | None = None,
                 decode_replicas: int | None = None, decode_tp: int | None = None, decode_dp: int | None = None,
                 decode_ep: int | None = None, placement: str = "rdma",
                 first_token: str = "decode") -> tuple[Estimate | DisaggEstimate, dict]:
    """The analytic estimate of one replica of ``model`` on ``tp x pp x dp`` GPUs of ``hardware`` (expert
    parallelism ``ep``), or with ``prefill_replicas`` and ``decode_replicas`` of a disaggregated deployment whose
    decode replicas run ``decode_tp x pp x decode_dp`` GPUs (default: the prefill's layout) and receive the KV
    over ``placement`` (``perf.kv_link``); ``first_token``: which pool streams the first token (``decode`` or
    ``prefill``). Bad flags raise ``InfersimError`` naming the flag."""
    cat = default_catalog()
    hw = cat.get_hardware(hardware, path="--hardware")
    m = cat.get_model(model, path="--model")
    if precision not in PRECISIONS:
        raise InfersimError(f"--precision: unknown precision '{precision}' (expected one of {', '.join(PRECISIONS)})")
    for flag, v in (("--tp", tp), ("--pp", pp), ("--dp", dp), ("--ep", ep), ("--input", input_tokens),
                    ("--output", output_tokens), ("--batch", batch), ("--prefill-replicas", prefill_replicas),
                    ("--decode-replicas", decode_replicas), ("--decode-tp", decode_tp), ("--decode-dp", decode_dp),
                    ("--decode-ep", decode_ep)):
        if v is not None and v < 1:
            raise InfersimError(f"{flag}: expected a positive integer, got {v}")
    if not hw.supports(precision):
        raise ScenarioError(f"{hw.id} has no {precision} tensor cores (it has: {', '.join(sorted(hw.tflops))})",
                            path="--precision")
    disagg = prefill_replicas is not None or decode_replicas is not None
    if disagg and (prefill_replicas is None or decode_replicas is None):
        raise InfersimError("--prefill-replicas and --decode-replicas: a disaggregated estimate needs both "
                            "(e.g. --prefill-replicas 1 --decode-replicas 3 for 1P3D)")
    if not disagg and any(v is not None for v in (decode_tp, decode_dp, decode_ep)):
        raise InfersimError("--decode-tp/--decode-dp/--decode-ep apply to a disaggregated estimate; add "
                            "--prefill-replicas and --decode-replicas")
    if not disagg and first_token != "decode":
        raise InfersimError("--first-token applies to a disaggregated estimate; add --prefill-replicas and "
                            "--decode-replicas")
    if hw.kind in ("lpu", "wafer"):
        if disagg or dp != 1 or ep != 1:
            raise InfersimError(f"--dp/--ep/--prefill-replicas: {hw.id} is a {hw.kind}, estimated as one SRAM "
                                "pipeline (its chips set by --chips)")
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
    if engine not in ("vllm", "sglang", "trtllm"):
        raise InfersimError(f"--engine: unknown engine '{engine}' (expected one of vllm, sglang, trtllm)")
    # limits not given: the engine's own defaults on this GPU, as a scenario's (perf.profiles.scheduler_limits)
    d = default_limits(engine, hw)
    max_num_seqs = d.max_num_seqs if max_num_seqs is None else max_num_seqs
    max_batched_tokens = d.max_batched_tokens if max_batched_tokens is None else max_batched_tokens
    for flag, v in (("--max-num-seqs", max_num_seqs), ("--max-batched-tokens", max_batched_tokens)):
        if v < 1:
            raise InfersimError(f"{flag}: expected a positive integer, got {v}")
    perf, plan = _replica(hw, m, precision, tp, pp, dp, ep, engine, max_num_seqs, max_batched_tokens, "")
    setup = {"model": m.id, "hardware": hw.id, "gpus": perf.cfg.gpus}
    if not disagg:
        est = estimate(perf, plan, input_tokens, output_tokens, batch=batch, max_num_seqs=max_num_seqs * dp,
                       max_batched_tokens=max_batched_tokens * dp)
        return est, setup
    d_tp, d_dp = decode_tp or tp, decode_dp or dp
    d_ep = decode_ep if decode_ep is not None else (ep if (d_tp, d_dp) == (tp, dp) else 1)
    dperf, dplan = _replica(hw, m, precision, d_tp, pp, d_dp, d_ep, engine, max_num_seqs, max_batched_tokens,
                            "decode-")
    try:
        link = link_for(hw, perf.cfg.gpus, hw, dperf.cfg.gpus, placement, path="--placement")
    except ScenarioError as exc:
        raise InfersimError(f"--placement: {exc.message}") from None
    xfer = link.transfer_s(kv_bytes(m, perf.cfg.kv_precision, input_tokens))
    est = disagg_estimate(perf, plan, dperf, dplan, xfer, input_tokens, output_tokens,
                          prefill_replicas=prefill_replicas, decode_replicas=decode_replicas, batch=batch,
                          max_num_seqs=max_num_seqs * d_dp, max_batched_tokens=max_batched_tokens * dp,
                          first_token=first_token)
    setup.update(decode_gpus=dperf.cfg.gpus, link=f"{link.kind} {link.bandwidth_gb_per_s:,.0f} GB/s")
    return est, setup


def _replica(hw, m, precision: str, tp: int, pp: int, dp: int, ep: int, engine: str, max_num_seqs: int,
             max_batched_tokens: int, flag: str):
    """``(step model, memory plan)`` of one replica; a layout that cannot serve ``m`` names its ``--{flag}`` flag."""
    problem = parallelism_problem(m, tp, ep)
    if problem:
        raise InfersimError(f"--{flag}{problem[0]}: {problem[1]}")
    try:
        cfg = GpuConfig(hw, m, precision, kv_precision_for(precision, "auto"), tp, pp, dp, ep)
    except ValueError as exc:
        raise InfersimError(f"--{flag}ep: {exc}") from None
    try:
        plan = plan_memory(cfg, max_batched_tokens=max_batched_tokens, max_num_seqs=max_num_seqs)
    except CapacityError as exc:
        raise InfersimError(str(exc)) from None
    return GpuRoofline(cfg, shipped_profile(engine), engine=engine), plan
