"""``infersim run``'s table (issue 16): one name per quantity, each section's window, counts that reconcile on
the page, one time unit per latency row, token APIs marked, run rates, full scale, baseline, bands."""

from __future__ import annotations

import csv
import io
import re
import sys
import types
from pathlib import Path

import pytest
from rich.console import Console

from infersim.cli import main
from infersim.core.quantities import WINDOW_SHORT
from infersim.core.tables import comparison_layout, render_run_table, row_time_unit
from infersim.results import bands as run_bands
from infersim.results.notes import run_notes
from infersim.results.simulate import simulate
from infersim.validate import load_scenario

ROOT = Path(__file__).resolve().parents[1]
CURSOR = ROOT / "scenarios" / "cursor.yaml"


@pytest.fixture(scope="module")
def cursor():
    sc = load_scenario(str(CURSOR))
    return simulate(sc, duration_s=sc.warmup + 20.0, base_dir=CURSOR.parent)


def _table(res, bands=None) -> str:
    con = Console(width=400, record=True, file=io.StringIO())
    render_run_table(res.summary, title="t", baseline=res.scenario.baseline, bands=bands,
                     token_api={p.name for p in res.scenario.platforms if p.kind == "token_api"}, console=con)
    return con.export_text()


def _row(text: str, label: str) -> list[str]:
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells and cells[0] == label:
            return cells[1:]
    raise AssertionError(f"no row {label!r} in the table")


def _ints(cells):
    return [int(c.replace(",", "")) for c in cells]


def test_counts_reconcile_on_the_page(cursor):
    text = _table(cursor)
    arrivals = _ints(_row(text, "arrivals"))
    warm = _ints(_row(text, "arrived in warm-up (excluded)"))
    win = _ints(_row(text, "arrived in window"))
    done, rej, infl = (_ints(_row(text, lab)) for lab in ("done", "rejected", "in flight at end"))
    for i in range(len(arrivals)):
        assert warm[i] + win[i] == arrivals[i]
        assert done[i] + rej[i] + infl[i] == win[i]
    assert warm[0] > 0  # the warm-up arrivals are on the page, not silently dropped


def test_every_section_says_its_window():
    for title, rows in comparison_layout("base"):
        named = any(w in title for w in WINDOW_SHORT.values()) or "whole run" in title
        assert named or all(any(w in h for w in WINDOW_SHORT.values()) for h, _k, _t in rows), title


def test_one_time_unit_per_latency_row(cursor):
    text = _table(cursor)
    for lab in ("TTFT p50", "TPOT p50", "E2E p99"):
        line = next(ln for ln in text.splitlines() if f" {lab} (" in ln)
        assert re.search(rf"{lab} \((us|ms|s)\)", line)
        assert not re.search(r"\d(us|ms|s)\b", line.split("│", 2)[2])  # cells are bare numbers
    assert row_time_unit([475e-6, 2.7e-3, 1.06]) == ("ms", 1e-3)
    assert row_time_unit([0.2, 1.5, 12.0])[0] == "s" and row_time_unit([2e-6, 9e-4])[0] == "us"


def test_token_api_marked_and_money_split(cursor):
    text = _table(cursor)
    assert "token-api *" in text and "* includes the network" in text
    parts = [_row(text, lab) for lab in ("of which GPU-minutes (USD)", "of which per-token (USD)",
                                         "of which token-API spill (USD)")]
    total = _row(text, "customer pays (USD)")
    for i, cell in enumerate(total):  # the parts add up on the page (to the printed rounding)
        assert sum(float(p[i]) for p in parts) == pytest.approx(float(cell), abs=0.011)
    for lab in ("provider cost (USD)", "offered load req/s", "served req/s"):
        _row(text, lab)
    full = _row(text, "customer pays per month at full scale (linear extrapolation) (USD/month)")
    month = _row(text, "customer pays per 30-day month (USD/month)")
    f, m = (float(x[0].replace(",", "")) for x in (full, month))
    assert f == pytest.approx(m / 0.01, rel=1e-3)


def test_baseline_columns_and_finding(cursor):
    s = cursor.summary.set_index("platform")
    assert s.loc["baseten-32b-only", "baseline_saving_share"] == 0.0
    routed = s.loc["baseten-h100"]
    assert routed["baseline_saving_share"] == pytest.approx(
        1 - routed["customer_usd"] / s.loc["baseten-32b-only", "customer_usd"])
    notes = "\n".join(run_notes(cursor, {}))
    assert "baseten-h100 saves" in notes and "of its quality" in notes and "linear extrapolation" in notes
    assert cursor.meta["baseline"] == "baseten-32b-only" and cursor.meta["scale"]["fraction"] == 0.01


