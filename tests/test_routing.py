"""Model routing: the quality model, router policies (pure) and the routed GPU fleet (mechanism)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import scenario
from infersim.core.errors import ScenarioError
from infersim.platforms.dispatch import beta_moments
from infersim.policy.quality import DEFAULT_QUALITY, QualityModel
from infersim.policy.routers import (
    ROUTERS,
    Candidate,
    RouteView,
    Spill,
    cascade_outcome,
    estimate_difficulty,
    sigma_from_accuracy,
)
from infersim.results.simulate import simulate

SMALL = {"name": "small", "model": "qwen2.5-coder-7b", "hardware": "h100-sxm", "precision": "fp8"}
LARGE = {"name": "large", "model": "qwen2.5-coder-32b", "hardware": "h100-sxm", "precision": "fp8"}


# -- quality model ---------------------------------------------------------------------------------------
def test_quality_model_shape():
    q = DEFAULT_QUALITY
    c7 = q.model_capability("a", 7.62, None)
    c32 = q.model_capability("b", 32.8, None)
    assert c7 == pytest.approx(0.45 + 0.15 * math.log10(7.62))
    assert c32 > c7  # larger models better
    assert float(q.p_acceptable(c7, c7)) == pytest.approx(0.5)  # half at difficulty = capability
    d = np.linspace(0, 1, 11)
    p = q.p_acceptable(c7, d)
    assert np.all(np.diff(p) < 0)  # harder is worse
    assert np.all(q.p_acceptable(c32, d) > p)
    assert q.model_capability("a", 7.62, "completion") == pytest.approx(c7 + 0.25)
    assert QualityModel(capability={"a": 0.9}).model_capability("a", 7.62, "agent") == pytest.approx(0.75)


def test_difficulty_estimate_accuracy():
    r = np.random.default_rng(3)
    d = r.beta(2, 2, 50_000)
    m, sd = beta_moments(2, 2)
    assert (m, sd) == pytest.approx((0.5, math.sqrt(4 / (16 * 5))))
    assert np.array_equal(estimate_difficulty(d, 1.0, sd, m, r), d)
    assert np.all(estimate_difficulty(d, 0.0, sd, m, r) == 0.5)
    est = estimate_difficulty(d, 0.8, sd, m, np.random.default_rng(4))
    assert est.min() >= 0 and est.max() <= 1
    # correlation 0.8 before clipping; clipping at [0, 1] lowers it a little
    assert 0.72 < np.corrcoef(est, d)[0, 1] < 0.81
    assert sigma_from_accuracy(0.8, 0.2) == pytest.approx(0.2 * 0.75)


def test_cascade_outcome_expectation():
    u = np.random.default_rng(0).random(200_000)
    pw, ps, rc, fe = 0.6, 0.9, 0.9, 0.1
    res = [cascade_outcome(pw, ps, rc, fe, float(x)) for x in u]
    esc = np.array([e for e, _ in res])
    p = np.array([x for _, x in res])
    assert esc.mean() == pytest.approx((1 - pw) * rc + pw * fe, abs=0.005)
    # in expectation: kept-and-acceptable + escalated x strong
    assert p.mean() == pytest.approx(pw * (1 - fe) + ((1 - pw) * rc + pw * fe) * ps, abs=0.005)


# -- router policies (pure) ------------------------------------------------------------------------------
def _route_all(router, caps, est):
    cands = tuple(Candidate(str(i), c) for i, c in enumerate(caps))
    return np.array([router.decide(RouteView(float(e), cands)).target for e in est])


@st.composite
def curves(draw):
    n = draw(st.integers(2, 4))
    caps = sorted(draw(st.lists(st.floats(0.05, 1.2), min_size=n, max_size=n, unique=True)))
    costs = np.cumsum(draw(st.lists(st.floats(0.1, 5.0), min_size=n, max_size=n)))
    slope = draw(st.floats(2.0, 30.0))
    a, b = draw(st.floats(0.5, 5)), draw(st.floats(0.5, 5))
    acc = draw(st.floats(0.3, 1.0))
    seed = draw(st.integers(0, 2**31))
    return np.array(caps), costs, QualityModel(slope=slope), (a, b), acc, seed


@settings(max_examples=60, deadline=None)
@given(curves(), st.floats(0.02, 0.98), st.floats(0.02, 0.98))
def test_threshold_quality_and_cost_monotone(cv, t1, t2):
    """A higher threshold never lowers quality and never lowers cost (same requests, same estimates)."""
    caps, costs, q, (a, b), acc, seed = cv
    t1, t2 = min(t1, t2), max(t1, t2)
    r = np.random.default_rng(seed)
    d = r.beta(a, b, 300)
    m, sd = beta_moments(a, b)
    est = estimate_difficulty(d, acc, sd, m, r)
    out = []
    for t in (t1, t2):
        pick = _route_all(ROUTERS["threshold"](t, q), caps, est)
        out.append((float(q.p_acceptable(caps[pick], d).mean()), float(costs[pick].sum())))
    (q1, c1), (q2, c2) = out
    assert q2 >= q1 - 1e-12
    assert c2 >= c1 - 1e-9


@settings(max_examples=60, deadline=None)
@given(curves(), st.floats(0.02, 0.98))
def test_perfect_router_never_worse_than_noisy(cv, t):
    """Request by request, exact difficulty is never worse than a noisy estimate: where some model clears
    the bar the perfect router meets it (the noisy one may not) at no higher cost than a noisy choice that
    also meets it; where none can, it picks a model at least as good. So it meets the bar at least as often."""
    caps, costs, q, (a, b), acc, seed = cv
    r = np.random.default_rng(seed)
    d = r.beta(a, b, 300)
    m, sd = beta_moments(a, b)
    router = ROUTERS["threshold"](t, q)
    picks = [_route_all(router, caps, est) for est in (d, estimate_difficulty(d, min(acc, 0.95), sd, m, r))]
    (qp, qn) = (q.p_acceptable(caps[p], d) for p in picks)
    (cp, cn) = (costs[p] for p in picks)
    met_p, met_n = qp >= t, qn >= t
    ok = (met_p & ~met_n) | (met_p & met_n & (cp <= cn)) | (~met_p & ~met_n & (qp >= qn - 1e-12))
    assert ok.all()
    assert met_p.sum() >= met_n.sum()


def test_spill_moves_up_and_falls_back():
    sp = Spill(max_waiting=3)
    fixed = ROUTERS["spillover"](0, DEFAULT_QUALITY, sp)
    api = Candidate("api", 0.8, external=True)
    busy = (Candidate("a", 0.5, waiting=3), Candidate("b", 0.7, waiting=5), api)
    r = fixed.decide(RouteView(0.5, busy))
    assert (r.target, r.spilled) == (2, True)
    r = fixed.decide(RouteView(0.5, (Candidate("a", 0.5, waiting=2), Candidate("b", 0.7))))
    assert (r.target, r.spilled) == (0, False)
    r = fixed.decide(RouteView(0.5, busy[:2]))  # everything over, no API: stay (queue at the first)
    assert (r.target, r.spilled) == (0, False)
    ttft = ROUTERS["spillover"](0, DEFAULT_QUALITY, Spill(max_ttft_s=1.0))
    assert ttft.decide(RouteView(0.5, (Candidate("a", 0.5, ttft_s=2.0), Candidate("b", 0.7)))).target == 1


def test_default_threshold_reproduces_routellm_order_of_magnitude(shared_dir):
    """routing.csv RouteLLM row: large cost cuts (35-85 %) at ~95 % of the strong model's quality. The
    default quality model, threshold (0.75) and accuracy (0.8) on Beta(2, 2) difficulty, weak
    qwen2.5-coder-7b vs strong qwen2.5-coder-32b: quality ratio within 0.94-0.97 with ~half the requests on
    the weak model, i.e. a 35 % cost cut at a 4x cost ratio per request."""
    rows = {r["system"]: r for r in csv.DictReader(open(shared_dir / "calibration" / "routing.csv"))}
    assert "95%" in rows["RouteLLM (LMSYS)"]["headline_result"]
    from infersim.scenario.routing import ThresholdRouterSpec

    spec = ThresholdRouterSpec(kind="threshold")
    q = DEFAULT_QUALITY
    r = np.random.default_rng(11)
    d = r.beta(2, 2, 40_000)
    m, sd = beta_moments(2, 2)
    est = estimate_difficulty(d, spec.accuracy, sd, m, r)
    caps = np.array([q.model_capability("w", 7.62, None), q.model_capability("s", 32.8, None)])
    pick = _route_all(ROUTERS["threshold"](spec.threshold, q), caps, est)
    ratio = q.p_acceptable(caps[pick], d).mean() / q.p_acceptable(caps[1], d).mean()
    weak = float((pick == 0).mean())
    assert 0.94 <= ratio <= 0.97
    cut = weak * (1 - 1 / 4)
    assert 0.30 <= cut <= 0.85


# -- routed fleet (mechanism) ----------------------------------------------------------------------------
def _routed(router, deployments, rate=6.0, duration=30, streams=None, **extra):
    ch = {"platforms[0].router": router, "platforms[0].deployments": deployments, "duration": duration,
          "drain": 300, "workload.streams[0].arrival.rate": rate}
    if streams is not None:
        ch["workload.streams"] = streams
    ch.update(extra)
    return scenario(**ch)


def _accounted(res):
    r = res.requests
    return r["outcome"].isin(["finished", "rejected", "in_flight"]).all()


def test_spillover_overflow_reaches_secondary_and_nothing_lost():
    capped = {**SMALL, "replica_concurrency": 1}
    sc = _routed({"kind": "spillover", "max_waiting": 2}, [capped, LARGE], rate=8.0)
    res = simulate(sc)
    r = res.requests
    assert _accounted(res) and (r["outcome"] == "finished").all()
    by = r["deployment"].value_counts()
    assert by["large"] > 0 and by["small"] > 0
    row = res.summary.iloc[0]
    assert row["spilled_share"] == pytest.approx(by["large"] / len(r))
    dep = res.deployments.set_index("deployment")
    assert dep.loc["small", "requests"] + dep.loc["large", "requests"] == len(r)


def test_spill_bound_reads_the_same_waiting_count_as_router_load(monkeypatch):
    """The spill bound reads ``router_waiting()`` per request (no tuple of three counts): it must equal
    ``router_load()[0]`` at every read, for a fixed deployment with a queue and an autoscaled one."""
    from infersim.fleet.autoscaled import AutoscaledDeployment
    from infersim.fleet.deployment import Deployment

    seen = []
    waiting = {cls: cls.router_waiting for cls in (Deployment, AutoscaledDeployment)}

    def checked(cls):  # the dispatcher binds each deployment's router_waiting when it is built
        def router_waiting(self):
            w = waiting[cls](self)
            seen.append((w, self.router_load()[0]))
            return w
        return router_waiting

    for cls in waiting:
        monkeypatch.setattr(cls, "router_waiting", checked(cls))
    capped = {**SMALL, "replica_concurrency": 1, "replicas": 2}
    scaled = {**LARGE, "autoscaling": {"kind": "baseten", "min_replicas": 1, "max_replicas": 3,
                                       "concurrency_target": 2}}
    res = simulate(_routed({"kind": "spillover", "max_waiting": 2}, [capped, scaled], rate=8.0))
    assert _accounted(res)
    assert len(seen) > 100 and all(a == b for a, b in seen)
    assert any(a > 0 for a, _ in seen)  # queues did build: the comparison is not only of zeros


def test_requests_in_the_api_server_delay_do_not_count_as_waiting():
    """Spill bounds see requests queued for a batch slot, not ones still in the engine profile's API-server
    delay: with a 1 s delay at 8 req/s about 8 requests are always in that delay, yet an idle-enough engine
    must not spill (counting them once spilled traffic that no replica count could keep)."""
    slow_api = {**SMALL, "engine": {"kind": "vllm", "perf": {"schedule_delay_s": 1.0}}}
    sc = _routed({"kind": "spillover", "max_waiting": 2}, [slow_api, LARGE], rate=8.0)
    res = simulate(sc)
    assert _accounted(res)
    assert (res.requests["deployment"] == "small").all()
    assert res.summary.iloc[0]["spilled_share"] == 0.0
    assert (res.requests["ttft_s"] >= 1.0).all()  # the delay did apply


def test_spillover_to_token_api_and_rate_limit():
    capped = {**SMALL, "replica_concurrency": 1}
    api = {"preset": "fireworks/llama-3.1-8b", "requests_per_minute": 30}
    sc = _routed({"kind": "spillover", "max_waiting": 1, "token_api": api}, [capped], rate=8.0)
    res = simulate(sc)
    r = res.requests
    assert _accounted(res)
    at_api = r[r["deployment"] == "api:fireworks/llama-3.1-8b"]
    assert len(at_api) > 0
    assert (at_api["outcome"] == "finished").sum() > 0
    assert (at_api["reason"] == "rate_limited").sum() > 0  # 30/min burst exhausted
    fin = at_api[at_api["outcome"] == "finished"]
    assert (fin["ttft_s"] > 0).all() and (fin["e2e_s"] >= fin["ttft_s"]).all()
    dep = res.deployments.set_index("deployment")
    tin, tout = fin["input_tokens"].sum(), fin["output_tokens"].sum()
    assert dep.loc["api:fireworks/llama-3.1-8b", "customer_usd"] == pytest.approx((tin + tout) * 0.10 / 1e6)


def test_cascade_escalates_and_e2e_covers_both_legs():
    streams = [{"name": "s", "task": "agent", "arrival": {"kind": "poisson", "rate": 4},
                "input_tokens": {"kind": "fixed", "value": 400}, "output_tokens": {"kind": "fixed", "value": 40},
                "difficulty": [4, 2]}]
    sc = _routed({"kind": "cascade", "judge": 0.5}, [SMALL, LARGE], streams=streams)
    res = simulate(sc)
    r = res.requests
    assert (r["outcome"] == "finished").all()
    row = res.summary.iloc[0]
    assert 0.2 < row["escalated_share"] < 1.0
    dep = res.deployments.set_index("deployment")
    n_esc = dep.loc["large", "escalated_in"]
    assert n_esc == round(row["escalated_share"] * len(r)) and n_esc > 0
    assert dep.loc["small", "requests"] == len(r)
    at_large = r[r["deployment"] == "large"]
    # the escalated answer starts after the first leg and the 0.5 s judge
    assert (at_large["ttft_s"] > 0.5).all()
    assert at_large["e2e_s"].median() > r[r["deployment"] == "small"]["e2e_s"].median() + 0.5


def test_threshold_routes_by_task_and_reports_quality():
    streams = [
        {"name": "tab", "task": "completion", "arrival": {"kind": "poisson", "rate": 4},
         "input_tokens": {"kind": "fixed", "value": 300}, "output_tokens": {"kind": "fixed", "value": 10}},
        {"name": "chat", "task": "agent", "arrival": {"kind": "poisson", "rate": 1},
         "input_tokens": {"kind": "fixed", "value": 300}, "output_tokens": {"kind": "fixed", "value": 40}},
    ]
    sc = _routed({"kind": "threshold", "accuracy": 1.0}, [SMALL, LARGE], streams=streams, duration=40)
    res = simulate(sc)
    r = res.requests
    share_small = r.groupby("stream", observed=True)["deployment"].apply(lambda s: (s == "small").mean())
    assert share_small["tab"] > 0.8 and share_small["chat"] < 0.3
    row = res.summary.iloc[0]
    assert 0 < row["quality"] <= row["quality_strongest"] + 1e-12 <= 1 + 1e-12
    assert row["quality_ratio"] == pytest.approx(row["quality"] / row["quality_strongest"])
    fixed = simulate(_routed({"kind": "fixed", "to": "large"}, [SMALL, LARGE], streams=streams, duration=40))
    assert fixed.summary.iloc[0]["quality_ratio"] == pytest.approx(1.0)
    assert (fixed.requests["deployment"] == "large").all()


def test_router_errors_name_the_path():
    with pytest.raises(ScenarioError) as e:
        _routed({"kind": "fixed", "to": "lrage"}, [SMALL, LARGE])
    assert "router.to" in str(e.value) and "did you mean 'large'" in str(e.value)
    with pytest.raises(ScenarioError) as e:
        _routed({"kind": "threshold", "deployments": ["small", "huge"]}, [SMALL, LARGE])
    assert "router.deployments[1]" in str(e.value)
    with pytest.raises(ScenarioError) as e:
        _routed({"kind": "spillover"}, [SMALL, LARGE])
    assert "max_waiting" in str(e.value)
    with pytest.raises(ScenarioError) as e:
        _routed({"kind": "spillover", "max_waiting": 2, "token_api": {"preset": "fireworks/llama-3.1-80b"}},
                [SMALL])
    assert "did you mean" in str(e.value)
    with pytest.raises(ScenarioError):
        _routed({"kind": "cascade"}, [SMALL])
    with pytest.raises(ScenarioError, match=r"workload.streams\[0\].task: unknown task class 'compleiton' "
                                            r"\(did you mean 'completion'\?\)"):
        scenario(**{"workload.streams[0].task": "compleiton"})
    # a router's quality.offsets may define a new task class
    _routed({"kind": "threshold", "quality": {"offsets": {"sql": -0.05}}}, [SMALL, LARGE],
            **{"workload.streams[0].task": "sql"})


def test_same_seed_same_routing():
    sc = _routed({"kind": "threshold"}, [SMALL, LARGE])
    a, b = simulate(sc).requests, simulate(sc).requests
    assert a["deployment"].equals(b["deployment"]) and np.array_equal(a["finish_s"], b["finish_s"])
    assert math.isfinite(simulate(sc).summary.iloc[0]["quality"])


def test_router_honours_deployment_streams():
    streams = [
        {"name": "tab", "task": "agent", "arrival": {"kind": "poisson", "rate": 3},
         "input_tokens": {"kind": "fixed", "value": 300}, "output_tokens": {"kind": "fixed", "value": 10}},
        {"name": "chat", "task": "agent", "arrival": {"kind": "poisson", "rate": 1},
         "input_tokens": {"kind": "fixed", "value": 300}, "output_tokens": {"kind": "fixed", "value": 20}},
    ]
    large_chat = {**LARGE, "streams": ["chat"]}
    res = simulate(_routed({"kind": "threshold"}, [SMALL, large_chat], streams=streams, duration=20))
    r = res.requests
    assert (r.loc[r["stream"] == "tab", "deployment"] == "small").all()  # hard tab requests cannot go large
    assert (r.loc[r["stream"] == "chat", "deployment"] == "large").mean() > 0.5
    res = simulate(_routed({"kind": "fixed", "to": "large"}, [SMALL, large_chat], streams=streams, duration=20))
    r = res.requests
    tab = r[r["stream"] == "tab"]
    assert (tab["outcome"] == "rejected").all() and (tab["reason"] == "no_deployment").all()
    assert (r.loc[r["stream"] == "chat", "outcome"] == "finished").all()
