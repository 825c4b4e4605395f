"""Issue 16 (report and charts): provenance on every chart, footnotes inside the canvas, a replication
command that the sweep command accepts, one name per quantity in the report."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from infersim.cli import main
from infersim.report import open_results
from infersim.report.charts import replication_command
from infersim.report.style import footnote, new_figure
from test_report import SCENARIO


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("memo")
    (d / "tiny.yaml").write_text(SCENARIO)
    assert main(["run", str(d / "tiny.yaml"), "--out", str(d / "run"), "--quiet"]) == 0
    return d / "run"


def test_every_run_chart_carries_a_provenance_line(run_dir):
    svgs = sorted((run_dir / "charts").glob("*.svg"))
    assert len(svgs) >= 3
    for f in svgs:
        text = f.read_text()
        assert "Simulated, not measured." in text, f.name
        assert "scenario tiny-report" in text and "seed 3" in text and "60 s simulated" in text, f.name
        assert "infersim 0." in text, f.name


def test_footnote_stays_inside_the_canvas():
    fig, axes = new_figure((6.0, 4.0))
    axes[0][0].plot([0, 1], [0, 1])
    long = "; ".join(f"platform-{i}: fixed replicas, bill drawn as accruing evenly to the run's bill" for i in range(6))
    footnote(fig, long, provenance="Source: scenario x, seed 1, 5 min simulated, infersim 0. Simulated, not measured.")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    W, H = fig.get_figwidth() * fig.dpi, fig.get_figheight() * fig.dpi
    texts = [t for t in fig.texts if t.get_text()]
    assert len(texts) == 2
    for t in texts:
        bb = t.get_window_extent(r)
        assert bb.x0 >= 0 and bb.x1 <= W and bb.y0 >= 0 and bb.y1 <= H, (t.get_gid(), bb)
    ax_bb = axes[0][0].get_tightbbox(r)
    top_of_notes = max(t.get_window_extent(r).y1 for t in texts)
    assert ax_bb.y0 >= top_of_notes - 1, "the axes overlap the footnote"
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_replication_command_is_accepted_by_sweep(run_dir, tmp_path, monkeypatch):
    cmd = replication_command(open_results(run_dir), replications=2)
    assert "seed=" not in cmd and "--replications 2" in cmd
    argv = shlex.split(cmd)
    assert argv[0] == "infersim"
    argv = argv[1:]
    argv[argv.index("--out") + 1] = str(tmp_path / "seeds")
    monkeypatch.chdir(Path.cwd())
    assert main([*argv, "--quiet", "--workers", "1"]) == 0
    sw = open_results(tmp_path / "seeds")
    assert (sw.summary["n"] == 2).all()
    assert sw.summary["customer_usd_per_mtok_ci_lo"].notna().any()


def test_usd_note_names_no_internal_column(run_dir):

    text = (run_dir / "charts" / "usd_per_mtok.svg").read_text()
    for col in ("provider_usd_per_mtok", "customer_usd_per_mtok", "cost_usd"):
        assert col not in text


def _fake_run(tmp_path, rows, scenario=None):
    import pandas as pd

    from infersim.report.load import RunDir

    r = RunDir(tmp_path)
    r.__dict__.update(summary=pd.DataFrame(rows), scenario=scenario or {}, doc={})
    return r


def test_cheapest_is_set_beside_its_margin_and_the_reason_in_words(tmp_path):
    from infersim.report.findings import sustainability

    rows = [
        {"platform": "lpu", "kind": "lpu", "slo_attainment": 0.999, "customer_usd_per_mtok": 0.05,
         "provider_usd_per_mtok": 0.071, "gross_margin": -0.41, "utilization": 0.955, "units_per_replica": 48,
         "replicas": 1, "owned_usd_per_hour": 31.8},
        {"platform": "gpus", "kind": "gpu_fleet", "slo_attainment": 0.97, "customer_usd_per_mtok": 0.12,
         "provider_usd_per_mtok": 0.06, "gross_margin": 0.5, "utilization": 0.9, "idle_share": 0.16},
        {"platform": "api", "kind": "token_api", "slo_attainment": 0.4, "customer_usd_per_mtok": 0.1,
         "provider_usd_per_mtok": float("nan"), "gross_margin": float("nan")},
    ]
    found, table = sustainability(_fake_run(tmp_path, rows, {"workload": {"scale": {"fraction": 0.01}}}))
    first = found[0]
    assert first.startswith("Cheapest for the customer") and "lpu at $0.05" in first
    assert "Sustainable for the provider? No: margin -41.0%" in first
    assert "owned system sized to hold the model (48 chips" in first and "1 % slice of the traffic" in first
    assert "still above the price" in first  # 0.071 x 0.955 > 0.05
    assert any(f.startswith("Cheapest that is also sustainable") and "gpus" in f for f in found)
    by = {r[0]: r for r in table}
    assert by["lpu"][5] == "no" and by["gpus"][5] == "yes" and by["api"][5] == "–"
    assert "not public" in by["api"][6]


def test_executive_summary_leads_the_report_with_three_banded_numbers(run_dir):
    from infersim.report.memo import write_report

    md = write_report(run_dir)[0].read_text()
    head = md.split("\n---\n")[0]
    assert head.index("## Executive summary") < len(head) and "## The scenario" not in head
    assert "**Question.**" in head and "**Answer.**" in head and "Sustainable for the provider?" in head
    table = [ln for ln in head.splitlines() if ln.startswith("| ") and "number" not in ln]
    assert len(table) == 3, table
    for ln in table:  # each number has its trust column: a validated band or the reason it has none
        assert "held-out sources" in ln or "not validated for this engine/GPU" in ln or "no confidence" in ln
    assert "vllm on h100-sxm: model error ±" in head  # the tiny scenario runs vLLM on H100s
    assert "charts/cost_latency.png" in head and "Most sensitive assumptions" in head


def test_summary_answers_the_scenarios_own_question_against_its_baseline(tmp_path):
    from infersim.report.executive import baseline_answer, run_summary

    rows = [
        {"platform": "routed", "kind": "gpu_fleet", "slo_attainment": 0.93, "customer_usd": 4.56,
         "provider_cost_usd": 2.25, "customer_usd_per_mtok": 0.12, "baseline_saving_share": 0.221,
         "baseline_quality_ratio": 0.969, "baseline_e2e_p99_change_s": -4.07},
        {"platform": "big-only", "kind": "gpu_fleet", "slo_attainment": 0.673, "customer_usd": 5.85,
         "provider_cost_usd": 3.0, "customer_usd_per_mtok": 0.16, "baseline_saving_share": 0.0,
         "baseline_quality_ratio": 1.0, "baseline_e2e_p99_change_s": 0.0},
        {"platform": "api", "kind": "token_api", "slo_attainment": 0.41, "customer_usd": 6.0,
         "provider_cost_usd": float("nan"), "customer_usd_per_mtok": 0.2, "baseline_saving_share": -0.0256,
         "baseline_quality_ratio": float("nan"), "baseline_e2e_p99_change_s": 1.5},
    ]
    sc = {"name": "t", "baseline": "big-only", "question": "Does routing cut the bill against the big model alone?"}
    run = _fake_run(tmp_path, rows, sc)
    blocks = run_summary(run, None)
    assert blocks[1][1].startswith("**Question.** Does routing cut the bill against the big model alone?")
    lines = dict(baseline_answer(run)[1:])["ul"]
    assert len(lines) == 2  # the baseline itself is not compared with itself
    assert lines[0].startswith("routed costs the customer 22.1% less than big-only ($4.56 vs $5.85")
    assert "costs its provider 25.0% less to serve" in lines[0]  # 1 - 2.25 / 3.0, from the cost columns
    assert "keeps 96.9% of the baseline's acceptable-answer rate" in lines[0] and "(67.3% on the baseline)" in lines[0]
    assert lines[1].startswith("api costs the customer 2.6% more") and "quality not modelled" in lines[1]
    assert "provider" not in lines[1]  # a token API's own cost is not known
    # no baseline marked: no such section, and the generic question stands
    plain = _fake_run(tmp_path, rows, {"name": "t"})
    assert baseline_answer(plain) == [] and "which serves this workload cheapest" in run_summary(plain, None)[1][1]
