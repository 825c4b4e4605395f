"""Replicas on their own clock: event loops that replace the shared SimPy one (mechanism). ``run_alone``: one
replica whose state nothing outside it depends on (``platforms/alone.py`` decides when); ``run_fleet``:
fixed deployments (any balancer, queue, concurrency limit) on an ``engine.clock.FleetClock``.

Compiled with the engine (``setup.py``), so the loop calls the replica's step methods as C functions.
"""

from __future__ import annotations

from heapq import heappop


def run_alone(r, rids: list[int], arrival_s: list[float], horizon_s: float, sample_s: list[float],
              dt_s: float, rows: list) -> tuple[float, bool]:
    """Serve ``rids`` arriving at ``arrival_s`` (increasing) on replica ``r`` with its own event loop, until
    every request left or ``horizon_s``. For a replica whose requests do not depend on the state of any
    other (a fixed deployment behind round robin): identical results to the shared SimPy clock, without a
    SimPy event per step. Events at one instant: a step's end, then a request leaving the scheduling delay,
    then an arrival. Appends an ``r.sample`` row to ``rows`` at each ``sample_s`` up to the last event;
    returns (time of the last event, whether work was left at the horizon)."""
    r.alone = pend = []  # (time, rid) of requests in the scheduling delay, pushed by the replica
    r.clock = None  # its own loop, not a fleet's calendar (the replica may have been built on one)
    inf = float("inf")
    n, ns = len(rids), len(sample_s)
    i = j = 0
    t = 0.0
    while True:
        t_arr = arrival_s[i] if i < n else inf
        t_enq = pend[0][0] if pend else inf
        t_wake = r.plan_end if r.busy else inf
        nxt = min(t_arr, t_enq, t_wake)
        if nxt >= horizon_s:
            return t, nxt != inf
        while j < ns and sample_s[j] <= nxt:
            rows.append(r.sample(sample_s[j], dt_s))
            j += 1
        t = nxt
        r.events += 1
        if t_wake == t:
            r._commit(t)
            r._plan(t)
        elif t_enq == t:
            r._enqueue(heappop(pend)[1], t)
        else:
            r._submit(rids[i], t)
            i += 1


def run_fleet(clock, deps: list, rids, arrival_s, dest, rec, horizon_s: float,
              dt_s: float, replicas: list, dep_of: list[int], rows: dict, progress) -> float:
    """Serve the open-loop requests ``rids`` (int64 array, arriving at ``arrival_s``, float64, increasing;
    ``dest``, int64: the index in ``deps`` of the deployment each one goes to, -1 for none: rejected
    ``no_deployment`` on arrival) on fixed
    deployments built on ``clock`` (an ``engine.clock.FleetClock``, which must be their ``env``, with
    ``clock.done`` as their ``on_done``), until every request left or ``horizon_s``. The deployments' own logic
    runs unchanged (load balancer, FIFO queue with timeouts, replica concurrency); ``replicas`` (``dep_of``:
    their deployment indices) are sampled into ``rows`` every ``dt_s`` as ``fleet.sampler.replica_sampler``
    does, calling ``progress(t)`` after each sample.

    The numbers are those of the same fleet on a SimPy clock (``Arrivals`` + ``replica_sampler``), to the last
    bit: SimPy's order of same-instant events (the order they were scheduled: the arrivals' first timeout,
    then the sampler's; each later arrival's when the previous one was dispatched), its arrival times
    (each the previous one's clock time plus the gap in ``arrival_s``), its end (every request left: the
    events already due at that instant are still processed; or the horizon, whose events are processed).
    Returns the end of the run (seconds)."""
    heap = clock.heap
    n = len(rids)
    cols = [rows.setdefault(k, []) for k in ("t_s", "deployment", "replica", "busy", "kv_usage", "running", "waiting")]
    for r in replicas:
        r.clock = clock
    if n == 0:
        return 0.0
    depcol = rec.deployment
    clock.seq += 1  # the arrivals' first timeout (or their dispatch at 0)
    arr_seq = clock.seq
    t_arr = float(arrival_s[0])
    clock.push(dt_s, 3, None, 0)  # engine.clock.SAMPLE
    i = 0
    t = 0.0
    while True:
        top = heap[0]
        t_ev = top.t
        arrival = i < n and (t_arr < t_ev or (t_arr == t_ev and arr_seq < top.seq))
        nxt = t_arr if arrival else t_ev
        if nxt > horizon_s:
            return horizon_s
        t = nxt
        clock.now = t
        clock.events += 1
        if arrival:
            t_loc = float(arrival_s[i])
            while True:  # the same-instant arrivals are dispatched together (SimPy: no timeout between them)
                rid = int(rids[i])
                d = int(dest[i])
                if d < 0:
                    rec.reject(rid, "no_deployment", t)
                    clock.left += 1
                else:
                    depcol[rid] = d
                    deps[d].submit(rid)
                i += 1
                if i >= n or arrival_s[i] > t_loc:
                    break
            if i < n:
                t_arr = t + (float(arrival_s[i]) - t_loc)
                clock.seq += 1
                arr_seq = clock.seq
        else:
            clock.pop()
            if top.kind == 3:
                _sample(clock, replicas, dep_of, t, dt_s, cols, progress)
            else:
                _fire(top, t)
        if i >= n and clock.left >= n:
            # every request left: SimPy ends the run after the events already due at this instant
            while heap[0].t == t:
                top = clock.pop()
                if top.kind == 3:
                    _sample(clock, replicas, dep_of, t, dt_s, cols, progress)
            return t


