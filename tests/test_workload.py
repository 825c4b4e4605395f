"""Workload generation and trace loading: rates, lengths, prefixes, replay and malformed files."""

from __future__ import annotations

import gzip
import math
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infersim.core.errors import ScenarioError
from infersim.scenario.workload import Workload
from infersim.workload.generate import generate
from infersim.workload.traces import SHIPPED, load_trace, resolve_trace

FIXED = {"input_tokens": {"kind": "fixed", "value": 100}, "output_tokens": {"kind": "fixed", "value": 10}}


def wl(*streams: dict, **kw) -> Workload:
    return Workload.model_validate({"streams": list(streams), **kw})


def poisson(name: str = "a", rate="20/s", **kw) -> dict:
    return {"name": name, "arrival": {"kind": "poisson", "rate": rate}, **FIXED, **kw}


def trace(path: str, name: str = "t", **arrival) -> dict:
    return {"name": name, "arrival": {"kind": "trace", "path": path, **arrival}}


def rows(r, stream: int = 0):
    return np.flatnonzero(r.stream == stream)


# ---- arrival processes ---------------------------------------------------------------------------------
def test_poisson_count_within_4_sigma():
    r = generate(wl(poisson(rate="50/s")), seed=3, duration_s=200)
    mean = 50 * 200
    assert abs(len(r) - mean) < 4 * math.sqrt(mean)
    assert (np.diff(r.arrival_s) >= 0).all() and r.arrival_s[0] >= 0 and r.arrival_s[-1] < 200
    assert r.input_tokens.dtype == np.int64 and r.stream.dtype == np.int16


def test_gamma_gaps_have_the_requested_cv():
    s = {"name": "b", "arrival": {"kind": "gamma", "rate": "100/s", "cv": 3}, **FIXED}
    r = generate(wl(s), seed=5, duration_s=3000)
    gaps = np.diff(r.arrival_s)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.06)
    assert len(r) / 3000 == pytest.approx(100, rel=0.05)


def test_stages_count_per_stage_and_stop_after_the_last():
    s = {"name": "s", "arrival": {"kind": "stages", "stages": [{"rate": "10/s", "duration": "100s"},
                                                                {"rate": "50/s", "duration": "100s"}]}, **FIXED}
    r = generate(wl(s), seed=1, duration_s=1000)
    t = r.arrival_s
    first, second = np.sum(t < 100), np.sum((t >= 100) & (t < 200))
    assert abs(first - 1000) < 4 * math.sqrt(1000)
    assert abs(second - 5000) < 4 * math.sqrt(5000)
    assert np.sum(t >= 200) == 0
    cut = generate(wl(s), seed=1, duration_s=150)
    assert cut.arrival_s.max() < 150 and abs(len(cut) - 3500) < 4 * math.sqrt(3500)


def test_diurnal_mean_rate_over_whole_periods():
    s = {"name": "d", "arrival": {"kind": "diurnal", "peak_rate": "20/s", "trough_rate": "4/s", "period": "100s",
                                  "peak_at": "30s"}, **FIXED}
    r = generate(wl(s), seed=2, duration_s=2000)
    mean = 12 * 2000
    assert abs(len(r) - mean) < 4 * math.sqrt(mean)
    phase = (r.arrival_s - 30) % 100  # busier near the peak than near the trough
    assert np.sum((phase < 10) | (phase > 90)) > 3 * np.sum(np.abs(phase - 50) < 10)


def test_closed_loop_rows_come_last_with_nan_arrivals():
    cl = {"name": "c", "arrival": {"kind": "closed_loop", "concurrency": 8, "think_time": "2s"}, **FIXED}
    r = generate(wl(poisson(), cl), seed=1, duration_s=10)
    closed = rows(r, 1)
    assert len(closed) == 8 * 4096
    assert np.isnan(r.arrival_s[closed]).all() and closed[0] == len(r) - len(closed)
    assert r.closed_loop == ((1, 8, 2.0),)
    cl["arrival"]["requests"] = 50
    assert len(rows(generate(wl(cl), seed=1, duration_s=10))) == 50


def test_shares_split_the_workload_rate():
    a = {"name": "a", "share": 1, **FIXED}
    b = {"name": "b", "share": 3, **FIXED}
    own = poisson("c", rate="5/s")
    r = generate(wl(a, b, own, rate="40/s"), seed=4, duration_s=500)
    for stream, rate in ((0, 10), (1, 30), (2, 5)):
        n, mean = len(rows(r, stream)), rate * 500
        assert abs(n - mean) < 4 * math.sqrt(mean), (stream, n)


# ---- lengths --------------------------------------------------------------------------------------------
def test_lognormal_median_and_p99():
    s = poisson(rate="1000/s")
    s["input_tokens"] = {"kind": "lognormal", "median": 800, "p99": 6000}
    r = generate(wl(s), seed=7, duration_s=200)
    x = r.input_tokens
    assert np.median(x) == pytest.approx(800, rel=0.02)
    assert np.percentile(x, 99) == pytest.approx(6000, rel=0.04)


