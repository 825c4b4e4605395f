"""Sweeps: value syntax, points, seeds, validation, resume, failures, executors, tables and intervals."""

from __future__ import annotations

import copy
import json
import math
import os
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import BASE
from infersim.cli import main
from infersim.core.errors import InfersimError, ScenarioError
from infersim.report.stats import t_interval as ci95
from infersim.scenario.values import column_values, parse_spec, split_list
from infersim.sweep.execute import DaskExecutor, LocalExecutor, SerialExecutor
from infersim.sweep.plan import build_plan, replication_seed
from infersim.sweep.results import summarize_points
from infersim.sweep.runner import run_sweep

RATE = "workload.streams[0].arrival.rate"
REPL = "platforms[0].deployments[0].replicas"
DELAY = "platforms[0].deployments[0].engine.perf.schedule_delay_s"
SLO = "workload.streams[0].slo.ttft"


def tiny(**top) -> dict:
    """BASE with a short run: 10 s of arrivals at 2/s, 60 s drain."""
    d = copy.deepcopy(BASE)
    d.update({"duration": 10, "drain": 60, **top})
    return d


CALLS: list[int] = []


def fake_unit(task):
    """A deterministic stand-in for a simulation: rows computed from the point and the seed."""
    CALLS.append(task.point)
    rate = task.scenario.workload.streams[0].arrival.rate
    reps = task.scenario.platforms[0].deployments[0].replicas
    return [{"platform": "p", "load": rate / reps + (task.seed % 7) * 0.01, "requests": int(rate * 10)},
            {"platform": "q", "load": 2 * rate, "requests": int(rate * 20)}]


def interrupt_after(k):
    def fn(task):
        if len(CALLS) >= k:
            raise KeyboardInterrupt
        return fake_unit(task)
    return fn


def crash_at_rate_3(task):
    """A worker process dying mid-unit (as when the kernel kills it for memory)."""
    if task.scenario.workload.streams[0].arrival.rate == 3:
        os._exit(1)
    return fake_unit(task)


def fail_at_rate(rate):
    def fn(task):
        if task.scenario.workload.streams[0].arrival.rate == rate:
            raise ValueError(f"no capacity at {rate}/s")
        return fake_unit(task)
    return fn


# ----------------------------------------------------------------------------------------------- values


@pytest.mark.parametrize("spec, grid, col", [
    ("0.5:0.9:5", [0.5, 0.6, 0.7, 0.8, 0.9], [0.5, 0.6, 0.7, 0.8, 0.9]),
    ("log:1:1000:4", [1, 10, 100, 1000], [1, 10, 100, 1000]),
    ("log:0.1:10:3", [0.1, 1.0, 10.0], [0.1, 1.0, 10.0]),
    ("1:8:8", [1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 8]),
    ("1m:15m:3", ["60s", "480s", "900s"], [60.0, 480.0, 900.0]),
    ("5/s:20/s:4", ["5/s", "10/s", "15/s", "20/s"], [5.0, 10.0, 15.0, 20.0]),
    ("0:2m:3", ["0s", "60s", "120s"], [0.0, 60.0, 120.0]),
    ("15m,30m", ["15m", "30m"], [900.0, 1800.0]),
    ("1,2,4", [1, 2, 4], [1, 2, 4]),
    ("vllm,sglang", ["vllm", "sglang"], ["vllm", "sglang"]),
    ("true,false", [True, False], [True, False]),
    ("7", [7], [7]),
])
def test_value_specs(spec, grid, col):
    g = parse_spec(spec).grid()
    assert g == grid and [type(x) for x in g] == [type(x) for x in grid]
    assert column_values(g) == col


def test_list_split_keeps_brackets_and_quotes():
    assert split_list("[1,2],{a: 1, b: 2},'x,y',3") == ["[1,2]", "{a: 1, b: 2}", "'x,y'", "3"]
    assert parse_spec("[1,2],3").values == ([1, 2], 3)
    assert parse_spec([1, "15m"]).grid() == [1, "15m"]


@pytest.mark.parametrize("spec, msg", [
    ("1:x:3", "'x' is not a number"),
    ("log:0:10:3", "must be > 0"),
    ("5:1:3", "start must not exceed the end"),
    ("1:2:5", "repeated integers"),
    ("1:2:0", "positive integer"),
    ("1s:5/s:3", "different units"),
    ("1,,2", "empty value"),
])
def test_bad_value_specs(spec, msg):
    with pytest.raises(ValueError, match=msg):
        parse_spec(spec).grid()


