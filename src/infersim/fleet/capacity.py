"""GPU capacity pools of a platform (mechanism without SimPy): a limit per cloud/region, FIFO waiters.

A replica asks for its GPUs from a deployment's pools in order of preference; if none has room it waits
(waiters are served in arrival order, each by the first pool it accepts that has room) until a replica elsewhere releases its GPUs. A
deployment with no pools has unlimited capacity and never calls this.
"""

from __future__ import annotations

from collections.abc import Callable


class CapacityPools:
    """``limits``: pool name -> GPUs. ``acquire`` returns the pool granted at once, or None after queueing
    ``grant(pool)`` to be called when capacity frees up; ``cancel`` withdraws a waiting request."""

    def __init__(self, limits: dict[str, int]):
        self.limit = dict(limits)
        self.used = {k: 0 for k in limits}
        self.waiters: list[tuple[int, int, tuple[str, ...], Callable[[str], None]]] = []
        self._seq = 0

    def _fit(self, gpus: int, prefs) -> str | None:
        for p in prefs:
            if self.used[p] + gpus <= self.limit[p]:
                return p
        return None

    def acquire(self, gpus: int, prefs, grant: Callable[[str], None]) -> tuple[str | None, int]:
        """(pool, 0) if granted now, else (None, ticket) with ``grant`` queued."""
        p = self._fit(gpus, prefs)
        if p is not None:
            self.used[p] += gpus
            return p, 0
        self._seq += 1
        self.waiters.append((self._seq, gpus, tuple(prefs), grant))
        return None, self._seq

    def cancel(self, ticket: int) -> None:
        self.waiters = [w for w in self.waiters if w[0] != ticket]

    def release(self, pool: str, gpus: int) -> None:
        self.used[pool] -= gpus
        granted = []
        for w in list(self.waiters):
            p = self._fit(w[1], w[2])
            if p is not None:
                self.used[p] += w[1]
                self.waiters.remove(w)
                granted.append((w[3], p))
        for grant, p in granted:
            grant(p)
