"""Charts and the memo report: images of the expected size whose plotted data match the results tables, sweep
charts from a hand-made sweep directory (the sweep contract), the report's content, and the CLI's errors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg
from scipy import stats as sps

from infersim.cli import main
from infersim.core.errors import InfersimError
from infersim.report import open_results, write_charts
from infersim.report.findings import duration_unit, fmt_duration, fmt_value
from infersim.report.memo import write_report
from infersim.report.stats import marginal, paired_bootstrap_quantile, pareto_mask, t_interval, tornado
from infersim.report.style import DPI, TALL, WIDE

SCENARIO = """\
# A tiny scenario for the report tests.
# ASSUMPTION: made-up chat traffic at 3 requests/s.
name: tiny-report
seed: 3
duration: 60s
warmup: 10s
drain: 2m
workload:
  streams:
    - name: chat
      arrival: {kind: poisson, rate: 3/s}
      input_tokens: {kind: lognormal, median: 300, p99: 1500, max: 2000}
      output_tokens: {kind: lognormal, median: 40, p99: 200, max: 300}
      slo: {ttft: 500ms, tpot: 50ms}
platforms:
  - name: fixed
    kind: gpu_fleet
    deployments:
      - {name: d, model: llama-3.1-8b, hardware: h100-sxm, precision: fp8, replicas: 1}
  - name: autoscaled
    kind: gpu_fleet
    deployments:
      - name: d
        model: llama-3.1-8b
        hardware: h100-sxm
        precision: fp8
        autoscaling: {kind: baseten, min_replicas: 1, max_replicas: 2, concurrency_target: 4}
