"""Hypothesis properties of whole runs: nothing lost, tokens conserved, KV within capacity, causality,
determinism."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import scenario
from infersim.results.simulate import simulate

workloads = st.fixed_dictionaries({
    "rate": st.floats(0.5, 40.0),
    "inp": st.integers(16, 6000),
    "out": st.integers(1, 400),
    "seqs": st.sampled_from([1, 4, 32, 256]),
    "mbt": st.sampled_from([512, 2048, 8192]),
    "replicas": st.integers(1, 3),
    "prefix": st.booleans(),
    "lb": st.sampled_from(["round_robin", "least_outstanding", "power_of_two", "least_kv", "prefix_affinity"]),
    "gpu_util": st.sampled_from([0.9, 0.15]),  # 0.15 of an H100 leaves ~1.5 GB of KV: preemptions
    "seed": st.integers(0, 2**16),
})


def _scenario(w, duration=20.0, drain=600.0):
    stream = {"name": "s", "arrival": {"kind": "poisson", "rate": w["rate"]},
              "input_tokens": {"kind": "uniform", "low": 16, "high": w["inp"]},
              "output_tokens": {"kind": "uniform", "low": 1, "high": w["out"]}}
    if w["prefix"]:
        stream["prefix"] = {"kind": "shared", "tokens": 512, "groups": 3}
        stream["input_tokens"] = {"kind": "uniform", "low": 520, "high": max(w["inp"], 521)}
    return scenario(**{
        "seed": w["seed"], "duration": duration, "drain": drain,
        "workload.streams[0]": stream,
        "platforms[0].deployments[0].replicas": w["replicas"],
        "platforms[0].deployments[0].load_balancer": {"kind": w["lb"]},
        "platforms[0].deployments[0].engine.max_num_seqs": w["seqs"],
        "platforms[0].deployments[0].engine.max_batched_tokens": max(w["mbt"], w["seqs"]),
        "platforms[0].deployments[0].engine.gpu_memory_utilization": w["gpu_util"],
    })


@pytest.fixture
def replicas_made(monkeypatch):
    """Every engine replica the fixed deployments of a run create (the engine may be compiled, so its classes
    cannot be patched: the pure-Python ``Deployment`` is)."""
    from infersim.fleet import deployment

    made = []
    orig = deployment.Deployment.__init__

    def init(self, *a, **k):
        orig(self, *a, **k)
        made.extend(self.replicas)

    monkeypatch.setattr(deployment.Deployment, "__init__", init)
    return made


def assert_none_lost(res) -> None:
    """No request vanished: ``lost`` (arrived, no outcome ever written) is zero in the per-request record and
    in every summary row, and finished + rejected + in flight = arrived."""
    df = res.requests
    counts = df["outcome"].value_counts()
    assert counts.get("lost", 0) == 0, f"{counts.get('lost', 0)} requests lost"
    assert counts.get("pending", 0) == 0
    assert counts.get("finished", 0) + counts.get("rejected", 0) + counts.get("in_flight", 0) == len(df)
    assert (res.summary["lost"] == 0).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(w=workloads)
def test_run_invariants(replicas_made, w):
    replicas_made.clear()  # hypothesis reuses the fixture across examples
    sc = _scenario(w)
    res = simulate(sc)
    # KV never over capacity: the most blocks any cache ever held
    assert replicas_made and all(0 <= r.kv.peak_blocks <= r.kv.total_blocks for r in replicas_made)
    assert all(r.kv.used_blocks >= 0 for r in replicas_made)
    df = res.requests
    # none vanish: every arrived request finished, was rejected or is still held (none lost, none pending)
    assert_none_lost(res)
    # causality
    fin = df[df["outcome"] == "finished"]
    assert (fin["first_token_s"] >= fin["arrival_s"] - 1e-12).all()
    assert (fin["finish_s"] >= fin["first_token_s"] - 1e-12).all()
    assert (fin["cached_tokens"] < fin["input_tokens"]).all()
    rej = df[df["outcome"] == "rejected"]
    assert (rej["reason"] != "").all()
    # every timeline sample: KV usage within [0, 1]
    assert res.timeline["kv_usage"].between(0, 1).all()


def test_token_conservation(replicas_made):
    """Output tokens produced by the replicas equal the finished requests' outputs (with preemptions)."""
    sc = _scenario({"rate": 30, "inp": 3000, "out": 300, "seqs": 256, "mbt": 2048, "replicas": 1,
                    "prefix": False, "lb": "round_robin", "gpu_util": 0.15, "seed": 3}, duration=30)
    res = simulate(sc)
    df = res.requests
    assert (df["outcome"] == "finished").all()
    assert df["preemptions"].sum() > 0, "the case should exercise preemption"
    assert sum(r.tokens_out for r in replicas_made) == int(df["output_tokens"].sum())


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_bytes(tmp_path):
    w = {"rate": 15, "inp": 2000, "out": 100, "seqs": 64, "mbt": 2048, "replicas": 2, "prefix": True,
         "lb": "power_of_two", "gpu_util": 0.9, "seed": 11}
    a = simulate(_scenario(w)).save(tmp_path / "a")
    b = simulate(_scenario(w)).save(tmp_path / "b")
    assert _digest(a / "requests.parquet") == _digest(b / "requests.parquet")
    c = simulate(_scenario({**w, "seed": 12})).save(tmp_path / "c")
    assert _digest(a / "requests.parquet") != _digest(c / "requests.parquet")


