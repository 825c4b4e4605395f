"""A Cursor-scale hour: scenarios/cursor.yaml at Cursor Tab's published volume, every platform, one JSON line each.

    python benchmarks/cursor_hour.py [--scale 0.02] [--duration 3600] [--platform NAME ...] [--jobs 1]

cursor.yaml simulates a 1 % slice of Cursor Tab (46 + 4.6 req/s; its header: "over 400 million requests per
day", ~4,630 req/s). This benchmark multiplies every stream's rate by ``FACTOR`` (46 -> 4,182 tab and
4.6 -> 418 chat requests per second) x ``--scale`` and the fleets with it, for ``--duration`` simulated
seconds (an hour by default; warm-up 30 s and drain as in the scenario):

- the routed platform's deployments are autoscaled (Baseten autoscaler) from the scaled replica count up to
  4x it, concurrency target 16 (BENCHMARK ASSUMPTION: ~11 in flight per replica at 70 % utilization, about
  what a vLLM replica of the fixed fleet carries at this load);
- fixed deployments (the 32B-only baseline) and the lpu / wafer platforms get ``replicas`` x the factor;
- the token API's rate limits scale with the traffic.

The workload is drawn once (as ``infersim run`` does); each platform then runs in a forked child process, so
its CPU time (``time.process_time``, the stable figure on a shared machine) and its peak resident memory are
its own. Per platform it prints one JSON line: kind, requests, CPU seconds and CPU microseconds per request,
SimPy events per request (events scheduled; replicas on their own clock and fleets on a ``FleetClock`` add
theirs), wall seconds, peak RSS in MB (of that child, which includes the shared workload) and the replica
count. A first line gives the
workload's generation cost.

Memory: a forked child's ``ru_maxrss`` starts from the parent's resident set at the fork (the workload and
the interpreter, shared copy-on-write), so the per-child peaks count those pages once per child and do not
add up to the machine's use. The last line's ``peak_total_pss_mb`` does: the parent samples the
proportional set size (``Pss`` of ``/proc/<pid>/smaps_rollup``, shared pages split between the processes
sharing them) of itself and its children every ``PSS_SAMPLE_S`` and reports the largest sum (Linux only;
absent elsewhere). The child frees the platform's engine (``gc.collect()``, as ``infersim run`` does for a
large run) before building its results.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import multiprocessing as mp
import os
import resource
import sys
import threading
import time
from pathlib import Path

import simpy
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "cursor.yaml"
FACTOR = 4182 / 46  # Cursor Tab's ~4,630 req/s over the scenario's 1 % slice (tab 46 + chat 4.6 req/s); ~90.9
CONCURRENCY_TARGET = 16  # BENCHMARK ASSUMPTION (see the module docstring)
PSS_SAMPLE_S = 0.25  # seconds between the parent's samples of every process's PSS


def _rate(s: str, k: float) -> str:
    num, unit = str(s).split("/")
    return f"{float(num) * k:.6g}/{unit}"


def cursor_hour(scale: float, duration_s: float) -> dict:
    """cursor.yaml's data at ``FACTOR x scale`` of its volume, autoscaled routed deployments, ``duration_s`` long."""
    data = yaml.safe_load(SCENARIO.read_text())
    k = FACTOR * scale
    data["duration"] = float(duration_s)
    for s in data["workload"]["streams"]:
        s["arrival"]["rate"] = _rate(s["arrival"]["rate"], k)
    for p in data["platforms"]:
        if p["kind"] == "gpu_fleet":
            routed = "router" in p
            for d in p["deployments"]:
                n = max(1, round(d["replicas"] * k))
                if routed:
                    d.pop("replicas")
                    d["autoscaling"] = {"kind": "baseten", "min_replicas": n, "max_replicas": 4 * n,
                                        "concurrency_target": CONCURRENCY_TARGET}
                else:
                    d["replicas"] = n
        elif p["kind"] in ("lpu", "wafer"):
            p["replicas"] = max(1, round(p.get("replicas", 1) * k))
        elif p["kind"] == "token_api" and "rate_limits" in p:
            p["rate_limits"] = {key: max(1, round(v * k)) for key, v in p["rate_limits"].items()}
    return data


_STATE: dict = {}


