"""Fingerprints of the engine's results: a SHA-256 per table for a fixed set of runs.

    python benchmarks/engine_fingerprint.py [--only NAME ...] [--json FILE]

An optimisation of the replica engine must leave every simulated number unchanged: run this before and
after, and compare (any differing line is a bug). Runs: every ``scenarios/*.yaml`` (shortened), the three
``sim_speed.py`` cases at small scale, a preemption-heavy case, a chunked-prefill-heavy case, a
prefill-priority (sglang-like) case and a prefix-caching trace replay (Mooncake conversations). Each line
hashes the ``requests`` table (column bytes), the ``summary`` and the ``timeline`` (CSV, full precision).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from infersim.results.simulate import simulate
from infersim.validate import load_scenario

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from sim_speed import case, fleet_autoscale_case  # noqa: E402

SCENARIO_DURATION_S = {"azure-code-replay": 600, "cursor": 60, "gpu-generations": 90, "launch-spike": 1560,
                       "notion": 900}


def frame_digest(df: pd.DataFrame) -> str:
    """SHA-256 over column names, dtypes and raw values (floats by their bits)."""
    h = hashlib.sha256()
    for col in df.columns:
        s = df[col]
        h.update(f"{col}:{s.dtype}".encode())
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or str(s.dtype).startswith("str"):
            h.update("\x1f".join(map(str, s.tolist())).encode())
        else:
            h.update(np.ascontiguousarray(s.to_numpy()).tobytes())
    return h.hexdigest()


def csv_digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(df.to_csv(float_format="%.17g").encode()).hexdigest()


def digests(res) -> dict[str, str]:
    """The three table hashes of a run's results (16 hex digits each)."""
    return {"requests": frame_digest(res.requests)[:16], "summary": csv_digest(res.summary)[:16],
            "timeline": csv_digest(res.timeline)[:16]}


def _engine(**kw) -> dict:
    return {"kind": "vllm", **kw}


def extra_cases() -> dict:
    """Cases that stress preemption, chunked prefill, prefill priority and a prefix-cached trace."""
    def one(name, stream, engine, replicas=1, duration=40, lb="round_robin", **dep):
        return {"name": name, "seed": 5, "duration": duration, "drain": 600,
                "workload": {"streams": [{"name": "s", **stream}]},
                "platforms": [{"name": "p", "kind": "gpu_fleet", "deployments": [{
                    "model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8", "replicas": replicas,
                    "engine": engine, "load_balancer": {"kind": lb}, **dep}]}]}

    preempt = one("preempt", {"arrival": {"kind": "poisson", "rate": 30},
                              "input_tokens": {"kind": "uniform", "low": 16, "high": 3000},
                              "output_tokens": {"kind": "uniform", "low": 1, "high": 300}},
                  _engine(max_num_seqs=256, max_batched_tokens=2048, gpu_memory_utilization=0.15), replicas=2,
                  lb="least_kv")
    chunked = one("chunked", {"arrival": {"kind": "poisson", "rate": 6},
                              "input_tokens": {"kind": "lognormal", "median": 6000, "p99": 30000, "max": 60000},
                              "output_tokens": {"kind": "lognormal", "median": 64, "p99": 600, "max": 2000},
                              "prefix": {"kind": "shared", "tokens": 2048, "groups": 4}},
                  _engine(max_num_seqs=64, max_batched_tokens=512, prefix_caching=True), replicas=2,
                  lb="prefix_affinity")
    sglang = one("sglang", {"arrival": {"kind": "gamma", "rate": 20, "cv": 3},
                            "input_tokens": {"kind": "uniform", "low": 100, "high": 4000},
                            "output_tokens": {"kind": "uniform", "low": 1, "high": 500},
                            "prefix": {"kind": "shared", "tokens": 512, "groups": 3}},
                 {"kind": "sglang", "max_num_seqs": 32, "max_batched_tokens": 4096, "prefix_caching": True},
                 replicas=2, lb="power_of_two")
    small = one("tiny_seqs", {"arrival": {"kind": "poisson", "rate": 8},
                              "input_tokens": {"kind": "uniform", "low": 16, "high": 6000},
                              "output_tokens": {"kind": "uniform", "low": 1, "high": 400}},
                _engine(max_num_seqs=4, max_batched_tokens=8192, gpu_memory_utilization=0.15), replicas=3,
                lb="least_outstanding")
    trace = one("mooncake", {"arrival": {"kind": "trace", "path": "mooncake-conversation", "time_scale": 0.05}},
                _engine(max_num_seqs=128, max_batched_tokens=4096, prefix_caching=True), replicas=4,
                lb="prefix_affinity", duration=60)
    return {d["name"]: d for d in (preempt, chunked, sglang, small, trace)}


def runs():
    """(name, scenario, duration or None) for every fingerprinted run, in a fixed order."""
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        yield path.stem, lambda p=path: load_scenario(p), SCENARIO_DURATION_S.get(path.stem)
    bench = {"bench_single": case("bench_single", 1, 2000), "bench_fleet64": case("bench_fleet64", 64, 10_000),
             "bench_autoscale": fleet_autoscale_case(0.03)}
    bench["bench_autoscale"]["name"] = "bench_autoscale"
    bench["bench_autoscale"]["duration"] = 1500
    for name, data in {**bench, **extra_cases()}.items():
        yield name, lambda d=data: load_scenario(ROOT / f"{d['name']}.yaml", data=d), None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", help="run only these names")
    ap.add_argument("--json", help="also write {name: {table: digest}} to this file")
    args = ap.parse_args()
    out = {}
    for name, load, dur in runs():
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        res = simulate(load(), duration_s=dur) if dur else simulate(load())
        d = digests(res)
        out[name] = d
        print(f"{name:>18} {d['requests']} {d['summary']} {d['timeline']}  "
              f"({len(res.requests)} req, {int(res.requests['preemptions'].sum())} preempt, "
              f"{int(res.requests['cached_tokens'].sum())} cached tok, {time.perf_counter() - t0:.1f}s)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