def test_platforms_see_identical_requests():
    sc = scenario(**{"platforms[1]": {"name": "q", "kind": "gpu_fleet", "deployments": [
        {"model": "llama-3.1-8b", "hardware": "a100-80g", "precision": "bf16", "replicas": 2}]}})
    df = simulate(sc).requests
    p, q = df[df["platform"] == "p"], df[df["platform"] == "q"]
    for col in ("arrival_s", "input_tokens", "output_tokens", "stream"):
        assert np.array_equal(p[col].to_numpy(), q[col].to_numpy())


def test_prefix_cache_hits_on_shared_prompts():
    sc = scenario(**{"workload.streams[0].prefix": {"kind": "shared", "tokens": 2048, "groups": 1},
                     "workload.streams[0].input_tokens": {"kind": "fixed", "value": 2304}})
    s = simulate(sc).summary.iloc[0]
    # every request but the first shares 2048 of 2304 tokens (8 of 9 blocks of 256)
    assert s["prefix_hit_rate"] == pytest.approx(2048 / 2304, rel=0.03)
    off = simulate(scenario(**{"workload.streams[0].prefix": {"kind": "shared", "tokens": 2048, "groups": 1},
                               "workload.streams[0].input_tokens": {"kind": "fixed", "value": 2304},
                               "platforms[0].deployments[0].engine.prefix_caching": False})).summary.iloc[0]
    assert off["prefix_hit_rate"] == 0.0
    assert s["ttft_mean_s"] < off["ttft_mean_s"]


@pytest.mark.parametrize("lb", ["least_outstanding", "power_of_two"])
def test_a_deployment_that_drops_requests_is_caught(monkeypatch, lb):
    """A deployment that silently drops every 50th request it is given: the run counts them as ``lost`` (from
    the per-request record, not as a residual of the other counts) and the property above fails."""
    from infersim.fleet import deployment

    orig = deployment.Deployment.submit
    seen = {"n": 0, "dropped": 0}

    def submit(self, rid):
        seen["n"] += 1
        if seen["n"] % 50 == 0:
            seen["dropped"] += 1
            return  # vanishes: no replica, no outcome, no done()
        orig(self, rid)

    monkeypatch.setattr(deployment.Deployment, "submit", submit)
    w = {"rate": 20, "inp": 500, "out": 20, "seqs": 64, "mbt": 2048, "replicas": 2, "prefix": False,
         "lb": lb, "gpu_util": 0.9, "seed": 4}
    sc = _scenario(w, duration=10, drain=60)
    res = simulate(sc)
    assert seen["dropped"] >= 3
    assert int(res.summary["lost"].sum()) == seen["dropped"]
    assert int((res.requests["outcome"] == "lost").sum()) == seen["dropped"]
    with pytest.raises(AssertionError, match="requests lost"):
        assert_none_lost(res)
