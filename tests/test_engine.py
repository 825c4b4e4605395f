"""Mechanism and theory checks of the replica engine (continuous batching, KV cache, fast-forward)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import simpy

from conftest import scenario
from infersim.build.gpu import deployment_setup
from infersim.catalog import default_catalog
from infersim.engine.recorder import Recorder
from infersim.engine.replica import Replica
from infersim.results.simulate import simulate
from infersim.workload.generate import generate


class FakePerf:
    """Prefill steps cost 10 ms + 10 us per prefill token; decode-only steps cost 10 ms."""

    def step_s(self, n_pre, pairs, n_pre_seqs, n_dec, dec_ctx, pre_ctx=0.0):
        return 0.010 + 1e-5 * n_pre

    def decode_steps_s(self, n_dec, ctx_sums):
        return np.full(np.shape(ctx_sums), 0.010)


def _setup(**engine):
    sc = scenario(**{f"platforms[0].deployments[0].engine.{k}": v for k, v in engine.items()})
    s = deployment_setup(sc.platforms[0].deployments[0], default_catalog())
    # hand-computed times: the fake step model only, none of the profile's API-server delays
    quiet = dataclasses.replace(s.knobs, schedule_delay_s=0.0, schedule_delay_per_seq_s=0.0, api_serial_s=0.0)
    return dataclasses.replace(s, perf=FakePerf(), knobs=quiet)


def _workload(arrivals, inputs, outputs):
    sc = scenario(**{"workload.streams[0].arrival": {"kind": "poisson", "rate": 1}})
    req = generate(sc.workload, seed=0, duration_s=1.0)
    n = len(arrivals)
    return dataclasses.replace(
        req, arrival_s=np.array(arrivals, float), input_tokens=np.array(inputs, np.int64),
        output_tokens=np.array(outputs, np.int64), stream=np.zeros(n, np.int16), difficulty=np.zeros(n),
        prefix_key=np.full(n, -1, np.int64), prefix_tokens=np.zeros(n, np.int64))


def _run(setup, req):
    env = simpy.Environment()
    rec = Recorder(len(req))
    rep = Replica(env, setup, req, rec, 0)

    def arrivals():
        now = 0.0
        for rid, t in enumerate(req.arrival_s):
            yield env.timeout(t - now)
            now = t
            rep.submit(rid)

    env.process(arrivals())
    env.run(until=100)
    return rec, rep


def test_two_requests_hand_computed():
    # A: t=0, 1000 in, 4 out. Prefill 0.01+0.01 = 0.02 -> first token at 0.020; decodes of 10 ms.
    # B: t=0.025, arrives during A's first decode (0.020-0.030), which is not interrupted.
    # 0.030: mixed step (A decode + B's 500-token prefill) = 0.015 -> 0.045: B's first token, A's 3rd.
    # 0.045: decode step for both -> 0.055: A's 4th token and B's 2nd: both finish.
    rec, rep = _run(_setup(), _workload([0.0, 0.025], [1000, 500], [4, 2]))
    assert rec.first_token_s[0] == pytest.approx(0.020)
    assert rec.finish_s[0] == pytest.approx(0.055)
    assert rec.first_token_s[1] == pytest.approx(0.045)
    assert rec.finish_s[1] == pytest.approx(0.055)
    assert rep.steps == 4
    assert rep.kv.used_blocks == 0


def test_fast_forward_matches_step_by_step():
    # an arrival cuts a 50-step fast-forward at the end of the step in progress
    rec, rep = _run(_setup(), _workload([0.0, 0.1234], [100, 100], [50, 3]))
    # A: prefill 0.011 -> first token 0.011; decode steps end at 0.021, 0.031, ..., 0.121, 0.131
    assert rec.first_token_s[0] == pytest.approx(0.011)
    assert rec.first_token_s[1] == pytest.approx(0.131 + 0.011)  # mixed step after the cut
    # A's remaining decodes are unaffected by B except for the one longer mixed step
    assert rec.finish_s[0] == pytest.approx(0.011 + 49 * 0.010 + 0.001)


def test_chunked_prefill_respects_budget():
    # 20,000-token prompt with a 8192-token budget: three prefill steps (8192, 8192, 3616)
    rec, rep = _run(_setup(max_batched_tokens=8192), _workload([0.0], [20000], [1]))
    expect = 3 * 0.010 + 1e-5 * 20000
    assert rec.first_token_s[0] == pytest.approx(expect)
    assert rep.steps == 3


def test_preemption_when_kv_runs_out():
    setup = _setup()
    setup = dataclasses.replace(setup, kv_blocks=100)  # 1,600 tokens of KV
    req = _workload([0.0, 0.0, 0.0], [500, 500, 500], [300, 300, 300])
    rec, rep = _run(setup, req)
    assert (rec.outcome == 1).all()
    assert rec.preemptions.sum() >= 1
    assert rep.kv.used_blocks == 0


def _mmc_scenario(c: int, rho: float, mean_tokens: float, seed: int, duration: float):
    # service = one prefill step of I tokens; I ~ geometric(mean) -> exponential service (mean 10 us x I)
    svc = 1e-5 * mean_tokens
    lam = rho * c / svc
    return scenario(**{
        "seed": seed, "duration": duration,
        "workload.streams[0].arrival": {"kind": "poisson", "rate": lam},
        "workload.streams[0].input_tokens": {"kind": "exponential", "mean": mean_tokens, "max": 100_000},
        "workload.streams[0].output_tokens": {"kind": "fixed", "value": 1},
        "platforms[0].deployments[0].replicas": c,
        "platforms[0].deployments[0].replica_concurrency": 1,
        "platforms[0].deployments[0].load_balancer": {"kind": "least_outstanding"},
        "platforms[0].deployments[0].engine.max_batched_tokens": 100_000,
        "platforms[0].deployments[0].engine.prefix_caching": False,
    }), lam, 1.0 / svc


def _erlang_c_wait(c: int, lam: float, mu: float) -> float:
    a = lam / mu
    rho = a / c
    s = sum(a**k / math.factorial(k) for k in range(c))
    pc = (a**c / math.factorial(c)) / ((1 - rho) * s + a**c / math.factorial(c))
    return pc / (c * mu - lam)


class ExpPerf(FakePerf):
    def step_s(self, n_pre, pairs, n_pre_seqs, n_dec, dec_ctx, pre_ctx=0.0):
        return 1e-5 * n_pre


@pytest.mark.parametrize("c,rho", [(1, 0.7), (3, 0.8)])
def test_queue_matches_erlang_c(monkeypatch, c, rho):
    import infersim.platforms.gpu_fleet as run_mod

    real = run_mod.deployment_setup

    def fake(spec, cat, path="d", **kw):  # the fake service only: none of the profile's API-server delays
        s = real(spec, cat, path, **kw)
        quiet = dataclasses.replace(s.knobs, schedule_delay_s=0.0, schedule_delay_per_seq_s=0.0, api_serial_s=0.0)
        return dataclasses.replace(s, perf=ExpPerf(), knobs=quiet)

    monkeypatch.setattr(run_mod, "deployment_setup", fake)
    waits = []
    for seed in range(4):
        sc, lam, mu = _mmc_scenario(c, rho, 2000.0, seed, duration=2000.0 / c)
        res = simulate(sc)
        df = res.requests
        waits.append(float((df["ttft_s"] - df["input_tokens"] * 1e-5).mean()))
    expected = _erlang_c_wait(c, lam, mu)
    got = float(np.mean(waits))
    # 4 seeds x ~30k-60k requests: the sample mean of W_q is within ~8% of Erlang C
    assert got == pytest.approx(expected, rel=0.08), (got, expected)


def test_littles_law_on_a_run():
    sc = scenario(**{"duration": 300, "workload.streams[0].arrival.rate": 20,
                     "platforms[0].deployments[0].replicas": 2})
    res = simulate(sc, timeline_points=3000)
    df = res.requests
    lam = len(df) / sc.duration
    w = float((df["finish_s"] - df["arrival_s"]).mean())
    tl = res.timeline[res.timeline["t_s"] <= sc.duration]
    n_in_system = tl.groupby("t_s")[["running", "waiting"]].sum().sum(axis=1).mean()
    assert n_in_system == pytest.approx(lam * w, rel=0.05)
