"""A deployment's load as counters, kept up to date where the state changes (mechanism).

A load-aware router asks a deployment, per request, how many requests wait to start and how many are in
flight (``router_load``); a prefix-affinity balancer compares one replica's outstanding requests with the
mean over the replicas. Summing those over the replicas on every request made routing cost grow with the
fleet (issue 19). Instead, ``LoadTotals`` holds the sums over the replicas that take requests (all of a
fixed deployment's, the ready ones of an autoscaled deployment):

- ``waiting``: requests in the replicas' scheduler queues. Each replica's ``waiting`` FIFO is swapped for a
  ``CountedWaiting``, which adds and subtracts as requests join and leave it while its replica is attached;
- ``outstanding``: requests submitted to those replicas and not yet left (each replica's
  ``load.outstanding`` summed): the deployment adds one per submit and subtracts one per done.

A replica that stops taking requests (draining, failed) is detached: its counts leave the totals at once,
and its later changes no longer touch them.
"""

from __future__ import annotations

from collections import deque


class LoadTotals:
    """Sums over a deployment's attached replicas: ``waiting`` (scheduler queues) and ``outstanding``."""

    __slots__ = ("outstanding", "waiting")

    def __init__(self):
        self.waiting = 0
        self.outstanding = 0

    def attach(self, engine) -> None:
        """Count ``engine`` (a replica) in the totals from now on."""
        w = engine.waiting
        if type(w) is not CountedWaiting:
            w = CountedWaiting(w)
            engine.waiting = w
        w.totals = self
        self.waiting += len(w)
        self.outstanding += engine.load.outstanding

    def detach(self, engine) -> None:
        """Stop counting ``engine``: its requests leave the totals."""
        w = engine.waiting
        w.totals = None
        self.waiting -= len(w)
        self.outstanding -= engine.load.outstanding


class CountedWaiting(deque):
    """A replica's FIFO of waiting request ids that keeps its deployment's ``LoadTotals.waiting``."""

    __slots__ = ("totals",)

    def __init__(self, items=()):
        super().__init__(items)
        self.totals: LoadTotals | None = None

    def append(self, rid) -> None:
        deque.append(self, rid)
        t = self.totals
        if t is not None:
            t.waiting += 1

    def appendleft(self, rid) -> None:
        deque.appendleft(self, rid)
        t = self.totals
        if t is not None:
            t.waiting += 1

    def popleft(self):
        rid = deque.popleft(self)
        t = self.totals
        if t is not None:
            t.waiting -= 1
        return rid

    def pop(self):
        rid = deque.pop(self)
        t = self.totals
        if t is not None:
            t.waiting -= 1
        return rid

    def clear(self) -> None:
        t = self.totals
        if t is not None:
            t.waiting -= len(self)
        deque.clear(self)

    def remove(self, rid) -> None:
        deque.remove(self, rid)
        t = self.totals
        if t is not None:
            t.waiting -= 1
