"""Fleet: autoscaling policies, replica lifecycle and cold starts, billing, capacity pools, failures."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import scenario
from infersim.build.gpu import deployment_setup
from infersim.catalog import default_catalog
from infersim.core.errors import ScenarioError
from infersim.economics import billed_seconds
from infersim.engine.recorder import Recorder
from infersim.fleet.autoscaled import READY, AutoscaledDeployment
from infersim.fleet.billing import BillingClock
from infersim.fleet.capacity import CapacityPools
from infersim.policy.autoscale import ScaleView, make_policy
from infersim.results.simulate import simulate
from infersim.workload.generate import generate

DEP = "platforms[0].deployments[0]"


class FakePerf:
    """Prefill steps cost 10 ms + 10 us per prefill token; decode-only steps cost 10 ms."""

    def step_s(self, n_pre, pairs, n_pre_seqs, n_dec, dec_ctx, pre_ctx=0.0):
        return 0.010 + 1e-5 * n_pre

    def decode_steps_s(self, n_dec, ctx_sums):
        return np.full(np.shape(ctx_sums), 0.010)


def _spec(**changes):
    base = {f"{DEP}.engine.perf": {"schedule_delay_s": 0.0, "api_serial_s": 0.0}}  # no API-server time
    base.update({f"{DEP}.{k}": v for k, v in changes.items()})
    return scenario(**base).platforms[0].deployments[0]


def _workload(arrivals, inputs, outputs):
    sc = scenario(**{"workload.streams[0].arrival": {"kind": "poisson", "rate": 1}})
    req = generate(sc.workload, seed=0, duration_s=1.0)
    n = len(arrivals)
    return dataclasses.replace(
        req, arrival_s=np.array(arrivals, float), input_tokens=np.full(n, inputs, np.int64),
        output_tokens=np.full(n, outputs, np.int64), stream=np.zeros(n, np.int16), difficulty=np.zeros(n),
        prefix_key=np.full(n, -1, np.int64), prefix_tokens=np.zeros(n, np.int64))


def _run(spec, req, until, probes=()):
    """Drive one autoscaled deployment directly; ``probes``: times at which to record ready replicas."""
    env = simpy.Environment()
    rec = Recorder(len(req))
    setup = dataclasses.replace(deployment_setup(spec, default_catalog()), perf=FakePerf())
    ids = iter(range(10**6))
    done = []
    d = AutoscaledDeployment(env, setup, spec, req, rec, ids.__next__, done.append, seed=0, platform="p")
    seen = {}

    def arrivals():
        now = 0.0
        for rid, t in enumerate(req.arrival_s):
            yield env.timeout(t - now)
            now = t
            d.submit(rid)

    def probe():
        now = 0.0
        for t in probes:
            yield env.timeout(t - now)
            now = t
            seen[t] = sum(s.state == READY for s in d.live)

    env.process(arrivals())
    env.process(probe())
    env.run(until=until)
    return d, rec, seen


COLD = {"provision": 10, "image_pull": 5, "weights_gb": 8, "weights_gbps": 4, "warmup": 3}  # 10+5+2+3 = 20 s


# -- policies ------------------------------------------------------------------------------------------
def _view(t=0.0, inflight=0.0, kv=0.0, starting=0, loading=0, ready=0, draining=0, queued=0):
    return ScaleView(t, inflight, kv, starting, loading, ready, draining, queued)


def test_baseten_policy_rule_and_defaults():
    a = _spec(autoscaling={"kind": "baseten", "max_replicas": 10}).autoscaling
    assert (a.min_replicas, a.autoscaling_window, a.scale_down_delay, a.concurrency_target,
            a.target_utilization) == (0, 60.0, 900.0, 1, 0.7)  # baseten.csv defaults
    p = make_policy(a)
    assert p.decide(_view(inflight=0.0, ready=3)).replicas == 0
    assert p.decide(_view(inflight=0.7, ready=1)).replicas == 1  # exactly at target: no scale-up
    assert p.decide(_view(inflight=0.71, ready=1)).replicas == 2
    assert p.decide(_view(inflight=3.5, ready=1)).replicas == 5
    assert p.decide(_view(inflight=100, ready=1)).replicas == 10  # max
    assert p.decide(_view(queued=1)).replicas == 1  # scale from zero on the first request


def test_kv_and_scheduled_policies():
    kv = make_policy(_spec(autoscaling={"kind": "kv_load", "max_replicas": 8, "target_kv_usage": 0.5}).autoscaling)
    assert kv.decide(_view(inflight=1, kv=0.9, ready=2)).replicas == 4
    assert kv.decide(_view(inflight=0, kv=0.0, ready=2)).replicas == 0
    sch = make_policy(_spec(autoscaling={"kind": "scheduled", "max_replicas": 5, "period": "24h", "schedule": [
        {"at": "8h", "replicas": 5}, {"at": "20h", "replicas": 1}]}).autoscaling)
    assert sch.decide(_view(t=3600)).replicas == 1  # before 08:00: the last entry wraps
    assert sch.decide(_view(t=9 * 3600)).replicas == 5
    assert sch.decide(_view(t=86400 + 21 * 3600)).replicas == 1


def test_schema_errors():
    with pytest.raises(ScenarioError, match="replicas.*within"):
        _spec(autoscaling={"kind": "baseten", "max_replicas": 2}, replicas=3)
    with pytest.raises(ScenarioError, match="needs 'autoscaling'"):
        _spec(failures={"at": [10]})
    with pytest.raises(ScenarioError, match="unknown pool"):
        _spec(autoscaling={"kind": "baseten"}, pools=["aws"])
    with pytest.raises(ScenarioError, match="max_replicas"):
        _spec(autoscaling={"kind": "scheduled", "schedule": [{"at": 0, "replicas": 3}]})
    with pytest.raises(ScenarioError, match=r"platforms\[0\]\.deployments\[0\]\.pools\[0\].*: pool 'aws' holds"):
        scenario(**{"platforms[0].pools": [{"name": "aws", "hardware": "a100", "limit_gpus": 4}],
                    f"{DEP}.autoscaling": {"kind": "baseten"}, f"{DEP}.pools": ["aws"]})


# -- billing and capacity ----------------------------------------------------------------------------------
def test_billing_arithmetic():
    assert billed_seconds(61, 60) == 120  # 61 s billed per minute costs 2 minutes
    assert billed_seconds(60, 60) == 60
    assert billed_seconds(60 + 1e-12, 60) == 60
    assert billed_seconds(0, 60) == 0
    b = BillingClock(60, ["weight_load", "ready"], usd_per_replica_hour=6.0, gpus_per_replica=2)
    b.enter(1, "provisioning", 0)
    b.enter(1, "weight_load", 10)
    b.enter(1, "ready", 20)  # still the same segment
    b.stop(1, 81)  # 71 s -> 2 minutes
    assert b.rounded_s[1] == 120 and b.raw_s[1] == pytest.approx(71)
    assert b.cost_usd(100) == pytest.approx(0.2) and b.gpu_hours(100) == pytest.approx(120 * 2 / 3600)
    b.enter(2, "ready", 0)
    b.enter(2, "image_pull", 1)  # not billed: a segment of 1 s closes as a minute
    b.enter(2, "ready", 2)
    b.stop(2, 3)
    assert b.rounded_s[2] == 120


def test_capacity_pools_preference_and_waiting():
    pools = CapacityPools({"a": 2, "b": 1})
    grants = []
    assert pools.acquire(1, ("a", "b"), grants.append) == ("a", 0)
    assert pools.acquire(1, ("a", "b"), grants.append) == ("a", 0)
    assert pools.acquire(1, ("a", "b"), grants.append) == ("b", 0)
    pool, ticket = pools.acquire(1, ("a", "b"), grants.append)
    assert pool is None and ticket
    pools.release("b", 1)
    assert grants == ["b"] and pools.used == {"a": 2, "b": 1}
    _, t2 = pools.acquire(1, ("a",), grants.append)
    pools.cancel(t2)
    pools.release("a", 1)
    assert grants == ["b"] and pools.used["a"] == 1


# -- lifecycle ---------------------------------------------------------------------------------------------
def test_first_request_after_scale_to_zero_waits_the_cold_start_stages():
    # scale to zero: nothing runs until the request at t=100 pokes the autoscaler (no tick wait). Cold start
    # 10 (provision) + 5 (image pull) + 8 GB / 4 GB/s (weights) + 3 (warm-up) = 20 s -> ready at 120.
    # Then the engine: prefill of 1000 tokens = 0.01 + 0.01 s -> first token at 120.020; 3 decodes of 10 ms.
    spec = _spec(autoscaling={"kind": "baseten"}, cold_start=COLD)
    d, rec, _ = _run(spec, _workload([100.0], 1000, 4), until=200)
    assert rec.first_token_s[0] == pytest.approx(120.020)
    assert rec.finish_s[0] == pytest.approx(120.050)
    s = d.live[0]
    assert (s.t_request, s.t_ready) == (100.0, pytest.approx(120.0))
    # billing (Baseten): from the weight load (t=115) on, not provisioning or image pull
    assert d.bill.open[s.id] == pytest.approx(115.0)
    assert d.stats["requests_waited_cold_start"] == 1


def test_cache_tier_speeds_later_loads():
    cold = dict(COLD, cache_gbps=16)  # 8 GB: 2 s from storage, 0.5 s from the cache
    spec = _spec(autoscaling={"kind": "baseten", "scale_down_delay": 0, "autoscaling_window": 10},
                 cold_start=cold)
    d, rec, _ = _run(spec, _workload([0.0, 200.0], 100, 2), until=400)
    logs = sorted(d.dead + d.live, key=lambda s: s.id)
    assert [s.cached for s in logs] == [False, True]
    assert logs[0].t_ready - logs[0].t_request == pytest.approx(20.0)
    assert logs[1].t_ready - logs[1].t_request == pytest.approx(18.5)


def _step_load(t0, t1, gap=0.25):
    return list(np.arange(t0, t1, gap))


def test_step_load_reaches_expected_replicas_within_window_plus_cold_start():
    # 4 req/s, each ~5 s long (500 decode steps of 10 ms): ~20 in flight; 3 per replica -> 7 replicas
    auto = {"kind": "baseten", "min_replicas": 1, "max_replicas": 20, "concurrency_target": 3,
            "target_utilization": 1.0, "autoscaling_window": 60, "scale_down_delay": 300}
    spec = _spec(autoscaling=auto, cold_start=COLD)
    t0, t1 = 100.0, 400.0
    bound = t0 + 60 + 20 + 2 * 2  # window + cold start + two ticks
    d, rec, seen = _run(spec, _workload(_step_load(t0, t1), 100, 500), until=1200,
                        probes=[t0 - 1, t0 + 19.9, bound, t1, t1 + 299, t1 + 5 + 60 + 2 + 300 + 1])
    assert seen[t0 - 1] == 1  # the warm replica
    assert seen[t0 + 19.9] == 1  # nothing can be ready before a cold start
    assert seen[bound] == 7
    assert seen[t1] == 7
    # scale-down only after the delay: traffic ends at t1, so no replica leaves before t1 + delay
    assert seen[t1 + 299] == 7
    assert seen[t1 + 5 + 60 + 2 + 300 + 1] == 1
    assert all(s.t_stop >= t1 + 300 for s in d.dead)


def test_scale_down_cancelled_when_traffic_returns():
    auto = {"kind": "baseten", "max_replicas": 1, "autoscaling_window": 10, "scale_down_delay": 120}
    spec = _spec(autoscaling=auto, cold_start=COLD)
    arr = _step_load(0, 60, 0.5) + _step_load(150, 200, 0.5)  # a 90 s lull, shorter than the delay
    d, _, seen = _run(spec, _workload(arr, 100, 100), until=240, probes=[40, 140, 190])
    assert seen == {40: 1, 140: 1, 190: 1}
    assert not d.dead and len(d.live) == 1  # flagged in the lull, unflagged when traffic came back
    # with a lull longer than the delay, the replica goes and a second cold start follows
    arr = _step_load(0, 60, 0.5) + _step_load(250, 300, 0.5)
    d, _, seen = _run(spec, _workload(arr, 100, 100), until=340, probes=[40, 240, 290])
    assert seen == {40: 1, 240: 0, 290: 1}
    assert [s.reason for s in d.dead] == ["scaled_down"]
    assert 60 + 120 <= d.dead[0].t_stop <= 60 + 1 + 10 + 2 + 120


def test_scheduled_failure_retries_on_another_replica():
    auto = {"kind": "baseten", "min_replicas": 2, "max_replicas": 2}
    spec = _spec(autoscaling=auto, cold_start=COLD, failures={"at": [5.0], "max_retries": 1},
                 load_balancer={"kind": "least_outstanding"})
    d, rec, _ = _run(spec, _workload([1.0, 1.0], 100, 1000), until=100)  # 10 s requests
    assert d.stats["replica_failures"] == 1 and d.stats["requests_retried"] == 1
    assert (rec.outcome == 1).all()
    failed = [s for s in d.dead if s.reason == "failed"]
    assert failed and failed[0].t_stop == 5.0
    assert len([s for s in d.dead + d.live if not s.warm]) == 1  # replaced through a cold start


# -- properties --------------------------------------------------------------------------------------------
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), rate=st.floats(0.5, 12), mtbf=st.floats(0.002, 0.05),
       max_rep=st.integers(1, 4), limit=st.integers(1, 4), timeout=st.sampled_from([None, 30.0]),
       retries=st.integers(0, 2), conc=st.sampled_from([None, 2]))
def test_properties_under_random_failures_and_load(seed, rate, mtbf, max_rep, limit, timeout, retries, conc):
    sc = scenario(**{
        "seed": seed, "duration": 120, "drain": 120,
        "workload.streams[0].arrival": {"kind": "stages", "stages": [{"rate": rate / 4, "duration": 40},
                                                                     {"rate": rate, "duration": 80}]},
        "platforms[0].pools": [{"name": "east", "hardware": "h100-sxm", "limit_gpus": limit},
                               {"name": "west", "hardware": "h100", "limit_gpus": 1}],
        f"{DEP}.pools": ["east", "west"],
        f"{DEP}.autoscaling": {"kind": "baseten", "max_replicas": max_rep, "autoscaling_window": 10,
                               "scale_down_delay": 20, "concurrency_target": 4},
        f"{DEP}.cold_start": {"provision": 5, "image_pull": 2, "warmup": 3},
        f"{DEP}.failures": {"mtbf_gpu_hours": mtbf, "at": [50.0], "max_retries": retries},
        f"{DEP}.replica_concurrency": conc, f"{DEP}.queue_timeout": timeout})
    res = simulate(sc, timeline_points=120)
    row = res.summary.iloc[0]
    # nothing is lost
    req = res.requests
    assert (req["outcome"] != "pending").all()
    assert row["finished"] + row["rejected"] + row["in_flight"] == row["requests"]
    # never more replicas than max_replicas, nor GPUs than the pools hold
    fl = res.fleet
    assert (fl[["starting", "loading", "ready", "draining"]].sum(axis=1) <= max_rep).all()
    log = res.replica_log
    events = sorted([(t, 1, p) for t, p in zip(log["capacity_s"], log["pool"], strict=True) if p] +
                    [(t, -1, p) for t, p in zip(log["stopped_s"], log["pool"], strict=True) if p])
    used = {"east": 0, "west": 0}
    for _, delta, pool in sorted(events, key=lambda e: (e[0], e[1])):
        used[pool] += delta
        assert used["east"] <= limit and used["west"] <= 1
    # billed time covers ready time; costs are not negative
    assert (log["billed_s"] + 1e-9 >= log["ready_time_s"]).all()
    assert (log["billed_s"] + 1e-9 >= log["billed_raw_s"]).all()
    assert row["cost_usd"] >= 0 and not math.isnan(row["cost_usd"])
    assert row["cost_usd"] == pytest.approx(log["billed_s"].sum() * 6.50 / 3600)


def test_results_tables_and_summary(tmp_path):
    sc = scenario(**{"duration": 60, f"{DEP}.autoscaling": {"kind": "baseten", "max_replicas": 2},
                     f"{DEP}.cold_start": {"provision": 5, "image_pull": 0, "warmup": 1}})
    res = simulate(sc)
    row = res.summary.iloc[0]
    w_gb = default_catalog().get_model("llama-3.1-8b").weight_bytes("fp8") / 1e9  # at 5 GB/s (default)
    assert row["cold_starts"] >= 1 and row["cold_start_p50_s"] == pytest.approx(5 + w_gb / 5 + 1)
    assert row["requests_waited_cold_start"] >= 1
    assert 0 <= row["idle_share"] <= 1 and row["gpu_hours"] > 0
    out = res.save(tmp_path / "out")
    assert (out / "fleet.parquet").exists() and (out / "replicas.parquet").exists()
    fixed = simulate(scenario(duration=60))  # no autoscaling: billed as ready for the whole run
    frow = fixed.summary.iloc[0]
    assert frow["cold_starts"] == 0 and frow["peak_replicas"] == 1
    assert frow["cost_usd"] == pytest.approx(billed_seconds(frow["sim_end_s"], 60) * 6.50 / 3600)


def test_launch_spike_scenario_cold_starts_cost_latency_warm_floor_costs_money():
    from pathlib import Path

    from infersim.validate import check_scenario, load_scenario

    path = Path(__file__).resolve().parents[1] / "scenarios" / "launch-spike.yaml"
    sc = load_scenario(path)
    check_scenario(sc, path.parent)
    res = simulate(sc, duration_s=1440, timeline_points=60)  # the idle 20 minutes and the launch's first 4
    cold, warm = (res.summary.set_index("platform").loc[p] for p in ("scale-to-zero", "warm"))
    assert cold["cold_starts"] >= 1 and cold["requests_waited_cold_start"] > 0
    assert warm["requests_waited_cold_start"] == 0
    assert cold["ttft_p99_s"] > 60 > 1 > warm["ttft_p99_s"]
    assert cold["customer_usd"] < warm["customer_usd"]  # the warm floor paid for 20 idle minutes


def test_scheduled_policy_end_to_end_and_kv_load_runs():
    auto = {"kind": "scheduled", "max_replicas": 3, "period": 200, "tick": 1,
            "schedule": [{"at": 0, "replicas": 1}, {"at": 50, "replicas": 3}, {"at": 150, "replicas": 0}]}
    spec = _spec(autoscaling=auto, cold_start=COLD)
    d, _, seen = _run(spec, _workload([1.0], 100, 2), until=199, probes=[49, 69.9, 71, 149, 151])
    # the replica asked for at 0 (first tick at 1 s; the request at 1 s) is ready by 21 s
    assert seen == {49: 1, 69.9: 1, 71: 3, 149: 3, 151: 0}  # +2 asked at 50, ready at 70; none from 150 on
    kv = _spec(autoscaling={"kind": "kv_load", "max_replicas": 3, "target_kv_usage": 0.001, "scale_down_delay": 0},
               cold_start=COLD)
    d, rec, seen = _run(kv, _workload(_step_load(0, 60, 0.5), 2000, 200), until=300, probes=[59])
    assert (rec.outcome == 1).all() and seen[59] >= 2


def test_same_seed_same_fleet():
    changes = {"duration": 60, f"{DEP}.autoscaling": {"kind": "baseten", "max_replicas": 3},
               f"{DEP}.cold_start": {"provision": 5, "image_pull": 1, "warmup": 1},
               f"{DEP}.failures": {"mtbf_gpu_hours": 0.005}, "workload.streams[0].arrival.rate": 6}
    a, b = simulate(scenario(**changes)), simulate(scenario(**changes))
    assert a.replica_log.equals(b.replica_log) and a.fleet.equals(b.fleet)
    assert a.requests.equals(b.requests)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=400))
def test_fleet_sampler_mean_is_numpys_mean_to_the_last_bit(xs):
    """The fleet timeline's utilization and KV columns average with ``sampler._mean`` (NumPy's add.reduce over
    the count): it must be ``np.mean``, bit for bit, at any replica count (pairwise blocks past 8 included)."""
    from infersim.fleet.sampler import _mean

    assert _mean(xs) == float(np.mean(xs))
