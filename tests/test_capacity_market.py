"""Capacity bought like a platform buys it: pools priced from market rental rows (provider, class, quarter,
term), and the utilization of committed capacity in the summary."""

from __future__ import annotations

import pytest

from conftest import scenario
from infersim.core.errors import ScenarioError
from infersim.results.simulate import simulate


def _pooled(pricing, limit=2):
    return scenario(**{
        "platforms[0].deployments": [
            {"model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8", "replicas": 1,
             "autoscaling": {"kind": "baseten", "min_replicas": 1, "max_replicas": 1}, "pools": ["res"]}],
        "platforms[0].pools": [{"name": "res", "hardware": "h100-sxm", "limit_gpus": limit, "pricing": pricing}],
        "duration": 30, "drain": 60})


def test_reserved_pool_priced_from_market_row_and_committed_utilization():
    sc = _pooled({"kind": "reserved", "provider": "hyperstack", "quarter": "2026Q3", "commitment_months": 12})
    pr = sc.platforms[0].pools[0].pricing
    assert pr.usd_per_gpu_hour == 2.72 and "nexgen-cloud" in pr.source
    res = simulate(sc)
    row = res.summary.iloc[0]
    end = row["sim_end_s"]
    assert row["committed_gpu_hours"] == pytest.approx(2 * end / 3600)
    # the pool's whole commitment is the provider cost whatever the use
    assert row["provider_cost_usd"] == pytest.approx(2 * 2.72 * end / 3600)
    log = res.replica_log
    held = float((log["stopped_s"].fillna(end) - log["capacity_s"]).clip(lower=0).sum())
    assert 0 < row["committed_utilization"] <= 0.5 + 1e-9  # one GPU of two, for at most the whole run
    assert row["committed_utilization"] == pytest.approx(held / (2 * end), abs=0.05)


def test_hyperscaler_class_on_demand_rate():
    sc = _pooled({"kind": "on_demand", "provider_class": "hyperscaler"})
    assert sc.platforms[0].pools[0].pricing.usd_per_gpu_hour == 6.88  # AWS p5.48xlarge / 8, cheapest of the three


@pytest.mark.parametrize("pricing, at", [
    ({"kind": "spot", "provider": "azure"}, "pricing.provider"),  # no Azure spot row
    ({"kind": "reserved", "provider": "hyperstack", "usd_per_gpu_hour": 2.0}, "pricing.usd_per_gpu_hour"),
    ({"kind": "owned", "provider": "aws"}, "pricing.provider"),
])
def test_market_pool_errors_name_the_yaml_path(pricing, at):
    with pytest.raises(ScenarioError) as ei:
        _pooled(pricing)
    assert f"platforms[0].pools[0].{at}" in str(ei.value)
