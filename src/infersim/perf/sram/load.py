"""How many replicas of a fixed-capacity SRAM pipeline hold a load within the SLO (M/M/c with Erlang C).

Pure; used by the ``lpu``/``wafer`` platforms' ``replicas_for_slo`` (``platforms/sram.py``). Chip sizing
(units per replica) is ``perf.sram.sizing``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infersim.core.errors import CapacityError, InfersimError
from infersim.perf.sram.pipeline import SramPipeline


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with ``servers`` and ``offered_load`` = λ/μ
    (Erlang B recursion, stable for thousands of servers); 1 when the queue is unstable."""
    c, a = int(servers), float(offered_load)
    if c < 1 or a >= c:
        return 1.0
    if a <= 0:
        return 0.0
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho * (1.0 - b))


@dataclass(frozen=True)
class LoadSizing:
    """Replicas needed to hold a load within the SLO (``systems_for_load``); times in seconds."""

    replicas: int
    units_per_replica: int
    units: int
    slots_per_replica: int
    service_s: float
    prefill_s: float
    tpot_s: float
    utilization: float
    p_wait: float
    ttft_quantile_s: float
    quantile: float


def systems_for_load(pipe: SramPipeline, rate_req_s: float, input_tokens: int, output_tokens: int,
                     slo_ttft_s: float, slo_tpot_s: float, *, quantile: float = 0.95,
                     max_slots: int | None = None) -> LoadSizing:
    """Fewest replicas of ``pipe`` that serve Poisson arrivals at ``rate_req_s`` with the ``quantile`` of
    TTFT under ``slo_ttft_s`` and TPOT under ``slo_tpot_s``.

    Approximation (M/M/c with Erlang C): each replica has ``c = max_in_flight(I + O)`` slots, each serving
    one request at full per-user speed for ``S = prefill_s(I) + (O - 1) x TPOT`` (``max_slots`` caps ``c``,
    e.g. a platform's ``max_in_flight``); requests beyond ``c``
    wait. With ``A = λ S / R`` per replica, ``P(wait > t) = C(c, A) exp(-(c - A) t / S)``; the TTFT quantile
    is ``prefill_s + `` the wait quantile. Exponential service overstates the spread of fixed-length
    requests (conservative); prompt micro-batches competing with decodes for stage time are ignored.
    Raises ``CapacityError`` when no replica count can meet the SLO (unloaded TTFT or TPOT too slow, or
    the KV cache holds no request of this size).
    """
    if rate_req_s < 0 or not 0 < quantile < 1:
        raise InfersimError("rate_req_s must be >= 0 and quantile in (0, 1)")
    i, o = int(input_tokens), max(int(output_tokens), 1)
    c = pipe.max_in_flight(i + o)
    if max_slots is not None:
        c = min(c, int(max_slots))
    if c < 1:
        raise CapacityError(f"one request of {i + o} tokens does not fit the {pipe.kv_capacity_tokens:,}-token "
                            f"KV cache of {pipe.units}x {pipe.cfg.hardware.id}")
    tpot = pipe.token_latency_s(i + o / 2.0)
    pre = pipe.prefill_s(i)
    if tpot > slo_tpot_s:
        raise CapacityError(f"TPOT {tpot * 1e3:.2f} ms on an idle replica exceeds the SLO {slo_tpot_s * 1e3:.2f} ms")
    if pre > slo_ttft_s:
        raise CapacityError(f"prefill of {i} tokens takes {pre:.3f} s on an idle replica, over the TTFT SLO "
                            f"{slo_ttft_s:.3f} s")
    service = pre + (o - 1) * tpot
    load = rate_req_s * service
    r = max(1, math.floor(load / c) + 1) if load > 0 else 1
    slack = slo_ttft_s - pre
    while True:
        a = load / r
        pw = erlang_c(c, a) if a > 0 else 0.0
        if pw <= 1 - quantile:
            wq = 0.0
        else:
            wq = service / (c - a) * math.log(pw / (1 - quantile))
        if wq <= slack + 1e-12:
            return LoadSizing(r, pipe.units, r * pipe.units, c, service, pre, tpot, a / c, pw, pre + wq, quantile)
        r += 1