def _sample(clock, replicas: list, dep_of: list, t: float, dt_s: float, cols: list, progress) -> None:
    """The timeline sampler's event at ``t``: one row per replica (as ``fleet.sampler.replica_sampler``), then
    its next sample ``dt_s`` later."""
    col_t, col_d, col_r, col_b, col_kv, col_run, col_w = cols
    for j in range(len(replicas)):
        r = replicas[j]
        col_t.append(t)
        col_d.append(dep_of[j])
        col_r.append(r.id)
        row = r.sample(t, dt_s)
        col_b.append(row[0])
        col_kv.append(row[1])
        col_run.append(row[2])
        col_w.append(row[3])
    if progress is not None:
        progress(t)
    clock.push(t + dt_s, 3, None, 0)


def run_until(clock) -> None:
    """``FleetClock.run``'s loop: process events in SimPy's order ((time, priority, event id); a process's
    start is urgent, due now, before any normal event) until ``clock.stop`` is set (by the event ``run``
    waits for)."""
    urgent = clock.urgent
    while clock.stop is None:
        if urgent:
            clock.events += 1
            urgent.popleft()._resume(None)
            continue
        top = clock.pop()
        t = top.t
        clock.now = t
        clock.events += 1
        _fire(top, t)


def _fire(top, t: float) -> None:
    """Process one calendar entry (``engine.clock.Entry``: time, seq, kind, obj, value) that is not a timeline sample, at ``t``: a
    replica's plan end (a superseded generation is skipped), a request leaving a replica's scheduling delay, the
    open-loop arrivals' next arrival time (``engine.clock.OpenLoop``), or an event's callbacks (SimPy: the callbacks list is None once the event is processed)."""
    kind = top.kind
    if kind == 0:  # engine.clock.WAKE
        r = top.obj
        if top.value == r.gen:  # else superseded by a cut
            r._commit(t)
            r._plan(t)
    elif kind == 1:  # engine.clock.ENQUEUE
        r = top.obj
        r._enqueue(top.value, t)
    elif kind == 4:  # engine.clock.ARRIVE
        ol = top.obj
        ol.fire()
    else:  # engine.clock.CALLBACK
        ev = top.obj
        cbs = ev.callbacks
        ev.callbacks = None
        for cb in cbs:
            cb(ev)
