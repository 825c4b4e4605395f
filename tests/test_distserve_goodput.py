"""DistServe's published goodput gain, checked on its chatbot workload (issue 17).

The paper: Zhong et al., "DistServe: Disaggregating Prefill and Decoding for Goodput-optimized Large Language
Model Serving", OSDI 2024 (arXiv 2401.09670). Its chatbot application (§6.1, Table 1) serves OPT-13B in FP16
on A100-80GB SXM GPUs to ShareGPT requests arriving as a Poisson process, with SLOs TTFT 0.25 s and TPOT
0.1 s; goodput is the highest per-GPU rate at which at least 90 % of requests meet both. §6.2 / Figure 8
(top row): "DistServe can sustain 2.0x-4.6x higher request rate compared to vLLM" across OPT-13B/66B/175B.
The same SLOs and target appear in the authors' artifact (github.com/LLMServe/DistServe,
evaluation/ae-scripts/e2e/_plot.py: ttft 0.25, tpot 0.1, attainment 90; DistServe on 3 GPUs, vLLM on 1).
(arXiv v1 had TTFT 0.2 s and "2.0x-3.41x"; the figures here are the OSDI version's.)

The check here: a fixed budget of 2 A100-80GB, co-located (2 vLLM replicas of 1 GPU, least-outstanding) vs
disaggregated (1 prefill + 1 decode GPU, KV over NVLink); each configuration's goodput found by bisection over
the Poisson rate with one fixed seed. Stand-ins and assumptions:

- OPT-13B is not in the shipped catalog: it is added here from facebook/opt-13b config.json (40 layers,
  hidden 5120, 40 heads, ffn_dim 20480, vocab 50272, 2048 positions); 12.85B parameters = 40 x 12 x 5120^2
  + (50272 + 2050) x 5120 embeddings (biases and layer norms, ~3M, left out). OPT's FFN is two matrices with
  ReLU, the step model counts FLOPs and bytes from the parameter count, so that does not matter there.
- ShareGPT lengths: DistServe prints its dataset only as histograms (Figure 7), with prompts made of several
  turns of a conversation and prompt + output < 2048 tokens (artifact: 0-prepare-dataset.py). ASSUMPTION:
  prompts lognormal median 512 / p99 1,400 tokens, answers median 200 / p99 640 (both capped at their p99,
  so that every request fits OPT's 2,048 positions).
- Engines: infersim's vLLM profile (chunked prefill mixed with decodes, as vLLM runs today) on both sides;
  DistServe's baseline was vLLM 0.2-era (no chunked prefill) and its own engine (SwiftTransformer).
- DistServe searches its placement per model (for OPT-13B in the artifact: a prefill instance on 2 GPUs at
  tp=2 and a decode instance on 1, simdistserve/README.md; _plot.py counts 3 GPUs); here the budget is 1P1D.

Result (the strict xfail below holds the numbers): infersim does NOT reproduce the direction. The co-located
vLLM replicas keep TPOT far under 0.1 s up to ~4 req/s per GPU (the paper's vLLM missed mostly on TPOT, §6.2),
and do so with prefill priority too (DistServe's vLLM 0.2-era scheduler: prompts in steps of their own, engine
perf prefill_priority 1: goodput 8.18 req/s), so TTFT is what binds both configurations; the 1P1D pair has one
GPU for every prefill, and its first token waits for the decode replica's step (TTFT p50 0.15 s at 4 req/s
against 0.11 s co-located). When this check was written, the decode replica also recomputed up to ~40 % of the
transferred prompts (a transfer's blocks went only into free KV blocks, never evicting the cached blocks of
finished requests that placement counted as room; disaggregated goodput 0.84 req/s); that is fixed
(fleet/disaggregated.py evicts to make the room) and the last test below keeps it fixed.
"""

from __future__ import annotations

import math

import pytest
import yaml

from infersim.results.simulate import simulate
from infersim.validate import load_scenario

# facebook/opt-13b config.json; parameter count derived in the module docstring
OPT_13B = {
    "id": "opt-13b", "name": "OPT-13B", "hf_id": "facebook/opt-13b",
    "layers": 40, "hidden_size": 5120, "num_heads": 40, "num_kv_heads": 40, "head_dim": 128,
    "intermediate_size": 20480, "vocab_size": 50272, "total_params_b": 12.85, "active_params_b": 12.85,
    "max_context": 2048,
    "source": {"config": "huggingface.co/facebook/opt-13b config.json",
               "params": "derived: 40 x 12 x 5120^2 + (50272 + 2050) x 5120 (biases, layer norms left out)"},
    "notes": "Multi-head attention; two-matrix ReLU FFN (ffn_dim 20480). Test-local entry for the DistServe check.",
}
SLO = {"ttft": 0.25, "tpot": 0.1}  # DistServe Table 1, chatbot OPT-13B
TARGET = 0.9  # share of requests meeting both SLOs (DistServe §6.1)
INPUT = {"kind": "lognormal", "median": 512, "p99": 1400, "max": 1400}  # ASSUMPTION, see the docstring
OUTPUT = {"kind": "lognormal", "median": 200, "p99": 640, "max": 640}
SEED, DURATION_S, WARMUP_S = 1, 180.0, 20.0  # three simulated minutes per point, the first 20 s left out
RATE_LO, RATE_HI, RATE_TOL = 0.25, 32.0, 1.05  # bisection in log space until hi / lo <= 1.05

