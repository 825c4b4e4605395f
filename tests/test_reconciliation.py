"""Counts and dollars reconcile on every shipped scenario (issue 16), each term read from its own recorded column.

Arrivals: done + rejected + in flight (+ lost, where recorded) + arrived in warm-up + arrived after the window
= arrivals; rejected = the sum of its reasons. Money: customer pays = GPU-minutes + per-token + token-API
spill. The scenarios run shortened (a little past their warm-up) so the test stays fast.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from infersim.engine.recorder import REASONS
from infersim.results.simulate import simulate
from infersim.validate import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module", params=SCENARIOS, ids=lambda p: p.stem)
def results(request):
    sc = load_scenario(str(request.param))
    return simulate(sc, duration_s=min(sc.duration, sc.warmup + 20.0), base_dir=request.param.parent)


def test_counts_reconcile(results):
    for row in results.summary.to_dict(orient="records"):
        terms = (row["finished"] + row["rejected"] + row["in_flight"] + int(row.get("lost", 0) or 0)
                 + row["warmup_excluded"] + row["arrived_after_window"])
        assert terms == row["arrivals"], f"{row['platform']}: {terms} != arrivals {row['arrivals']}"
        assert row["arrivals"] > 0
        assert sum(row[f"rejected_{r}"] for r in REASONS[1:]) == row["rejected"], row["platform"]
    # every platform sees the same open-loop workload (closed-loop clients send as fast as each platform serves)
    if not any(getattr(s.arrival, "kind", None) == "closed_loop" for s in results.scenario.workload.streams):
        assert results.summary["arrivals"].nunique() == 1


def test_customer_pays_is_its_parts(results):
    for row in results.summary.to_dict(orient="records"):
        parts = row["customer_gpu_minutes_usd"] + row["customer_per_token_usd"] + row["customer_token_api_usd"]
        assert math.isclose(parts, row["customer_usd"], rel_tol=1e-9, abs_tol=1e-9), row["platform"]


def test_counts_reconcile_per_stream(results):
    s = results.streams
    for plat, g in s.groupby("platform"):
        row = results.summary.set_index("platform").loc[plat]
        assert g["requests"].sum() == row["requests"]
        assert (g["finished"] + g["rejected"] + g["in_flight"]).sum() == row["finished"] + row["rejected"] + row["in_flight"]
