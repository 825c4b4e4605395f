"""Measured-run rows with the parallel and disaggregated layouts (issue 17): ``dp``, ``ep``, ``two_batch_overlap``
and an xPyD layout (``prefill_replicas``/``decode_replicas``, the decode pool's ``decode_tp/dp/ep``, the KV link)
are read, validated with the column named, reach the simulated deployment or pools, and run through
``infersim calibrate``."""

from __future__ import annotations

import json

import pytest

from infersim.build.disagg import disagg_build
from infersim.calibrate.measured import parse_row, read_measured
from infersim.calibrate.runner import scenario_data, simulate_row, simulated_metrics
from infersim.catalog import default_catalog
from infersim.cli import main
from infersim.core.errors import InfersimError
from infersim.perf.base import prefill_pairs
from infersim.perf.profiles import shipped_profile
from infersim.results.simulate import simulate
from infersim.validate import load_scenario

MOE = {"model": "gpt-oss-120b", "hardware": "b200", "precision": "mxfp4", "engine": "trtllm", "tp": "1",
       "concurrency": "8", "input_tokens": "1024", "output_tokens": "32", "num_requests": "24",
       "client_start": "burst", "ttft_mean_ms": "40", "itl_mean_ms": "5"}


def row(i=1, **kw):
    return parse_row({**MOE, **{k: str(v) for k, v in kw.items()}}, i)


def direct(data: dict) -> dict[str, float]:
    """The CSV metrics of a scenario dict run by the ordinary simulator (fleet layer, request table)."""
    return simulated_metrics(simulate(load_scenario("row.yaml", data=data)).requests)


def close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-9) for k in a)


# -- (a) reading --------------------------------------------------------------------------------------------------
COLUMNS = ("model", "hardware", "precision", "engine", "tp", "dp", "ep", "two_batch_overlap", "prefill_replicas",
           "decode_replicas", "decode_tp", "decode_dp", "decode_ep", "kv_placement", "kv_bandwidth_gb_per_s",
           "first_token", "concurrency", "input_tokens", "output_tokens", "ttft_mean_ms")


def csv_file(tmp_path, *rows: dict) -> str:
    """A measured-runs CSV with every layout column: the MoE row's fields, each row's cells over them."""
    base = {"model": "gpt-oss-120b", "hardware": "b200", "precision": "mxfp4", "engine": "trtllm", "tp": "1",
            "concurrency": "8", "input_tokens": "1024", "output_tokens": "32", "ttft_mean_ms": "40"}
    lines = [",".join(COLUMNS)] + [",".join(str({**base, **r}.get(c, "")) for c in COLUMNS) for r in rows]
    f = tmp_path / "m.csv"
    f.write_text("\n".join(lines) + "\n")
    return str(f)


def test_good_rows_with_the_layout_columns(tmp_path):
    f = csv_file(tmp_path,
                 {},                                                                  # 1 plain: the old defaults
                 {"dp": 8, "ep": 8, "two_batch_overlap": "true"},                     # 2 wide EP with TBO
                 {"tp": 2, "dp": 2, "ep": 1, "two_batch_overlap": "False"},           # 3 dp without ep
                 {"prefill_replicas": 1, "decode_replicas": 3},                       # 4 1P3D as prefill, rdma
                 {"dp": 4, "ep": 4, "prefill_replicas": 2, "decode_replicas": 1,      # 5 decode tp2 dp4: ep 8
                  "decode_tp": 2, "decode_dp": 4, "kv_placement": "same_domain"},
                 {"prefill_replicas": 1, "decode_replicas": 1, "decode_tp": 2,        # 6 ethernet, its GB/s
                  "decode_ep": 2, "kv_placement": "ethernet", "kv_bandwidth_gb_per_s": 25})
    rows, problems = read_measured(f)
    assert problems == [] and [r.row for r in rows] == [1, 2, 3, 4, 5, 6]
    lay = [(r.dp, r.ep, r.two_batch_overlap, r.prefill_replicas, r.decode_replicas, r.decode_tp, r.decode_dp,
            r.decode_ep, r.kv_placement, r.kv_bandwidth_gb_per_s) for r in rows]
    assert lay == [(1, 1, False, None, None, None, None, None, None, None),
                   (8, 8, True, None, None, None, None, None, None, None),
                   (2, 1, False, None, None, None, None, None, None, None),
                   (1, 1, False, 1, 3, 1, 1, 1, "rdma", None),
                   (4, 4, False, 2, 1, 2, 4, 8, "same_domain", None),
                   (1, 1, False, 1, 1, 2, 1, 2, "ethernet", 25.0)]
    assert [r.layout() for r in rows] == ["", "dp8 ep8 TBO", "dp2", "1P3D",
                                          "dp4 ep4 2P1D decode tp2 dp4 ep8 same_domain",
                                          "1P1D decode tp2 ep2 ethernet 25 GB/s"]
    assert "tp1 dp8 ep8 TBO mxfp4" in rows[1].label() and " 1P3D " in rows[3].label()
    assert rows[0].label() == "trtllm gpt-oss-120b tp1 mxfp4 1024/32 c=8"  # a plain row's label as before
    assert not any(r.disaggregated for r in rows[:3]) and all(r.disaggregated for r in rows[3:])
    assert all(not r.extra for r in rows)


