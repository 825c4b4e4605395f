"""Economics: exact arithmetic of billing, pool pricing, owned hardware, customer prices; fleet totals."""

from __future__ import annotations

import csv
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import scenario
from infersim import economics as econ
from infersim.fleet.billing import BillingClock
from infersim.results.simulate import simulate

DEP = "platforms[0].deployments[0]"
H100_PROVIDER = 3.20  # baseten_prices.yaml provider rate (hardware.csv row, Hyperstack on-demand)
H100_CUSTOMER_MIN = 0.10833  # baseten.csv instance_price H100


def test_61_seconds_billed_per_minute_cost_two_minutes():
    assert econ.billed_usd([61.0], 60.0, 6.0, 1) == pytest.approx(2 * 6.0 / 60)
    assert econ.billed_usd([60.0, 0.0, 1.0], 60.0, 6.0, 2) == pytest.approx(2 * 2 * 6.0 / 60)
    clock = BillingClock(60.0, ["ready"], 6.0, 1)
    clock.enter(1, "ready", 0.0)
    clock.enter(1, "draining", 61.0)  # not billed by this clock
    assert clock.segments[1] == [61.0] and clock.billed_s(100.0) == 120.0
    prov = BillingClock(1.0, ["ready", "draining"], 3.0, 1)
    clock.also.append(prov)
    clock.enter(2, "ready", 10.0)
    clock.stop(2, 12.5)
    assert prov.segments[2] == [2.5] and prov.billed_s(20.0) == 3.0


def test_commitment_and_owned_arithmetic():
    assert econ.commitment_usd(4, 2.5, 1800.0) == 5.0
    assert econ.commitment_usd(4, 2.5, -1.0) == 0.0
    o = econ.owned_usd_per_hour(27_500, 700, 2)
    assert o["capex"] == pytest.approx(2 * 27_500 / (4 * 8766))
    assert o["power"] == pytest.approx(1.4 * 1.3 * 0.08)
    assert o["hosting"] == pytest.approx(1.4 * 150 / 730.5)
    assert o["total"] == pytest.approx(o["capex"] + o["power"] + o["hosting"])
    from infersim.economics import owned_cost_breakdown

    assert owned_cost_breakdown("h100-sxm", 2).total_usd_per_hour == pytest.approx(o["total"])


def test_price_list_and_fallbacks(shared_dir):
    rows = list(csv.DictReader(open(shared_dir / "calibration" / "baseten.csv")))
    price = {r["parameter"]: float(r["value"]) for r in rows if r["category"] == "instance_price"}
    assert econ.customer_usd_per_gpu_minute("h100-sxm", None) == (price["H100 (80 GB)"], "price_list")
    assert econ.customer_usd_per_gpu_minute("l4", None)[0] == price["L4 (L4:4x16; 4 vCPU 16 GiB)"]
    assert econ.customer_usd_per_gpu_minute("l40s", 1.2) == (pytest.approx(0.02), "fallback")
    assert econ.customer_usd_per_gpu_minute("l40s", None)[1] == "none"
    assert econ.customer_usd_per_gpu_minute("h100-sxm", None, {"h100-sxm": 0.2}) == (0.2, "override")
    assert econ.provider_usd_per_gpu_hour("h100-sxm", 6.5) == H100_PROVIDER
    assert econ.provider_usd_per_gpu_hour("h100-sxm", 6.5, "reserved") == pytest.approx(3.20 * 0.85)
    assert econ.provider_usd_per_gpu_hour("h100-sxm", 6.5, "spot") == pytest.approx(3.20 * 0.80)
    assert econ.provider_usd_per_gpu_hour("l4", 0.85) == 0.85  # no provider row: the catalog price
    assert econ.provider_usd_per_gpu_hour("h100-sxm", 6.5, overrides={"h100-sxm": 2.0}) == 2.0
    assert math.isnan(econ.provider_usd_per_gpu_hour("gb200", None))
    assert econ.footprint(48, 700) == {"chips": 48, "racks": 1.5, "power_kw": 33.6}


def test_economics_fields_exact():
    f = econ.economics_fields(customer_usd=10.0, provider_cost_usd=4.0, input_tokens=1.5e6, output_tokens=0.5e6,
                              requests=100)
    assert f["customer_usd_per_mtok"] == 5.0 and f["customer_usd_per_mtok_out"] == 20.0
    assert f["provider_usd_per_mtok"] == 2.0 and f["provider_usd_per_request"] == 0.04
    assert f["gross_margin"] == pytest.approx(0.6)
    assert math.isnan(econ.margin(0.0, 1.0))


