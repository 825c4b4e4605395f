"""Customers: streams owned by named customers; per-customer revenue, cost, margin and SLO that sum to the
platform's; removing a customer keeps committed capacity as bought."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError  # noqa: F401  (the loader turns it into ScenarioError)

from conftest import scenario
from infersim.core.errors import ScenarioError
from infersim.results.simulate import simulate

TWO = {"workload.streams": [
    {"name": "big", "customer": "acme", "arrival": {"kind": "constant", "rate": 2},
     "input_tokens": {"kind": "fixed", "value": 500}, "output_tokens": {"kind": "fixed", "value": 50}},
    {"name": "small", "customer": "tail", "arrival": {"kind": "constant", "rate": 1},
     "input_tokens": {"kind": "fixed", "value": 100}, "output_tokens": {"kind": "fixed", "value": 200}}],
    "workload.customers": [{"name": "acme"}, {"name": "tail"}], "duration": 30, "drain": 120}
API = {"kind": "token_api", "name": "api", "model": "llama-3.1-8b",
       "prices": {"input_usd_per_mtok": 0.2, "output_usd_per_mtok": 0.6},
       "ttft": {"median": 0.1}, "output_speed": {"median": 100}}


def test_token_priced_platform_revenue_per_customer_is_exact():
    res = simulate(scenario(**TWO, platforms=[API]))
    c = res.customers.set_index("customer")
    # constant arrivals over 30 s: 60 acme requests of 500 + 50 tokens, 30 tail requests of 100 + 200
    assert c.loc["acme", "finished"] == 60 and c.loc["tail", "finished"] == 30
    acme = 60 * (500 * 0.2 + 50 * 0.6) / 1e6
    tail = 30 * (100 * 0.2 + 200 * 0.6) / 1e6
    assert c.loc["acme", "revenue_usd"] == pytest.approx(acme, rel=1e-12)
    assert c.loc["tail", "revenue_usd"] == pytest.approx(tail, rel=1e-12)
    assert c["revenue_usd"].sum() == pytest.approx(res.summary.iloc[0]["customer_usd"], rel=1e-12)
    assert c.loc["acme", "slo_attainment"] == 1.0  # no SLO set: every finished request meets it


def test_gpu_fleet_cost_split_by_tokens_and_sums_to_platform():
    res = simulate(scenario(**TWO))
    row = res.summary.iloc[0]
    c = res.customers.set_index("customer")
    tok_acme, tok_tail = 60 * 550, 30 * 300
    share = tok_acme / (tok_acme + tok_tail)
    assert c.loc["acme", "cost_share"] == pytest.approx(share, rel=1e-12)
    assert c.loc["acme", "cost_usd"] == pytest.approx(row["provider_cost_usd"] * share, rel=1e-12)
    assert c["cost_usd"].sum() == pytest.approx(row["provider_cost_usd"], rel=1e-12)
    assert c["revenue_usd"].sum() == pytest.approx(row["customer_usd"], rel=1e-12)
    m = c.loc["tail"]
    assert m["gross_margin"] == pytest.approx(1 - m["cost_usd"] / m["revenue_usd"])


@pytest.mark.parametrize("removal", [{"enabled": False}, {"rate_scale": 0}])
def test_removed_customer_keeps_committed_capacity(removal):
    pools = {"platforms[0].deployments": [
        {"model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8", "replicas": 1,
         "autoscaling": {"kind": "baseten", "min_replicas": 1, "max_replicas": 2}, "pools": ["res"]}],
        "platforms[0].pools": [{"name": "res", "hardware": "h100-sxm", "limit_gpus": 2,
                                "pricing": {"kind": "reserved", "usd_per_gpu_hour": 2.0}}]}
    full = simulate(scenario(**TWO, **pools))
    gone = simulate(scenario(**{**TWO, "workload.customers": [{"name": "acme", **removal}, {"name": "tail"}]},
                             **pools))
    c = gone.customers.set_index("customer")
    assert c.loc["acme", "requests"] == 0 and c.loc["acme", "revenue_usd"] == 0.0
    assert c.loc["tail", "requests"] == full.customers.set_index("customer").loc["tail", "requests"]
    row = gone.summary.iloc[0]
    # the commitment is paid for the whole run whether or not acme sends traffic
    assert row["provider_cost_usd"] == pytest.approx(2 * 2.0 * row["sim_end_s"] / 3600, rel=1e-9)
    assert c.loc["tail", "cost_usd"] == pytest.approx(row["provider_cost_usd"], rel=1e-12)
    assert math.isnan(c.loc["acme", "gross_margin"])


def test_rate_scale_multiplies_the_rate():
    res = simulate(scenario(**{**TWO, "workload.customers": [{"name": "acme", "rate_scale": 0.5},
                                                            {"name": "tail", "rate_scale": 2}]}, platforms=[API]))
    c = res.customers.set_index("customer")
    assert (c.loc["acme", "requests"], c.loc["tail", "requests"]) == (30, 60)


@pytest.mark.parametrize("change, path", [
    ({"workload.streams[1].customer": "nobody"}, "workload.streams[1].customer"),
    ({"workload.streams[1].customer": None}, "workload.streams[1].customer"),
    ({"workload.customers": [{"name": "acme"}, {"name": "acme"}]}, "workload.customers[1].name"),
])
def test_customer_errors_name_the_yaml_path(change, path):
    with pytest.raises(ScenarioError) as ei:
        scenario(**{**TWO, **change})
    assert path in str(ei.value)
