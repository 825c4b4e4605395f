"""Sweep speed: points per minute of a 200-point sweep with 1 and 2 local worker processes.

    python benchmarks/sweep_speed.py [--points 200] [--duration 30] [--workers 1,2]

The scenario is small on purpose (so the sweep machinery, not one long simulation, is measured): one
llama-3.1-8b FP8 deployment on H100 (vLLM profile), Poisson arrivals, input lognormal median 512 / p99 4096,
output lognormal median 128 / p99 1024, ``--duration`` simulated seconds of arrivals. The grid is the
arrival rate (``1/s:12/s:N/10``) x the replicas (1..10), one replication each. Every worker count runs
the same plan into a fresh directory; wall time includes starting the process pool and writing the tables,
but not starting the fork server the pools are forked from (a one-off ~1-4 s per command: it imports
infersim), which a warm-up sweep does first.
Prints a line per worker count and one JSON line with points/minute, the scaling ratio, the simulation CPU
time per point (from the part files), the share of the time the workers spent inside a run (low: the
coordinator starves them) and the share of that on a CPU (low: other processes compete for the cores), and
the 1-minute load average: the ratio only means something on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from infersim.sweep.execute import LocalExecutor
from infersim.sweep.plan import build_plan
from infersim.sweep.runner import run_sweep


def scenario(duration_s: float) -> dict:
    return {
        "name": "sweep-speed", "seed": 1, "duration": duration_s, "drain": 120,
        "workload": {"streams": [{"name": "s", "arrival": {"kind": "poisson", "rate": 4},
                                  "input_tokens": {"kind": "lognormal", "median": 512, "p99": 4096, "max": 16000},
                                  "output_tokens": {"kind": "lognormal", "median": 128, "p99": 1024, "max": 4000}}]},
        "platforms": [{"name": "gpu", "kind": "gpu_fleet", "deployments": [{
            "model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8", "replicas": 1,
            "engine": {"kind": "vllm"}, "load_balancer": {"kind": "least_outstanding"}}]}],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=200, help="a multiple of 10")
    ap.add_argument("--duration", type=float, default=30.0, help="simulated seconds of arrivals per point")
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    t0 = time.perf_counter()
    plan = build_plan("sweep-speed.yaml", [f"workload.streams[0].arrival.rate=1/s:12/s:{args.points // 10}",
                                            "platforms[0].deployments[0].replicas=1:10:10"],
                      data=scenario(args.duration))
    plan_s = time.perf_counter() - t0
    n = len(plan.points)
    print(f"{n} points planned and validated in {plan_s:.2f}s ({os.cpu_count()} cores visible)")
    with tempfile.TemporaryDirectory() as tmp:  # start the fork server (it imports infersim once) before timing
        warm = build_plan("warm.yaml", ["seed=1,2"], data=scenario(1.0))
        run_sweep(warm, Path(tmp) / "out", executor=LocalExecutor(workers=2))
    rates, cpu_s, busy = {}, {}, {}
    for w in [int(x) for x in args.workers.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            res = run_sweep(plan, Path(tmp) / "out", executor=LocalExecutor(workers=w))
            wall, main_cpu = time.perf_counter() - t0, time.process_time() - c0
            parts = [json.loads(f.read_text()) for f in (Path(tmp) / "out" / "parts").glob("*.json")
                     if f.stem != "definition"]
            cpu = sum(r["cpu_s"] for r in parts)
            in_unit = sum(r["wall_s"] for r in parts)
        assert res.failed == 0 and res.ran == n, res.errors
        rates[w] = n / wall * 60
        cpu_s[w] = cpu
        print(f"{w} worker(s): {n} points in {wall:.1f}s = {rates[w]:.0f} points/min "
              f"(simulation CPU {cpu / n * 1e3:.0f} ms/point; workers inside a run {in_unit / wall / w:.0%} of the "
              f"time, on a CPU {cpu / in_unit:.0%} of that; coordinating process CPU {main_cpu / n * 1e3:.1f} ms/point)")
        busy[w] = (in_unit / wall / w, cpu / in_unit)
    ws = sorted(rates)
    ratio = rates[ws[-1]] / rates[ws[0]] if len(ws) > 1 else 1.0
    print(f"scaling {ws[0]} -> {ws[-1]} workers: x{ratio:.2f}")
    print(json.dumps({"bench": "sweep_speed", "points": n, "duration_s": args.duration,
                      "plan_s": round(plan_s, 3), "points_per_min": {str(w): round(r, 1) for w, r in rates.items()},
                      "scaling_ratio": round(ratio, 3), "cpu_ms_per_point": {str(w): round(c / n * 1e3, 1)
                                                                             for w, c in cpu_s.items()},
                      "workers_in_run_share": {str(w): round(b[0], 3) for w, b in busy.items()},
                      "on_cpu_share": {str(w): round(b[1], 3) for w, b in busy.items()},
                      "load_avg_1m": round(os.getloadavg()[0], 2), "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