def _run_platform(i: int) -> dict:
    """In a forked child: simulate platform ``i`` of the prepared scenario and build its results."""
    from infersim.fleet import deployment
    from infersim.results.simulate import SIMULATORS
    from infersim.results.tables import Results

    sc, reqs, catalog = _STATE["sc"], _STATE["reqs"], _STATE["catalog"]
    plat = sc.platforms[i]
    from infersim.engine.clock import FleetClock

    envs, replicas, clocks = [], [], []
    env_init, dep_init = simpy.Environment.__init__, deployment.Deployment.__init__

    def track_env(self, *a, **kw):
        env_init(self, *a, **kw)
        envs.append(self)

    def track_dep(self, *a, **kw):
        dep_init(self, *a, **kw)
        replicas.extend(self.replicas)

    class TrackedClock(FleetClock):  # every platform's calendar, wherever it is made
        def __init__(self):
            super().__init__()
            clocks.append(self)

    from infersim.platforms import arrivals, gpu_fleet, sram

    arrivals.FleetClock = gpu_fleet.FleetClock = sram.FleetClock = TrackedClock
    simpy.Environment.__init__, deployment.Deployment.__init__ = track_env, track_dep
    horizon = sc.duration + sc.drain
    dt = max(sc.duration / 600, 0.05)
    w0, c0 = time.perf_counter(), time.process_time()
    run = SIMULATORS[plat.kind](sc, plat, reqs, catalog, seed=sc.seed, horizon_s=horizon, timeline_dt=dt, progress=None)
    gc.collect()  # the engine is garbage in reference cycles (SimPy processes): free it before the table
    res = Results.build(sc.model_copy(update={"platforms": [plat]}), reqs, [run])
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    events = (sum(next(e._eid) for e in envs) + sum(getattr(r, "events", 0) for r in replicas)
              + sum(c.seq for c in clocks))
    n = len(reqs)
    out = {"platform": plat.name, "kind": plat.kind, "requests": n,
           "finished": int((res.requests["outcome"] == "finished").sum()),
           "cpu_s": round(cpu, 2), "cpu_us_per_request": round(cpu / max(n, 1) * 1e6, 2),
           "events_per_request": round(events / max(n, 1), 2), "wall_s": round(wall, 2),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    summ = res.summary.iloc[0]
    for col in ("replicas", "peak_replicas"):
        if col in res.summary.columns:
            out[col] = int(summ[col])
    return out


def _pss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        return []


class PssPeak:
    """The largest sum of PSS over this process and its descendants, sampled every ``PSS_SAMPLE_S`` (MB)."""

    def __init__(self):
        self.peak_kb = 0
        self.ok = _pss_kb(os.getpid()) is not None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(PSS_SAMPLE_S):
            todo, total = [os.getpid()], 0
            while todo:
                pid = todo.pop()
                total += _pss_kb(pid) or 0
                todo.extend(_children(pid))
            self.peak_kb = max(self.peak_kb, total)

    def __enter__(self):
        if self.ok:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.ok:
            self._thread.join()

    @property
    def mb(self) -> int | None:
        return round(self.peak_kb / 1024) if self.ok else None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of Cursor Tab's volume (and of the fleets)")
    ap.add_argument("--duration", type=float, default=3600.0, help="simulated seconds of traffic")
    ap.add_argument("--platform", action="append", help="only these platforms (names); repeatable")
    ap.add_argument("--jobs", type=int, default=1, help="platforms run at once (1: one after the other)")
    args = ap.parse_args(argv)

    from infersim.engine import compiled
    from infersim.scenario.loader import scenario_catalog
    from infersim.validate import load_scenario
    from infersim.workload.generate import generate

    data = cursor_hour(args.scale, args.duration)
    sc = load_scenario(str(SCENARIO), data=copy.deepcopy(data))
    if args.platform:
        sc = sc.model_copy(update={"platforms": [p for p in sc.platforms if p.name in args.platform]})
    w0, c0 = time.perf_counter(), time.process_time()
    catalog = scenario_catalog(sc, SCENARIO.parent)
    reqs = generate(sc.workload, seed=sc.seed, duration_s=sc.duration, base_dir=SCENARIO.parent)
    print(json.dumps({"workload": len(reqs), "scale": args.scale, "duration_s": args.duration,
                      "engine": "compiled" if compiled() else "python",
                      "cpu_s": round(time.process_time() - c0, 2), "wall_s": round(time.perf_counter() - w0, 2)}),
          flush=True)
    _STATE.update(sc=sc, reqs=reqs, catalog=catalog)
    ctx = mp.get_context("fork")
    w0 = time.perf_counter()
    rows = []
    with PssPeak() as pss, ctx.Pool(max(1, args.jobs), maxtasksperchild=1) as pool:
        for r in pool.imap(_run_platform, range(len(sc.platforms))):
            rows.append(r)
            print(json.dumps(r), flush=True)
    us = [r["cpu_us_per_request"] for r in rows]
    print(json.dumps({"platforms": len(rows), "mean_cpu_us_per_request": round(sum(us) / max(len(us), 1), 2),
                      "max_cpu_us_per_request": max(us, default=0), "total_cpu_s": round(sum(r["cpu_s"] for r in rows), 1),
                      "wall_s": round(time.perf_counter() - w0, 1),
                      "peak_rss_mb": max((r["peak_rss_mb"] for r in rows), default=0),
                      "peak_total_pss_mb": pss.mb,
                      "parent_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}),
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
