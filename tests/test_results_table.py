"""Results.build's requests table and summaries equal the straightforward (copying) construction.

The build avoids copies (recorder columns shared, in-place latencies, rows cut only when needed, narrow
frames for ``summarize``); this checks it against the plain pandas version on a run with closed-loop rows
that never arrive, a warm-up window and two streams.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from conftest import scenario
from infersim.engine.recorder import OUTCOMES, REASONS
from infersim.results.simulate import SIMULATORS
from infersim.results.summary import summarize
from infersim.results.tables import Results
from infersim.scenario.loader import scenario_catalog
from infersim.workload.generate import generate


def _reference(run, reqs) -> pd.DataFrame:
    rec = run.recorder
    arrival, first, finish = rec.arrival_s, rec.first_token_s, rec.finish_s
    out_tok = reqs.output_tokens
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out_tok > 1, (finish - first) / (out_tok - 1), np.nan)
    dep_names = list(dict.fromkeys(run.deployments)) + [""]
    dep_codes = np.where(rec.deployment >= 0, rec.deployment, len(dep_names) - 1)
    df = pd.DataFrame({
        "platform": pd.Categorical.from_codes(np.zeros(len(reqs), np.int8), [run.name]),
        "request_id": np.arange(len(reqs), dtype=np.int64),
        "stream": pd.Categorical.from_codes(reqs.stream.astype(np.int16), list(reqs.stream_names)),
        "arrival_s": arrival, "first_token_s": first, "finish_s": finish,
        "input_tokens": reqs.input_tokens.astype(np.int32), "output_tokens": out_tok.astype(np.int32),
        "cached_tokens": rec.cached_tokens,
        "deployment": pd.Categorical.from_codes(dep_codes.astype(np.int16), dep_names),
        "replica": rec.replica, "preemptions": rec.preemptions,
        "outcome": pd.Categorical.from_codes(rec.outcome.astype(np.int8), list(OUTCOMES)),
        "reason": pd.Categorical.from_codes(rec.reason.astype(np.int8), list(REASONS)),
        "ttft_s": first - arrival, "tpot_s": tpot,
        "e2e_s": np.where(rec.outcome == 1, finish - arrival, np.nan),
    })
    for col, values in run.request_columns.items():
        df[col] = values
    return df[~np.isnan(df["arrival_s"].to_numpy())]


def test_requests_table_and_summaries_equal_the_copying_construction():
    sc = scenario(**{
        "duration": 40, "warmup": 10,
        "workload.streams[0].arrival.rate": 6,
        "workload.streams[0].output_tokens": {"kind": "uniform", "low": 1, "high": 80},
        "workload.streams[1]": {"name": "chat", "arrival": {"kind": "closed_loop", "concurrency": 3, "requests": 500,
                                            "think_time": 1.0},
                                "input_tokens": {"kind": "uniform", "low": 10, "high": 2000},
                                "output_tokens": {"kind": "fixed", "value": 1}},
    })
    reqs = generate(sc.workload, seed=sc.seed, duration_s=sc.duration, base_dir=sc.base_dir)
    catalog = scenario_catalog(sc, sc.base_dir)
    plat = sc.platforms[0]
    run = SIMULATORS[plat.kind](sc, plat, reqs, catalog, seed=sc.seed, horizon_s=sc.duration + sc.drain,
                                timeline_dt=1.0, progress=None)
    res = Results.build(sc, reqs, [run])
    ref = _reference(run, reqs)
    assert np.isnan(run.recorder.arrival_s).any()  # closed-loop rows never sent are cut
    assert ((ref["output_tokens"] == 1).any() and (ref["outcome"] == "finished").any())
    pd.testing.assert_frame_equal(res.requests, ref.reset_index(drop=True), check_exact=True)

    slos = {s.name: s.slo.model_dump() for s in sc.workload.streams}
    win = ref[(ref["arrival_s"] >= sc.warmup) & (ref["arrival_s"] < sc.duration)]
    assert 0 < len(win) < len(ref)
    row = summarize(win, window_s=sc.duration - sc.warmup, slos=slos, itl_hist=run.recorder.itl_hist,
                    timeline=run.timeline, warmup_s=sc.warmup)
    got = res.summary.iloc[0]
    for k, v in row.items():
        assert got[k] == v or (np.isnan(got[k]) and np.isnan(v)), k
    for sname in reqs.stream_names:
        srow = summarize(win[win["stream"] == sname], window_s=sc.duration - sc.warmup, slos=slos)
        got = res.streams[res.streams["stream"] == sname].iloc[0]
        for k, v in srow.items():
            assert got[k] == v or (np.isnan(got[k]) and np.isnan(v)), (sname, k)
