"""What every platform simulator shares: feeding the request stream and ending the run (mechanism).

``Arrivals`` replays the workload on a clock (``new_clock``: a ``FleetClock``, or SimPy): open-loop rows at their ``arrival_s``, closed-loop
streams as ``concurrency`` clients that send their next request ``think_time`` after the previous one
left (finished or rejected). It calls ``dispatch(rid)`` for each arrival; the platform calls
``done(rid)`` when a request leaves. ``run(horizon_s)`` stops when every request has left or at the
horizon.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from infersim.engine.clock import FleetClock
from infersim.engine.recorder import LOST, Recorder
from infersim.workload.generate import Requests

#: run every platform on ``simpy.Environment`` instead of a ``FleetClock`` (the tests that require both to
#: give the same tables set it)
SIMPY_CLOCK = False


def new_clock():
    """The calendar a platform's run uses: a ``FleetClock`` (SimPy's semantics and order of events, replicas'
    step ends as plain heap entries), or SimPy itself where ``SIMPY_CLOCK`` is set."""
    if SIMPY_CLOCK:
        import simpy

        return simpy.Environment()
    return FleetClock()


def served_streams(names, streams: list[str] | None) -> np.ndarray:
    """Boolean per stream index: served by a platform whose ``streams`` filter is ``streams`` (None = all)."""
    return np.array([streams is None or n in streams for n in names], dtype=bool)


def served_dispatch(env, reqs: Requests, rec: Recorder, serves: np.ndarray, submit: Callable[[int], None],
                    done: Callable[[int], None], deployment: int | None = 0) -> Callable[[int], None]:
    """The dispatch of a platform with one destination: a request of a stream it does not serve is rejected
    ``no_deployment`` at arrival (and ``done``); the others go to ``submit`` (recorded under ``deployment``
    unless None, when ``submit`` records it)."""
    stream = reqs.stream

    def dispatch(rid: int) -> None:
        if not serves[stream[rid]]:
            rec.reject(rid, "no_deployment", env.now)
            done(rid)
            return
        if deployment is not None:
            rec.deployment[rid] = deployment
        submit(rid)

    return dispatch


class Arrivals:
    """Open-loop and closed-loop arrivals of ``reqs`` (``arrival`` holds the times actually used, seconds)."""

    def __init__(self, env, reqs: Requests, duration_s: float, dispatch: Callable[[int], None]):
        self.env, self.reqs, self.duration_s, self.dispatch = env, reqs, float(duration_s), dispatch
        self.closed = {s: (conc, think) for s, conc, think in reqs.closed_loop}
        self.closed_queues: dict[int, list[int]] = {}
        if self.closed:
            idx = np.flatnonzero(np.isnan(reqs.arrival_s))
            for s in self.closed:
                self.closed_queues[s] = list(idx[reqs.stream[idx] == s][::-1])
        # closed-loop requests get their arrival times as the run goes; open-loop ones keep the workload's
        self.arrival = reqs.arrival_s.copy() if self.closed else reqs.arrival_s
        n_open = int(np.count_nonzero(~np.isnan(self.arrival)))
        self.expected = n_open + sum(len(q) for q in self.closed_queues.values())
        self.n_done = 0
        self.end_event = env.event()

    def done(self, rid: int) -> None:
        """A request left the platform (finished or rejected): closed-loop clients send their next one."""
        self.n_done += 1
        if self.closed_queues:
            s = int(self.reqs.stream[rid])
            if s in self.closed_queues:
                self._next_closed(s, self.closed[s][1])
        if self.n_done >= self.expected and not self.end_event.triggered:
            self.end_event.succeed()

    def _next_closed(self, s: int, think: float) -> None:
        q = self.closed_queues[s]
        env = self.env
        if not q or env.now >= self.duration_s:
            return
        rid = q.pop()

        def fire(_e=None, rid=rid):
            self.arrival[rid] = env.now
            self.dispatch(rid)

        if think > 0:
            env.timeout(think).callbacks.append(fire)
        else:
            fire()

    def _open_loop(self):
        """The open-loop arrivals as a SimPy process (on ``simpy.Environment``)."""
        order = np.flatnonzero(~np.isnan(self.reqs.arrival_s))
        times = self.reqs.arrival_s[order]
        now = 0.0
        for lo in range(0, len(order), 4096):  # Python lists of a chunk at a time, not of the whole run
            for rid, t in zip(order[lo:lo + 4096].tolist(), times[lo:lo + 4096].tolist(), strict=True):
                if t > now:
                    yield self.env.timeout(t - now)
                    now = t
                self.dispatch(rid)

    def start(self) -> None:
        """Schedule the open-loop arrivals and the closed-loop clients' first requests. On a ``FleetClock`` the
        open-loop ones are its own heap entries (``FleetClock.open_loop``: the same times and order as the
        SimPy process ``_open_loop``, without an event object and a generator resume per arrival time)."""
        if isinstance(self.env, FleetClock):
            order = np.flatnonzero(~np.isnan(self.reqs.arrival_s))
            self.env.open_loop(order, np.ascontiguousarray(self.reqs.arrival_s[order], np.float64), self.dispatch)
        else:
            self.env.process(self._open_loop())
        for s, (conc, _think) in self.closed.items():
            for _ in range(conc):
                self._next_closed(s, 0.0)
        if self.expected == 0:
            self.end_event.succeed()

    def run(self, horizon_s: float) -> float:
        """Run until every request left or ``horizon_s``; returns the end time (seconds)."""
        env = self.env
        env.run(until=env.any_of([self.end_event, env.timeout(horizon_s)]))
        return float(env.now)

    def finish(self, rec: Recorder, in_flight, end_s: float) -> int:
        """Mark ``in_flight`` (the ids the platform still holds) as in flight and store the arrivals.

        An arrived request that is neither finished, rejected nor held by the platform vanished: it is
        labelled ``lost`` (never relabelled as in flight, which would hide the bug) and counted; returns the
        number lost (``self.lost``), which every correct platform keeps at zero."""
        self.lost = finish_run(rec, self.arrival, in_flight, end_s)
        return self.lost


def finish_run(rec: Recorder, arrival_s: np.ndarray, in_flight, end_s: float) -> int:
    """``Arrivals.finish`` for a run whose arrivals were ``arrival_s`` (on any clock): mark ``in_flight``,
    label an arrived request without an outcome ``lost``, store the arrivals; returns the number lost."""
    rec.mark_in_flight(in_flight)
    arrived = ~np.isnan(arrival_s) & (arrival_s <= end_s)
    lost = arrived & (rec.outcome == 0)
    rec.outcome[lost] = LOST
    rec.arrival_s = arrival_s
    return int(np.count_nonzero(lost))
