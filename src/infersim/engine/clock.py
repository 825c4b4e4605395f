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

It also runs what routed, autoscaled and closed-loop fleets ask of SimPy (``run``): untriggered events
(``event()``, ``succeed``, ``triggered``), processes (``process(generator)``: a generator yielding this clock's
events, started by an urgent initialisation as SimPy's ``Initialize``, its end scheduled as SimPy schedules a
finished process) and ``run(until=any_of([...]))``, with SimPy's order: (time, priority, event id), urgent
events (a process's start, always due now) before every normal one.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush

try:
    import cython
except ImportError:  # the Python source runs without Cython installed
    COMPILED = False
else:
    COMPILED = cython.compiled  # True only inside the compiled module

# what a heap entry (``Entry``: time, seq, kind, obj, value) stands for
WAKE = 0  # obj: a replica whose plan ends (value: the plan's generation; superseded ones are skipped)
ENQUEUE = 1  # obj: a replica; value: a request leaving its scheduling delay
CALLBACK = 2  # obj: a ``Timeout`` whose callbacks are called with it
SAMPLE = 3  # the timeline sampler's next row
ARRIVE = 4  # obj: an ``OpenLoop`` whose next arrival time is due


class Entry:
    """A calendar entry: at time ``t`` (seconds), scheduled ``seq``-th, of ``kind`` (the constants above), on
    ``obj`` with ``value``. Entries order by (``t``, ``seq``), SimPy's order (``seq`` is unique); compiled,
    the comparison is two C comparisons and the fields are C numbers, where a tuple heap compared boxed
    floats and ints item by item and boxed them on every push."""

    t: float
    seq: int
    kind: int
    obj: object
    value: int

    def __lt__(self, other) -> bool:
        return _before(self, other)


def _before(a: Entry, b: Entry) -> bool:
    """Whether entry ``a`` is processed before entry ``b``."""
    return a.t < b.t or (a.t == b.t and a.seq < b.seq)


def _push(heap: list, e: Entry) -> None:
    """``heapq.heappush(heap, e)``; compiled, the same algorithm with ``_before`` as a C call (no rich
    comparison through the type slot per step)."""
    if not COMPILED:
        heappush(heap, e)
        return
    heap.append(e)
    _sift_up(heap, len(heap) - 1, e)


def _sift_up(heap: list, pos: int, e: Entry) -> None:
    """Place ``e`` at ``pos`` or above it, moving the later parents down (heapq's ``_siftdown``)."""
    while pos > 0:
        up = (pos - 1) >> 1
        parent = heap[up]
        if not _before(e, parent):
            break
        heap[pos] = parent
        pos = up
    heap[pos] = e


def _pop(heap: list) -> Entry:
    """``heapq.heappop(heap)`` (the heap must not be empty); compiled, heapq's algorithm (the smaller child
    moves up to a leaf, then the last entry sifts down from there) with ``_before`` as a C call."""
    if not COMPILED:
        return heappop(heap)
    last = heap.pop()
    end = len(heap)
    if end == 0:
        return last
    top = heap[0]
    pos = 0
    child = 1
    while child < end:
        right = child + 1
        if right < end and not _before(heap[child], heap[right]):
            child = right
        heap[pos] = heap[child]
        pos = child
        child = 2 * pos + 1
    _sift_up(heap, pos, last)
    return top


def _entry(t: float, seq: int, kind: int, obj, value: int) -> Entry:
    e = Entry.__new__(Entry)
    e.t = t
    e.seq = seq
    e.kind = kind
    e.obj = obj
    e.value = value
    return e


class Timeout:
    """The SimPy event subset the fleet's callbacks use: ``callbacks`` (called with the event; None once the
    event was processed), ``value`` and ``triggered``; ``succeed`` schedules an untriggered one now."""

    def __init__(self, value, clock=None):
        self.callbacks = []
        self.value = value
        self.triggered = clock is None  # a timeout is triggered when made; an event() when it succeeds
        self.clock = clock

    def succeed(self, value=None):
        """Trigger this ``FleetClock.event()`` now (SimPy ``Event.succeed``)."""
        if self.triggered:
            raise RuntimeError("event has already been triggered")
        self.triggered = True
        self.value = value
        c = self.clock
        c.push(c.now, CALLBACK, self, 0)
        return self


class Process:
    """A generator run as a SimPy process: resumed by the events it yields (``_resume``)."""

    def __init__(self, clock, gen):
        self.clock, self.gen = clock, gen

    def _resume(self, ev) -> None:
        try:
            nxt = self.gen.send(ev.value if ev is not None else None)
        except StopIteration:
            c = self.clock  # SimPy schedules the finished process (an event nobody waits on here)
            c.push(c.now, CALLBACK, Timeout(None), 0)
            return
        nxt.callbacks.append(self._resume)


class OpenLoop:
    """Open-loop arrivals as plain heap entries (``FleetClock.open_loop``): what ``Arrivals``' SimPy process
    does, with the same clock times and the same ``seq`` of every entry, without a ``Timeout`` and a generator
    resume per arrival time. ``rids`` (int64) arrive at ``times`` (float64, the workload's; the ids are
    handed to ``dispatch`` in that order). The process's logic, step for step: started as an urgent entry (due
    now, ``start``); a request whose time is not after the previous wait's end (``now``, a workload time) is
    dispatched at once, else the loop waits ``t - now`` seconds (an ``ARRIVE`` entry, taking the next ``seq``
    as SimPy's timeout would) and resumes there (``fire``); after the last one, the finished process's
    entry is scheduled as SimPy schedules it."""

    def __init__(self, clock, rids, times, dispatch):
        self.clock = clock
        self.rids = rids
        self.times = times
        self.dispatch = dispatch
        self.i = 0
        self.n = len(rids)
        self.now = 0.0

    def _resume(self, _ev) -> None:
        """The process's start (``FleetClock.run`` resumes its urgent entries with None)."""
        self.run()

    def fire(self) -> None:
        """The wait for request ``i`` ended: the loop's time is now its workload time."""
        self.now = self.times[self.i]
        self.run()

    def run(self) -> None:
        c = self.clock
        rids, times, dispatch = self.rids, self.times, self.dispatch
        i, n, now = self.i, self.n, self.now
        while i < n:
            t = times[i]
            if t > now:
                self.i = i
                c.push(c.now + (t - now), ARRIVE, self, 0)
                return
            rid = int(rids[i])
            i += 1
            self.i = i  # before the call: a dispatch never re-enters, but the state is whole at every call
            dispatch(rid)
        self.i = n
        c.push(c.now, CALLBACK, Timeout(None), 0)  # the finished process, as ``Process._resume`` schedules it


class AnyOf:
    """``any_of(events)``: succeeds (is scheduled now) when the first of ``events`` is processed."""

    def __init__(self, clock, events):
        self.clock = clock
        self.ev = Timeout(None, clock)
        for e in events:
            if e.callbacks is None:  # already processed (SimPy checks it at once)
                self._check(e)
            else:
                e.callbacks.append(self._check)

    def _check(self, _e) -> None:
        if not self.ev.triggered:
            self.ev.succeed()


class FleetClock:
    """Time (``now``, seconds), the event heap and the scheduling counter of one platform's fixed fleet."""

    def __init__(self):
        self.now = 0.0
        self.heap = []
        self.urgent = deque()  # processes to start now, before any normal event (SimPy's URGENT priority)
        self.seq = 0  # events scheduled so far (SimPy's event id)
        self.events = 0  # events processed
        self.left = 0  # requests that left the platform (finished or rejected)
        self.stop = None  # the event ``run`` runs until

    def event(self) -> Timeout:
        """An event triggered later by ``succeed`` (as ``simpy.Environment.event``)."""
        return Timeout(None, self)

    def process(self, gen) -> Process:
        """Run generator ``gen`` as a process from now (as ``simpy.Environment.process``)."""
        p = Process(self, gen)
        self.seq += 1
        self.urgent.append(p)
        return p

    def open_loop(self, rids, times, dispatch) -> OpenLoop:
        """Dispatch ``rids`` (int64 array) at ``times`` (float64, seconds) from now on, as the SimPy process
        ``Arrivals`` runs on ``simpy.Environment`` would (``OpenLoop``): started like ``process``."""
        ol = OpenLoop(self, rids, times, dispatch)
        self.seq += 1
        self.urgent.append(ol)
        return ol

    def any_of(self, events) -> Timeout:
        """An event processed after the first of ``events`` is (as ``simpy.Environment.any_of``)."""
        return AnyOf(self, events).ev

    def run(self, until) -> None:
        """Process events in SimPy's order until ``until`` (an event of this clock) is processed
        (``engine.own_clock.run_until``, which calls the replicas' compiled step methods)."""
        from infersim.engine.own_clock import run_until

        until.callbacks.append(self._stop)
        self.stop = None
        run_until(self)

    def _stop(self, ev) -> None:
        self.stop = ev

    def timeout(self, delay: float, value=None) -> Timeout:
        """An event ``delay`` seconds from now (as ``simpy.Environment.timeout``)."""
        ev = Timeout(value)
        self.push(self.now + delay, CALLBACK, ev, 0)
        return ev

    def push(self, t: float, kind: int, obj, value: int) -> None:
        """Schedule an entry of ``kind`` on ``obj`` with ``value`` at ``t``: it takes the next ``seq``."""
        self.seq += 1
        _push(self.heap, _entry(t, self.seq, kind, obj, value))

    def pop(self) -> Entry:
        """Take the next entry off the heap (which must not be empty)."""
        return _pop(self.heap)

    def wake(self, r, t: float, gen: int) -> None:
        """Replica ``r``'s plan of generation ``gen`` ends at ``t``."""
        self.push(t, WAKE, r, gen)

    def enqueue(self, r, t: float, rid: int) -> None:
        """Request ``rid`` leaves replica ``r``'s scheduling delay at ``t``."""
        self.push(t, ENQUEUE, r, rid)

    def done(self, rid: int) -> None:
        """A request left the platform (the deployments' ``on_done``)."""
        self.left += 1
