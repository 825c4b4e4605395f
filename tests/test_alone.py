"""Replicas simulated alone (platforms/alone.py) give exactly what the shared SimPy clock gives.

Each case runs twice: as it is (fixed round-robin deployments: every replica on its own event loop) and with
the shared-clock path forced; the requests, summary and timeline tables must be identical, bit for bit.
"""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import scenario
from infersim.platforms import gpu_fleet
from infersim.platforms.alone import replicas_independent
from infersim.results.simulate import simulate


def _both(sc, monkeypatch):
    alone = simulate(sc, timeline_points=50)
    with monkeypatch.context() as m:
        m.setattr(gpu_fleet, "replicas_independent", lambda plat, reqs: False)
        shared = simulate(sc, timeline_points=50)
    return alone, shared


def _same(a, b) -> None:
    for table in ("requests", "summary", "timeline"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table), check_exact=True, obj=table)


STREAMS = [
    {"name": "chat", "share": 0.7, "input_tokens": {"kind": "lognormal", "median": 800, "p99": 6000, "max": 12000},
     "output_tokens": {"kind": "lognormal", "median": 150, "p99": 900, "max": 2000},
     "prefix": {"kind": "shared", "tokens": 512, "groups": 4}},
    {"name": "code", "share": 0.3, "input_tokens": {"kind": "uniform", "low": 100, "high": 3000},
     "output_tokens": {"kind": "fixed", "value": 20}, "prefix": {"kind": "conversation", "turns": 4, "sessions": 8}},
]


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_round_robin_fleet_alone_equals_shared_clock(engine, monkeypatch):
    """Two deployments (one per stream), prefix caching, chunked prefill, each engine profile's scheduling
    delays; the second deployment is small enough to queue and preempt."""
    sc = scenario(**{"duration": 40, "workload.rate": 30, "workload.streams": STREAMS,
                     "platforms[0].deployments": [
                         {"name": "big", "model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8", "replicas": 3,
                          "streams": ["chat"], "engine": {"kind": engine, "max_batched_tokens": 1024}},
                         {"name": "small", "model": "llama-3.1-8b", "hardware": "l40s", "precision": "fp8", "replicas": 2,
                          "streams": ["code"], "engine": {"kind": engine, "max_num_seqs": 8,
                                                          "gpu_memory_utilization": 0.3}}]})
    alone, shared = _both(sc, monkeypatch)
    _same(alone, shared)
    df = alone.requests
    assert (df["outcome"] == "finished").all() and df["cached_tokens"].sum() > 0


def test_one_deployment_serving_every_stream_alone_equals_shared_clock(monkeypatch):
    """The common case (no per-request deployment codes are made): four replicas behind round robin."""
    sc = scenario(**{"duration": 30, "workload.rate": 30, "workload.streams": STREAMS,
                     "platforms[0].deployments[0].replicas": 4})
    alone, shared = _both(sc, monkeypatch)
    _same(alone, shared)
    assert set(alone.requests["replica"]) == {0, 1, 2, 3}


def test_unserved_stream_and_horizon_cut(monkeypatch):
    """A stream no deployment serves (rejected on arrival) and a run cut at its horizon with work in flight."""
    sc = scenario(**{"duration": 30, "drain": 1, "workload.rate": 40, "workload.streams": STREAMS,
                     "platforms[0].deployments": [
                         {"model": "llama-3.1-8b", "hardware": "a100-80g", "precision": "bf16", "replicas": 2,
                          "streams": ["chat"]}]})
    alone, shared = _both(sc, monkeypatch)
    _same(alone, shared)
    out = alone.requests["outcome"].value_counts()
    assert out["rejected"] > 0 and out["in_flight"] > 0


def test_only_state_blind_fleets_run_alone():
    def plat(**dep):
        return scenario(**{f"platforms[0].deployments[0].{k}": v for k, v in dep.items()}).platforms[0]

    from infersim.workload.generate import generate

    sc = scenario()
    reqs = generate(sc.workload, seed=1, duration_s=sc.duration, base_dir=sc.base_dir)
    assert replicas_independent(plat(replicas=4), reqs)
    assert replicas_independent(plat(replicas=1, load_balancer={"kind": "least_outstanding"}), reqs)
    assert not replicas_independent(plat(replicas=4, load_balancer={"kind": "least_outstanding"}), reqs)
    assert not replicas_independent(plat(replicas=4, replica_concurrency=8), reqs)
    assert not replicas_independent(plat(autoscaling={"kind": "baseten", "max_replicas": 4}), reqs)
