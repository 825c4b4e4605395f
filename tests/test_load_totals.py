"""``LoadTotals`` kept where the state changes (the replicas count their own scheduler queues, the deployments
their submits and dones) must equal the sums over the attached replicas at every read: the prefix-affinity
balancer's ``total`` and a spill bound's ``router_waiting``, on fixed and autoscaled deployments, with
preemptions (requests back in the queue) and KV pressure. Hypothesis draws the load and the fleet."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import scenario
from infersim.fleet.autoscaled import AutoscaledDeployment
from infersim.fleet.deployment import Deployment
from infersim.policy.balancers import PrefixAffinity
from infersim.results.simulate import simulate

ENGINE = {"kind": "vllm", "max_num_seqs": 256, "max_batched_tokens": 2048, "gpu_memory_utilization": 0.135}
STREAM = {"name": "s", "arrival": {"kind": "poisson", "rate": 20},
          "input_tokens": {"kind": "uniform", "low": 16, "high": 3000},
          "output_tokens": {"kind": "uniform", "low": 1, "high": 800},
          "prefix": {"kind": "shared", "tokens": 512, "groups": 3}}


def _attached(d):
    return d.ready_engines if isinstance(d, AutoscaledDeployment) else d.replicas


def _check(d, seen):
    engines = _attached(d)
    t = d.totals
    seen.append((t.waiting, sum(len(e.waiting) for e in engines), t.outstanding,
                 sum(e.load.outstanding for e in engines)))


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rate=st.sampled_from([10.0, 25.0, 40.0]), replicas=st.integers(2, 4), seed=st.integers(0, 50),
       autoscaled=st.booleans())
def test_totals_equal_the_sums_over_attached_replicas(monkeypatch, rate, replicas, seed, autoscaled):
    seen: list = []
    choose = PrefixAffinity.choose
    waiting = {cls: cls.router_waiting for cls in (Deployment, AutoscaledDeployment)}

    def checked_waiting(cls):  # what a spill bound reads (the dispatcher binds it when it is built)
        def router_waiting(self):
            _check(self, seen)
            return waiting[cls](self)
        return router_waiting

    def checked_choose(self, views, rid, total=-1):
        if total >= 0:
            seen.append((0, 0, total, sum(v.outstanding for v in views)))
        return choose(self, views, rid, total)

    for cls in waiting:
        monkeypatch.setattr(cls, "router_waiting", checked_waiting(cls))
    monkeypatch.setattr(PrefixAffinity, "choose", checked_choose)
    first = {"name": "a", "model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8", "engine": ENGINE,
             "load_balancer": {"kind": "prefix_affinity"}}
    if autoscaled:
        first["autoscaling"] = {"kind": "baseten", "min_replicas": 1, "max_replicas": replicas,
                                "concurrency_target": 4}
    else:
        first["replicas"] = replicas
    second = {"name": "b", "model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8", "replicas": 1,
              "engine": ENGINE}
    sc = scenario(**{"seed": seed, "duration": 20, "drain": 300, "workload.streams": [{**STREAM, "arrival": {
        "kind": "poisson", "rate": rate}}], "platforms[0].deployments": [first, second],
        "platforms[0].router": {"kind": "spillover", "max_waiting": 6}})
    res = simulate(sc)
    assert len(seen) > 50
    assert all(w == sw and o == so for w, sw, o, so in seen)
    assert any(w > 0 for w, *_ in seen)  # queues did build
    assert res.requests["preemptions"].sum() > 0  # requests went back to the queue (derandomized examples)