# what this check measures (seed 1, 180 s per point): co-located 8.49 req/s, disaggregated 4.81 req/s (0.84
# before the decode-side insert evicted cached blocks to make room for a transfer)
MEASURED = "co-located 8.49 req/s, disaggregated 4.81 req/s (0.57x; the paper: 2.0x-4.6x)"


def _engine(**kw) -> dict:
    return {"kind": "vllm", **kw}


def colocated(replicas: int = 2) -> dict:
    return {"name": "colocated", "kind": "gpu_fleet",
            "deployments": [{"model": "opt-13b", "hardware": "a100-80g", "precision": "fp16",
                             "replicas": replicas, "engine": _engine(),
                             "load_balancer": {"kind": "least_outstanding"}}]}


def disaggregated(decode_engine: dict | None = None) -> dict:
    return {"name": "1P1D", "kind": "disaggregated", "model": "opt-13b",
            "prefill": {"hardware": "a100-80g", "precision": "fp16", "engine": _engine()},
            "decode": {"hardware": "a100-80g", "precision": "fp16", "engine": _engine(**(decode_engine or {}))},
            "kv_transfer": {"placement": "same_domain"}}  # one HGX A100 board: NVLink 3


@pytest.fixture(scope="module")
def where(tmp_path_factory):
    d = tmp_path_factory.mktemp("distserve")
    (d / "opt.yaml").write_text(yaml.safe_dump({"models": [OPT_13B]}, sort_keys=False))
    (d / "s.yaml").write_text("{}")
    return d


def summary(where, platform: dict, rate: float):
    data = {"name": "distserve-chatbot", "seed": SEED, "duration": DURATION_S, "warmup": WARMUP_S,
            "drain": 120.0, "catalog": ["opt.yaml"],
            "workload": {"streams": [{"name": "chat", "arrival": {"kind": "poisson", "rate": rate},
                                      "input_tokens": INPUT, "output_tokens": OUTPUT, "slo": SLO}]},
            "platforms": [platform]}
    return simulate(load_scenario(where / "s.yaml", data=data)).summary.iloc[0]


def goodput(where, platform: dict) -> tuple[float, float]:
    """(lo, hi): the highest rate found to meet the target and the lowest found to miss it (req/s); (0, RATE_LO)
    when even RATE_LO misses it."""
    lo, hi = RATE_LO, RATE_HI
    if summary(where, platform, lo).slo_attainment < TARGET:
        return 0.0, lo
    while hi / lo > RATE_TOL:
        mid = math.sqrt(lo * hi)
        if summary(where, platform, mid).slo_attainment >= TARGET:
            lo = mid
        else:
            hi = mid
    return lo, hi


@pytest.fixture(scope="module")
def measured(where):
    return {"colocated": goodput(where, colocated()), "disaggregated": goodput(where, disaggregated())}


def test_bisection_brackets_each_goodput(where, measured):
    # the search ended between a rate that meets the target and one that misses it, and the top of the range
    # was never reached (the goodput is a measurement, not the search's ceiling)
    for name, plat in (("colocated", colocated()), ("disaggregated", disaggregated())):
        lo, hi = measured[name]
        assert hi < RATE_HI and hi / lo <= RATE_TOL
        assert summary(where, plat, lo).slo_attainment >= TARGET > summary(where, plat, hi).slo_attainment


def test_goodput_measures_capacity(where, measured):
    # the measurement can tell platforms apart: one co-located GPU serves about half of what two do, and a
    # decode pool reading memory at a quarter of the speed lowers the disaggregated goodput
    one, _ = goodput(where, colocated(replicas=1))
    assert 1.6 < measured["colocated"][0] / one < 2.4
    slow, _ = goodput(where, disaggregated({"perf": {"memory_eff": 0.25}}))
    assert slow < 0.8 * measured["disaggregated"][0]


@pytest.mark.xfail(strict=True, reason=f"infersim does not reproduce DistServe's direction: {MEASURED}. Its "
                   "co-located vLLM keeps TPOT far under 0.1 s (with or without prefill priority), so TTFT "
                   "binds both, and 1P1D has one GPU for every prefill")
def test_disaggregation_serves_a_higher_rate_within_slo(measured):
    dis, colo = measured["disaggregated"][0], measured["colocated"][0]
    ratio = dis / colo
    # DistServe reports 2.0x-4.6x per GPU over vLLM (§6.2, Figure 8, OPT-13B to 175B). The band is wider than
    # that on both sides: this is a 1P1D split at a fixed 2 GPUs, not DistServe's searched placement (a tp=2
    # prefill instance per 1-GPU decode instance for OPT-13B), the ShareGPT lengths are assumed, and the vLLM profile's
    # held-out TTFT errors are 11-108 % across its sources, none of them an A100 (perf/profiles/vllm.yaml);
    # 1.2 still demands a clear gain and 6 is about a third above the paper's largest. A decode pool much
    # slower than it is falls below 1.2 (test_goodput_measures_capacity: a quarter of its memory speed
    # leaves no goodput at all).
    assert 1.2 <= ratio <= 6.0, f"disaggregated {dis:.2f} req/s vs co-located {colo:.2f} req/s: {ratio:.2f}x"


def test_transferred_kv_is_not_recomputed_at_light_load(where):
    # 1 req/s on an 80 GB decode GPU: a handful of sequences in flight, nothing should need evicting before
    # its admission; before the landing transfer evicted finished requests' cached blocks to make its room,
    # 2,691 blocks were recomputed here, ~40 % of those transferred (none in the first simulated minute,
    # while the decode cache still had free blocks)
    s = summary(where, disaggregated(), 1.0)
    assert s.decode_recomputed_blocks == 0