def test_other_length_kinds():
    s = poisson(rate="500/s")
    s["input_tokens"] = {"kind": "uniform", "low": 5, "high": 9}
    s["output_tokens"] = {"kind": "normal", "mean": 10, "std": 20, "min": 2, "max": 30}
    r = generate(wl(s), seed=1, duration_s=20)
    assert set(np.unique(r.input_tokens)) == {5, 6, 7, 8, 9}
    assert r.output_tokens.min() == 2 and r.output_tokens.max() == 30
    s["input_tokens"] = {"kind": "empirical", "trace": "azure-conv-2023", "column": "input"}
    r = generate(wl(s), seed=1, duration_s=20)
    assert np.isin(r.input_tokens, load_trace(resolve_trace("azure-conv-2023", Path("."))).input_tokens).all()


# ---- reproducibility ------------------------------------------------------------------------------------
def _same(r1, r2, idx1=None, idx2=None):
    for col in ("arrival_s", "input_tokens", "output_tokens", "difficulty", "prefix_key", "prefix_tokens"):
        a, b = getattr(r1, col), getattr(r2, col)
        a, b = (a if idx1 is None else a[idx1]), (b if idx2 is None else b[idx2])
        np.testing.assert_array_equal(a, b, err_msg=col)


def test_same_seed_gives_identical_arrays_and_another_seed_does_not():
    w = wl(poisson(prefix={"kind": "shared", "tokens": 300, "groups": 4, "share": 0.5}))
    _same(generate(w, seed=11, duration_s=50), generate(w, seed=11, duration_s=50))
    assert not np.array_equal(generate(w, seed=12, duration_s=50).arrival_s[:10],
                              generate(w, seed=11, duration_s=50).arrival_s[:10])


def test_adding_a_stream_does_not_change_another_streams_requests():
    a = poisson("a", prefix={"kind": "conversation", "turns": 3, "sessions": 5})
    b = {"name": "b", "arrival": {"kind": "gamma", "rate": "30/s", "cv": 2}, **FIXED}
    alone = generate(wl(a), seed=9, duration_s=60)
    _same(alone, generate(wl(a, b), seed=9, duration_s=60), None, rows(generate(wl(a, b), seed=9, duration_s=60), 0))
    both = generate(wl(b, a), seed=9, duration_s=60)  # 'a' is now stream 1: only its key's stream bits change
    mine = rows(both, 1)
    for col in ("arrival_s", "input_tokens", "output_tokens", "difficulty", "prefix_tokens"):
        np.testing.assert_array_equal(getattr(alone, col), getattr(both, col)[mine], err_msg=col)
    np.testing.assert_array_equal(alone.prefix_key, both.prefix_key[mine] - (1 << 32))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), rate=st.floats(0.5, 50), cv=st.floats(0.3, 4), dur=st.floats(1, 60))
def test_invariants(seed, rate, cv, dur):
    s2 = {"name": "g", "arrival": {"kind": "gamma", "rate": rate, "cv": cv},
          "input_tokens": {"kind": "normal", "mean": 50, "std": 100}, "output_tokens": {"kind": "fixed", "value": 1},
          "prefix": {"kind": "shared", "tokens": 40, "groups": 3, "zipf_s": 1.1}}
    r = generate(wl(poisson(rate=rate), s2, prefix_block_tokens=16), seed=seed, duration_s=dur)
    assert (np.diff(r.arrival_s) >= 0).all() and (r.arrival_s >= 0).all() and (r.arrival_s < dur).all()
    assert (r.input_tokens >= 1).all() and (r.output_tokens >= 1).all()
    assert ((r.difficulty >= 0) & (r.difficulty <= 1)).all()
    assert set(np.unique(r.stream)) <= {0, 1}
    shared = r.prefix_key >= 0
    assert (r.input_tokens[shared] > 40).all() and (r.prefix_tokens[shared] == 40 // 16 * 16).all()
    df = r.to_frame()
    assert len(df) == len(r) and list(df.stream_name.cat.categories) == ["a", "g"]


def test_generating_500k_poisson_requests_is_fast():
    w = wl(poisson(rate="500/s"))
    generate(w, seed=0, duration_s=10)
    t0 = time.perf_counter()
    r = generate(w, seed=0, duration_s=1000)
    assert abs(len(r) - 500_000) < 4 * math.sqrt(500_000)
    assert time.perf_counter() - t0 < 2.0


# ---- traces ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,count", [("azure-code-2023", 8819), ("azure-conv-2023", 19366),
                                        ("mooncake-conversation", 12031), ("mooncake-synthetic", 3993)])
def test_trace_replay_gives_the_published_row_counts(name, count):
    r = generate(wl(trace(name)), seed=0, duration_s=1e5)
    assert len(r) == count
    tr = load_trace(resolve_trace(name, Path(".")))
    np.testing.assert_array_equal(np.sort(r.input_tokens), np.sort(tr.input_tokens))
    assert (r.block_offsets is not None) == name.startswith("mooncake")
    assert resolve_trace(SHIPPED[name], Path(".")) == resolve_trace(name, Path("."))