"""


def px(size) -> tuple[int, int]:
    """(height, width) in pixels of a figure of ``size`` inches."""
    return round(size[1] * DPI), round(size[0] * DPI)


@pytest.fixture(scope="module")
def run_and_charts(tmp_path_factory):
    """A run written by ``infersim run``, and the ChartSet of the default charts that command drew."""
    import infersim.report as rep

    d = tmp_path_factory.mktemp("report")
    (d / "tiny.yaml").write_text(SCENARIO)
    drawn, orig = [], rep.write_default_charts
    rep.write_default_charts = lambda out: drawn.append(orig(out)) or drawn[-1]
    try:
        assert main(["run", str(d / "tiny.yaml"), "--out", str(d / "run"), "--quiet"]) == 0
    finally:
        rep.write_default_charts = orig
    assert len(drawn) == 1
    return d / "run", drawn[0]


@pytest.fixture(scope="module")
def run_dir(run_and_charts) -> Path:
    return run_and_charts[0]


@pytest.fixture(scope="module")
def charts(run_and_charts):
    return run_and_charts[1]


def test_run_writes_default_charts(run_dir):
    names = {p.name for p in (run_dir / "charts").iterdir()}
    for n in ("latency_cdf", "cost_latency", "fleet_timeline"):
        assert {f"{n}.png", f"{n}.svg"} <= names
    assert not [n for n in names if n.startswith(".")], "temporary files left behind"
    assert (run_dir / "summary.csv").exists() and (run_dir / "requests.parquet").exists()


def test_chart_images_are_nonempty_and_sized(charts):
    sizes = {"latency_cdf": WIDE, "cost_latency": WIDE, "fleet_timeline": TALL}
    assert set(sizes) <= set(charts.data), charts.skipped
    for name in charts.data:
        img = mpimg.imread(charts.paths(name))
        if name in sizes:
            assert img.shape[:2] == px(sizes[name]), name
        else:
            assert img.shape[1] == px(WIDE)[1] and img.shape[0] >= 400, name
        assert img[..., :3].std() > 0.05, f"{name} looks blank"
        svg = charts.paths(name, "svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg and len(svg) > 5000


def test_latency_cdf_matches_summary(run_dir, charts):
    s = pd.read_csv(run_dir / "summary.csv").set_index("platform")
    df = charts.data["latency_cdf"]
    for plat in s.index:
        for metric, col in (("ttft_s", "ttft"), ("e2e_s", "e2e")):
            g = df[(df["platform"] == plat) & (df["metric"] == metric)]
            for q, name in ((0.5, "p50"), (0.99, "p99")):
                got = float(np.interp(q, g["cdf"], g["value_s"]))
                assert got == pytest.approx(s.loc[plat, f"{col}_{name}_s"], rel=1e-9), (plat, metric, q)
        assert np.all(np.diff(g["value_s"]) >= 0)


def test_cost_latency_matches_summary(run_dir, charts):
    s = pd.read_csv(run_dir / "summary.csv").set_index("platform")
    df = charts.data["cost_latency"].set_index("platform")
    col = df["cost_column"].iloc[0]
    assert col in ("customer_usd_per_mtok", "provider_usd_per_mtok", "cost_usd")
    for plat in s.index:
        assert df.loc[plat, "latency_s"] == pytest.approx(s.loc[plat, "ttft_p99_s"])
        if math.isfinite(s.loc[plat, col]):
            assert df.loc[plat, "cost"] == pytest.approx(s.loc[plat, col])
    assert df["pareto"].any()
    assert list(df["pareto"]) == list(pareto_mask(df["latency_s"], df["cost"]))


def test_usd_per_mtok_matches_summary_or_is_skipped(run_dir, charts):
    s = pd.read_csv(run_dir / "summary.csv").set_index("platform")
    if "customer_usd_per_mtok" not in s.columns or not s["customer_usd_per_mtok"].notna().any():
        assert "usd_per_mtok" in charts.skipped
        return
    df = charts.data["usd_per_mtok"]
    cust = df[df["measure"] == "customer_usd_per_mtok"].set_index("platform")
    for plat in s.index:
        assert cust.loc[plat, "usd_per_mtok"] == pytest.approx(s.loc[plat, "customer_usd_per_mtok"], nan_ok=True)
    assert df["ci_lo"].isna().all()  # a single run states that it has no interval ...
    assert any("no confidence interval" in n for n in df.attrs["notes"])  # ... and says so


def test_fleet_timeline_matches_fleet_table(run_dir, charts):
    fleet = pd.read_parquet(run_dir / "fleet.parquet")
    df = charts.data["fleet_timeline"]
    for plat, g in fleet.groupby("platform"):
        sums = g.groupby("t_s")[["ready", "cost_usd", "queued"]].sum()
        for ser in ("ready", "cost_usd", "queued"):
            got = df[(df["platform"] == plat) & (df["series"] == ser)].set_index("t_s")["value"]
            assert np.allclose(got.to_numpy(), sums[ser].to_numpy()), (plat, ser)
    # both sides of the bill end at the run table's totals: customer pays and provider cost
    s = pd.read_csv(run_dir / "summary.csv").set_index("platform")
    for plat in fleet["platform"].unique():
        for col in ("customer_usd", "provider_cost_usd"):
            acc = df[(df["platform"] == plat) & (df["series"] == col)]
            assert acc["value"].iloc[-1] == pytest.approx(s.loc[plat, col]), (plat, col)
            assert np.all(np.diff(acc["value"]) >= -1e-12)
    # the fixed platform has no fleet rows: replicas from timeline.parquet, its dollars accrue evenly
    assert (df[(df["platform"] == "fixed") & (df["series"] == "ready")]["value"] == 1).all()
    for col in ("customer_usd", "provider_cost_usd"):
        bill = df[(df["platform"] == "fixed") & (df["series"] == col)]
        assert bill["t_s"].iloc[-1] == pytest.approx(s.loc["fixed", "sim_end_s"])
        assert bill["value"].iloc[-1] == pytest.approx(s.loc["fixed", col])
        assert np.allclose(np.diff(bill["value"]) / np.diff(bill["t_s"]), s.loc["fixed", col] / bill["t_s"].iloc[-1])
    assert bill["value"].iloc[-1] != df[(df["platform"] == "fixed") & (df["series"] == "customer_usd")]["value"].iloc[-1]
    # workload arrivals: the full bins hold every request arriving in them
    req = pd.read_parquet(run_dir / "requests.parquet").drop_duplicates("request_id")
    arr = df[df["series"] == "arrivals_per_s"]
    width = float(np.diff(arr["t_s"]).min())
    n_in_bins = ((req["arrival_s"] >= arr["t_s"].min() - width / 2)
                 & (req["arrival_s"] < arr["t_s"].max() + width / 2)).sum()
    assert (arr["value"] * width).sum() == pytest.approx(n_in_bins)


def test_report_holds_table_values_and_embeds_charts(run_dir, charts):
    md_path, html_path = write_report(run_dir, charts=charts)
    md, page = md_path.read_text(), html_path.read_text()
    s = pd.read_csv(run_dir / "summary.csv")
    units = {c: duration_unit(s[c]) for c in ("ttft_p99_s", "e2e_p99_s")}  # one unit per table row
    for _, r in s.iterrows():
        for col in ("ttft_p99_s", "slo_attainment", "e2e_p99_s"):
            want = fmt_duration(r[col], units[col]) if col in units else fmt_value(col, r[col])
            assert f"| {want} |" in md or f"| {want} |\n" in md, (r["platform"], col, want)
            assert f"<td>{want}</td>" in page, (r["platform"], col, want)
    assert "0.0" not in "".join(line for line in md.splitlines() if line.startswith("| TTFT")), \
        "durations print with a unit, not as raw seconds"
    for name in charts.data:
        assert f"charts/{name}.png" in md
    # every chart once in the Charts section, the answer's chart once more in the executive summary
    assert page.count("data:image/png;base64,") == len(charts.data) + 1
    assert "<img src='charts" not in page and 'src="charts' not in page
    for text in ("The scenario", "Key findings", "95% CI", "Assumptions and sources", "h100-sxm",
                 "llama-3.1-8b", "ASSUMPTION: made-up chat traffic"):
        assert text in md, text


def test_report_survives_missing_economics(run_dir, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    s = pd.read_csv(d / "summary.csv")
    s.drop(columns=[c for c in s.columns if "usd" in c or c in ("gross_margin", "chips")]).to_csv(
        d / "summary.csv", index=False)
    cs = write_charts(d, charts=["usd_per_mtok", "cost_latency"])
    assert set(cs.skipped) == {"usd_per_mtok", "cost_latency"}
    md, _ = write_report(d)
    assert "not drawn" in md.read_text() and "cost findings skipped" in md.read_text()


# -- sweeps (hand-made per the contract with `infersim sweep`) ------------------------------------------------
A, B = "platforms[0].deployments[0].replicas", "workload.streams[0].arrival.rate"


def make_sweep(d: Path, params: dict[str, list], reps: int = 3) -> pd.DataFrame:
    """A sweep directory: metric = 10*a + b (+ 5 for platform y) + seeded noise; summary by t intervals."""
    rng = np.random.default_rng(0)
    grid = pd.MultiIndex.from_product(list(params.values()), names=list(params)).to_frame(index=False)
    rows = []
    for point, vals in grid.iterrows():
        for rep in range(reps):
            for plat, off in (("x", 0.0), ("y", 5.0)):
                a, b = vals.get(A, 1), vals.get(B, 0.0)
                cost = 10 * a + b + off + rng.normal(0, 0.5)
                rows.append({"point": point, "replication": rep, "seed": 100 + rep, "platform": plat, **vals,
                             "customer_usd_per_mtok": cost, "ttft_p99_s": 0.1 * (a + 1) + rng.normal(0, 0.01),
                             "slo_attainment": 0.9, "status": "ok", "error": ""})
    pts = pd.DataFrame(rows)
    pts.to_parquet(d / "points.parquet", index=False)
    metrics = ["customer_usd_per_mtok", "ttft_p99_s", "slo_attainment"]
    srows = []
    for (point, plat), g in pts.groupby(["point", "platform"]):
        r = {"point": point, "platform": plat, **{p: g[p].iloc[0] for p in params}, "n": len(g)}
        for m in metrics:
            v = g[m].to_numpy()
            half = sps.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
            r |= {f"{m}_mean": v.mean(), f"{m}_ci_lo": v.mean() - half, f"{m}_ci_hi": v.mean() + half}
        srows.append(r)
    pd.DataFrame(srows).to_parquet(d / "summary.parquet", index=False)
    (d / "sweep.json").write_text(json.dumps({
        "scenario": str(d / "missing.yaml"), "scenario_name": "hand-made",
        "parameters": [{"path": p, "values": v} for p, v in params.items()], "sampling": "grid",
        "replications": reps, "points": len(grid), "metrics": metrics}))
    return pts


@pytest.fixture
def sweep_dir(tmp_path) -> tuple[Path, pd.DataFrame]:
    pts = make_sweep(tmp_path, {A: [1, 2, 4], B: [10.0, 20.0]})
    return tmp_path, pts


def test_plot_on_a_sweep_directory(sweep_dir):
    d, pts = sweep_dir
    cs = write_charts(d, metric="customer_usd_per_mtok")
    assert not cs.skipped
    for n in ("sweep_lines", "sweep_heatmap", "tornado", "cost_latency", "usd_per_mtok"):
        img = mpimg.imread(d / "charts" / f"{n}.png")
        assert img.shape[1] == px(WIDE)[1] and img[..., :3].std() > 0.05, n
        assert (d / "charts" / f"{n}.svg").stat().st_size > 5000
    heat = cs.data["sweep_heatmap"]
    cell = heat[(heat["platform"] == "y") & (heat[A] == 2) & (heat[B] == 20.0)]["mean"].iloc[0]
    want = pts[(pts["platform"] == "y") & (pts[A] == 2) & (pts[B] == 20.0)]["customer_usd_per_mtok"].mean()
    assert cell == pytest.approx(want)
    tor = cs.data["tornado"]
    assert list(tor[tor["platform"] == "x"]["parameter"]) == [A, B]  # 10*a over 1..4 swings more than b
    top = tor[(tor["platform"] == "x") & (tor["parameter"] == A)].iloc[0]
    assert top["at_low"] == pytest.approx(pts[(pts["platform"] == "x") & (pts[A] == 1)]["customer_usd_per_mtok"].mean())
    lines = cs.data["sweep_lines"]
    row = lines[(lines["platform"] == "x") & (lines["parameter"] == B) & (lines["value"] == 10.0)].iloc[0]
    assert row["mean"] == pytest.approx(pts[(pts["platform"] == "x") & (pts[B] == 10.0)]["customer_usd_per_mtok"].mean())
    assert row["ci_lo"] < row["mean"] < row["ci_hi"] and row["n"] == 3


def test_one_parameter_marginal_equals_sweep_summary(tmp_path):
    pts = make_sweep(tmp_path, {A: [1, 2, 3, 4]}, reps=4)
    s = pd.read_parquet(tmp_path / "summary.parquet")
    mg = marginal(pts, A, "customer_usd_per_mtok")
    m = mg.merge(s, left_on=["platform", A], right_on=["platform", A])
    assert len(m) == 8
    for a, b in (("mean", "customer_usd_per_mtok_mean"), ("ci_lo", "customer_usd_per_mtok_ci_lo"),
                 ("ci_hi", "customer_usd_per_mtok_ci_hi")):
        assert np.allclose(m[a], m[b])
    cs = write_charts(tmp_path)
    assert "sweep_heatmap" in cs.skipped  # one parameter: no heatmap, said why
    usd = cs.data["usd_per_mtok"]
    r = usd[(usd["platform"] == "y") & (usd["point"] == 0)].iloc[0]
    want = s[(s["platform"] == "y") & (s["point"] == 0)].iloc[0]
    assert (r["usd_per_mtok"], r["ci_lo"]) == pytest.approx((want["customer_usd_per_mtok_mean"],
                                                             want["customer_usd_per_mtok_ci_lo"]))


def test_sweep_report(sweep_dir, capsys):
    d, _ = sweep_dir
    assert main(["report", str(d)]) == 0
    assert str(d / "report.html") in capsys.readouterr().out
    md = (d / "report.md").read_text()
    s = pd.read_parquet(d / "summary.parquet")
    r = s.iloc[0]
    assert fmt_value("customer_usd_per_mtok", r["customer_usd_per_mtok_mean"]) in md
    # 10 * replicas outweighs the rate; parameters and metrics in words with units, never raw paths
    assert "replicas, platform 1, deployment 1 moves customer $ per million tokens most, from" in md
    assert "x has the lowest customer $ per million tokens at 6 of 6 sweep points" in md
    assert "| replicas, platform 1, deployment 1 | arrival rate, stream 1 (requests/s) | replications |" in md
    assert "customer $ per million tokens (USD): mean [95% CI]" in md
    assert "the values written below for those fields are the base values" in md
    assert "narrowest lead: y minus x = $" in md
    assert (d / "report.html").read_text().count("data:image/png;base64,") == 6  # + the summary's tornado


# -- CLI errors -------------------------------------------------------------------------------------------------
def test_cli_missing_or_wrong_directory_exits_2(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["plot", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "empty") in err and "summary.csv" in err and "sweep.json" in err


def test_cli_unknown_chart_or_metric_exits_2(sweep_dir, capsys):
    d, _ = sweep_dir
    assert main(["plot", str(d), "--chart", "tornado", "--metric", "ttft_p99_s"]) == 0
    assert "tornado.png" in capsys.readouterr().out and (d / "charts" / "tornado.svg").exists()
    assert main(["plot", str(d), "--chart", "pie"]) == 2
    assert "unknown chart 'pie'" in capsys.readouterr().err
    assert main(["plot", str(d), "--metric", "ttft_p99"]) == 2
    assert "did you mean 'ttft_p99_s'" in capsys.readouterr().err


def test_broken_table_is_named(tmp_path):
    make_sweep(tmp_path, {A: [1, 2]})
    (tmp_path / "points.parquet").write_text("not parquet")
    with pytest.raises(InfersimError, match="points.parquet"):
        write_charts(tmp_path)


def test_a_failing_chart_keeps_the_run_tables(tmp_path, monkeypatch, capsys):
    import infersim.report as rep

    def boom(out):
        raise RuntimeError("chart exploded")

    monkeypatch.setattr(rep, "write_default_charts", boom)
    (tmp_path / "tiny.yaml").write_text(SCENARIO.replace("duration: 60s", "duration: 20s"))
    assert main(["run", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert "chart exploded" in capsys.readouterr().err
    assert open_results(tmp_path / "out").summary["platform"].tolist() == ["fixed", "autoscaled"]


# -- statistics -------------------------------------------------------------------------------------------------
def test_pareto_mask():
    x = [1.0, 2.0, 3.0, 2.5, np.nan, 1.0]
    y = [5.0, 3.0, 1.0, 4.0, 0.1, 5.0]
    assert list(pareto_mask(x, y)) == [True, True, True, False, False, True]


def test_t_interval_and_bootstrap():
    m, lo, hi, n = t_interval([1.0, 2.0, 3.0, np.nan])
    assert (m, n) == (2.0, 3) and hi - m == pytest.approx(sps.t.ppf(0.975, 2) / math.sqrt(3))
    assert math.isnan(t_interval([4.0])[1])
    rng = np.random.default_rng(1)
    v = rng.exponential(1.0, 4000)
    w = v + 1.0  # the same requests, one second slower on the other platform
    w[::50] = np.nan  # some requests did not finish there
    b = paired_bootstrap_quantile({"a": v, "b": w}, 0.99, n_boot=200, seed=2)
    lo, hi = np.quantile(b["a"], [0.025, 0.975])
    assert lo < np.quantile(v, 0.99) < hi
    assert np.quantile(b["b"] - b["a"], 0.5) == pytest.approx(1.0, abs=0.3)


def test_tornado_skips_constant_parameters():
    pts = pd.DataFrame({"platform": "p", "replication": [0, 1, 0, 1], "a": [1, 1, 2, 2], "c": 7,
                        "m": [1.0, 3.0, 5.0, 7.0]})
    t = tornado(pts, ["a", "c"], "m")
    assert list(t["parameter"]) == ["a"]
    assert (t["at_low"].iloc[0], t["at_high"].iloc[0], t["swing"].iloc[0]) == (2.0, 6.0, 4.0)


def test_many_sampled_values_are_grouped_in_quintiles():
    rng = np.random.default_rng(0)
    pts = pd.DataFrame({"platform": "p", "replication": np.tile([0, 1], 30), "a": rng.uniform(0, 1, 60)})
    pts["m"] = 10 * pts["a"]
    mg = marginal(pts, "a", "m")
    assert len(mg) == 5 and (mg["n"] == 2).all()  # random/LHS values: five bins, two replications each
    assert np.all(np.diff(mg["mean"]) > 0)
    t = tornado(pts, ["a"], "m").iloc[0]
    low = pts[pts["a"] <= pts["a"].quantile(0.2)]["m"].mean()
    assert t["at_low"] == pytest.approx(low, rel=0.05)


def test_tornado_on_a_categorical_parameter():
    pts = pd.DataFrame({"platform": "p", "replication": [0, 1] * 3, "engine": ["vllm"] * 2 + ["sglang"] * 2
                        + ["trtllm"] * 2, "m": [5.0, 5.0, 1.0, 1.0, 3.0, 3.0]})
    t = tornado(pts, ["engine"], "m").iloc[0]
    assert (t["low_value"], t["high_value"], t["swing"]) == ("sglang", "vllm", 4.0)


def test_tornado_swing_covers_a_peak_between_the_extreme_values():
    # a response that peaks in the middle: the extremes alone (1.0 -> 2.0) would hide most of it
    pts = pd.DataFrame({"platform": "p", "replication": [0, 1] * 3, "a": [1, 1, 2, 2, 3, 3],
                        "m": [1.0, 1.0, 9.0, 9.0, 2.0, 2.0]})
    t = tornado(pts, ["a"], "m").iloc[0]
    assert (t["at_low"], t["at_high"]) == (1.0, 2.0)
    assert (t["at_min"], t["at_max"], t["swing"]) == (1.0, 9.0, 8.0)
    assert t["levels"] == [1.0, 9.0, 2.0]


def test_platform_sentences_state_parallel_layouts_and_both_pools():
    from infersim.report.describe import describe_platform

    gpu = {"kind": "gpu_fleet", "name": "f", "deployments": [
        {"model": "gpt-oss-120b", "precision": "mxfp4", "hardware": "b200", "tp": 2, "dp": 4, "ep": 8, "replicas": 2,
         "engine": {"kind": "sglang", "two_batch_overlap": True}}]}
    s = describe_platform(gpu)
    assert "on 8x b200 per replica (tp2 dp4 ep8; sglang engine, two-batch overlap)" in s  # billed GPUs: tp x dp
    dis = {"kind": "disaggregated", "name": "pd", "model": "deepseek-v3", "kv_transfer": {"placement": "rdma"},
           "prefill": {"hardware": "h200", "precision": "fp8", "tp": 8, "replicas": 2, "engine": {"kind": "vllm"}},
           "decode": {"kind": "lpu", "replicas": 1}}
    s = describe_platform(dis)
    assert "prefill deepseek-v3 at fp8 on 8x h200 per replica (tp8; vllm engine), 2 replica(s)" in s
    assert "decode deepseek-v3 on lpu" in s and "KV over rdma" in s and "None" not in s
