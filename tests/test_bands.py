"""Validation bands: the shipped CSV's shape and the lookup rules of infersim.catalog.bands."""

import csv
from importlib import resources

import pytest

from infersim.catalog import bands, default_catalog

COLUMNS = ["engine", "hardware_class", "metric", "median_abs_error_pct", "p90_abs_error_pct",
           "n_heldout_sources", "n_rows", "sources", "generated_by"]


def _rows():
    text = resources.files("infersim.catalog").joinpath("data/validation_bands.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def test_csv_columns_and_values():
    text = resources.files("infersim.catalog").joinpath("data/validation_bands.csv").read_text()
    assert text.splitlines()[0].split(",") == COLUMNS
    rows = _rows()
    assert rows
    classes = set(bands.HARDWARE_CLASSES.values())
    for r in rows:
        assert r["engine"] in bands.ENGINES
        assert r["metric"] in bands.METRICS
        assert r["hardware_class"] in classes
        med, p90 = float(r["median_abs_error_pct"]), float(r["p90_abs_error_pct"])
        assert 0 <= med and 0 <= p90
        assert int(r["n_heldout_sources"]) == len(r["sources"].split(";"))
        assert int(r["n_rows"]) >= int(r["n_heldout_sources"])
        assert r["generated_by"].startswith("benchmarks/loso.py")


def test_every_catalog_hardware_has_a_class():
    for hw in default_catalog().hardware.values():
        assert bands.hardware_class(hw.id) is not None, hw.id


def test_aliases_and_prefixes_resolve():
    assert bands.hardware_class("H100-SXM-80GB") == "hopper"
    assert bands.hardware_class("gb300-nvl72") == "blackwell"
    assert bands.hardware_class("mi355x") == "cdna4"
    assert bands.hardware_class("no-such-chip") is None


def test_band_needs_two_heldout_sources():
    for r in _rows():
        b = bands.band_for(r["engine"], r["hardware_class"], r["metric"])
        if int(r["n_heldout_sources"]) >= bands.MIN_HELDOUT_SOURCES:
            assert b is not None and b.fallback_from is None
            assert b.median_abs_error_pct == float(r["median_abs_error_pct"])
            assert "held-out sources" in b.label()
        elif b is not None:  # a stand-in class must say so
            assert b.fallback_from == r["hardware_class"] and "standing in" in b.label()


def test_fallback_is_labelled_and_unknown_is_not_validated():
    hopper = {(r["engine"], r["metric"]) for r in _rows() if r["hardware_class"] == "hopper"
              and int(r["n_heldout_sources"]) >= 2}
    blackwell = {(r["engine"], r["metric"]) for r in _rows() if r["hardware_class"] == "blackwell"
                 and int(r["n_heldout_sources"]) >= 2}
    stand_in = sorted(hopper - blackwell)
    assert stand_in, "expected at least one hopper band that blackwell lacks"
    eng, met = stand_in[0]
    b = bands.band_for(eng, "b200", met)
    assert b is not None and b.hardware_class == "hopper" and b.fallback_from == "blackwell"
    assert bands.band_for("vllm", "groq-lpu", "ttft") is None
    assert bands.describe("vllm", "groq-lpu", "ttft") == "not validated for this engine/GPU"


def test_tpot_falls_back_to_itl_and_bad_metric_raises():
    itl = [r for r in _rows() if r["metric"] == "itl" and int(r["n_heldout_sources"]) >= 2]
    assert itl
    r = itl[0]
    if not any(x["metric"] == "tpot" and x["engine"] == r["engine"] and x["hardware_class"] == r["hardware_class"]
               for x in _rows()):
        b = bands.band_for(r["engine"], r["hardware_class"], "tpot")
        assert b is not None and b.metric_from == "itl" and "ITL band" in b.label()
    with pytest.raises(ValueError):
        bands.band_for("vllm", "h100-sxm", "latency")