def test_range_without_count_is_for_sampling_only():
    dom = parse_spec("1:5")
    with pytest.raises(ValueError, match="number of points"):
        dom.grid()
    assert dom.sample(np.array([0.0, 0.999])) == [1, 5]


# ----------------------------------------------------------------------------------------------- points


def test_grid_size_values_and_order_exact():
    plan = build_plan("t.yaml", [f"{RATE}=1/s:4/s:4", f"{REPL}=1,2,3"], data=tiny())
    assert len(plan.points) == 12
    assert [pt.raw for pt in plan.points[:4]] == [
        {RATE: "1/s", REPL: 1}, {RATE: "1/s", REPL: 2}, {RATE: "1/s", REPL: 3}, {RATE: "2/s", REPL: 1}]
    assert [pt.scenario.workload.streams[0].arrival.rate for pt in plan.points] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert [pt.scenario.platforms[0].deployments[0].replicas for pt in plan.points] == [1, 2, 3] * 4
    assert [pt.columns[RATE] for pt in plan.points[::3]] == [1.0, 2.0, 3.0, 4.0]
    assert plan.values_listing() == [{"path": RATE, "values": [1.0, 2.0, 3.0, 4.0]},
                                     {"path": REPL, "values": [1, 2, 3]}]


def test_integer_ranges_follow_the_field_type():
    plan = build_plan("t.yaml", [f"{RATE}=1:3:5", f"{REPL}=1:4:4"], data=tiny())
    assert sorted({pt.raw[RATE] for pt in plan.points}) == [1.0, 1.5, 2.0, 2.5, 3.0]
    assert sorted({pt.raw[REPL] for pt in plan.points}) == [1, 2, 3, 4]
    with pytest.raises(InfersimError, match=f"{re.escape(REPL)}: integer range '1:2:5' gives repeated"):
        build_plan("t.yaml", [f"{REPL}=1:2:5"], data=tiny())
    lhs = build_plan("t.yaml", [f"{RATE}=1:3", "seed=0:1000"], sampling="lhs", samples=20, data=tiny())
    assert all(isinstance(pt.raw["seed"], int) for pt in lhs.points)
    assert not all(float(pt.raw[RATE]).is_integer() for pt in lhs.points)


def test_block_and_command_line_merge():
    d = tiny(sweep={"parameters": {RATE: "1:2:2", REPL: [1, 2]}, "replications": 3})
    plan = build_plan("t.yaml", [f"{REPL}=4"], data=d)
    assert [(pt.columns[RATE], pt.columns[REPL]) for pt in plan.points] == [(1, 4), (2, 4)]
    assert plan.replications == 3
    assert build_plan("t.yaml", [], replications=1, data=d).replications == 1


@pytest.mark.parametrize("how", ["random", "lhs"])
def test_random_and_lhs_within_bounds_and_seeded(how):
    sets = [f"{RATE}=0.5/s:4/s", f"{DELAY}=log:0.001:0.1", f"{REPL}=1,3", "workload.streams[0].output_tokens.value=10:20"]
    plan = build_plan("t.yaml", sets, sampling=how, samples=40, data=tiny())
    again = build_plan("t.yaml", sets, sampling=how, samples=40, data=tiny())
    other = build_plan("t.yaml", sets, sampling=how, samples=40, data=tiny(seed=2))
    assert [p.raw for p in plan.points] == [p.raw for p in again.points]
    assert [p.raw for p in plan.points] != [p.raw for p in other.points]
    rates = np.array([p.columns[RATE] for p in plan.points])
    delays = np.array([p.columns[DELAY] for p in plan.points])
    outs = [p.raw["workload.streams[0].output_tokens.value"] for p in plan.points]
    assert ((rates >= 0.5) & (rates <= 4)).all() and ((delays >= 0.001) & (delays <= 0.1)).all()
    assert {p.columns[REPL] for p in plan.points} == {1, 3}
    assert all(isinstance(v, int) and 10 <= v <= 20 for v in outs)
    if how == "lhs":  # one draw in each of the 40 equal strata of every continuous range
        assert sorted(np.floor((rates - 0.5) / 3.5 * 40).astype(int)) == list(range(40))
        logs = (np.log(delays) - math.log(0.001)) / (math.log(0.1) - math.log(0.001))
        assert sorted(np.minimum(np.floor(logs * 40), 39).astype(int)) == list(range(40))


