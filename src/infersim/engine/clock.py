"""A fleet's own event calendar: the part of SimPy a fixed fleet uses, without its per-event machinery
(mechanism; compiled with the engine, see ``core.compiled``).

``FleetClock`` is what ``engine.own_clock.run_fleet`` runs: the replicas of fixed deployments (their steps and
scheduling-delay exits), the deployments' queue timeouts and the timeline sampler, on one heap. It keeps
SimPy's semantics exactly, so a fleet gives the same numbers on it as on a ``simpy.Environment``:

- ``now``, and ``timeout(delay, value)`` returning an event with ``callbacks`` and ``value`` (what the
  deployments' queues use: ``env.timeout(d).callbacks.append(fn)``);
- events at the same instant are processed in the order they were scheduled (SimPy's event id): every
  scheduling takes the next ``seq``, in the same order as the SimPy calls it replaces.

Replicas on this clock (``Replica.clock``) put their step ends (``wake``) and scheduling-delay exits
(``enqueue``) on the heap as plain tuples: no event object, no callback list, no generator.
"""

from __future__ import annotations

from heapq import heappush

# what a heap entry (time, seq, kind, obj, value) stands for
WAKE = 0  # obj: a replica whose plan ends (value: the plan's generation; superseded ones are skipped)
ENQUEUE = 1  # obj: a replica; value: a request leaving its scheduling delay
CALLBACK = 2  # obj: a ``Timeout`` whose callbacks are called with it
SAMPLE = 3  # the timeline sampler's next row


class Timeout:
    """The SimPy event subset the fleet's callbacks use: ``callbacks`` (called with the event) and ``value``."""

    def __init__(self, value):
        self.callbacks = []
        self.value = value


class FleetClock:
    """Time (``now``, seconds), the event heap and the scheduling counter of one platform's fixed fleet."""

    def __init__(self):
        self.now = 0.0
        self.heap = []
        self.seq = 0  # events scheduled so far (SimPy's event id)
        self.events = 0  # events processed
        self.left = 0  # requests that left the platform (finished or rejected)

    def timeout(self, delay: float, value=None) -> Timeout:
        """An event ``delay`` seconds from now (as ``simpy.Environment.timeout``)."""
        ev = Timeout(value)
        self.seq += 1
        heappush(self.heap, (self.now + delay, self.seq, CALLBACK, ev, 0))
        return ev

    def wake(self, r, t: float, gen: int) -> None:
        """Replica ``r``'s plan of generation ``gen`` ends at ``t``."""
        self.seq += 1
        heappush(self.heap, (t, self.seq, WAKE, r, gen))

    def enqueue(self, r, t: float, rid: int) -> None:
        """Request ``rid`` leaves replica ``r``'s scheduling delay at ``t``."""
        self.seq += 1
        heappush(self.heap, (t, self.seq, ENQUEUE, r, rid))

    def done(self, rid: int) -> None:
        """A request left the platform (the deployments' ``on_done``)."""
        self.left += 1
