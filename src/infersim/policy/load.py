"""What a load balancer sees of a replica: a ``LoadView`` (compiled with the engine; see ``core.compiled``).

The replica mechanism keeps its view's ``outstanding`` (requests submitted and not yet left: running,
waiting, or in the scheduling delay) up to date (``add``); balancers read views only. ``kv_usage`` is the
share of the replica's KV blocks in use, read when asked.

A fleet whose balancer picks the least outstanding replica keeps a ``LoadIndex`` over its list of views (a
min segment tree the views update as their ``outstanding`` changes, O(log n)): ``least_outstanding`` over
that very list then costs O(log n) instead of a scan of every replica (issue 19), with the same answer.
"""

from __future__ import annotations

from array import array

_NONE = 1 << 62  # the load of a padding leaf (no view there): above any real one


class LoadView:
    """A replica's load, read-only to policies (the replica updates ``outstanding`` through ``add``)."""

    def __init__(self, kv=None):
        self.outstanding = 0
        self._kv = kv  # the replica's KV cache (``used_blocks``, ``total_blocks``), read by ``kv_usage``
        self.index = None  # the ``LoadIndex`` of the list this view is in, if one is kept (set by it)
        self.pos = 0  # this view's position in that list

    def add(self, delta: int) -> None:
        """``outstanding += delta``, and the index over this view's list (if any) told."""
        self.outstanding += delta
        if self.index is not None:
            self.index.update(self.pos, self.outstanding)

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


class LoadIndex:
    """The least-outstanding view of a list in O(log n): a min segment tree over the views' positions.

    ``LoadIndex(views)`` attaches itself to every view of ``views`` (the list, kept by reference): each
    ``LoadView.add`` then updates the view's leaf and the minima above it (stopping where a minimum does not
    change). ``argmin`` descends from the root to the lowest position holding the minimum: what
    ``least_outstanding`` returns (the first view with the fewest). Whoever changes the list (replicas
    added or removed) calls ``rebuild``, O(n); views no longer in it are detached then.
    """

    def __init__(self, views: list):
        self.views = views
        self.members: list = []  # the views attached at the last rebuild
        self.n, self.size = 0, 1
        self.tree = array("l", [_NONE, _NONE])
        self.rebuild()

    def rebuild(self) -> None:
        """Attach the views now in the list (positions in list order) and rebuild the tree from their loads."""
        for v in self.members:
            if v.index is self:
                v.index = None
        views = self.views
        n = len(views)
        size = 1
        while size < n:
            size *= 2
        tree = array("l", [_NONE]) * (2 * size)
        for i in range(n):
            v = views[i]
            v.index, v.pos = self, i
            tree[size + i] = v.outstanding
        for i in range(size - 1, 0, -1):
            a, b = tree[2 * i], tree[2 * i + 1]
            tree[i] = a if a <= b else b
        self.members = list(views)
        self.n, self.size, self.tree = n, size, tree

    def update(self, pos: int, load: int) -> None:
        """The view at ``pos`` now has ``load`` outstanding requests."""
        i = pos + self.size
        self.tree[i] = load
        i >>= 1
        while i > 0:
            a, b = self.tree[2 * i], self.tree[2 * i + 1]
            m = a if a <= b else b
            if self.tree[i] == m:
                return  # the minima above do not change either
            self.tree[i] = m
            i >>= 1

    def argmin(self) -> int:
        """Position of the first view with the fewest outstanding requests (0 for an empty list)."""
        i = 1
        while i < self.size:
            i *= 2
            if self.tree[i] != self.tree[i >> 1]:
                i += 1  # the minimum is in the right half only
        return i - self.size if self.n > 0 else 0


def least_outstanding(views: list) -> int:
    """Index of the view with the fewest outstanding requests (the first on ties; stops at an idle one).

    O(log n) when ``views`` is the list of a ``LoadIndex`` (of the same length: a list changed without a
    ``rebuild`` is scanned); a scan of the views otherwise."""
    if len(views) > 0:
        v = views[0]
        ix = v.index
        if ix is not None and ix.views is views and ix.n == len(views):
            return ix.argmin()
    best, best_load = 0, -1
    for i in range(len(views)):
        v = views[i]
        load = v.outstanding
        if best_load < 0 or load < best_load:
            best, best_load = i, load
            if load == 0:
                break
    return best