def test_replication_seeds_common_across_points():
    plan = build_plan("t.yaml", [f"{RATE}=1,2,3"], replications=3, data=tiny(seed=11))
    seeds = {}
    for u in plan.units():
        seeds.setdefault(u.replication, set()).add(u.seed)
    assert all(len(s) == 1 for s in seeds.values())
    assert seeds[0] == {11} and seeds[1] == {replication_seed(11, 1)} and len({*seeds[1], *seeds[2]}) == 2
    assert replication_seed(11, 1) == int(np.random.SeedSequence(11, spawn_key=(1,)).generate_state(1)[0])


def test_swept_seed():
    plan = build_plan("t.yaml", ["seed=3,4"], data=tiny())
    assert [(u.point, u.seed) for u in plan.units()] == [(0, 3), (1, 4)]
    with pytest.raises(InfersimError, match="replications 1"):
        build_plan("t.yaml", ["seed=3,4"], replications=2, data=tiny())


def test_invalid_point_reported_with_values_and_path(tmp_path):
    with pytest.raises(ScenarioError) as err:
        build_plan("t.yaml", [f"{REPL}=1,0"], data=tiny())
    assert f"sweep point 1 ({REPL}=0): {REPL}: expected greater than or equal to 1" in str(err.value)
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(tiny()))
    out = tmp_path / "out"
    assert main(["sweep", str(f), "--set", "platforms[0].deployments[0].hardwar=h100-sxm", "--out", str(out)]) == 2
    assert main(["sweep", str(f), "--set", f"{RATE}=1:x:3", "--out", str(out)]) == 2
    assert main(["sweep", str(f), "--out", str(out)]) == 2  # nothing to sweep
    assert not out.exists()


def test_sweep_block_validated_with_the_scenario():
    from infersim.validate import load_scenario

    with pytest.raises(ScenarioError, match=r"sweep\.parameters: 'seed': range '1:x'"):
        load_scenario("t.yaml", data=tiny(sweep={"parameters": {"seed": "1:x"}}))
    with pytest.raises(ScenarioError, match=r"sweep\.samples: lhs sampling needs"):
        load_scenario("t.yaml", data=tiny(sweep={"parameters": {"seed": "1:9"}, "sampling": "lhs"}))
    with pytest.raises(ScenarioError, match=r"sweep\.parameters: 'sweep\.samples'"):
        load_scenario("t.yaml", data=tiny(sweep={"parameters": {"sweep.samples": "1,2"}}))


# ----------------------------------------------------------------------------------------------- running


def test_resume_after_interrupt_skips_finished_units(tmp_path):
    plan = build_plan("t.yaml", [f"{RATE}=1:4:4", f"{REPL}=1,2"], replications=2, data=tiny())  # 16 units
    CALLS.clear()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(plan, tmp_path / "a", fn=interrupt_after(5))
    assert len(list((tmp_path / "a" / "parts").glob("*.json"))) == 5 + 1  # five units and the definition
    partial = pd.read_parquet(tmp_path / "a" / "points.parquet")  # assembled on interrupt
    assert len(partial) == 5 * 2 and (partial["status"] == "ok").all()
    CALLS.clear()
    res = run_sweep(plan, tmp_path / "a", fn=fake_unit)
    assert len(CALLS) == 16 - 5 and (res.skipped, res.ran, res.failed) == (5, 11, 0)
    CALLS.clear()
    assert run_sweep(plan, tmp_path / "a", fn=fake_unit).ran == 0 and CALLS == []
    run_sweep(plan, tmp_path / "b", fn=fake_unit)
    for name in ("points", "summary"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / f"{name}.parquet"),
                                      pd.read_parquet(tmp_path / "b" / f"{name}.parquet"))
    # more replications reuse the finished ones (units are keyed by values and seed)
    CALLS.clear()
    more = build_plan("t.yaml", [f"{RATE}=1:4:4", f"{REPL}=1,2"], replications=3, data=tiny())
    assert run_sweep(more, tmp_path / "a", fn=fake_unit).ran == 8 and len(CALLS) == 8


