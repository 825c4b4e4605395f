"""Measured-run rows for ``infersim calibrate``: the arrival process of open-loop rows (poisson / constant /
gamma with vLLM's burstiness), several prefix groups, ``pp`` and ``gpu_memory_utilization`` per row."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infersim.calibrate.measured import parse_row, read_measured
from infersim.calibrate.runner import scenario_data, simulate_row
from infersim.core.errors import InfersimError
from infersim.validate import load_scenario
from infersim.workload.generate import generate


def rate_row(i=1, **kw):
    raw = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "tp": "1", "engine": "vllm", "rate_per_s": "10",
           "input_tokens": "512", "output_tokens": "64", "num_requests": "200", "ttft_mean_ms": "50"}
    raw.update({k: str(v) for k, v in kw.items()})
    return parse_row(raw, i)


def arrivals(row, seed=0):
    sc = load_scenario(f"row-{row.row}.yaml", data=scenario_data(row, seed=seed))
    return generate(sc.workload, seed=sc.seed, duration_s=sc.duration)


def test_arrival_column_defaults_to_poisson_and_reads_constant_and_gamma():
    assert rate_row().arrival == "poisson" and rate_row().burstiness == 1.0
    c = rate_row(arrival="Constant")
    assert c.arrival == "constant" and c.label().endswith("10/s constant")
    g = rate_row(arrival="gamma", burstiness="0.25")
    assert (g.arrival, g.burstiness) == ("gamma", 0.25) and g.label().endswith("gamma b=0.25")
    assert rate_row(burstiness="4").arrival == "gamma"  # vLLM: a burstiness alone means gamma gaps
    assert rate_row(arrival="poisson", burstiness="1").arrival == "poisson"
    closed = parse_row({"model": "llama-3.1-8b", "hardware": "h100-sxm", "tp": "1", "engine": "vllm",
                        "concurrency": "4", "input_tokens": "512", "output_tokens": "64"}, 1)
    assert closed.arrival is None


@pytest.mark.parametrize("kw, msg", [
    ({"arrival": "gamma"}, "needs burstiness"),
    ({"arrival": "uniform"}, "expected one of poisson, constant, gamma"),
    ({"arrival": "constant", "burstiness": "2"}, "needs arrival gamma"),
    ({"burstiness": "0"}, "burstiness: expected a number > 0"),
    ({"rate_per_s": "", "concurrency": "8", "arrival": "constant"}, "apply to rate_per_s rows"),
    ({"prefix_groups": "3"}, "prefix_groups needs prefix_tokens"),
    ({"prefix_tokens": "100", "prefix_groups": "0"}, "prefix_groups: expected an integer >= 1"),
    ({"pp": "0"}, "pp: expected an integer >= 1"),
])
def test_bad_rows_say_what_is_wrong(kw, msg):
    with pytest.raises(InfersimError, match=msg):
        rate_row(**kw)


def test_constant_rows_send_exactly_one_over_rate_apart():
    r = arrivals(rate_row(arrival="constant", rate_per_s="8", num_requests="100"))
    assert len(r) == 100
    np.testing.assert_allclose(np.diff(r.arrival_s), 1 / 8, rtol=0, atol=1e-12)
    assert r.arrival_s[0] == 0.0


def test_gamma_rows_follow_vllms_burstiness():
    """vLLM: gaps ~ Gamma(shape b, scale 1 / (rate b)): mean 1 / rate, coefficient of variation 1 / sqrt(b)."""
    for b in (0.25, 4.0):
        r = arrivals(rate_row(arrival="gamma", burstiness=b, rate_per_s="20", num_requests="40000"))
        gaps = np.diff(r.arrival_s)
        assert gaps.mean() == pytest.approx(1 / 20, rel=0.03)
        assert gaps.std() / gaps.mean() == pytest.approx(1 / math.sqrt(b), rel=0.05)
    sc = scenario_data(rate_row(arrival="gamma", burstiness="0.25"))
    assert sc["workload"]["streams"][0]["arrival"] == {"kind": "gamma", "rate": 10.0, "cv": 2.0}


def test_the_arrival_process_changes_the_simulated_latency():
    """Near saturation a constant schedule queues less than Poisson, and bursty gamma more (same mean rate)."""
    kw = {"rate_per_s": "5", "input_tokens": "2000", "output_tokens": "32", "num_requests": "400",
          "ttft_p99_ms": "100"}
    p99 = {}
    for name, extra in (("constant", {"arrival": "constant"}), ("poisson", {}),
                        ("bursty", {"arrival": "gamma", "burstiness": "0.2"})):
        sim = simulate_row(rate_row(**kw, **extra))
        assert sim.error is None and sim.finished > 300  # a random count over num_requests / rate seconds
        p99[name] = sim.predicted["ttft_p99_ms"]
    assert p99["constant"] < p99["poisson"] < p99["bursty"], p99


def test_prefix_groups_pp_and_memory_utilization_reach_the_scenario():
    row = rate_row(prefix_tokens="300", prefix_share="0.5", prefix_groups="4", pp="2", tp="2",
                   gpu_memory_utilization="0.6", model="llama-3.1-70b", precision="fp8")
    d = scenario_data(row)
    dep = d["platforms"][0]["deployments"][0]
    assert (dep["tp"], dep["pp"], dep["engine"]["gpu_memory_utilization"]) == (2, 2, 0.6)
    assert d["workload"]["streams"][0]["prefix"] == {"kind": "shared", "tokens": 300, "groups": 4, "share": 0.5}
    assert "pp2" in row.label()
    reqs = arrivals(row)
    keys = reqs.prefix_key[reqs.prefix_key >= 0]
    assert len(np.unique(keys)) == 4 and 0.4 < len(keys) / len(reqs) < 0.6


def test_pp_and_memory_utilization_change_the_simulated_replica():
    from infersim.build.gpu import deployment_setup
    from infersim.scenario.loader import scenario_catalog

    def setup(**kw):
        row = rate_row(model="llama-3.1-70b", precision="fp8", tp="2", **kw)
        sc = load_scenario("row.yaml", data=scenario_data(row))
        return deployment_setup(sc.platforms[0].deployments[0], scenario_catalog(sc))

    base, half, pp2 = setup(), setup(gpu_memory_utilization="0.5"), setup(pp="2")
    assert half.kv_blocks < base.kv_blocks < pp2.kv_blocks  # less memory for KV; twice the GPUs for it
    itl = {pp: simulate_row(rate_row(model="llama-3.1-70b", precision="fp8", tp="2", pp=pp, itl_mean_ms="20"))
           .predicted["itl_mean_ms"] for pp in ("1", "2")}
    assert itl["1"] != itl["2"]


def test_a_csv_with_the_new_columns(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("model,hardware,tp,pp,engine,rate_per_s,arrival,burstiness,input_tokens,output_tokens,"
                 "prefix_tokens,prefix_groups,gpu_memory_utilization,ttft_mean_ms\n"
                 "llama-3.1-8b,h100-sxm,1,1,vllm,5,constant,,512,64,,,,40\n"
                 "llama-3.1-8b,h100-sxm,1,1,vllm,5,,0.5,512,64,100,8,0.8,40\n"
                 "llama-3.1-70b,h100-sxm,4,2,vllm,5,poisson,,512,64,,,,40\n"
                 "llama-3.1-8b,h100-sxm,1,1,vllm,5,gamma,,512,64,,,,40\n")
    rows, problems = read_measured(f)
    assert [(r.arrival, r.burstiness, r.prefix_groups, r.pp, r.gpu_memory_utilization) for r in rows] == [
        ("constant", 1.0, 1, 1, None), ("gamma", 0.5, 8, 1, 0.8), ("poisson", 1.0, 1, 2, None)]
    assert [(p.row, "needs burstiness" in p.message) for p in problems] == [(4, True)]
    assert all(not r.extra for r in rows)
