"""What a load balancer sees of a replica: a ``LoadView`` (compiled with the engine; see ``core.compiled``).

The replica mechanism keeps its view's ``outstanding`` (requests submitted and not yet left: running,
waiting, or in the scheduling delay) up to date; balancers read views only. ``kv_usage`` is the share of
the replica's KV blocks in use, read when asked.
"""

from __future__ import annotations


class LoadView:
    """A replica's load, read-only to policies (the replica updates ``outstanding``)."""

    def __init__(self, kv=None):
        self.outstanding = 0
        self._kv = kv  # the replica's KV cache (``used_blocks``, ``total_blocks``), read by ``kv_usage``

    @property
    def kv_usage(self) -> float:
        """Share of the replica's KV blocks in use (0-1)."""
        return self._kv.used_blocks / self._kv.total_blocks


class LoadTotals:
    """Sums over a deployment's attached replicas (``fleet.load_totals``): ``waiting`` (their scheduler queues,
    kept by the replicas where their queues change) and ``outstanding`` (kept by the deployment)."""

    def __init__(self):
        self.waiting = 0
        self.outstanding = 0

    def attach(self, engine) -> None:
        """Count ``engine`` (a replica) in the totals from now on."""
        engine.totals = self
        self.waiting += len(engine.waiting)
        self.outstanding += engine.load.outstanding

    def detach(self, engine) -> None:
        """Stop counting ``engine``: its requests leave the totals."""
        engine.totals = None
        self.waiting -= len(engine.waiting)
        self.outstanding -= engine.load.outstanding


def least_outstanding(views: list) -> int:
    """Index of the view with the fewest outstanding requests (the first on ties; stops at an idle one)."""
    best, best_load = 0, -1
    for i in range(len(views)):
        v = views[i]
        load = v.outstanding
        if best_load < 0 or load < best_load:
            best, best_load = i, load
            if load == 0:
                break
    return best