def test_repeated_random_points_share_their_runs(tmp_path):
    plan = build_plan("t.yaml", [f"{RATE}=1,2"], sampling="random", samples=10, replications=2, data=tiny())
    assert len(plan.points) == 10 and {pt.raw[RATE] for pt in plan.points} == {1, 2}
    CALLS.clear()
    res = run_sweep(plan, tmp_path / "o", fn=fake_unit)
    assert len(CALLS) == 4 and res.ran == 20
    pts = pd.read_parquet(tmp_path / "o" / "points.parquet")
    assert len(pts) == 10 * 2 * 2 and list(pts["point"].unique()) == list(range(10))


def test_resume_refuses_another_sweep(tmp_path):
    run_sweep(build_plan("t.yaml", [f"{RATE}=1,2"], data=tiny()), tmp_path / "o", fn=fake_unit)
    with pytest.raises(InfersimError, match="parameters differ"):
        run_sweep(build_plan("t.yaml", [f"{RATE}=1,3"], data=tiny()), tmp_path / "o", fn=fake_unit)
    with pytest.raises(InfersimError, match="the scenario"):
        run_sweep(build_plan("t.yaml", [f"{RATE}=1,2"], data=tiny(duration=20)), tmp_path / "o", fn=fake_unit)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(InfersimError, match="not a sweep output directory"):
        run_sweep(build_plan("t.yaml", [f"{RATE}=1,2"], data=tiny()), tmp_path / "other", fn=fake_unit)


def test_failing_point_recorded_and_others_complete(tmp_path):
    plan = build_plan("t.yaml", [f"{RATE}=1,2,3"], replications=2, data=tiny())
    CALLS.clear()
    res = run_sweep(plan, tmp_path / "o", fn=fail_at_rate(2.0))
    assert (res.ran, res.failed) == (6, 2) and len(CALLS) == 4
    pts = pd.read_csv(tmp_path / "o" / "points.csv", keep_default_na=False)
    bad = pts[pts["status"] == "failed"]
    assert list(bad["point"]) == [1, 1] and list(bad["platform"]) == ["", ""]
    assert (bad["error"] == "ValueError: no capacity at 2.0/s").all()
    assert (pts.loc[pts["status"] == "ok", "error"] == "").all() and (pts["point"] != 1).sum() == 8
    summ = pd.read_parquet(tmp_path / "o" / "summary.parquet")
    assert list(zip(summ["point"], summ["platform"], summ["n"], strict=True)) == [
        (0, "p", 2), (0, "q", 2), (1, "", 0), (2, "p", 2), (2, "q", 2)]
    assert math.isnan(summ.loc[2, "load_mean"])
    CALLS.clear()  # failed units run again on resume
    assert run_sweep(plan, tmp_path / "o", fn=fake_unit).ran == 2 and len(CALLS) == 2


def test_lost_worker_stops_the_sweep_and_resume_completes_it(tmp_path):
    plan = build_plan("t.yaml", [f"{RATE}=1:6:6"], data=tiny())
    with pytest.raises(InfersimError, match="re-run the same command to resume"):
        run_sweep(plan, tmp_path / "o", executor=LocalExecutor(workers=1), fn=crash_at_rate_3)
    pts = pd.read_parquet(tmp_path / "o" / "points.parquet")
    assert "BrokenProcessPool" in " ".join(pts["error"]) and (pts["status"] == "ok").sum() < 6
    CALLS.clear()
    res = run_sweep(plan, tmp_path / "o", fn=fake_unit)
    assert res.failed == 0 and len(CALLS) == res.ran == 6 - res.skipped
    assert (pd.read_parquet(tmp_path / "o" / "points.parquet")["status"] == "ok").all()


def test_ci95_exact_on_hand_made_numbers():
    t3 = 3.182446305284263  # Student t, 97.5 % quantile, 3 degrees of freedom
    m, lo, hi, n = ci95([1.0, 2.0, 3.0, 4.0])
    half = t3 * math.sqrt(5 / 3) / 2
    assert (m, n) == (2.5, 4) and lo == pytest.approx(2.5 - half, abs=1e-12) and hi == pytest.approx(2.5 + half, abs=1e-12)
    assert ci95([5.0, 5.0])[1:3] == (5.0, 5.0)
    m1, lo1, hi1, n1 = ci95([7.0, math.nan])
    assert (m1, n1) == (7.0, 1) and math.isnan(lo1) and math.isnan(hi1)
    pts = pd.DataFrame({"point": [0, 0, 0, 0, 1], "replication": [0, 1, 2, 3, 0], "seed": [1, 2, 3, 4, 1],
                        "platform": ["p"] * 5, "x": [0, 0, 0, 0, 1], "m": [1.0, 2.0, 3.0, 4.0, 9.0],
                        "status": ["ok"] * 5, "error": [""] * 5})
    s = summarize_points(pts, ["x"], ["m"])
    assert list(s.columns) == ["point", "platform", "x", "n", "m_mean", "m_ci_lo", "m_ci_hi"]
    assert list(s["n"]) == [4, 1] and s.loc[0, "m_ci_lo"] == pytest.approx(2.5 - half, abs=1e-12)
    assert s.loc[1, "m_mean"] == 9.0 and math.isnan(s.loc[1, "m_ci_lo"]) and math.isnan(s.loc[1, "m_ci_hi"])


