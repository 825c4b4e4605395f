"""Run scenarios/disaggregation.yaml at each concurrency of its sweep block and draw the frontier chart
(``infersim.report.disagg_frontier``): output tok/s per GPU and $/Mtok against tok/s per user.

    PYTHONPATH=src python benchmarks/disagg_frontier.py [--out DIR] [--duration S] [--concurrency 8,64,256]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from infersim.report.disagg_frontier import frontier_chart, frontier_table
from infersim.results.simulate import simulate
from infersim.validate import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "disaggregation.yaml"
KNOB = "workload.streams[0].arrival.concurrency"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="disagg-frontier")
    ap.add_argument("--duration", type=float, default=None, help="simulated seconds per point")
    ap.add_argument("--concurrency", default=None, help="comma-separated (default: the scenario's sweep)")
    a = ap.parse_args(argv)
    base = load_scenario(SCENARIO)
    levels = ([int(x) for x in a.concurrency.split(",")] if a.concurrency
              else list(base.sweep.parameters[KNOB]))
    runs = {}
    for c in levels:
        t0 = time.perf_counter()
        sc = load_scenario(SCENARIO, {KNOB: c})
        runs[c] = simulate(sc, duration_s=a.duration)
        print(f"concurrency {c}: {time.perf_counter() - t0:.1f}s wall")
    table = frontier_table(runs)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "frontier.csv", index=False)
    frontier_chart(table, out / "frontier.png", title="gpt-oss-120b on 8x B200: co-located vs disaggregated")
    print(table.to_string(index=False))
    print(f"wrote {out / 'frontier.csv'} and {out / 'frontier.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
