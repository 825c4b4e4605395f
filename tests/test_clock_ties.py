"""Exact-time ties: a replica on its own clock (``engine.own_clock``) and on the shared SimPy clock order
simultaneous events the same way, so their results are identical even when a step ends, a request leaves the
scheduling delay and another arrives at the very same instant.

Ties need times that are exactly equal as floats: arrivals at whole seconds (several per second, from an
integer-time trace), a scheduling delay of 0.5 s, and step times patched to 1/8 s (decode) and 1/4 s (with
prefill): every event then falls on a 1/8 s grid, exactly representable, and many coincide.

Known disagreement (found by this test, not fixed yet): the own clock handles a step's end before an arrival
at the same instant, so the arrival waits for the step after next; SimPy processes same-time events in the
order they were scheduled, and an arrival's timeout is usually scheduled (at the previous arrival) before the
running step's end (at that step's start), so SimPy lets the arrival join the step planned at that instant.
About one request in ten gets its first token one step apart. The fix is one documented order on both clocks
(arrivals and scheduling-delay exits first, then the step end, so a step sees everything present when it is
planned), with the fingerprints regenerated in their own commit. Until then the test is a strict xfail: it
fails as soon as the clocks agree, so the mark cannot outlive the bug.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import scenario
from infersim.perf.gpu import GpuRoofline
from infersim.platforms import gpu_fleet
from infersim.results.simulate import simulate

DECODE_S, PREFILL_S = 0.125, 0.25


def _trace(tmp_path, per_second: list[int]) -> str:
    rows = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for s, k in enumerate(per_second):
        for j in range(k):
            rows.append(f"2023-11-16 18:{s // 60:02d}:{s % 60:02d}.000000,{200 + 150 * j},{3 + (s * 7 + j) % 11}")
    p = tmp_path / "ties.csv"
    p.write_text("\n".join(rows) + "\n")
    return str(p)


@pytest.fixture
def grid_steps(monkeypatch):
    """Step times on a 1/8 s grid for every formulation the engine uses."""
    def step_s(self, n_prefill_tokens, prefill_pairs, n_prefill_seqs, n_decode, decode_ctx_sum, prefill_ctx_sum=0.0):
        return PREFILL_S if n_prefill_tokens or n_prefill_seqs else DECODE_S

    monkeypatch.setattr(GpuRoofline, "step_s", step_s)
    monkeypatch.setattr(GpuRoofline, "decode_affine", lambda self, n: (DECODE_S, 1, 0.0, 0.0, 0.0, 0.0))
    monkeypatch.setattr(GpuRoofline, "decode_steps_s",
                        lambda self, n, ctx: np.full(len(np.atleast_1d(ctx)), DECODE_S))


def _both(sc, monkeypatch):
    alone = simulate(sc, timeline_points=40)
    with monkeypatch.context() as m:
        m.setattr(gpu_fleet, "replicas_independent", lambda plat, reqs: False)
        shared = simulate(sc, timeline_points=40)
    return alone, shared


@pytest.mark.xfail(strict=True, reason="own clock: step end before a same-instant arrival; SimPy: insertion order")
@pytest.mark.parametrize("replicas", [1, 2])
@pytest.mark.parametrize("delay_s", [0.0, 0.5])
def test_own_clock_equals_shared_clock_with_exact_ties(tmp_path, monkeypatch, grid_steps, replicas, delay_s):
    per_second = [(s * 5) % 4 + 1 for s in range(30)]  # 1 to 4 requests at each whole second
    sc = scenario(**{
        "duration": 30, "drain": 120,
        "workload.streams[0]": {"name": "s", "arrival": {"kind": "trace", "path": _trace(tmp_path, per_second)}},
        "platforms[0].deployments[0].replicas": replicas,
        "platforms[0].deployments[0].engine": {"kind": "vllm", "max_num_seqs": 4, "max_batched_tokens": 512,
                                               "perf": {"schedule_delay_s": delay_s, "schedule_delay_per_seq_s": 0.0,
                                                        "api_serial_s": 0.0}},
    })
    alone, shared = _both(sc, monkeypatch)
    df = alone.requests
    # the case does tie: first tokens and finishes land on arrival instants (whole seconds)
    fin = df[df["outcome"] == "finished"]
    assert len(fin) == sum(per_second)
    assert (fin["finish_s"] % 1.0 == 0).sum() > 5 and ((fin["first_token_s"] * 8) % 1.0 == 0).all()
    for table in ("requests", "summary", "timeline"):
        pd.testing.assert_frame_equal(getattr(alone, table), getattr(shared, table), check_exact=True, obj=table)
