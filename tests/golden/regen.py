"""Rewrite the golden summaries of the shipped scenarios, deliberately: ``tests/golden/<scenario>.json``.

``tests/test_scenarios.py`` runs every ``scenarios/*.yaml`` for a short time (cursor 60 s, the others their
warm-up plus 20 s) and compares a few summary fields per platform with these files. They change only on
purpose: after a change meant to move the numbers, run

    PYTHONPATH=src python tests/golden/regen.py            # every shipped scenario
    PYTHONPATH=src python tests/golden/regen.py cursor     # or some of them

and commit the JSON files in a commit of their own saying why the numbers moved.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = Path(__file__).resolve().parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
SMOKE_S = 20.0  # seconds of traffic after the warm-up
DURATION_S = {"cursor": 60.0}  # cursor's golden predates the others and keeps its minute
FIELDS = ("requests", "finished", "rejected", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "e2e_p99_s",
          "slo_attainment", "output_tok_s", "customer_usd", "provider_cost_usd", "chips")


def golden_path(stem: str) -> Path:
    return GOLDEN_DIR / f"{stem}.json"


@functools.cache
def run(stem: str):
    """(scenario, results) of the short golden run of ``scenarios/<stem>.yaml`` (cached per process)."""
    from infersim.results.simulate import simulate
    from infersim.validate import load_scenario

    sc = load_scenario(ROOT / "scenarios" / f"{stem}.yaml")
    return sc, simulate(sc, duration_s=duration_s(sc, stem))


def duration_s(sc, stem: str) -> float:
    return DURATION_S.get(stem, float(sc.warmup) + SMOKE_S)


def summary(stem: str) -> dict:
    """The golden document of ``stem``: its run length and the FIELDS of each platform (None for NaN)."""
    sc, res = run(stem)
    platforms = {}
    for row in res.summary.to_dict(orient="records"):
        platforms[row["platform"]] = {
            k: None if row.get(k) is None or (isinstance(row[k], float) and math.isnan(row[k])) else float(row[k])
            for k in FIELDS if k in row}
    return {"duration_s": duration_s(sc, stem), "platforms": platforms}


def main(argv: list[str]) -> int:
    stems = argv or [p.stem for p in SCENARIOS]
    known = {p.stem for p in SCENARIOS}
    for stem in stems:
        if stem not in known:
            print(f"unknown scenario '{stem}' (expected one of: {', '.join(sorted(known))})", file=sys.stderr)
            return 2
        golden_path(stem).write_text(json.dumps(summary(stem), indent=2) + "\n")
        print(f"wrote {golden_path(stem).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
