"""Billing clock of a deployment's replicas (mechanism without SimPy: callers pass the time).

A replica accrues cost while it is in a billed stage. Each contiguous billed segment of one replica's life
is rounded up to whole billing units (per minute by default: 61 s billed cost 2 minutes). Price is
``usd_per_replica_hour`` = GPU price x GPUs per replica; ``nan`` when no price is known (costs are then
``nan``, GPU-hours are still counted). ``segments`` keeps each closed segment's raw length so another price
and billing unit can be applied afterwards (the provider's side, ``infersim.economics.billed_usd``);
clocks in ``also`` receive the same stage changes (e.g. a provider clock billing other stages).
"""

from __future__ import annotations

from infersim.economics import billed_seconds


class BillingClock:
    """Per-replica billed segments. ``enter(key, stage, t)`` on every stage change, ``stop(key, t)`` at the
    end of the replica's life (or of the run)."""

    def __init__(self, unit_s: float, billed_stages, usd_per_replica_hour: float, gpus_per_replica: int):
        self.unit = unit_s
        self.stages = frozenset(billed_stages)
        self.usd_per_s = usd_per_replica_hour / 3600.0
        self.gpus = gpus_per_replica
        self.open: dict[int, float] = {}  # key -> start of the open segment
        self.raw_s: dict[int, float] = {}  # key -> billed seconds before rounding
        self.rounded_s: dict[int, float] = {}  # key -> billed seconds after rounding per segment
        self.closed_rounded_s = 0.0
        self.segments: dict[int, list[float]] = {}  # key -> raw length of each closed segment, seconds
        self.also: list[BillingClock] = []  # further clocks fed the same stage changes (other stages/units)

    def enter(self, key: int, stage: str, t: float) -> None:
        for c in self.also:
            c.enter(key, stage, t)
        billed = stage in self.stages
        if billed and key not in self.open:
            self.open[key] = t
        elif not billed and key in self.open:
            self._close(key, t)

    def stop(self, key: int, t: float) -> None:
        for c in self.also:
            c.stop(key, t)
        if key in self.open:
            self._close(key, t)

    def _close(self, key: int, t: float) -> None:
        d = t - self.open.pop(key)
        r = billed_seconds(d, self.unit)
        self.raw_s[key] = self.raw_s.get(key, 0.0) + d
        self.segments.setdefault(key, []).append(d)
        self.rounded_s[key] = self.rounded_s.get(key, 0.0) + r
        self.closed_rounded_s += r

    def billed_s(self, t: float) -> float:
        """Replica-seconds billed up to ``t``: closed segments rounded, open ones as elapsed so far."""
        return self.closed_rounded_s + sum(t - s for s in self.open.values())

    def cost_usd(self, t: float) -> float:
        return self.billed_s(t) * self.usd_per_s

    def gpu_hours(self, t: float) -> float:
        return self.billed_s(t) * self.gpus / 3600.0
