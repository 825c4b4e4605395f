"""scenarios/disaggregation.yaml: the directions its comparison shows, and its frontier chart (its golden
summary is tests/golden/disaggregation.json, checked by tests/test_scenarios.py like every scenario's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infersim.report.disagg_frontier import frontier_chart, frontier_table
from infersim.results.simulate import simulate
from infersim.validate import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "disaggregation.yaml"
DURATION_S = 20.0


@pytest.fixture(scope="module")
def res():
    return simulate(load_scenario(SCENARIO), duration_s=DURATION_S)


def test_disaggregation_directions(res):
    s = res.summary.set_index("platform")
    # every GPU configuration holds the same 8 GPUs; the LPU pair 2 GPUs + its chips
    assert (s.loc[["colocated-8x1", "1P7D", "2P6D", "4P4D"], "chips"] == 8).all()
    # at this point (8 clients per GPU, 1,024-token answers) a client's next prompt comes every few seconds, so
    # co-located prompts rarely wait behind decode steps: disaggregation keeps the decode TPOT near the
    # co-located one and costs TTFT no more than the KV transfer and one step of the decode pool (the first
    # token waits for it); more prefill GPUs leave fewer for decode
    assert s.loc["1P7D", "tpot_p50_s"] < 1.1 * s.loc["colocated-8x1", "tpot_p50_s"]
    extra = s.loc["1P7D", "ttft_p50_s"] - s.loc["colocated-8x1", "ttft_p50_s"]
    assert extra < s.loc["1P7D", "tpot_p50_s"] + s.loc["1P7D", "kv_transfer_share_of_ttft"] * s.loc["1P7D", "ttft_p50_s"]
    assert s.loc["4P4D", "tpot_p50_s"] > s.loc["1P7D", "tpot_p50_s"]
    # KV moves over NVLink inside the node: a small share of TTFT
    assert (s.loc[["1P7D", "2P6D", "4P4D"], "kv_transfer_share_of_ttft"] < 0.05).all()
    # SRAM decode: far faster per user, far dearer per token at this load
    lpu = s.loc["2P-b200+lpu-decode"]
    assert lpu["output_tok_s_per_user"] > 1.5 * s.loc["colocated-8x1", "output_tok_s_per_user"]
    assert lpu["provider_usd_per_mtok"] > s.loc["colocated-8x1", "provider_usd_per_mtok"]


def test_frontier_table_and_chart(res, tmp_path):
    t = frontier_table({64: res})
    assert set(t.platform) == set(res.summary.platform)
    row = t.set_index("platform").loc["2P6D"]
    assert row.gpus == 8 and row.output_tok_s_per_gpu == pytest.approx(row.output_tok_s / 8)
    assert t.set_index("platform").loc["2P-b200+lpu-decode"].sram_chips > 0
    out = frontier_chart(t, tmp_path / "f.png")
    assert out.exists() and out.stat().st_size > 10_000
