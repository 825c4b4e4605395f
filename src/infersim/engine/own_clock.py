"""A replica on its own clock: the event loop that replaces the shared SimPy one when nothing outside the
replica depends on its state (``platforms/alone.py`` decides when; mechanism).

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
