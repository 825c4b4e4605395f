"""Disaggregated serving policies: where a prompt prefills, which decode replica takes its KV, and how many
replicas each pool wants (policy; no SimPy, no I/O).

- ``least_loaded``: the prefill replica with the fewest requests in flight (ties: lowest index), as Dynamo's
  and llm-d's default KV-unaware prefill routing does.
- ``pick_decode``: the decode replica with the most KV blocks available (free plus evictable, less what
  transfers already on their way reserve) among those that can take the request's prompt; -1 when none
  can: the request then waits (back-pressure) instead of being sent to a full replica.
- ``SloScaler``: per-pool SLO-aware autoscaling in the spirit of NVIDIA Dynamo's planner (docs.nvidia.com/dynamo,
  "Planner": prefill replicas follow TTFT, decode replicas follow ITL): scale the pool in proportion to how far
  the windowed quantile of its latency is above its target; scale down one replica at a time when it has
  been below ``scale_down_below`` x target; the mechanism (``fleet.disaggregated``) applies cold starts.
  The proportional rule is an ASSUMPTION: Dynamo's planner sizes from profiled per-replica throughput
  instead, which infersim does not have for an arbitrary configuration.
- ``ConcurrencyScaler``: Baseten's rule per pool (docs.baseten.co/deploy/autoscaling), the windowed average of
  in-flight requests per replica at most ``concurrency_target`` x ``target_utilization``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def blocks_for(tokens: int, block_size: int) -> int:
    """KV blocks ``tokens`` tokens occupy."""
    return -(-int(tokens) // int(block_size))


def least_loaded(outstanding) -> int:
    """Index of the smallest value (first on ties)."""
    best, best_v = 0, None
    for i, v in enumerate(outstanding):
        if best_v is None or v < best_v:
            best, best_v = i, v
    return best


def pick_decode(available_blocks, need_blocks: int, eligible=None) -> int:
    """Index of the decode replica with the most available blocks if it has ``need_blocks``, else -1.
    ``eligible`` (optional booleans) leaves out replicas not accepting work (starting or draining)."""
    best, best_v = -1, -1
    for i, v in enumerate(available_blocks):
        if eligible is not None and not eligible[i]:
            continue
        if v > best_v:
            best, best_v = i, v
    return best if best >= 0 and best_v >= need_blocks else -1


@dataclass(frozen=True)
class PoolView:
    """What a pool's scaler sees: ``active`` replicas (ready or starting), the windowed ``latency_s``
    quantile of its metric (TTFT for prefill, ITL/TPOT for decode; nan with no sample), the windowed mean of
    requests in flight, and whether any request waits for the pool."""

    active: int
    latency_s: float
    inflight_avg: float
    waiting: int


class SloScaler:
    def __init__(self, target_s: float, min_replicas: int, max_replicas: int, scale_down_below: float = 0.5,
                 max_step: int = 4, quantile: float = 0.9):
        self.target_s, self.lo, self.hi, self.quantile = target_s, min_replicas, max_replicas, quantile
        self.down, self.max_step = scale_down_below, max_step

    def decide(self, v: PoolView) -> int:
        n = v.active
        if math.isnan(v.latency_s):
            want = max(n, 1) if v.waiting else n
        elif v.latency_s > self.target_s:
            want = min(math.ceil(n * v.latency_s / self.target_s), n + self.max_step)
        elif v.latency_s < self.down * self.target_s and not v.waiting:
            want = n - 1
        else:
            want = n
        return min(max(want, self.lo), self.hi)


class ConcurrencyScaler:
    def __init__(self, concurrency_target: float, target_utilization: float, min_replicas: int, max_replicas: int):
        self.per_replica = concurrency_target * target_utilization
        self.lo, self.hi = min_replicas, max_replicas
        self.quantile = 0.5  # the latency the mechanism samples is not used by this rule

    def decide(self, v: PoolView) -> int:
        want = math.ceil(v.inflight_avg / self.per_replica - 1e-9)
        if v.waiting:
            want = max(want, 1)
        return min(max(want, self.lo), self.hi)