@pytest.mark.parametrize("cells, column, says", [
    ({"tp": 2, "ep": 4}, "ep", "expected 1 or tp x dp = 2"),                      # ep neither 1 nor tp x dp
    ({"dp": 2, "ep": 8}, "ep", "tp x dp = 2"),
    ({"prefill_replicas": 2}, "decode_replicas", "gives only prefill_replicas"),  # only prefill_replicas
    ({"decode_replicas": 3}, "prefill_replicas", "gives only decode_replicas"),
    ({"prefill_replicas": 1, "decode_replicas": 1, "kv_placement": "ethernet"},  # ethernet without bandwidth
     "kv_bandwidth_gb_per_s", "ethernet"),
    ({"prefill_replicas": 1, "decode_replicas": 1, "decode_tp": 2, "decode_ep": 4},  # decode_ep not 1 or 2 x 1
     "decode_ep", "tp x dp = 2"),
    ({"dp": 8, "ep": 8, "prefill_replicas": 1, "decode_replicas": 1, "decode_tp": 2, "decode_ep": 1},
     None, None),                                                                  # decode_ep 1 is fine
    ({"prefill_replicas": 1, "decode_replicas": 1, "kv_placement": "infiniband"}, "kv_placement",
     "same_domain, rdma, ethernet"),
    ({"decode_tp": 2}, "decode_tp", "prefill_replicas and decode_replicas"),       # decode layout, co-located
    ({"kv_placement": "rdma"}, "kv_placement", "disaggregated"),
    ({"prefill_replicas": 1, "decode_replicas": 1, "first_token": "both"}, "first_token", "decode, prefill"),
    ({"first_token": "prefill"}, "first_token", "disaggregated"),                   # first_token, co-located
    ({"two_batch_overlap": "maybe"}, "two_batch_overlap", "true or false"),
    ({"dp": 0}, "dp", ">= 1"),
])
def test_bad_layouts_are_row_problems_naming_the_column(tmp_path, cells, column, says):
    f = csv_file(tmp_path, {}, cells)
    rows, problems = read_measured(f)
    if column is None:
        assert len(rows) == 2 and problems == []
        return
    assert [r.row for r in rows] == [1] and [p.row for p in problems] == [2]
    msg = problems[0].message
    assert msg.startswith(f"{column}:") and says in msg, msg


# -- (b) dp and ep reach the deployment ---------------------------------------------------------------------------
@pytest.mark.parametrize("dp, ep, tbo", [(8, 8, False), (2, 1, False), (8, 8, True)])
def test_dp_ep_rows_simulate_as_the_scenario_with_that_deployment(dp, ep, tbo):
    plain = row()
    sim = simulate_row(row(dp=dp, ep=ep, two_batch_overlap=str(tbo).lower()))
    assert sim.error is None and sim.finished == 24
    # the equivalent scenario written out: the plain row's scenario with the layout set on its deployment
    data = scenario_data(plain)
    dep = data["platforms"][0]["deployments"][0]
    dep.update(dp=dp, ep=ep)
    if tbo:
        dep["engine"]["two_batch_overlap"] = True
    assert close(sim.predicted, direct(data))
    base = simulate_row(plain).predicted  # dp 1, ep 1: the layout must change the prediction
    assert sim.predicted["ttft_mean_ms"] != base["ttft_mean_ms"] and sim.predicted["itl_mean_ms"] != base["itl_mean_ms"]
    if tbo:  # and two-batch overlap changes the wide-EP step
        assert sim.predicted["itl_mean_ms"] < simulate_row(row(dp=dp, ep=ep)).predicted["itl_mean_ms"]


