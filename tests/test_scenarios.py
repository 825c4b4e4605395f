"""The shipped scenarios: every one validates and runs (short runs), and its summary matches its golden values.

Golden values live in tests/golden/<scenario>.json, one per scenarios/*.yaml. They change only deliberately:
after a change that is meant to move them, run ``PYTHONPATH=src python tests/golden/regen.py`` and commit the
files with a note saying why the numbers moved.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "golden"))

import regen  # noqa: E402

from infersim.validate import load_scenario  # noqa: E402

SCENARIOS = regen.SCENARIOS


def test_the_comparison_scenarios_are_shipped():
    names = {p.stem for p in SCENARIOS}
    assert {"cursor", "notion", "gpu-generations", "azure-code-replay", "launch-spike"} <= names
    for p in SCENARIOS:  # each names the sources of its numbers in a header comment
        head = p.read_text().split("\nname:")[0]
        assert head.startswith("#") and "Sources" in head and ("ASSUMPTION" in head or "assum" in head), p.name


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_validates_and_runs(path):
    assert load_scenario(path) is not None
    sc, res = regen.run(path.stem)  # the golden run, shared with test_golden_summary
    kinds = {p.kind for p in sc.platforms}
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


def test_every_shipped_scenario_has_a_golden():
    missing = [p.stem for p in SCENARIOS if not regen.golden_path(p.stem).exists()]
    assert not missing, f"no golden for {missing}: run tests/golden/regen.py {' '.join(missing)}"
    extra = {p.stem for p in regen.GOLDEN_DIR.glob("*.json")} - {p.stem for p in SCENARIOS} - {"engine_fingerprints"}
    assert not extra, f"goldens without a scenario: {sorted(extra)}"


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_golden_summary(path):
    if not regen.golden_path(path.stem).exists():
        pytest.fail(f"no golden for {path.stem}: run tests/golden/regen.py {path.stem}")
    want = json.loads(regen.golden_path(path.stem).read_text())
    got = regen.summary(path.stem)
    assert want["duration_s"] == got["duration_s"]
    assert set(got["platforms"]) == set(want["platforms"]), "platforms changed: regenerate the golden deliberately"
    for plat, fields in want["platforms"].items():
        for k, v in fields.items():
            g = got["platforms"][plat].get(k)
            if v is None:
                assert g is None, (plat, k, g)
            else:
                assert g == pytest.approx(v, rel=1e-6, abs=1e-9), f"{path.stem}: {plat}.{k}: {g} != golden {v}"
