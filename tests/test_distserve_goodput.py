"""DistServe's goodput gain, checked on the authors' own measured runs (issue 17).

The paper: Zhong et al., "DistServe: Disaggregating Prefill and Decoding for Goodput-optimized Large Language
Model Serving", OSDI 2024 (arXiv 2401.09670). Its chatbot application (§6.1, Table 1) serves OPT-13B in FP16 on
A100-80GB SXM to ShareGPT requests arriving as a Poisson process; SLOs TTFT 0.25 s and TPOT 0.1 s; goodput is the
highest per-GPU rate at which at least 90 % of requests meet both. §6.2 / Figure 8: "DistServe can sustain
2.0x-4.6x higher request rate compared to vLLM" (OPT-13B to 175B).

The authors' artifact (github.com/LLMServe/DistServe, Apache-2.0) holds every request of their measured runs:
vLLM on one GPU at 1-4 req/s and DistServe with a tp=2 prefill instance and a decode instance of one GPU
(c21d11, 3 GPUs) or of two in a pipeline (c21d12, 4 GPUs) at 3-16 req/s, with each request's prompt and output
length, issue time, TTFT and TPOT (data/calibration/distserve_opt13b*, provenance in the YAML).
``infersim.calibrate.distserve`` replays each run on its own requests. Measured per-GPU goodput, bracketed by
the 100-second runs' rates: vLLM below 1.0 req/s (86 % at 1 req/s: its 2023 engine took ~0.14 ms per prompt token
on one GPU, so the longest prompts alone missed 0.25 s), DistServe 1.5-2.0 (both layouts): the gain is at least
1.5x, the paper's 2.0x inside the bracket.

What the simulator gets (the tables are printed in docs/disaggregation.md):

- ``profiled`` engines (each system's step time fitted to the per-step latencies the authors measured for it on
  the same GPUs, not to these runs): the three goodput brackets are the measured ones, so the direction and
  size of the gain are reproduced; on c21d11 every run's SLO attainment is within 0.1 of the measured one, the
  median per-request TTFT error ~8 % and TPOT ~30 % (simulated TPOT is lower than measured at every rate).
- ``stock`` engines (infersim's shipped vLLM profile for both, today's kernels): DistServe c21d11's bracket is
  2.0-2.5 req/s, one step above the measured (the profile refitted on 2026-12-04 runs a step ~17 % faster than
  DistServe's engine, 9.9 % before), and vLLM's is 2.5-3.0 req/s, far above the measured: with today's kernels the
  co-located vLLM of this workload would outserve DistServe's 2024 layout per GPU. The gain the paper measured
  rests on its baseline's speed as much as on disaggregation.
- Known gap: with the decode instance in a 2-stage pipeline (c21d12) simulated TPOT stays 25-50 ms up to 12 req/s
  where the measured one climbs to 0.14-0.19 s from 10 req/s on; its attainment there is over-predicted by up to
  0.6 (the goodput bracket is right only because 8 req/s already misses on both sides).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from infersim.calibrate import distserve as ds

DATA = Path(__file__).resolve().parents[1] / "data" / "calibration" / "distserve_opt13b.yaml"


@pytest.fixture(scope="module")
def data():
    return ds.load(DATA)


@pytest.fixture(scope="module")
def profiled(data):
    return ds.replay(data, "profiled")


@pytest.fixture(scope="module")
def stock(data):
    return ds.replay(data, "stock")


def _bracket(table, column):
    return {r.layout: (r.lo_per_gpu, r.hi_per_gpu) for r in ds.goodput_brackets(table, column).itertuples()}


def test_measured_runs_are_complete_and_as_published(data):
    runs = ds.runs(data)
    assert len(runs) == 28 and runs.requests.sum() == 15_900
    assert (runs.requests == [len(data.requests[data.requests.run == r]) for r in runs.run]).all()
    # the files' names: vllm-<N>-<rate>, distserve-c<tp><pp>d<tp><pp>-<N>-<rate>
    for r in runs.itertuples():
        assert r.run.endswith(f"-{r.requests}-{r.rate_per_s:g}")
    # TPOT as the files define it: (complete - first token) / (output_len - 1), 0 for the eleven one-token
    # answers; lengths within OPT's 2,048 positions
    rq = data.requests
    assert (rq.ttft_ms > 0).all() and (rq.tpot_ms[rq.output_len > 1] > 0).all()
    assert (rq.tpot_ms[rq.output_len == 1] == 0).all() and (rq.output_len == 1).sum() == 11
    assert (rq.prompt_len + rq.output_len <= 2048 + 1).all()


def test_measured_goodput_gain_is_at_least_one_and_a_half(data):
    m = _bracket(ds.runs(data).assign(attainment=_measured_attainment(data)), "attainment")
    assert m["vllm"] == (0.0, 1.0)
    assert m["distserve-c21d11"] == (1.5, 2.0) and m["distserve-c21d12"] == (1.5, 2.0)


def _measured_attainment(data):
    rq, slo = data.requests, data.slo
    ok = (rq.ttft_ms <= 1e3 * slo["ttft_s"]) & ((rq.tpot_ms <= 1e3 * slo["tpot_s"]) | (rq.output_len <= 1))
    return [float(ok[rq.run == r].mean()) for r in ds.runs(data).run]


def test_step_profiles_fit_and_the_shipped_profile_is_near_distserves_engine(data):
    # the fit reproduces each engine's measured step times (prefills of 64-2,048 tokens, decodes of 1-90
    # sequences, tp 1 and 2) to a few per cent; the shipped vLLM profile, fitted on no A100 run, is within
    # ~17 % of DistServe's own engine (faster: its refit of 2026-12-04 moved fixed time from the step overhead
    # into the all-reduces, which a tp=1 step does not have; 9.9 % before) and ~30 % faster than the 2023 vLLM
    # with Ray workers
    for engine in ("vllm", "distserve"):
        err = np.abs(np.expm1(ds.step_errors(data, engine, ds.step_overrides(data, engine))))
        assert np.median(err) < 0.08 and err.max() < 0.2, engine
    stock_ds = np.abs(np.expm1(ds.step_errors(data, "distserve")))
    assert np.median(stock_ds) < 0.2
    stock_v = np.expm1(ds.step_errors(data, "vllm"))
    assert np.median(stock_v) < -0.2  # shipped step times shorter than the 2023 vLLM's


def test_profiled_engines_reproduce_the_goodput_brackets(profiled):
    assert _bracket(profiled, "sim_attainment") == _bracket(profiled, "attainment")
    # the direction and size: DistServe's per-GPU goodput at least 1.5x vLLM's, as measured
    b = _bracket(profiled, "sim_attainment")
    assert b["distserve-c21d11"][0] >= 1.5 * b["vllm"][1]


def test_profiled_single_gpu_decode_runs_match_request_by_request(profiled):
    c21 = profiled[profiled.layout == "distserve-c21d11"]
    assert (np.abs(c21.sim_attainment - c21.attainment) <= 0.1).all(), \
        c21[["run", "attainment", "sim_attainment"]].to_string()
    assert c21.ttft_abs_err.median() < 0.12
    assert c21.tpot_abs_err.median() < 0.35
    assert (profiled.finished == 1.0).all()


def test_stock_profile_reproduces_distserve_and_outruns_the_2023_vllm(stock):
    b = _bracket(stock, "sim_attainment")
    assert b["distserve-c21d11"] == (2.0, 2.5)  # measured 1.5-2.0: the stock step is ~17 % fast on A100 tp=1
    assert b["vllm"][0] >= 2.0  # measured: below 1.0 (see the module docstring)


def test_transferred_kv_is_not_recomputed_at_light_load(profiled):
    # up to 4.5 req/s (a few dozen sequences on an 80 GB decode GPU) nothing needs evicting before admission;
    # before a landing transfer evicted finished requests' cached blocks to make its room, ~40 % of the
    # transferred blocks were recomputed on a lightly loaded decode replica. (From 6 req/s on, one decode GPU's
    # KV runs full and admission order does evict: 6,896 blocks in the 600-request run at 6 req/s.)
    light = profiled[(profiled.system == "distserve") & (profiled.rate_per_s <= 4.5)]
    assert len(light) and (light.decode_recomputed_blocks == 0).all()
