"""Competitors: SRAM-pipeline model (Groq LPU, Cerebras wafer), `infersim estimate` on them, token APIs.

Calibration rows live in perf/profiles/groq.yaml and cerebras.yaml (each with its source); every row, fitted
or check, must be predicted within TOLERANCE (10 %) of the published per-user speed.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from conftest import SHARED, needs_shared
from infersim.build.sram import max_seqs, owned_usd_per_hour, sram_pipeline
from infersim.build.token_api import api_latency, api_prices, api_rate_limiter
from infersim.catalog import default_catalog
from infersim.cli import main
from infersim.core.errors import CapacityError, ScenarioError
from infersim.core.rng import rng
from infersim.economics import TokenPrices, owned_cost_breakdown, owned_cost_usd_per_hour
from infersim.perf.base import prefill_pairs
from infersim.perf.sram.load import erlang_c, systems_for_load
from infersim.perf.sram.params import sram_profile
from infersim.perf.sram.pipeline import pipeline_for, predict_row
from infersim.perf.sram.sizing import chips_needed as _chips_needed
from infersim.perf.token_api import Lognormal, TokenApiLatency, token_api_preset, token_api_presets
from infersim.policy.rate_limit import REJECT_REASON, RateLimiter, TokenBucket
from infersim.scenario.competitors import LpuPlatform, TokenApiPlatform, WaferPlatform

CAT = default_catalog()
TOLERANCE = 0.10
ROWS = [(name, r) for name in ("groq", "cerebras") for r in sram_profile(name).doc["calibration"]]
SPEEDS_CSV = SHARED / "calibration" / "provider_speeds.csv"
#: profile rows taken verbatim from provider_speeds.csv: (date, provider, model starts with)
CSV_ROWS = {
    "groq-llama-2-70b-2024-02": ("2024-02", "Groq", "Llama 2 70B"),
    "cerebras-llama-3.1-8b-2024-08-27": ("2024-08-27", "Cerebras", "Llama 3.1 8B"),
    "cerebras-llama-3.1-70b-2024-08-27": ("2024-08-27", "Cerebras", "Llama 3.1 70B"),
}


def chips_needed(model, precision, kv_tokens=0.0, hardware="groq-lpu"):
    return _chips_needed(model, precision, kv_tokens, hardware=hardware)


# -- calibration ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "row"), ROWS, ids=[r["id"] for _, r in ROWS])
def test_calibration_row_within_tolerance(name, row):
    pred = predict_row(row, sram_profile(name))
    assert pred == pytest.approx(row["measured_tok_s"], rel=TOLERANCE), (
        f"{row['id']} ({row['source']}): predicted {pred:.0f} vs published {row['measured_tok_s']} tok/s")
    assert pred == pytest.approx(row["predicted_tok_s"], rel=1e-3), "profile file is stale: rerun the fit"


def test_fitted_parameters_are_the_stated_ones():
    # Groq: one parameter on one row (two check rows are predictions); Cerebras: two on two (an exact fit, no
    # independent check row exists). Everything else in the profiles is an assumption with its reason.
    for name, fitted in (("groq", ["layer_latency_s"]), ("cerebras", ["layer_latency_s", "sram_bw_eff"])):
        doc = sram_profile(name).doc
        assert doc["fitted"] == fitted
        roles = [r["role"] for r in doc["calibration"]]
        assert set(roles) <= {"fit", "check"} and roles.count("fit") >= len(fitted)
        assert set(doc["params"]) - set(fitted) <= set(doc["assumptions"]) | {"stages_per_unit", "unit_granularity"}


@needs_shared(SPEEDS_CSV)
@pytest.mark.parametrize("row_id", sorted(CSV_ROWS))
def test_calibration_rows_match_the_csv(row_id):
    date, provider, model = CSV_ROWS[row_id]
    row = next(r for _, r in ROWS if r["id"] == row_id)
    with SPEEDS_CSV.open() as f:
        hits = [r for r in csv.DictReader(f)
                if r["date"] == date and r["provider"] == provider and r["model"].startswith(model)]
    assert len(hits) == 1
    assert float(hits[0]["output_tok_s_per_user"]) == row["measured_tok_s"]


def test_published_system_sizes():
    # Cerebras: 8B on one CS-3, 70B on "as few as four systems" at 16-bit (hardware.csv notes)
    assert chips_needed("llama-3.1-8b", "bf16", hardware="cerebras-wse3") == 1
    assert chips_needed("llama-3.1-70b", "bf16", hardware="cerebras-wse3") == 4
    # Groq: 576 chips hold Llama-2-70B only at 8 bits (16-bit weights alone need more than 576 x 230 MB)
    assert chips_needed("llama-2-70b", "int8") <= 576 < chips_needed("llama-2-70b", "bf16")
    assert chips_needed("llama-2-70b", "int8") % 8 == 0  # whole GroqNodes
    # KV for sequences in flight needs more chips
    assert chips_needed("llama-2-70b", "int8", 100_000) > chips_needed("llama-2-70b", "int8")


@pytest.mark.parametrize(("hw", "prec"), [("groq-lpu", "int8"), ("cerebras-wse3", "bf16")])
def test_smaller_model_needs_fewer_units_and_is_faster(hw, prec):
    small = pipeline_for("llama-3.1-8b", hw, precision=prec)
    big = pipeline_for("llama-3.1-70b", hw, precision=prec)
    assert small.units < big.units
    assert small.output_tok_s_per_user(1000) > big.output_tok_s_per_user(1000)


# -- pipeline occupancy ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("model", "hw", "units"), [("llama-2-70b", "groq-lpu", 576),
                                                    ("llama-3.1-70b", "cerebras-wse3", 4)])
def test_speed_independent_of_load_until_pipeline_full(model, hw, units):
    pipe = pipeline_for(model, hw, units=units)
    ctx = 1500.0
    one = pipe.token_latency_s(ctx)
    for b in (2, pipe.stages // 2, pipe.stages):  # one sequence per stage: exactly the same speed
        assert pipe.decode_steps_s(b, np.array([b * ctx]))[0] == pytest.approx(one, rel=1e-12)
    c = pipe.concurrency
    full = pipe.decode_steps_s(c, np.array([c * ctx]))[0]
    assert full == pytest.approx(one, rel=0.05)  # micro-batches up to the knee cost (almost) nothing
    # beyond the pipeline's slots the sequences queue: per-user time grows ~ B / C, throughput plateaus
    over = pipe.decode_steps_s(4 * c, np.array([4 * c * ctx]))[0]
    assert over == pytest.approx(4 * full, rel=0.02)
    assert 4 * c / over == pytest.approx(c / full, rel=0.02)
    assert pipe.max_in_flight() == c
    assert pipe.max_in_flight(2000) == min(c, pipe.kv_capacity_tokens // 2000)


def test_step_interfaces_agree():
    pipe = pipeline_for("llama-3.1-8b", "cerebras-wse3")
    dc = np.full(40, 1200.0)
    st = pipe.step([], [], dc)
    assert st.total_s == pytest.approx(pipe.step_s(0, 0.0, 0, 40, dc.sum()))
    assert st.total_s == pytest.approx(pipe.decode_steps_s(40, np.array([dc.sum()]))[0])
    ctx = dc.sum() + 40 * np.arange(5)
    vec = pipe.decode_steps_s(40, ctx)
    assert vec == pytest.approx([pipe.step_s(0, 0.0, 0, 40, c) for c in ctx])
    # a step with a prompt chunk is never shorter than the decodes alone, and longer prompts take longer
    pt, pc = np.array([512.0]), np.array([0.0])
    mixed = pipe.step(pt, pc, dc)
    assert mixed.total_s >= st.total_s
    assert mixed.total_s == pytest.approx(pipe.step_s(512, float(prefill_pairs(512, 0)), 1, 40, dc.sum()))
    assert pipe.prefill_s(4000) > pipe.prefill_s(1000) > pipe.prefill_s(100) > 0
    assert pipe.prefill_s(1000, 8) > pipe.prefill_s(1000)


def test_capacity_error_names_the_numbers():
    with pytest.raises(CapacityError, match=r"does not fit on 100x groq-lpu: 69\.0 GB .* needs at least 336"):
        pipeline_for("llama-2-70b", "groq-lpu", units=100, precision="int8")


# -- sizing for a load ---------------------------------------------------------------------------------------
def test_erlang_c_known_values():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(3, 3.0) == 1.0 and erlang_c(5, 0.0) == 0.0


def test_systems_for_load_grows_with_rate_and_holds_slo():
    pipe = pipeline_for("llama-3.1-70b", "cerebras-wse3", units=4)
    prev = 0
    for rate in (0.1, 5.0, 20.0, 80.0):
        s = systems_for_load(pipe, rate, 1000, 500, slo_ttft_s=0.5, slo_tpot_s=0.01)
        assert s.replicas >= prev and s.units == s.replicas * 4
        assert s.ttft_quantile_s <= 0.5 + 1e-9 and s.utilization < 1
        # the load fits: offered load per replica below its slots
        assert rate * s.service_s / s.replicas < s.slots_per_replica
        prev = s.replicas
    assert prev > 1
    assert systems_for_load(pipe, 0.01, 1000, 500, 0.5, 0.01).replicas == 1
    with pytest.raises(CapacityError, match="TPOT"):
        systems_for_load(pipe, 1.0, 1000, 500, slo_ttft_s=0.5, slo_tpot_s=0.001)


def test_owned_cost_arithmetic():
    c = owned_cost_breakdown("cerebras-wse3", 4)
    assert c.capex_usd_per_hour == pytest.approx(4 * 2.5e6 / (4 * 8766))
    assert c.power_usd_per_hour == pytest.approx(4 * 23.0 * 1.3 * 0.08)
    assert c.hosting_usd_per_hour == pytest.approx(4 * 23.0 * 150 / 730.5)
    assert owned_cost_usd_per_hour("cerebras-wse3", 4) == pytest.approx(c.total_usd_per_hour)
    cheaper = owned_cost_usd_per_hour("groq-lpu", 576, amortization_years=6, usd_per_kwh=0.05)
    assert cheaper < owned_cost_usd_per_hour("groq-lpu", 576)


# -- infersim estimate ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("model", "hw", "extra", "chips", "speed"), [
    ("llama-3.1-70b", "cerebras-wse3", [], 4, 450),
    ("llama-3.1-8b", "cerebras-wse3", [], 1, 1800),
    ("llama-2-70b", "groq-lpu", ["--precision", "int8", "--chips", "576"], 576, 300),
])
def test_estimate_sram_json(capsys, model, hw, extra, chips, speed):
    rc = main(["estimate", "--model", model, "--hardware", hw, "--input", "1000", "--output", "200", "--json", *extra])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    for k in ("ttft_s", "tpot_s", "output_tok_s_per_user", "kv_capacity_tokens", "max_batch", "max_output_tok_s"):
        assert k in d and d[k] > 0
    assert d["chips"] == chips
    assert d["output_tok_s_per_user"] == pytest.approx(1 / d["tpot_s"])
    assert d["output_tok_s_per_user"] == pytest.approx(speed, rel=TOLERANCE)
    assert d["max_output_tok_s"] >= d["output_tok_s_per_user"]


def test_estimate_sram_too_few_chips_exits_2(capsys):
    assert main(["estimate", "--model", "llama-3.1-70b", "--hardware", "cerebras-wse3", "--chips", "3"]) == 2
    err = capsys.readouterr().err
    assert "--chips 3" in err and "141.2 GB weights" in err and "118.8 GB" in err and "at least 4" in err
    assert main(["estimate", "--model", "llama-2-70b", "--hardware", "groq-lpu", "--chips", "0"]) == 2
    assert "--chips" in capsys.readouterr().err


# -- token APIs ------------------------------------------------------------------------------------------------
def test_token_bucket_arithmetic():
    b = TokenBucket(rate_per_s=1.0, capacity=2.0)
    assert b.admit(0.0) and b.admit(0.0) and not b.admit(0.0)
    assert not b.admit(0.5)  # 0.5 refilled
    assert b.admit(1.0)  # 1.0 refilled, taken
    assert b.level == pytest.approx(0.0)
    assert b.admit(10.0, 2.0) and not b.admit(10.0, 0.5)  # refill capped at capacity
    assert not b.admit(5.0)  # going back in time refills nothing


def test_rate_limiter_counts_rejections():
    rl = RateLimiter(requests_per_minute=60, tokens_per_minute=1200)  # 1 req/s, 20 tok/s, 60 s of burst
    assert rl.admit(0.0, 1000)
    assert not rl.admit(0.0, 500)  # tokens: 200 left
    assert rl.requests.level == pytest.approx(59)  # a rejection takes nothing
    assert rl.admit(0.0, 200)
    assert not rl.admit(5.0, 101) and rl.admit(5.0, 100)  # 5 s refill 100 tokens
    assert (rl.admitted, rl.rejected) == (3, 2)
    assert rl.rejections == {REJECT_REASON: 2} and REJECT_REASON == "rate_limited"
    only_req = RateLimiter(requests_per_minute=2, burst_s=60)
    assert [only_req.admit(0.0, 1e9) for _ in range(3)] == [True, True, False]


def test_latency_sampling_medians_and_quantiles():
    lat = TokenApiLatency(Lognormal.from_quantile(0.4, 0.9, 1.0), Lognormal(71.0, 0.2))
    ttft, tpot = lat.sample_latencies(40_000, rng(7, "token_api", "latency"))
    assert ttft.shape == tpot.shape == (40_000,)
    assert np.median(ttft) == pytest.approx(0.4, rel=0.03)
    assert np.quantile(ttft, 0.9) == pytest.approx(1.0, rel=0.04)
    assert np.median(1 / tpot) == pytest.approx(71.0, rel=0.03)
    again = lat.sample_latencies(40_000, rng(7, "token_api", "latency"))
    assert np.array_equal(again[0], ttft) and np.array_equal(again[1], tpot)


def test_presets_cite_rows_and_oracle_load_curve():
    fw = token_api_preset("fireworks/llama-3.1-70b")
    assert fw.latency.speed.median == 71 and "provider_speeds.csv" in fw.source["output_speed_tok_s"]
    assert fw.prices == TokenPrices(0.9, 0.9)
    assert token_api_preset("aws-bedrock/llama-3.3-70b").latency.speed.median == 32
    assert token_api_preset("fireworks/llama-3.1-8b").latency.speed.median == 288
    assert all(p.source for p in token_api_presets().values())
    ora = token_api_preset("oracle-dedicated/llama-3.3-70b").latency
    for conc, ttft, speed in ((1, 0.05, 58.64), (32, 0.16, 44.32), (128, 1.29, 25.60)):
        at = ora.at_concurrency(conc)
        assert (at.ttft.median, at.speed.median) == (pytest.approx(ttft), pytest.approx(speed))
    mid = ora.at_concurrency(64)
    assert 0.16 < mid.ttft.median < 1.29 and 25.6 < mid.speed.median < 44.32
    assert TokenPrices(1.0, 2.0).cost_usd(1e6, 5e5) == pytest.approx(2.0)


# -- schema ------------------------------------------------------------------------------------------------------
def test_token_api_schema():
    p = TokenApiPlatform(kind="token_api", name="fw", model="llama-3.1-70b", preset="fireworks/llama-3.1-70b",
                         ttft={"median": "300ms", "p90": "1s"}, rate_limits={"requests_per_minute": 600})
    lat = api_latency(p)
    assert lat.ttft.median == pytest.approx(0.3) and lat.ttft.quantile(0.9) == pytest.approx(1.0)
    assert lat.speed.median == 71 and api_prices(p).output_usd_per_mtok == 0.9
    assert api_rate_limiter(p).requests.capacity == 600
    with pytest.raises(ValidationError, match="did you mean 'fireworks/llama-3.1-70b'"):
        TokenApiPlatform(kind="token_api", name="x", model="m", preset="fireworks/llama-3.1-7b")
    with pytest.raises(ValidationError, match="'prices' is required"):
        TokenApiPlatform(kind="token_api", name="x", model="m", ttft={"median": 1}, output_speed={"median": 50})
    with pytest.raises(ValidationError, match="give one of"):
        TokenApiPlatform(kind="token_api", name="x", model="m", prices={"input_usd_per_mtok": 1, "output_usd_per_mtok": 1},
                         ttft={"median": 1, "p90": 2, "p99": 3}, output_speed={"median": 50})
    with pytest.raises(ValidationError, match="wrong side"):
        TokenApiPlatform(kind="token_api", name="x", model="m", prices={"input_usd_per_mtok": 1, "output_usd_per_mtok": 1},
                         ttft={"median": 1, "p90": 0.5}, output_speed={"median": 50})


def test_sram_platform_schema():
    w = WaferPlatform(kind="wafer", name="cb", model="llama-3.1-70b", systems=4, replicas=2)
    pipe = sram_pipeline(w, CAT)
    assert pipe.units == 4 and pipe.cfg.precision == "bf16"
    assert w.replicas * owned_usd_per_hour(w.cost, pipe.cfg.hardware, pipe.units) == pytest.approx(2 * owned_cost_usd_per_hour("cerebras-wse3", 4))
    # default units hold the weights plus one full-context sequence of KV
    d = sram_pipeline(WaferPlatform(kind="wafer", name="cb", model="llama-3.1-8b"), CAT)
    assert d.kv_capacity_tokens >= CAT.get_model("llama-3.1-8b").max_context
    g = LpuPlatform(kind="lpu", name="gq", model="llama-2-70b", chips=576, perf={"max_microbatch": 1})
    gp = sram_pipeline(g, CAT)
    assert gp.cfg.precision == "int8" and gp.concurrency == gp.stages and max_seqs(g, gp) == gp.stages
    with pytest.raises(ScenarioError, match=r"platforms\[1\]\.chips: .*needs at least 336"):
        sram_pipeline(LpuPlatform(kind="lpu", name="gq", model="llama-2-70b", chips=100), CAT, "platforms[1]")
    with pytest.raises(ScenarioError, match=r"platforms\[0\]\.hardware: .*kind 'wafer'"):
        sram_pipeline(LpuPlatform(kind="lpu", name="gq", model="llama-2-70b", hardware="cerebras-wse3"), CAT,
                      "platforms[0]")
    with pytest.raises(ValidationError):
        LpuPlatform(kind="lpu", name="gq", model="llama-2-70b", chips=0)
    assert math.isfinite(gp.token_latency_s())


# -- the platforms in a scenario ------------------------------------------------------------------------------
from conftest import scenario  # noqa: E402
from infersim.perf.token_api import published_price  # noqa: E402
from infersim.results.simulate import simulate  # noqa: E402

GROQ_8B = {"name": "groq", "kind": "lpu", "model": "llama-3.1-8b", "chips": 64}
CEREBRAS_8B = {"name": "cb", "kind": "wafer", "model": "llama-3.1-8b", "systems": 1}
FW_8B = {"name": "fw", "kind": "token_api", "model": "llama-3.1-8b", "preset": "fireworks/llama-3.1-8b"}


def _sc(*platforms, **changes):
    """BASE's workload (fixed 500 in / 50 out, Poisson) with these platforms instead of BASE's GPU fleet."""
    sc = scenario(**changes)
    from conftest import BASE
    from infersim.validate import load_scenario

    data = sc.model_dump(mode="json", exclude_none=True)
    data["platforms"] = list(platforms)
    data.pop("drain", None)
    assert BASE["drain"] == 600
    return load_scenario("test.yaml", data={**data, "drain": 600})


def test_competitor_platforms_validate_and_errors_name_the_path():
    sc = _sc(GROQ_8B, CEREBRAS_8B, FW_8B)
    assert [p.kind for p in sc.platforms] == ["lpu", "wafer", "token_api"]
    with pytest.raises(ScenarioError, match=r"platforms\[0\]\.model: unknown model 'llama-3.1-8c'"):
        _sc({**GROQ_8B, "model": "llama-3.1-8c"})
    with pytest.raises(ScenarioError, match=r"platforms\[0\]\.streams\[0\]: unknown stream 'x'"):
        _sc({**CEREBRAS_8B, "streams": ["x"]})
    with pytest.raises(ScenarioError, match=r"platforms\[0\]\.prices: no published Groq price for 'qwen2.5-coder-7b'"):
        _sc({**GROQ_8B, "model": "qwen2.5-coder-7b", "chips": None})
    with pytest.raises(ScenarioError, match=r"platforms\[0\]\.speculative\.draft_model: unknown model"):
        _sc({**GROQ_8B, "speculative": {"method": "draft_model", "draft_model": "tiny", "num_tokens": 4,
                                        "acceptance_rate": 0.7}})


def test_published_price_defaults():
    assert published_price("Groq", "llama-3.1-8b").prices == TokenPrices(0.05, 0.08)
    assert published_price("Cerebras", "llama-3.1-70b").prices == TokenPrices(0.6, 0.6)
    # Groq's -specdec tier is another product: the default is the plain one
    assert published_price("Groq", "llama-3.3-70b").prices == TokenPrices(0.59, 0.79)
    assert published_price("Groq", "qwen2.5-coder-7b") is None


def test_identical_requests_and_adding_a_platform_changes_no_other():
    changes = {"workload.streams[0].arrival.rate": 8, "duration": 30}
    alone = simulate(_sc(GROQ_8B, **changes))
    both = simulate(_sc(FW_8B, GROQ_8B, CEREBRAS_8B, **changes))
    r = both.requests
    cols = ["request_id", "arrival_s", "input_tokens", "output_tokens", "stream"]
    per = [r[r["platform"] == n][cols].reset_index(drop=True) for n in ("fw", "groq", "cb")]
    for other in per[1:]:
        assert per[0].equals(other)
    a = alone.requests.drop(columns="platform").reset_index(drop=True)
    b = r[r["platform"] == "groq"].drop(columns="platform").reset_index(drop=True)
    assert np.array_equal(a.to_numpy(), b.to_numpy())
    sa = alone.summary.iloc[0].drop("platform")
    sb = both.summary.set_index("platform").loc["groq"]
    for k, v in sa.items():
        assert (v == sb[k]) or (isinstance(v, float) and math.isnan(v) and math.isnan(sb[k])), k


def test_sram_speed_independent_of_load_until_pipelines_full_then_a_burst_queues():
    # 64 LPU chips hold Llama 3.1 8B at int8 with 64 pipeline slots (32 stages x micro-batch 2)
    slots = pipeline_for("llama-3.1-8b", "groq-lpu", units=64).concurrency
    base = {"workload.streams[0].output_tokens.value": 400, "duration": 20}
    light = simulate(_sc(GROQ_8B, **base, **{"workload.streams[0].arrival.rate": 0.5})).summary.iloc[0]
    mid = simulate(_sc(GROQ_8B, **base, **{"workload.streams[0].arrival.rate": 20})).summary.iloc[0]
    # 20 req/s x ~0.55 s each = ~11 sequences in flight, well under the 64 slots: the same per-user speed but
    # for the rounds that also carry a prompt's micro-batches (they share stage time: +3 % here)
    assert mid["tpot_p50_s"] == pytest.approx(light["tpot_p50_s"], rel=0.05)
    assert light["output_tok_s_per_user"] == pytest.approx(
        pipeline_for("llama-3.1-8b", "groq-lpu", units=64).output_tok_s_per_user(700), rel=0.05)
    # a burst of 4 x slots at once: the first `slots` start at once, the rest wait for a slot, some too long
    burst = {"kind": "closed_loop", "concurrency": 4 * slots, "requests": 4 * slots}
    res = simulate(_sc({**GROQ_8B, "queue_timeout": 1.0}, **base, **{"workload.streams[0].arrival": burst}))
    s = res.summary.iloc[0]
    req = res.requests
    assert s["pipeline_slots"] == slots
    assert (req["reason"] == "queue_timeout").sum() == s["rejected"] > 0
    fin = req[req["outcome"] == "finished"].sort_values("ttft_s")
    assert fin["ttft_s"].iloc[slots] > 10 * fin["ttft_s"].iloc[0]  # the first request after the slots waited
    assert fin["ttft_s"].iloc[slots] < 1.0 + 1e-9


def test_sram_economics_footprint_and_sizing():
    changes = {"workload.streams[0].arrival.rate": 4, "duration": 30}
    s = simulate(_sc({**GROQ_8B, "replicas": 2}, **changes)).summary.iloc[0]
    hours = s["sim_end_s"] / 3600
    assert s["chips"] == 128 and s["racks"] == pytest.approx(128 / 72) and s["power_kw"] == pytest.approx(128 * 0.3)
    assert s["provider_cost_usd"] == pytest.approx(2 * owned_cost_usd_per_hour("groq-lpu", 64) * hours)
    assert s["price_usd_per_mtok_out"] == 0.08  # Groq's published Llama 3.1 8B price (token_prices.csv)
    tokens_in, tokens_out = s["input_tok_s"], s["output_tok_s"]
    assert tokens_out / tokens_in == pytest.approx(50 / 500)
    assert s["gross_margin"] == pytest.approx(1 - s["provider_cost_usd"] / s["customer_usd"])
    # sizing: a light load needs one replica; a heavy one more, as the M/M/c sizing says for that rate
    assert s["replicas_for_slo"] == 1
    # 150 req/s x ~0.55 s = ~80 sequences wanted at once, over one replica's 64 slots
    heavy = simulate(_sc(GROQ_8B, **{"workload.streams[0].arrival.rate": 150, "duration": 10,
                                     "workload.streams[0].output_tokens.value": 400,
                                     "workload.streams[0].slo": {"ttft": 0.5}})).summary.iloc[0]
    want = systems_for_load(pipeline_for("llama-3.1-8b", "groq-lpu", units=64), heavy["slo_sizing_rate_req_s"],
                            500, 400, 0.5, math.inf).replicas
    assert heavy["replicas_for_slo"] == want > 1
    assert heavy["slo_attainment"] < 0.9  # and indeed one replica misses the SLO at that load ...
    sized = simulate(_sc({**GROQ_8B, "replicas": int(want)}, **{
        "workload.streams[0].arrival.rate": 150, "duration": 10, "workload.streams[0].output_tokens.value": 400,
        "workload.streams[0].slo": {"ttft": 0.5}})).summary.iloc[0]
    assert sized["slo_attainment"] >= 0.95  # ... while the sized fleet holds its 95th percentile


def test_token_api_rate_limits_latency_and_prices():
    lim = {**FW_8B, "rate_limits": {"requests_per_minute": 60, "burst": "10s"}}  # 1 req/s, 10 requests deep
    res = simulate(_sc(lim, **{"workload.streams[0].arrival.rate": 5, "duration": 60, "drain": 60}))
    s, req = res.summary.iloc[0], res.requests
    limited = (req["reason"] == "rate_limited").sum()
    assert limited == s["rate_limited_total"] and limited > 0
    assert (req["outcome"] == "finished").sum() == pytest.approx(10 + 60, abs=3)  # burst + 1/s refill
    fin = req[req["outcome"] == "finished"]
    assert fin["ttft_s"].median() == pytest.approx(0.3, rel=0.2)  # the preset's median (an assumption)
    assert (1 / fin["tpot_s"]).median() == pytest.approx(288, rel=0.1)  # provider_speeds.csv 2024-09-10 row
    assert s["customer_usd"] == pytest.approx((fin["input_tokens"].sum() + fin["output_tokens"].sum()) * 0.10 / 1e6)
    assert math.isnan(s["provider_cost_usd"])
    again = simulate(_sc(lim, **{"workload.streams[0].arrival.rate": 5, "duration": 60, "drain": 60}))
    assert again.requests["finish_s"].equals(req["finish_s"])


@pytest.mark.parametrize(("rate", "timeout", "cap", "plat"), [
    (30, 0.05, 4, GROQ_8B), (80, None, 8, CEREBRAS_8B), (3, 2.0, None, GROQ_8B),
    (40, None, None, {**FW_8B, "rate_limits": {"tokens_per_minute": 20_000, "burst": "5s"}})])
def test_no_request_vanishes_and_times_are_ordered(rate, timeout, cap, plat):
    extra = {k: v for k, v in (("queue_timeout", timeout), ("max_in_flight", cap)) if v is not None}
    changes = {"workload.streams[0].arrival.rate": rate, "duration": 15, "drain": 5,
               "workload.streams[0].input_tokens": {"kind": "lognormal", "median": 800, "p99": 6000},
               "workload.streams[0].output_tokens": {"kind": "lognormal", "median": 60, "p99": 600}}
    req = simulate(_sc({**plat, **extra}, **changes)).requests
    assert req["outcome"].isin(["finished", "rejected", "in_flight"]).all()
    fin = req[req["outcome"] == "finished"]
    assert (fin["arrival_s"] <= fin["first_token_s"] + 1e-12).all()
    assert (fin["first_token_s"] <= fin["finish_s"] + 1e-12).all()
    rej = req[req["outcome"] == "rejected"]
    assert (rej["reason"] != "").all() and (rej["finish_s"] >= rej["arrival_s"]).all()
    if timeout is not None:  # nobody waited for a pipeline slot longer than the timeout
        started = req[req["outcome"] != "rejected"]
        assert len(rej) == 0 or set(rej["reason"]) <= {"queue_timeout"}
        assert (started["first_token_s"] - started["arrival_s"]).max() < timeout + 0.5


@pytest.mark.parametrize(("plat", "input_tokens", "published"), [
    ({"name": "groq", "kind": "lpu", "model": "llama-2-70b", "chips": 576,  # provider_speeds 2024-02
      "prices": {"input_usd_per_mtok": 0.59, "output_usd_per_mtok": 0.79}}, 1948, 300),  # (no 2-70B price)
    ({"name": "cb", "kind": "wafer", "model": "llama-3.1-8b", "systems": 1}, 900, 1800),  # 2024-08-27
    ({"name": "cb", "kind": "wafer", "model": "llama-3.1-70b", "systems": 4}, 900, 450),  # 2024-08-27
], ids=["groq-llama-2-70b", "cerebras-llama-3.1-8b", "cerebras-llama-3.1-70b"])
def test_simulated_single_user_speed_matches_the_published_row(plat, input_tokens, published):
    # the whole path (schema -> engine -> recorder -> summary), one user at a time, at the row's mean context
    # (input + output / 2 = 2,048 for Groq, 1,000 for Cerebras; see the profiles' calibration rows)
    one_user = {"kind": "closed_loop", "concurrency": 1}
    s = simulate(_sc(plat, **{"workload.streams[0].arrival": one_user, "duration": 5,
                              "workload.streams[0].input_tokens.value": input_tokens,
                              "workload.streams[0].output_tokens.value": 200})).summary.iloc[0]
    assert s["output_tok_s_per_user"] == pytest.approx(published, rel=TOLERANCE)


@pytest.mark.parametrize("hw, model, units, prec", [("groq-lpu", "qwen2.5-coder-7b", 48, "int8"),
                                                    ("cerebras-wse3", "llama-3.1-70b", 4, "bf16"),
                                                    ("groq-lpu", "llama-3.1-70b", 576, "int8")])
def test_sram_decode_rounds_have_an_exact_affine_form(hw, model, units, prec):
    """The engine fast-forwards SRAM decode rounds with ``decode_affine`` (a compiled scalar loop); its rounds
    equal the pipeline equations (the latency chain or the busy stage, whichever is longer) to rounding, and
    ``decode_steps_s`` and ``step_s`` give bit-for-bit the fast-forward's value."""
    from infersim.catalog import default_catalog
    from infersim.engine.fastforward import decode_times
    from infersim.perf.sram.pipeline import SramConfig, SramPipeline

    cat = default_catalog()
    p = SramPipeline(SramConfig(cat.get_hardware(hw), cat.get_model(model), units, prec))
    seen_affine = False
    for b in [*range(1, 120), 500, 3000]:
        ctx = b * 700.0 + b * np.arange(40.0)
        chain, busy, _ = p._decode(b, ctx)
        got = p.decode_steps_s(b, ctx)
        assert got == pytest.approx(np.maximum(chain, busy), rel=1e-12), b
        assert got[5] == p.step_s(0, 0.0, 0, b, ctx[5])
        if p.decode_affine(b) is not None:
            seen_affine = True
            dts, cum = np.zeros(40), np.zeros(40)
            decode_times(p, b, int(ctx[0]), 40, dts, cum)
            assert np.array_equal(dts, got) and np.array_equal(cum, np.cumsum(got))
    assert seen_affine