def _fixed_plus_idle(pricing, limit=4, **extra):
    ch = {"platforms[0].deployments": [
        {"model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8"},
        {"name": "idle", "model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8",
         "autoscaling": {"kind": "baseten", "min_replicas": 0, "max_replicas": 1}, "pools": ["res"]}],
        "platforms[0].pools": [{"name": "res", "hardware": "h100-sxm", "limit_gpus": limit, "pricing": pricing}],
        "duration": 30, "drain": 60}
    ch.update(extra)
    return scenario(**ch)


def test_reserved_pool_costs_its_commitment_when_idle():
    res = simulate(_fixed_plus_idle({"kind": "reserved", "usd_per_gpu_hour": 2.0}))
    row = res.summary.iloc[0]
    end = row["sim_end_s"]
    minutes = math.ceil(end / 60 - 1e-9)
    commitment = 4 * 2.0 * end / 3600
    assert row["unused_commitment_usd"] == pytest.approx(commitment)
    fixed = minutes * 60 * H100_PROVIDER / 3600  # the serving deployment, one H100 billed per minute
    assert row["provider_cost_usd"] == pytest.approx(fixed + commitment)
    assert row["customer_usd"] == pytest.approx(minutes * H100_CUSTOMER_MIN)  # idle pool is not the customer's
    dep = res.deployments.set_index("deployment")
    assert dep.loc["idle", "provider_cost_usd"] == 0.0 and dep.loc["idle", "requests"] == 0
    assert row["gross_margin"] == pytest.approx(1 - (fixed + commitment) / (minutes * H100_CUSTOMER_MIN))
    assert (row["chips"], row["power_kw"]) == (1, 0.7)  # the idle deployment never started a replica


def test_pool_replicas_priced_by_pool_and_spot_interruptions():
    ch = {"platforms[0].deployments": [
        {"model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8", "replicas": 1,
         "autoscaling": {"kind": "baseten", "min_replicas": 1, "max_replicas": 1}, "pools": ["spot"]}],
        "platforms[0].pools": [{"name": "spot", "hardware": "h100-sxm", "limit_gpus": 2,
                                "pricing": {"kind": "spot", "interruption_mtbf_gpu_hours": 0.01}}],
        "duration": 120, "drain": 600, "workload.streams[0].arrival.rate": 1}
    res = simulate(scenario(**ch))
    row = res.summary.iloc[0]
    assert row["spot_interruptions"] >= 1 and row["replica_failures"] == row["spot_interruptions"]
    assert res.requests["outcome"].isin(["finished", "rejected", "in_flight"]).all()
    log = res.replica_log
    assert (log["pool"] == "spot").all()
    # provider: each replica's image-pull-to-stop stretch, rounded per minute, at the spot rate
    assert row["provider_cost_usd"] > 0
    assert row["provider_cost_usd"] <= (log["stopped_s"] - log["capacity_s"] + 60).sum() * 3.20 * 0.8 / 3600


def test_per_token_customer_and_owned_provider():
    ch = {"platforms[0].economics": {"customer": {"kind": "per_token", "input_usd_per_mtok": 0.2,
                                                  "output_usd_per_mtok": 0.6},
                                     "owned": {}}}
    res = simulate(scenario(**ch))
    row = res.summary.iloc[0]
    r = res.requests[res.requests["outcome"] == "finished"]
    tin, tout = r["input_tokens"].sum(), r["output_tokens"].sum()
    assert row["customer_usd"] == pytest.approx((0.2 * tin + 0.6 * tout) / 1e6)
    assert (row["price_usd_per_mtok_in"], row["price_usd_per_mtok_out"]) == (0.2, 0.6)
    owned = econ.owned_usd_per_hour(27_500, 700)["total"]
    assert row["provider_cost_usd"] == pytest.approx(owned * row["sim_end_s"] / 3600)