def test_a_dp_row_scenario_leaves_a_plain_row_unchanged():
    dep = scenario_data(row())["platforms"][0]["deployments"][0]
    assert "dp" not in dep and "ep" not in dep and "two_batch_overlap" not in dep["engine"]
    dep = scenario_data(row(dp=4, ep=4))["platforms"][0]["deployments"][0]
    assert (dep["tp"], dep["dp"], dep["ep"]) == (1, 4, 4)


# -- (c) disaggregated rows ---------------------------------------------------------------------------------------
def test_disaggregated_scenario_has_both_pools_the_engine_and_the_link():
    params = shipped_profile("trtllm").with_(memory_eff=0.5)
    r = row(dp=2, ep=2, prefill_replicas=1, decode_replicas=3, decode_tp=2, kv_placement="same_domain",
            kv_precision="fp8")
    plat = scenario_data(r, params, profile="p.yaml")["platforms"][0]
    assert plat["kind"] == "disaggregated" and plat["model"] == "gpt-oss-120b"
    pre, dec = plat["prefill"], plat["decode"]
    assert (pre["tp"], pre["dp"], pre["ep"], pre["replicas"]) == (1, 2, 2, 1)
    assert (dec["tp"], dec["dp"], dec["ep"], dec["replicas"]) == (2, 2, 4, 3)  # decode ep follows: full EP
    for pool in (pre, dec):
        assert (pool["hardware"], pool["precision"]) == ("b200", "mxfp4")
        eng = pool["engine"]
        assert eng["kind"] == "trtllm" and eng["kv_precision"] == "fp8" and eng["profile"] == "p.yaml"
        assert eng["perf"]["memory_eff"] == 0.5  # the fit's parameters reach both pools
    assert pre["engine"] is not dec["engine"]
    assert plat["kv_transfer"] == {"placement": "same_domain"}
    eth = scenario_data(row(prefill_replicas=1, decode_replicas=1, kv_placement="ethernet",
                            kv_bandwidth_gb_per_s=12.5))["platforms"][0]
    assert eth["kv_transfer"] == {"placement": "ethernet", "bandwidth_gb_per_s": 12.5}


