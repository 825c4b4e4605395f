"""Simulation speed: simulated requests per wall-second, events per request, memory per request.

    python benchmarks/sim_speed.py [--case single|fleet64|prefix|fleet_autoscale|all] [--scale 0.1] [--no-memory]

Cases (fixed workloads, Poisson arrivals, llama-3.1-8b FP8 on H100 with the vLLM profile,
input lognormal median 512 / p99 4096, output lognormal median 128 / p99 1024):
- single:  one replica, 20,000 requests at 12 req/s;
- fleet64: 64 replicas behind round robin, 500,000 requests at 64 x 12 req/s;
- prefix: prefix-cache heavy, 8 replicas behind prefix affinity, 100,000 requests at 8 x 12 req/s: 80 %
  carry one of 200 shared prefixes of 4,096 tokens (Zipf 1.0) plus a 150-token system prompt stream, and
  a multi-turn conversation stream (64 sessions of 8 turns) whose context is the next turn's prefix;
- fleet_autoscale: one simulated hour of a Baseten-autoscaled deployment (scale to zero, up to 200
  replicas, concurrency target 4, default cold starts) under traffic stepping 25 -> 100 -> 200 -> 400 ->
  400 -> 100 req/s every 10 minutes (~740,000 requests; ``--scale`` shrinks rates and max replicas).
Prints a table and one JSON line per case. ``--scale`` shrinks the request counts for a quick look.
Events per request count SimPy events plus the events of replicas running on their own clocks
(``platforms/alone.py``: fixed round-robin deployments) and of fixed fleets on a ``FleetClock``. ``engine``
says whether the compiled engine ran (``INFERSIM_PURE_PYTHON=1`` measures the Python source).
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

import simpy

from infersim.engine import compiled
from infersim.engine.clock import FleetClock
from infersim.fleet import deployment
from infersim.results.simulate import simulate
from infersim.validate import load_scenario

RATE_PER_REPLICA = 12.0


def case(name: str, replicas: int, n_requests: int, lb: str = "round_robin") -> dict:
    rate = RATE_PER_REPLICA * replicas
    data = {
        "name": name, "seed": 1, "duration": n_requests / rate, "drain": 600,
        "workload": {"streams": [{"name": "s", "arrival": {"kind": "poisson", "rate": rate},
                                  "input_tokens": {"kind": "lognormal", "median": 512, "p99": 4096, "max": 16000},
                                  "output_tokens": {"kind": "lognormal", "median": 128, "p99": 1024, "max": 4000}}]},
        "platforms": [{"name": "gpu", "kind": "gpu_fleet", "deployments": [{
            "model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8", "replicas": replicas,
            "engine": {"kind": "vllm"}, "load_balancer": {"kind": lb}}]}],
    }
    return data


def prefix_case(n_requests: int = 100_000) -> dict:
    """Prefix-cache heavy: long shared prefixes, a short system prompt and conversations on 8 replicas."""
    replicas = 8
    data = case("prefix", replicas, n_requests, lb="prefix_affinity")
    rate = RATE_PER_REPLICA * replicas
    data["platforms"][0]["deployments"][0]["engine"]["prefix_caching"] = True
    base = data["workload"]["streams"][0]
    base["arrival"] = {"kind": "poisson", "rate": 0.6 * rate}
    base["prefix"] = {"kind": "shared", "tokens": 4096, "groups": 200, "zipf_s": 1.0, "share": 0.8}
    system = {**base, "name": "system", "arrival": {"kind": "poisson", "rate": 0.2 * rate},
              "prefix": {"kind": "shared", "tokens": 150, "groups": 4}}
    chat = {**base, "name": "chat", "arrival": {"kind": "poisson", "rate": 0.2 * rate},
            "input_tokens": {"kind": "lognormal", "median": 200, "p99": 1500, "max": 4000},
            "prefix": {"kind": "conversation", "turns": 8, "sessions": 64}}
    data["workload"]["streams"] = [base, system, chat]
    return data


def fleet_autoscale_case(scale: float = 1.0) -> dict:
    data = case("fleet_autoscale", 1, 1)
    data["duration"] = 3600
    data["workload"]["streams"][0]["arrival"] = {"kind": "stages", "stages": [
        {"rate": r * scale, "duration": 600} for r in (25, 100, 200, 400, 400, 100)]}
    dep = data["platforms"][0]["deployments"][0]
    dep.pop("replicas")
    dep["load_balancer"] = {"kind": "least_outstanding"}
    dep["autoscaling"] = {"kind": "baseten", "max_replicas": max(1, round(200 * scale)), "concurrency_target": 4}
    return data


def measure(data: dict, memory: bool = False) -> dict:
    sc = load_scenario(f"{data['name']}.yaml", data=data)
    counter = {"events": 0}
    orig = simpy.Environment.step
    orig_init = deployment.Deployment.__init__
    replicas = []

    def counting_step(self):
        counter["events"] += 1
        return orig(self)

    clocks: list = []

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        replicas.extend(self.replicas)

    class TrackedClock(FleetClock):  # every platform's calendar (platforms.arrivals.new_clock, fixed fleets)
        def __init__(self):
            super().__init__()
            clocks.append(self)

    from infersim.platforms import arrivals, gpu_fleet, sram

    made = (arrivals.FleetClock, gpu_fleet.FleetClock, sram.FleetClock)
    arrivals.FleetClock = gpu_fleet.FleetClock = sram.FleetClock = TrackedClock
    simpy.Environment.step = counting_step
    deployment.Deployment.__init__ = init
    try:
        if memory:  # tracemalloc slows Python several-fold: memory and speed are measured in separate runs
            tracemalloc.start()
        t0 = time.perf_counter()
        res = simulate(sc, timeline_points=200)
        wall = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] if memory else 0
        tracemalloc.stop()
    finally:
        simpy.Environment.step = orig
        deployment.Deployment.__init__ = orig_init
        arrivals.FleetClock, gpu_fleet.FleetClock, sram.FleetClock = made
    counter["events"] += sum(r.events for r in replicas) + sum(c.events for c in clocks)
    n = len(res.requests)
    fin = int((res.requests["outcome"] == "finished").sum())
    out = {"case": data["name"], "engine": "compiled" if compiled() else "python", "requests": n, "finished": fin, "wall_s": round(wall, 3),
           "req_per_wall_s": round(n / wall), "events_per_request": round(counter["events"] / max(n, 1), 2),
           "sim_s": float(res.summary["sim_end_s"].iloc[0])}
    if "peak_replicas" in res.summary.columns:
        out["peak_replicas"] = int(res.summary["peak_replicas"].iloc[0])
    if memory:
        out["peak_mb"] = round(peak / 1e6, 1)
        out["peak_bytes_per_request"] = round(peak / max(n, 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", default="all", choices=["single", "fleet64", "prefix", "fleet_autoscale", "all"])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--no-memory", dest="memory", action="store_false",
                    help="skip the peak-memory run (traced with tracemalloc in a separate, slower run)")
    args = ap.parse_args()
    cases = []
    if args.case in ("single", "all"):
        cases.append(case("single", 1, int(20_000 * args.scale)))
    if args.case in ("fleet64", "all"):
        cases.append(case("fleet64", 64, int(500_000 * args.scale)))
    if args.case in ("prefix", "all"):
        cases.append(prefix_case(int(100_000 * args.scale)))
    if args.case in ("fleet_autoscale", "all"):
        cases.append(fleet_autoscale_case(args.scale))
    for c in cases:
        r = measure(c)
        if args.memory:
            m = measure(c, memory=True)
            r["peak_mb"], r["peak_bytes_per_request"] = m["peak_mb"], m["peak_bytes_per_request"]
        mem = f"; peak {r['peak_mb']} MB ({r['peak_bytes_per_request']} B/request)" if args.memory else ""
        print(f"{r['case']:>8} ({r['engine']}): {r['requests']:,} requests in {r['wall_s']:.1f}s wall = {r['req_per_wall_s']:,} req/s; "
              f"{r['events_per_request']} events/request{mem}")
        print(json.dumps(r))


if __name__ == "__main__":
    main()
