"""The shipped scenarios: every one validates and runs (short smoke runs), and cursor.yaml's summary matches its
golden values.

Golden values live in tests/golden/cursor.json. They change only deliberately: after a change that is meant to
move them, rerun with ``INFERSIM_UPDATE_GOLDEN=1 python -m pytest tests/test_scenarios.py`` and commit the
file with a note saying why the numbers moved.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from infersim.results.simulate import simulate
from infersim.validate import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
GOLDEN = Path(__file__).parent / "golden" / "cursor.json"
SMOKE_S = 20.0  # seconds of traffic after the warm-up in the smoke runs
GOLDEN_DURATION_S = 60.0
GOLDEN_FIELDS = ("requests", "finished", "rejected", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "e2e_p99_s",
                 "slo_attainment", "output_tok_s", "customer_usd", "provider_cost_usd", "chips")


def test_the_comparison_scenarios_are_shipped():
    names = {p.stem for p in SCENARIOS}
    assert {"cursor", "notion", "gpu-generations", "azure-code-replay", "launch-spike"} <= names
    for p in SCENARIOS:  # each names the sources of its numbers in a header comment
        head = p.read_text().split("\nname:")[0]
        assert head.startswith("#") and "Sources" in head and ("ASSUMPTION" in head or "assum" in head), p.name


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_validates_and_runs(path):
    sc = load_scenario(path)
    kinds = {p.kind for p in sc.platforms}
    res = simulate(sc, duration_s=sc.warmup + SMOKE_S)
    s = res.summary.set_index("platform")
    assert list(s.index) == [p.name for p in sc.platforms]
    r = res.requests  # the whole run (a trace may have no arrival inside the short measurement window)
    done = r[r["outcome"] == "finished"].groupby("platform", observed=True).size()
    assert all(done.get(p.name, 0) > 0 for p in sc.platforms), done
    # every platform saw the identical request stream (common random numbers)
    # (closed-loop clients send as fast as each platform serves them: the platforms' tables then differ in
    # length and arrival times, and only the lengths of the requests both sent are comparable)
    cols = ["request_id", "arrival_s", "input_tokens", "output_tokens"]
    closed = any(st.arrival.kind == "closed_loop" for st in sc.workload.streams)
    first = r[r["platform"] == sc.platforms[0].name][cols].set_index("request_id")
    for p in sc.platforms[1:]:
        other = r[r["platform"] == p.name][cols].set_index("request_id")
        both = first.index.intersection(other.index)
        a, b = first.loc[both], other.loc[both]
        assert np.array_equal(a[["input_tokens", "output_tokens"]].to_numpy(), b[["input_tokens", "output_tokens"]].to_numpy())
        if not closed:
            assert np.array_equal(a["arrival_s"].to_numpy(), b["arrival_s"].to_numpy())
    for k in ("lpu", "wafer"):
        if k in kinds:
            rows = s[s["kind"] == k]
            assert (rows["chips"] > 0).all() and (rows["provider_cost_usd"] > 0).all()
            assert (rows["replicas_for_slo"] >= 1).all()


def _golden_summary() -> dict:
    sc = load_scenario(ROOT / "scenarios" / "cursor.yaml")
    res = simulate(sc, duration_s=GOLDEN_DURATION_S)
    out = {}
    for row in res.summary.to_dict(orient="records"):
        out[row["platform"]] = {k: (None if row.get(k) is None or (isinstance(row.get(k), float) and
                                                                   math.isnan(row[k])) else float(row[k]))
                                for k in GOLDEN_FIELDS if k in row}
    return out


def test_cursor_golden_summary():
    got = _golden_summary()
    if os.environ.get("INFERSIM_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({"duration_s": GOLDEN_DURATION_S, "platforms": got}, indent=2) + "\n")
        pytest.skip("golden values rewritten")
    want = json.loads(GOLDEN.read_text())
    assert want["duration_s"] == GOLDEN_DURATION_S
    assert set(got) == set(want["platforms"]), "platforms changed: update the golden file deliberately"
    for plat, fields in want["platforms"].items():
        for k, v in fields.items():
            g = got[plat].get(k)
            if v is None:
                assert g is None, (plat, k, g)
            else:
                assert g == pytest.approx(v, rel=1e-6, abs=1e-9), f"{plat}.{k}: {g} != golden {v}"
