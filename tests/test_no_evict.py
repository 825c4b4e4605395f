"""TensorRT-LLM's "guaranteed no evict" capacity scheduler vs vLLM's recompute preemption, chosen by the engine
profile (``kv_cache.capacity_scheduler``) or ``engine.capacity_scheduler``: under KV pressure the no-evict
policy never preempts (it admits only what it can finish) while recompute preempts."""

from __future__ import annotations

import pytest

from conftest import scenario
from infersim.build.gpu import deployment_setup
from infersim.catalog import default_catalog
from infersim.policy.batching import reserve_tokens
from infersim.results.simulate import simulate

# ~1.5 GB of KV on an H100 for an 8B model (0.15 of the memory after weights): many requests at once overflow it
TIGHT = {"workload.streams[0].arrival.rate": 30, "workload.streams[0].input_tokens": {"kind": "uniform", "low": 200, "high": 3000},
         "workload.streams[0].output_tokens": {"kind": "uniform", "low": 50, "high": 400}, "duration": 30,
         "platforms[0].deployments[0].engine.gpu_memory_utilization": 0.15}


def _run(policy: str | None, kind: str = "vllm"):
    changes = {**TIGHT, "platforms[0].deployments[0].engine.kind": kind}
    if policy is not None:
        changes["platforms[0].deployments[0].engine.capacity_scheduler"] = policy
    return simulate(scenario(**changes))


def test_reserve_tokens_rule():
    assert reserve_tokens(False, 300, 900) == 300 and reserve_tokens(True, 300, 900) == 900


@pytest.mark.parametrize(("kind", "no_evict"), [("vllm", False), ("sglang", False), ("trtllm", True)])
def test_policy_defaults_to_the_engine_profile(kind, no_evict):
    sc = scenario(**{"platforms[0].deployments[0].engine.kind": kind})
    assert deployment_setup(sc.platforms[0].deployments[0], default_catalog()).knobs.no_evict is no_evict
    sc = scenario(**{"platforms[0].deployments[0].engine.kind": kind,
                     "platforms[0].deployments[0].engine.capacity_scheduler": "recompute"})
    assert deployment_setup(sc.platforms[0].deployments[0], default_catalog()).knobs.no_evict is False


def test_no_evict_never_preempts_where_recompute_does():
    rec, ne = _run("recompute").requests, _run("guaranteed_no_evict").requests
    assert rec["preemptions"].sum() > 0
    assert ne["preemptions"].sum() == 0
    assert (ne["outcome"] == "finished").sum() == (rec["outcome"] == "finished").sum() == len(rec)
    # reserving each request's maximum KV admits fewer at once: queueing, so a later first token on average
    assert ne["ttft_s"].mean() > rec["ttft_s"].mean()
    assert _run(None, "trtllm").requests["preemptions"].sum() == 0  # TensorRT-LLM's default