def _fixture_bands(tmp_path, monkeypatch):
    """A stand-in for ``infersim.catalog.bands`` over a fixture CSV in its agreed columns."""
    path = tmp_path / "validation_bands.csv"
    rows = [("trtllm", "hopper", "ttft", 17.1, 26.1, 3, 84), ("trtllm", "hopper", "itl", 11.8, 37.8, 1, 10),
            ("trtllm", "hopper", "e2e", 9.5, 16.5, 2, 45)]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["engine", "hardware_class", "metric", "median_abs_error_pct", "p90_abs_error_pct",
                    "n_heldout_sources", "n_rows", "sources", "generated_by"])
        for r in rows:
            w.writerow([*r, "a;b;c", "fixture"])
    table = list(csv.DictReader(path.open()))

    class Band:
        def __init__(self, r):
            self.median_abs_error_pct = float(r["median_abs_error_pct"])
            self.n_heldout_sources = int(r["n_heldout_sources"])

        def label(self):
            return f"model error ±{self.median_abs_error_pct:.0f} % ({self.n_heldout_sources} held-out sources)"

    def band_for(engine, hardware, metric):
        cls = "hopper" if hardware.startswith("h100") else hardware
        for r in table:
            if (r["engine"], r["hardware_class"], r["metric"]) == (engine, cls, metric):
                return Band(r) if int(r["n_heldout_sources"]) >= 2 else None
        return None

    mod = types.ModuleType("infersim.catalog.bands")
    mod.band_for = band_for
    monkeypatch.setitem(sys.modules, "infersim.catalog.bands", mod)
    import infersim.catalog

    monkeypatch.setattr(infersim.catalog, "bands", mod, raising=False)


def test_bands_beside_latency_figures(cursor, tmp_path, monkeypatch):
    _fixture_bands(tmp_path, monkeypatch)
    cells, notes = run_bands.platform_bands(cursor.scenario)
    assert cells["baseten-h100"]["ttft"] == "±17%"
    assert cells["baseten-h100"]["itl"] == "n/v"  # one held-out source: not validated
    assert cells["groq-lpu"]["ttft"] == "n/v"
    assert "not validated for this engine/GPU" in notes["groq-lpu"]
    assert "±17 % (3 held-out sources)" in notes["baseten-h100"]
    text = _table(cursor, bands=cells)
    ttft = _row(text, "TTFT p50 (ms)")
    assert ttft[0].endswith("±17%") and ttft[2].endswith("n/v")
    assert _row(text, "ITL p99 (ms)")[0].endswith("n/v")
    assert not _row(text, "SLO met")[0].endswith(("n/v", "%%"))  # shares carry no band


@pytest.mark.parametrize("edit, path", [
    (("baseline: baseten-32b-only", "baseline: nope"), "baseline"),
    (("fraction: 0.01", "fraction: 0"), "workload.scale.fraction"),
    (("fraction: 0.01, ", "fraction: 0.01, size: 3, "), "workload.scale.size"),
])
def test_bad_scale_and_baseline_exit_2_naming_the_path(tmp_path, capsys, edit, path):
    text = CURSOR.read_text()
    assert edit[0] in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(edit[0], edit[1]))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and path in err and "Traceback" not in err


def test_wide_tables_use_the_same_names_and_one_time_unit_per_column(cursor):
    from infersim.core.tables import ECONOMICS_COLUMNS, FLEET_COLUMNS, SUMMARY_COLUMNS, render

    con = Console(width=600, record=True, file=io.StringIO())
    for cols in (SUMMARY_COLUMNS, ECONOMICS_COLUMNS, FLEET_COLUMNS):
        render(cursor.summary, cols, console=con)
    text = con.export_text()
    assert "provider cost $" in text and "platform cost" not in text  # the side-by-side table's names
    assert "GPU-minutes billed $" in text and "customer $/Mtok (all tokens)" in text
    head = next(ln for ln in text.splitlines() if "TTFT p50" in ln)
    m = re.search(r"TTFT p50 \((us|ms|s)\)", head)
    assert m, head  # the unit in the header, bare numbers in the cells
    s = cursor.summary.set_index("platform")
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(1)]
    for plat in s.index:
        line = next(ln for ln in text.splitlines() if ln.strip("│ ").startswith(plat + " "))
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        assert float(cells[1].replace(",", "")) == pytest.approx(s.loc[plat, "ttft_p50_s"] / unit, rel=0.01)
        assert not re.search(r"\d(us|ms)\b", " ".join(cells[1:8]))