def test_routed_autoscaled_pools_add_up():
    """A router over autoscaled deployments drawing on a reserved pool then an on-demand one: deployment
    provider costs plus any unused commitment equal the platform's; customer pays its billed minutes."""
    auto = {"kind": "baseten", "min_replicas": 1, "max_replicas": 3, "concurrency_target": 2}
    small = {"name": "small", "model": "qwen2.5-coder-7b", "hardware": "h100-sxm", "precision": "fp8",
             "autoscaling": auto, "pools": ["res", "od"], "cold_start": {"provision": 5, "image_pull": 5}}
    large = {**small, "name": "large", "model": "qwen2.5-coder-32b"}
    ch = {"platforms[0].deployments": [small, large], "platforms[0].router": {"kind": "threshold"},
          "platforms[0].pools": [{"name": "res", "hardware": "h100-sxm", "limit_gpus": 2,
                                  "pricing": {"kind": "reserved"}},
                                 {"name": "od", "hardware": "h100-sxm", "limit_gpus": 8}],
          "duration": 60, "drain": 300, "workload.streams[0].arrival.rate": 6}
    res = simulate(scenario(**ch))
    row = res.summary.iloc[0]
    dep = res.deployments.set_index("deployment")
    assert res.requests["outcome"].isin(["finished", "rejected", "in_flight"]).all()
    assert dep["provider_cost_usd"].sum() + row["unused_commitment_usd"] == pytest.approx(row["provider_cost_usd"])
    commitment = 2 * H100_PROVIDER * 0.85 * row["sim_end_s"] / 3600
    assert row["provider_cost_usd"] >= commitment - 1e-9
    billed_min = res.replica_log.groupby("deployment")["billed_s"].sum() / 60
    assert dep["customer_usd"].sum() == pytest.approx(billed_min.sum() * H100_CUSTOMER_MIN)
    assert dep["requests"].sum() == len(res.requests) and row["quality"] > 0


def test_warm_autoscaled_replica_billed_on_both_sides():
    """A replica warm at t=0 that serves the whole run: customer and provider both pay its whole life,
    rounded up to whole minutes (provider: the same single segment)."""
    ch = {f"{DEP}.autoscaling": {"kind": "baseten", "min_replicas": 1, "max_replicas": 1}, "duration": 61,
          "drain": 600}
    res = simulate(scenario(**ch))
    row = res.summary.iloc[0]
    minutes = math.ceil(row["sim_end_s"] / 60 - 1e-9)
    assert minutes >= 2  # the run outlasts 61 s, so at least 2 billed minutes
    assert row["customer_usd"] == pytest.approx(minutes * H100_CUSTOMER_MIN)
    assert row["provider_cost_usd"] == pytest.approx(minutes * H100_PROVIDER / 60)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["on_demand", "reserved", "spot", "owned"]), st.integers(1, 3),
       st.sampled_from(["per_gpu_minute", "per_token"]), st.floats(0.5, 6.0))
def test_costs_never_negative_and_add_up(kind, limit, customer, rate):
    """Whatever the pool pricing and customer pricing: money is >= 0, deployment rows add up to the
    platform's totals and the margin is (revenue - cost) / revenue."""
    cust = ({"kind": "per_token", "input_usd_per_mtok": 0.1, "output_usd_per_mtok": 0.3}
            if customer == "per_token" else {"kind": "per_gpu_minute"})
    ch = {f"{DEP}.autoscaling": {"kind": "baseten", "min_replicas": 1, "max_replicas": 3},
          f"{DEP}.pools": ["p", "od"], f"{DEP}.cold_start": {"provision": 5, "image_pull": 5},
          "platforms[0].pools": [{"name": "p", "hardware": "h100-sxm", "limit_gpus": limit,
                                  "pricing": {"kind": kind, "usd_per_gpu_hour": rate}},
                                 {"name": "od", "hardware": "h100-sxm", "limit_gpus": 4}],
          "platforms[0].economics": {"customer": cust}, "duration": 20, "drain": 120,
          "workload.streams[0].arrival.rate": 4}
    res = simulate(scenario(**ch))
    row = res.summary.iloc[0]
    dep = res.deployments
    assert row["customer_usd"] >= 0 and row["provider_cost_usd"] > 0
    assert (dep["provider_cost_usd"] >= 0).all() and (dep["customer_usd"] >= 0).all()
    assert dep["provider_cost_usd"].sum() + row["unused_commitment_usd"] == pytest.approx(row["provider_cost_usd"])
    assert dep["customer_usd"].sum() == pytest.approx(row["customer_usd"])
    if kind in ("reserved", "owned"):
        assert row["provider_cost_usd"] >= limit * rate * row["sim_end_s"] / 3600 - 1e-9
    assert row["gross_margin"] == pytest.approx(1 - row["provider_cost_usd"] / row["customer_usd"])
