"""scenarios/disaggregation.yaml: runs, keeps its golden summary, and draws its frontier chart.

Golden values live in tests/golden/disaggregation.json; after a change meant to move them rerun with
``INFERSIM_UPDATE_GOLDEN=1 python -m pytest tests/test_disagg_scenario.py`` and commit the file with a
message saying why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from infersim.report.disagg_frontier import frontier_chart, frontier_table
from infersim.results.simulate import simulate
from infersim.validate import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "disaggregation.yaml"
GOLDEN = Path(__file__).parent / "golden" / "disaggregation.json"
DURATION_S = 20.0
FIELDS = ("finished", "rejected", "ttft_p50_s", "tpot_p50_s", "output_tok_s", "output_tok_s_per_user",
          "provider_cost_usd", "chips", "kv_bytes_sent", "kv_transfer_share_of_ttft")


@pytest.fixture(scope="module")
def res():
    return simulate(load_scenario(SCENARIO), duration_s=DURATION_S)


def _summary(res) -> dict:
    s = res.summary.set_index("platform")
    return {p: {k: float(s.loc[p, k]) for k in FIELDS if k in s.columns and s.loc[p, k] == s.loc[p, k]}
            for p in s.index}


def test_disaggregation_golden(res):
    got = _summary(res)
    if os.environ.get("INFERSIM_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps({"duration_s": DURATION_S, "platforms": got}, indent=2) + "\n")
        pytest.skip("golden values rewritten")
    want = json.loads(GOLDEN.read_text())
    assert want["duration_s"] == DURATION_S
    assert set(got) == set(want["platforms"])
    for plat, row in want["platforms"].items():
        for k, v in row.items():
            assert got[plat][k] == pytest.approx(v, rel=1e-6, abs=1e-9), f"{plat}.{k}"


def test_disaggregation_directions(res):
    s = res.summary.set_index("platform")
    # every GPU configuration holds the same 8 GPUs; the LPU pair 2 GPUs + its chips
    assert (s.loc[["colocated-8x1", "1P7D", "2P6D", "4P4D"], "chips"] == 8).all()
    # disaggregation removes prefill-decode interference: the 1P7D decode TPOT stays near the co-located one
    # while TTFT drops (a prompt never waits behind decode steps); more prefill GPUs leave fewer for decode
    assert s.loc["1P7D", "ttft_p50_s"] < s.loc["colocated-8x1", "ttft_p50_s"]
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
