"""``infersim calibrate``, the profile fit, user profiles in scenarios, and the closed-loop client."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import yaml

from conftest import BASE, scenario
from infersim.calibrate import fit as fitmod
from infersim.calibrate.fit import error_table, fit_rows, predict, summarize_errors
from infersim.calibrate.measured import parse_row, read_measured
from infersim.calibrate.runner import Simulated, simulate_row
from infersim.cli import main
from infersim.core.errors import ScenarioError
from infersim.perf.params import PerfParams
from infersim.perf.profiles import load_profile_file, shipped_profile, shipped_profile_doc
from infersim.results.simulate import simulate
from infersim.validate import load_scenario

HEADER = "model,hardware,tp,precision,engine,concurrency,input_tokens,output_tokens,num_requests,ttft_mean_ms,itl_mean_ms\n"


def _row(i=1, **kw):
    raw = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "tp": "1", "precision": "bf16", "engine": "vllm",
           "concurrency": "4", "input_tokens": "512", "output_tokens": "32", "num_requests": "16",
           "ttft_mean_ms": "100", "itl_mean_ms": "10"}
    raw.update({k: str(v) for k, v in kw.items()})
    return parse_row(raw, i)


# -- reading measured runs ---------------------------------------------------------------------------------------
def test_common_spellings_resolve_to_catalog_ids():
    r = _row(model="meta-llama/Llama-3.1-70B", hardware="H100-SXM-80GB", engine="TensorRT-LLM", tp="2.0")
    assert (r.model, r.hardware, r.engine, r.tp) == ("llama-3.1-70b", "h100-sxm", "trtllm", 2)
    assert _row(model="Qwen/Qwen3-32B", engine="SGLang").model == "qwen3-32b"


def test_malformed_rows_are_reported_with_their_row_number(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text(HEADER
                 + "llama-3.1-8b,h100-sxm,1,bf16,vllm,4,512,32,16,100,10\n"         # row 1 ok
                 + "llama-9b,h100-sxm,1,bf16,vllm,4,512,32,16,100,10\n"             # row 2 unknown model
                 + "llama-3.1-8b,h100-sxm,abc,bf16,vllm,4,512,32,16,100,10\n"       # row 3 bad tp
                 + "llama-3.1-8b,h100-sxm,1,bf16,vllm,,512,32,16,100,10\n"          # row 4 no load
                 + "llama-3.1-8b,h100-sxm,1,bf16,foo,4,512,32,16,100,10\n"          # row 5 unknown engine
                 + "llama-3.1-8b,h100-sxm,1,bf16,vllm,4,512,32,16,-3,10\n")         # row 6 negative metric
    rows, problems = read_measured(f)
    assert [r.row for r in rows] == [1]
    assert [p.row for p in problems] == [2, 3, 4, 5, 6]
    msgs = {p.row: p.message for p in problems}
    assert "llama-9b" in msgs[2] and "tp" in msgs[3] and "concurrency or rate_per_s" in msgs[4]
    assert "engine" in msgs[5] and "ttft_mean_ms" in msgs[6]


# -- the CLI, with the simulator replaced by fixed predictions (exact arithmetic) ----------------------------------
FAKE = {1: {"ttft_mean_ms": 110.0, "itl_mean_ms": 9.0}, 2: {"ttft_mean_ms": 150.0, "itl_mean_ms": 30.0},
        3: {"ttft_mean_ms": 100.0, "itl_mean_ms": 20.0}}


@pytest.fixture
def fake_sim(monkeypatch):
    def fake(row, params=None, **_kw):
        return Simulated(row, dict(FAKE[row.row]), finished=row.num_requests)
    monkeypatch.setattr(fitmod, "simulate_row", fake)


def _csv(tmp_path, extra=""):
    f = tmp_path / "measured.csv"
    f.write_text(HEADER
                 + "meta-llama/Llama-3.1-8B,H100-SXM-80GB,1,bf16,vLLM,4,512,32,16,100,10\n"
                 + "llama-3.1-8b,h100-sxm,1,bf16,vllm,8,512,32,16,200,25\n"
                 + "llama-3.1-8b,h100-sxm,1,bf16,vllm,16,512,32,16,125,\n" + extra)
    return f


def test_calibrate_json_errors_are_exact(tmp_path, capsys, fake_sim):
    assert main(["calibrate", str(_csv(tmp_path)), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"file", "rows", "skipped", "summary", "worst", "overall"}
    errs = {(r["row"], m): v["error_pct"] for r in out["rows"] for m, v in r["metrics"].items()}
    # (110-100)/100, (9-10)/10, (150-200)/200, (30-25)/25, (100-125)/125; row 3 has no ITL: skipped
    assert errs == {(1, "ttft_mean_ms"): 10.0, (1, "itl_mean_ms"): -10.0, (2, "ttft_mean_ms"): -25.0,
                    (2, "itl_mean_ms"): 20.0, (3, "ttft_mean_ms"): -20.0}
    assert out["summary"] == {"itl_mean_ms": 15.0, "ttft_mean_ms": 20.0}  # medians of |10|,|20| and |10|,|25|,|20|
    assert out["worst"] == {"itl_mean_ms": 20.0, "ttft_mean_ms": 25.0}
    assert out["overall"]["median_abs_pct"] == 20.0 and out["overall"]["worst_abs_pct"] == 25.0
    assert out["overall"]["rows"] == 3 and out["skipped"] == []


def test_calibrate_table_skips_malformed_row_and_writes_outputs(tmp_path, capsys, fake_sim):
    f = _csv(tmp_path, extra="llama-3.1-8b,h100-sxm,1,bf16,vllm,4,512,zero,16,100,10\n")
    out_dir = tmp_path / "out"
    assert main(["calibrate", str(f), "--out", str(out_dir)]) == 0
    cap = capsys.readouterr()
    assert "row 4: output_tokens" in cap.err and "skipped" in cap.err
    assert "ttft_mean_ms" in cap.out and "overall" in cap.out and "-25.0%" in cap.out
    table = (out_dir / "comparison.csv").read_text().splitlines()
    assert len(table) == 1 + 5
    assert (out_dir / "predicted_vs_measured.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibrate_exit_codes(tmp_path, capsys):
    missing = tmp_path / "nope.csv"
    assert main(["calibrate", str(missing)]) == 2
    assert "nope.csv" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "llama-9b,h100-sxm,1,bf16,vllm,4,512,32,16,100,10\n")
    assert main(["calibrate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "row 1" in err and "no usable row" in err
    nohead = tmp_path / "nohead.csv"
    nohead.write_text("model,hardware\nx,y\n")
    assert main(["calibrate", str(nohead)]) == 2
    assert "missing column" in capsys.readouterr().err


# -- the fit: round trip on simulated data --------------------------------------------------------------------
#: "Measured" parameters of the round trip (not a shipped profile, so that refits do not move the test).
TRUE = PerfParams(compute_eff=0.72, attn_eff=0.35, memory_eff=0.62, step_overhead_s=0.004)
NAMES = ("memory_eff", "step_overhead_s", "compute_eff")


def _synthetic_rows(noise: float, seed: int = 3, truth: PerfParams = TRUE):
    """Rows measured with ``truth`` parameters plus multiplicative lognormal noise (sigma ``noise``)."""
    rng = np.random.default_rng(seed)
    rows = []
    i = 0
    for prec in ("bf16", "fp8"):  # two weight sizes tell the step overhead from the bandwidth
        for conc, inp, out in ((1, 256, 48), (8, 256, 48), (2, 3072, 16)):
            i += 1
            r = _row(i, precision=prec, concurrency=conc, input_tokens=inp, output_tokens=out,
                     num_requests=max(2 * conc, 4), client_start="burst")
            sim = simulate_row(r, truth)
            metrics = {m: sim.predicted[m] * float(np.exp(noise * rng.standard_normal()))
                       for m in ("ttft_mean_ms", "itl_mean_ms")}
            rows.append(replace(r, metrics=metrics))
    return rows


def test_fit_round_trip_recovers_known_parameters():
    """Six rows (12 metrics) measured with known parameters plus 1 % lognormal noise; three free parameters
    started 25-40 % off.

    Tolerance: ITL = overhead + weights / (bandwidth x memory_eff), so memory_eff comes from the ITL difference
    between the bf16 and fp8 rows (~4 ms): 1 % noise on ~10 ms ITLs moves it by ~2-3 % (one sigma), hence 8 %;
    the overhead is the intercept (a few ms, ~10 % per sigma), hence 25 %; compute_eff is set by the 3072-token
    prefills (TTFT ~ 0.1-0.2 s, 1 % noise), hence 8 %. Predictions of the fitted model must then match the
    noise-free data within 5 %."""
    rows = _synthetic_rows(noise=0.01)
    start = TRUE.with_(memory_eff=0.85, step_overhead_s=0.0025, compute_eff=0.95)
    res = fit_rows(rows, start, NAMES, max_nfev=30)
    p = res.params
    assert p.memory_eff == pytest.approx(TRUE.memory_eff, rel=0.08)
    assert p.step_overhead_s == pytest.approx(TRUE.step_overhead_s, rel=0.25)
    assert p.compute_eff == pytest.approx(TRUE.compute_eff, rel=0.08)
    clean = [replace(r, metrics=simulate_row(r, TRUE).predicted) for r in rows]
    table = error_table(predict([replace(r, metrics={m: r.metrics[m] for m in ("ttft_mean_ms", "itl_mean_ms")})
                                 for r in clean], p))
    assert summarize_errors(table)["worst_abs_pct"].max() < 5.0


def test_calibrate_fit_writes_a_profile_that_a_scenario_can_use(tmp_path, capsys):
    truth = shipped_profile("vllm").with_(memory_eff=0.62, step_overhead_s=0.004)
    rows = [r for r in _synthetic_rows(noise=0.0, truth=truth) if r.concurrency == 1]  # bf16 and fp8, batch 1
    f = tmp_path / "runs.csv"
    f.write_text(HEADER + "".join(
        f"{r.model},{r.hardware},{r.tp},{r.precision},{r.engine},{r.concurrency},{r.input_tokens},"
        f"{r.output_tokens},{r.num_requests},{r.metrics['ttft_mean_ms']},{r.metrics['itl_mean_ms']}\n" for r in rows))
    out = tmp_path / "fit"
    assert main(["calibrate", str(f), "--fit", "--json", "--out", str(out)]) == 0
    res = json.loads(capsys.readouterr().out)
    prof = out / "vllm-profile.yaml"
    assert str(prof) in res["outputs"] and res["fit"][0]["engine"] == "vllm"
    assert res["fit"][0]["fitted_params"] == ["memory_eff", "step_overhead_s"]  # 4 metrics: 2 parameters
    doc = yaml.safe_load(prof.read_text())
    assert doc["engine"] == "vllm" and set(doc["params"]) == set(PerfParams().as_dict())
    assert res["fit"][0]["summary"]["itl_mean_ms"] < 1.0  # exact data, the two parameters that differ
    params = load_profile_file(prof)
    assert params.memory_eff == pytest.approx(truth.memory_eff, rel=0.03)
    # the fitted profile, named relative to the scenario's directory
    data = _with_profile("vllm-profile.yaml", precision="bf16")
    (out / "sc.yaml").write_text(yaml.safe_dump(data))
    sc = load_scenario(out / "sc.yaml")
    assert sc.platforms[0].deployments[0].engine.profile == "vllm-profile.yaml"
    fitted = simulate(sc).summary["tpot_p50_s"].iloc[0]
    shipped = simulate(load_scenario(tmp_path / "x.yaml", data=_with_profile(None, precision="bf16")))
    assert fitted > shipped.summary["tpot_p50_s"].iloc[0]  # memory_eff 0.62 + 4 ms overhead: slower decode


def _with_profile(profile: str | None, **dep) -> dict:
    data = copy.deepcopy(BASE)
    data["duration"] = 20
    d = data["platforms"][0]["deployments"][0]
    d.update(dep)
    if profile is not None:
        d["engine"]["profile"] = profile
    return data


def test_user_profile_in_a_scenario(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "slow.yaml").write_text("engine: vllm\nparams:\n  step_overhead_s: 0.05\n")
    sc = load_scenario(tmp_path / "s.yaml", data=_with_profile("profiles/slow.yaml"))
    tpot = simulate(sc).summary["tpot_p50_s"].iloc[0]
    assert tpot > 0.05  # every step pays the profile's 50 ms
    # omitted parameters keep the shipped values of the engine's kind
    assert load_profile_file(tmp_path / "profiles" / "slow.yaml", base=shipped_profile("vllm")).memory_eff == \
        shipped_profile("vllm").memory_eff
    # a missing file and a bad parameter name the YAML path of the deployment's profile
    with pytest.raises(ScenarioError, match=r"platforms\[0\]\.deployments\[0\]\.engine\.profile.*nope\.yaml"):
        load_scenario(tmp_path / "s.yaml", data=_with_profile("nope.yaml"))
    (tmp_path / "bad.yaml").write_text("params:\n  warp_speed: 2\n")
    with pytest.raises(ScenarioError, match=r"engine\.profile: profile 'bad.yaml': params\.warp_speed: unknown"):
        load_scenario(tmp_path / "s.yaml", data=_with_profile("bad.yaml"))


def test_shipped_profiles_are_fitted_documents():
    for engine in ("vllm", "sglang", "trtllm"):
        doc = shipped_profile_doc(engine)
        assert doc["engine"] == engine and doc["rows"] and doc["sources"] and doc["fitted_params"]
        assert {"ttft", "itl"} <= set(doc["median_abs_error_pct"]) <= {"ttft", "itl", "e2e", "throughput"}
        assert all(math.isfinite(float(v)) for v in doc["params"].values())
        # every source the profile was fitted on also reports its error when held out of the fit
        assert all("in_sample" in s and "held_out" in s for s in doc["sources"])
        assert doc["params"]["schedule_delay_per_seq_s"] == 0.0  # the closed-loop client's, not the engine's


# -- the closed loop ----------------------------------------------------------------------------------------------
def _closed(conc, think, requests):
    return scenario(**{"duration": 600, "workload.streams[0].arrival": {
        "kind": "closed_loop", "concurrency": conc, "think_time": think, "requests": requests}})


def _in_flight_max(q) -> int:
    ev = sorted([(t, 1) for t in q["arrival_s"]] + [(t, -1) for t in q["finish_s"]], key=lambda e: (e[0], e[1]))
    n = peak = 0
    for _t, d in ev:
        n += d
        peak = max(peak, n)
    return peak


def test_closed_loop_keeps_n_clients_and_caps_requests():
    q = simulate(_closed(3, 0.0, 20)).requests
    assert len(q) == 20 and (q["outcome"] == "finished").all()
    assert _in_flight_max(q) == 3
    assert (q["arrival_s"] == 0).sum() == 3  # the clients start together


def test_closed_loop_think_time_separates_a_clients_requests():
    q = simulate(_closed(1, 2.0, 5)).requests.sort_values("arrival_s")
    gaps = q["arrival_s"].to_numpy()[1:] - q["finish_s"].to_numpy()[:-1]
    assert np.allclose(gaps, 2.0)
    assert _in_flight_max(q) == 1
