"""Fixed fleets off the SimPy clock: each replica on its own clock where no replica looks at another, and the
whole fleet on its own calendar (``engine.clock.FleetClock``) where they do.

Behind round robin (or with a single replica), with no deployment queue, no router and open-loop arrivals,
which replica serves a request depends only on the order of arrivals, so every replica's requests are known
before the run and no replica's state affects another's. Each replica then runs with its own event loop
(``engine.own_clock.run_alone``): the same engine code and the same numbers as on a shared SimPy clock
(checked by ``tests/test_alone.py`` and ``benchmarks/engine_fingerprint.py``), without a SimPy event per
step, arrival and scheduling delay. The timeline samples are taken inside each replica's loop and interleaved afterwards
in the order the SimPy sampler writes them.

Fixed deployments whose replicas do depend on each other (a load-aware balancer, a deployment queue with
``replica_concurrency``: the lpu and wafer platforms, a ``prefix_affinity`` fleet) run on one
``FleetClock`` (``run_on_fleet_clock``): the deployments' own code, SimPy's order of events, without SimPy's
per-event objects and generators (checked by ``tests/test_fleet_clock.py``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

import numpy as np

from infersim.engine.own_clock import run_alone, run_fleet
from infersim.engine.recorder import Recorder
from infersim.engine.replica import REPLICA_SAMPLE
from infersim.workload.generate import Requests


def replicas_independent(plat, reqs: Requests) -> bool:
    """Whether every replica of the ``gpu_fleet`` platform ``plat`` can be simulated alone."""
    if plat.router is not None or reqs.closed_loop:
        return False
    return all(d.autoscaling is None and d.replica_concurrency is None
               and (d.replicas == 1 or d.load_balancer.kind == "round_robin") for d in plat.deployments)


def fixed_fleet(plat, reqs: Requests) -> bool:
    """Whether the ``gpu_fleet`` platform ``plat`` can run on a ``FleetClock``: no router, no autoscaled
    deployment, open-loop arrivals."""
    return plat.router is None and not reqs.closed_loop and all(d.autoscaling is None for d in plat.deployments)


def run_on_fleet_clock(clock, deps: list, route: np.ndarray, reqs: Requests, rec: Recorder, horizon_s: float,
                       dt_s: float, rows: dict[str, list], progress: Callable[[float], None] | None) -> float:
    """Serve the open-loop requests on the fixed deployments ``deps``, built on ``clock`` with ``clock.done`` as
    their ``on_done`` (``route``: deployment index per stream, -1 for none: rejected on arrival). Fills ``rows``
    with the replica timeline as ``fleet.sampler.replica_sampler`` does; returns the end of the run."""
    rids = np.flatnonzero(~np.isnan(reqs.arrival_s)).astype(np.int64)
    arrival = np.ascontiguousarray(reqs.arrival_s[rids], dtype=np.float64)
    dest = np.ascontiguousarray(route[reqs.stream[rids]], dtype=np.int64)
    replicas = [r for d in deps for r in d.replicas]
    dep_of = [di for di, d in enumerate(deps) for _r in d.replicas]
    return run_fleet(clock, deps, rids, arrival, dest, rec, horizon_s, dt_s, replicas, dep_of, rows, progress)


def run_replicas_alone(deps: list, route: np.ndarray, reqs: Requests, rec: Recorder, horizon_s: float,
                       dt_s: float, rows: dict[str, list], progress: Callable[[float], None] | None) -> float:
    """Serve the open-loop requests on the fixed deployments ``deps`` (``route``: deployment index per stream,
    -1 for none), each replica alone. Fills ``rows`` with the replica timeline; returns the end of the run
    (the last request's departure, or ``horizon_s`` if work was left)."""
    # requests are numbered in arrival order, all open-loop here (replicas_independent)
    n_req = len(reqs)
    served = [di for di in range(len(deps)) if (route == di).any()]
    # one deployment serving every stream (the common case) needs no per-request deployment codes
    dep = None if len(served) == 1 and (route >= 0).all() else route[reqs.stream]
    lost = np.flatnonzero(dep < 0) if dep is not None else np.zeros(0, np.int64)
    end_s = 0.0
    for rid in lost.tolist():  # no deployment serves the stream: rejected on arrival
        rec.reject(rid, "no_deployment", float(reqs.arrival_s[rid]))
    if len(lost):
        end_s = float(reqs.arrival_s[lost].max())
    sample_s = []
    t = 0.0
    while True:  # the SimPy sampler's clock: each sample dt_s after the previous one
        t += dt_s
        if t >= horizon_s:
            break
        sample_s.append(t)
    replicas = [r for d in deps for r in d.replicas]
    samples: list[list] = []
    cut = False
    for di, d in enumerate(deps):
        if dep is None:  # the deployment's requests in arrival order: all or none, as a range
            mine = range(n_req if di == served[0] else 0)
            rec.deployment[:len(mine)] = di
        else:
            mine = np.flatnonzero(dep == di)
            rec.deployment[mine] = di
        n = len(d.replicas)
        for j, r in enumerate(d.replicas):  # round robin: the k-th request of the deployment to replica k mod n
            sel = np.asarray(mine[j::n], dtype=np.int64)
            r.on_done = None
            rows_r: list = []
            last, left = run_alone(r, sel.tolist(), reqs.arrival_s[sel].tolist(), horizon_s, sample_s, dt_s,
                                   rows_r)
            samples.append(rows_r)
            cut = cut or left
            end_s = max(end_s, last)
            if progress:
                progress(horizon_s * len(samples) / len(replicas))
    if cut:
        end_s = horizon_s
    k = len(sample_s) if cut else bisect_right(sample_s, end_s)  # the samples the shared clock would take
    for r, rows_r in zip(replicas, samples, strict=True):  # nothing happens after a replica's last event
        rows_r.extend(r.sample(t, dt_s) for t in sample_s[len(rows_r):k])
    if not (k and replicas):
        for key in ("t_s", "deployment", "replica", *REPLICA_SAMPLE):
            rows.setdefault(key, [])
        return end_s
    # columns as arrays (what the SimPy sampler's lists of floats and ints become in a DataFrame)
    vals = np.array(samples, dtype=float)  # (replica, sample, column) -> rows ordered by sample, then replica
    vals = vals.transpose(1, 0, 2).reshape(-1, len(REPLICA_SAMPLE))
    rows["t_s"] = np.repeat(np.array(sample_s[:k]), len(replicas))
    rows["deployment"] = np.tile(np.array([di for di, d in enumerate(deps) for _r in d.replicas], np.int64), k)
    rows["replica"] = np.tile(np.array([r.id for r in replicas], np.int64), k)
    for c, key in enumerate(REPLICA_SAMPLE):
        rows[key] = vals[:, c].astype(np.int64) if key in ("running", "waiting") else vals[:, c].copy()
    return end_s