def test_mooncake_conversation_block_reuse():
    r = generate(wl(trace("mooncake-conversation")), seed=0, duration_s=1e5)
    h = r.block_hashes
    assert len(h) == 288_500 and r.block_tokens == 512
    assert 1 - len(np.unique(h)) / len(h) == pytest.approx(0.366, abs=0.0005)
    i = int(np.argmax(r.input_tokens))
    assert len(r.prefix_ids(i)) == math.ceil(r.input_tokens[i] / 512)
    assert r.prefix_tokens[i] == r.input_tokens[i]  # the ids cover the whole prompt (the last one partly)


def test_trace_time_scale_halves_the_span():
    full = generate(wl(trace("azure-conv-2023")), seed=0, duration_s=1e5)
    fast = generate(wl(trace("azure-conv-2023", time_scale=0.5)), seed=0, duration_s=1e5)
    assert len(fast) == len(full)
    assert fast.arrival_s.max() == pytest.approx(full.arrival_s.max() / 2)


@pytest.mark.parametrize("scale", [2.0, 0.5, 1.5])
def test_trace_rate_scale(scale):
    r = generate(wl(trace("azure-conv-2023", rate_scale=scale)), seed=1, duration_s=1e5)
    assert len(r) == pytest.approx(19366 * scale, rel=0.03)
    assert (np.diff(r.arrival_s) >= 0).all()


def test_trace_start_spread_and_cut():
    base = generate(wl(trace("mooncake-conversation")), seed=0, duration_s=1e5)
    spread = generate(wl(trace("mooncake-conversation", spread_ticks="3s")), seed=0, duration_s=1e5)
    assert len(np.unique(base.arrival_s)) == 1180 and len(np.unique(spread.arrival_s)) == len(spread)
    cut = generate(wl(trace("azure-conv-2023", start="600s")), seed=0, duration_s=600)
    full = load_trace(resolve_trace("azure-conv-2023", Path("."))).arrival_s
    assert len(cut) == np.sum((full >= 600) & (full < 1200))


def test_generated_prefixes_beside_a_mooncake_trace_keep_token_counts():
    # the trace's 512-token hash ids and a generated prefix's token count live side by side: the generated
    # one is a chain (prefix_key), not hash ids, so no common block size is needed
    s = poisson("p", prefix={"kind": "shared", "tokens": 2000})
    r = generate(wl(trace("mooncake-synthetic"), s), seed=0, duration_s=60)
    gen, tr = rows(r, 1), rows(r, 0)
    assert r.block_tokens == 512 and (r.prefix_tokens[gen] == 2000).all() and (r.prefix_key[gen] >= 0).all()
    assert len(r.prefix_ids(int(gen[0]))) == 0 and (r.prefix_key[tr] == -1).all()
    assert len(r.prefix_ids(int(tr[0]))) > 0
    coarse = generate(wl(trace("mooncake-synthetic"), s, prefix_block_tokens=512), seed=0, duration_s=60)
    assert (coarse.prefix_tokens[rows(coarse, 1)] == 2000 // 512 * 512).all()


# ---- prefixes ----------------------------------------------------------------------------------------------
def test_shared_prefix_blocks_and_inputs_longer_than_the_prefix():
    s = poisson(rate="100/s", prefix={"kind": "shared", "tokens": 1000, "groups": 5, "zipf_s": 1.0, "share": 0.7})
    r = generate(wl(s), seed=3, duration_s=100)
    has = r.prefix_key >= 0
    assert has.mean() == pytest.approx(0.7, abs=0.03)
    assert (r.prefix_tokens[has] == 1000).all() and (r.prefix_tokens[~has] == 0).all()  # token counts
    coarse = generate(wl(s, prefix_block_tokens=256), seed=3, duration_s=100)
    assert (coarse.prefix_tokens[has] == 1000 // 256 * 256).all()
    assert (r.input_tokens[has] == 1100).all() and (r.input_tokens[~has] == 100).all()
    groups = np.bincount((r.prefix_key[has] & 0xFFFFFFFF).astype(np.int64))
    assert len(groups) == 5 and groups[0] > 3 * groups[4]  # Zipf: group 0 is the most popular
    assert len(r.prefix_ids(int(np.flatnonzero(has)[0]))) == 0  # a chain, not hash ids


def test_conversation_turns_grow():
    s = poisson(rate="10/s", prefix={"kind": "conversation", "turns": 4, "sessions": 3})
    r = generate(wl(s, prefix_block_tokens=64), seed=2, duration_s=100)
    assert (r.prefix_key >= 0).all()
    keys, counts = np.unique(r.prefix_key, return_counts=True)
    assert counts.max() == 4
    for k in keys[:20]:
        idx = np.flatnonzero(r.prefix_key == k)
        inp, out = r.input_tokens[idx], r.output_tokens[idx]
        assert (np.diff(inp) > 0).all()
        np.testing.assert_array_equal(inp[1:], inp[:-1] + out[:-1] + 100)
        np.testing.assert_array_equal(r.prefix_tokens[idx], np.r_[0, (inp[:-1] + out[:-1]) // 64 * 64])