def test_1p1d_row_simulates_and_pays_the_transfer_and_a_decode_step_in_ttft():
    lone = {"concurrency": 1, "input_tokens": 2000, "output_tokens": 16, "num_requests": 4}  # one request at a time
    co = simulate_row(row(**lone))
    r = row(**lone, prefill_replicas=1, decode_replicas=1)
    pd = simulate_row(r)
    assert co.error is None and pd.error is None and pd.finished == 4 and pd.rejected == 0
    # the client's metrics are those of the ordinary simulator's request table for the same platform
    assert close(pd.predicted, direct(scenario_data(r)))
    # TTFT of a lone request: co-located = prefill; disaggregated = prefill + KV transfer + the decode pool's
    # first step (the rest of the prompt's last partial block and the first token)
    sc = load_scenario("row.yaml", data=scenario_data(r))
    b = disagg_build(sc.platforms[0], default_catalog(), "platform")
    prompt = 2000
    t_x = b.link.transfer_s(b.kv_bytes_per_token * prompt)
    bs = b.decode.setup.block_size
    cached = min(prompt // bs * bs, prompt - 1)
    t_dec = b.decode.setup.perf.step_s(prompt - cached, prefill_pairs(prompt - cached, cached), 1, 0, 0.0,
                                       float(cached))
    extra_ms = pd.predicted["ttft_mean_ms"] - co.predicted["ttft_mean_ms"]
    assert t_x > 0 and extra_ms > 0
    assert extra_ms == pytest.approx(1e3 * (t_x + t_dec), rel=0.25)
    # a faster link (NVLink in one domain) takes less of it; the decode step stays
    nv = simulate_row(row(**lone, prefill_replicas=1, decode_replicas=1, kv_placement="same_domain"))
    assert co.predicted["ttft_mean_ms"] < nv.predicted["ttft_mean_ms"] < pd.predicted["ttft_mean_ms"]


def test_first_token_column_reaches_the_platform_and_moves_ttft_only():
    lone = {"concurrency": 1, "input_tokens": 2000, "output_tokens": 16, "num_requests": 4}
    r = row(**lone, prefill_replicas=1, decode_replicas=1, first_token="prefill")
    assert r.first_token == "prefill" and r.layout() == "1P1D first token from prefill"
    assert scenario_data(r)["platforms"][0]["first_token"] == "prefill"
    assert "first_token" not in scenario_data(row(**lone, prefill_replicas=1, decode_replicas=1))["platforms"][0]
    co = simulate_row(row(**lone))
    pf = simulate_row(r)
    dec = simulate_row(row(**lone, prefill_replicas=1, decode_replicas=1))
    # the prefill's token: TTFT about the co-located prefill (the prefill pool pays no decode steps), below the
    # decode-streamed one by the transfer and a step
    assert pf.predicted["ttft_mean_ms"] < dec.predicted["ttft_mean_ms"]
    assert pf.predicted["ttft_mean_ms"] == pytest.approx(co.predicted["ttft_mean_ms"], rel=0.1)
    assert close(pf.predicted, direct(scenario_data(r)))


def test_disaggregated_rows_follow_the_fit_parameters_and_the_decode_layout():
    r = row(prefill_replicas=1, decode_replicas=1)
    slow = simulate_row(r, shipped_profile("trtllm").with_(memory_eff=0.45)).predicted["itl_mean_ms"]
    assert slow > simulate_row(r).predicted["itl_mean_ms"]
    wide = simulate_row(row(prefill_replicas=1, decode_replicas=1, decode_tp=2))
    assert wide.error is None and wide.predicted["itl_mean_ms"] != simulate_row(r).predicted["itl_mean_ms"]
    staggered = simulate_row(row(prefill_replicas=1, decode_replicas=1, client_start="staggered"))
    rate = simulate_row(row(prefill_replicas=1, decode_replicas=1, concurrency="", rate_per_s=4))
    assert staggered.error is None and rate.error is None and rate.finished > 0


def test_calibrate_cli_runs_layout_rows(tmp_path, capsys):
    f = csv_file(tmp_path, {}, {"dp": 8, "ep": 8, "two_batch_overlap": "true"},
                 {"prefill_replicas": 1, "decode_replicas": 1},
                 {"prefill_replicas": 1, "decode_replicas": 2, "decode_tp": 2, "kv_placement": "same_domain"},
                 {"prefill_replicas": 1})                                        # only prefill_replicas: skipped
    assert main(["calibrate", str(f), "--json"]) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert [r["row"] for r in out["rows"]] == [1, 2, 3, 4]
    assert [r["layout"] for r in out["rows"]] == ["", "dp8 ep8 TBO", "1P1D", "1P2D decode tp2 same_domain"]
    assert all(r["finished"] == 64 and r["metrics"]["ttft_mean_ms"]["predicted"] > 0 for r in out["rows"])
    assert out["skipped"] == [{"row": 5, "message": out["skipped"][0]["message"]}]
    assert out["skipped"][0]["message"].startswith("decode_replicas:")
    assert "row 5: decode_replicas" in cap.err
    assert main(["calibrate", str(f)]) == 0
    text = capsys.readouterr().out
    assert "1P1D" in text and "dp8 ep8 TBO" in text


def test_parse_row_raises_naming_the_column():
    with pytest.raises(InfersimError, match=r"^decode_ep: expected 1 or tp x dp = 4"):
        row(prefill_replicas=1, decode_replicas=1, decode_tp=4, decode_ep=2)