def test_cli_tables_follow_the_contract(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(tiny(sweep={"parameters": {RATE: "1/s,3/s"}, "replications": 2})))
    out = tmp_path / "out"
    argv = ["sweep", str(f), "--set", f"{SLO}=5ms,20ms", "--out", str(out), "--workers", "1", "--quiet"]
    assert main(argv) == 0
    meta = json.loads((out / "sweep.json").read_text())
    assert {k: meta[k] for k in ("scenario", "scenario_name", "sampling", "replications", "points")} == {
        "scenario": str(f), "scenario_name": "t", "sampling": "grid", "replications": 2, "points": 4}
    assert meta["parameters"] == [{"path": RATE, "values": [1.0, 3.0]}, {"path": SLO, "values": [0.005, 0.02]}]
    saved = json.loads((out / "scenario.json").read_text())  # the base scenario as run, for reports
    assert saved["name"] == "t" and "sweep" in saved
    pts = pd.read_parquet(out / "points.parquet")
    assert list(pts.columns[:6]) == ["point", "replication", "seed", "platform", RATE, SLO]
    assert list(pts.columns[-2:]) == ["status", "error"] and list(pts.columns[6:-2]) == meta["metrics"]
    assert {"ttft_p99_s", "slo_attainment", "output_tok_s"} <= set(meta["metrics"])
    assert len(pts) == 8 and (pts["status"] == "ok").all() and list(pts["seed"]) == [1, replication_seed(1, 1)] * 4
    assert list(pts[SLO]) == [0.005, 0.005, 0.02, 0.02] * 2
    csv = pd.read_csv(out / "points.csv")
    assert list(csv.columns) == list(pts.columns) and len(csv) == 8
    summ = pd.read_parquet(out / "summary.parquet")
    assert list(summ.columns[:5]) == ["point", "platform", RATE, SLO, "n"]
    assert list(summ.columns[5:8]) == [f"{meta['metrics'][0]}_{s}" for s in ("mean", "ci_lo", "ci_hi")]
    assert (summ["n"] == 2).all() and len(summ) == 4
    ttft = pts.groupby("point")["ttft_p99_s"].mean()
    assert np.allclose(summ["ttft_p99_s_mean"], ttft) and (summ["ttft_p99_s_ci_lo"] <= summ["ttft_p99_s_mean"]).all()
    # the swept value reached the simulation: three times the rate brings more requests
    assert (summ.loc[summ[RATE] == 3.0, "requests_mean"].to_numpy() > summ.loc[summ[RATE] == 1.0, "requests_mean"].to_numpy()).all()
    assert main(argv) == 0  # resume: nothing left to run
    assert main(["sweep", str(f), "--set", f"{SLO}=5ms", "--out", str(out), "--quiet"]) == 2


def test_dask_and_local_executors_give_identical_tables(tmp_path):
    pytest.importorskip("distributed")
    plan = build_plan("t.yaml", [f"{RATE}=1,3", f"{REPL}=1,2"], replications=2, data=tiny())
    tables = {}
    for name, ex in (("serial", SerialExecutor()), ("local", LocalExecutor(workers=2)),
                     ("dask", DaskExecutor(workers=1, processes=False))):
        res = run_sweep(plan, tmp_path / name, executor=ex)
        assert (res.ran, res.failed) == (8, 0)
        tables[name] = pd.read_parquet(tmp_path / name / "points.parquet")
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        run_sweep(plan, tmp_path / "address", executor=DaskExecutor(address=cluster.scheduler_address))
    tables["address"] = pd.read_parquet(tmp_path / "address" / "points.parquet")
    for name in ("local", "dask", "address"):
        pd.testing.assert_frame_equal(tables["serial"], tables[name])
    assert tables["dask"]["ttft_p99_s"].notna().all()
