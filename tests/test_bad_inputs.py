"""Bad input is refused before anything runs: ``validate`` and ``run`` both exit 2, print no traceback, name the
file, the YAML path and what was expected, and write nothing.

One table: the inputs added for issue 15 (a workload too big for memory, absurd replica counts, tensor
parallelism the engines refuse, corrupt traces, length caps below the median, duplicate keys) and every case
of ``test_scenario_errors.CASES`` (already refused by ``validate``; here also by ``run``, with nothing written).
``--out`` problems are checked by ``run`` before it simulates (a second, smaller table).
"""

from __future__ import annotations

import copy
import gzip
import re
from pathlib import Path

import pytest
import yaml

from infersim.cli import main
from test_scenario_errors import CASES, DEP, MISSING_FILE, VALID, WL, dep, stream, write

TRACE_CSV = "TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(
    f"2023-11-16 18:{m:02d}:{s:02d}.000000,{100 + s},{10 + m}\n" for m in range(2) for s in range(60))


def _gz(tmp: Path, name: str, how: str) -> str:
    """A gzip trace in ``tmp`` made bad by ``how``: 'crc' (a checksum byte flipped) or 'truncated'."""
    data = bytearray(gzip.compress(TRACE_CSV.encode()))
    if how == "crc":
        data[-6] ^= 0xFF  # the CRC32 of the trailer: the data inflate fine, the check fails at the end
    else:
        data = data[: len(data) // 2]
    (tmp / name).write_bytes(bytes(data))
    return name


def _text_with_duplicate(key_line: str, after: str) -> str:
    """VALID as YAML text with ``key_line`` inserted again after the line ``after``."""
    lines = yaml.safe_dump(VALID, sort_keys=False).splitlines()
    i = lines.index(after)
    return "\n".join([*lines[: i + 1], key_line, *lines[i + 1:]]) + "\n"


def _share_stream(d: dict) -> None:
    stream(d)["arrival"] = {"kind": "poisson"}
    stream(d)["share"] = 1.0
    d["workload"]["rate"] = "1e12/s"


def _big_autoscaled(d: dict) -> None:
    dep(d)["autoscaling"] = {"kind": "baseten", "max_replicas": 100_000_000}


def _schedule(d: dict) -> None:
    dep(d)["autoscaling"] = {"kind": "scheduled", "max_replicas": 2,
                             "schedule": [{"at": 0, "replicas": 100_000_000}]}


def _bad_row_trace(d: dict, tmp: Path) -> None:
    (tmp / "rows.csv").write_text(TRACE_CSV.replace(",105,", ",-5,"))
    stream(d)["arrival"] = {"kind": "trace", "path": "rows.csv"}


# (id, how to break VALID: f(d) or f(d, tmp) or YAML text, YAML path (None: the whole file), expected texts)
NEW: list[tuple] = [
    ("rate-1e12-per-s", lambda d: stream(d)["arrival"].update(rate="1e12/s"), f"{WL}.arrival.rate",
     ["implies about 60,000,000,000,000 requests", "GB available", "expected a lower rate or a shorter duration"]),
    ("duration-1000-years", lambda d: d.update(duration="31557600000s"), f"{WL}.arrival.rate",
     ["implies about 157,788,000,000 requests over 3.15576e+10s", "GB available"]),
    ("workload-rate-by-share", _share_stream, "workload.rate", ["implies about 60,000,000,000,000 requests"]),
    ("stages-too-many", lambda d: stream(d).update(arrival={"kind": "stages", "stages": [
        {"rate": "1/s", "duration": "10s"}, {"rate": "1e13/s", "duration": "50s"}]}),
     f"{WL}.arrival.stages", ["implies about 500,000,000,000,010 requests"]),
    ("diurnal-peak-too-high", lambda d: stream(d).update(arrival={"kind": "diurnal", "peak_rate": "1e12/s"}),
     f"{WL}.arrival.peak_rate", ["implies about 60,000,000,000,000 requests"]),
    ("replicas-1e8", lambda d: dep(d).update(replicas=100_000_000), f"{DEP}.replicas",
     ["less than or equal to 100000", "got 100000000"]),
    ("max-replicas-1e8", _big_autoscaled, f"{DEP}.autoscaling.max_replicas", ["less than or equal to 100000"]),
    ("schedule-replicas-1e8", _schedule, f"{DEP}.autoscaling.schedule[0].replicas",
     ["less than or equal to 100000"]),
    ("tp-3-on-28-heads", lambda d: dep(d).update(model="qwen2.5-coder-7b", tp=3), f"{DEP}.tp",
     ["tp=3 does not divide the model's 28 attention heads", "one of: 1, 2, 4, 28"]),
    ("tp-8-on-28-heads", lambda d: dep(d).update(model="qwen2.5-coder-7b", tp=8), f"{DEP}.tp",
     ["tp=8 does not divide the model's 28 attention heads"]),
    ("tp-7-above-4-kv-heads", lambda d: dep(d).update(model="qwen2.5-coder-7b", tp=7), f"{DEP}.tp",
     ["tp=7 is above the model's 4 KV heads but not a multiple of them", "expected a multiple of 4"]),
    ("tp-3-on-32-heads", lambda d: dep(d).update(tp=3), f"{DEP}.tp",
     ["tp=3 does not divide the model's 32 attention heads"]),
    ("tp-12-on-40-heads", lambda d: dep(d).update(model="qwen2.5-coder-32b", tp=12), f"{DEP}.tp",
     ["tp=12 does not divide the model's 40 attention heads"]),
    ("corrupt-gz-trace", lambda d, tmp: stream(d).update(arrival={"kind": "trace", "path": _gz(tmp, "t.csv.gz", "crc")}),
     f"{WL}.arrival.path", ["t.csv.gz", "corrupt or truncated gzip trace", "CRC check failed"]),
    ("truncated-gz-trace",
     lambda d, tmp: stream(d).update(arrival={"kind": "trace", "path": _gz(tmp, "t.csv.gz", "truncated")}),
     f"{WL}.arrival.path", ["t.csv.gz", "corrupt or truncated gzip trace"]),
    ("corrupt-gz-lengths-trace",
     lambda d, tmp: stream(d).update(input_tokens={"kind": "empirical", "trace": _gz(tmp, "l.csv.gz", "crc"),
                                                   "column": "input"}),
     f"{WL}.input_tokens.trace", ["l.csv.gz", "corrupt or truncated gzip trace"]),
    ("trace-bad-row", _bad_row_trace, f"{WL}.arrival.path",
     ["rows.csv", "row 6 (line 7): expected a positive integer ContextTokens, got '-5'"]),
    ("lognormal-max-below-median",
     lambda d: stream(d).update(input_tokens={"kind": "lognormal", "median": 500, "p99": 2000, "max": 100}),
     f"{WL}.input_tokens.max", ["max (100) must be >= median (500)"]),
    ("normal-max-below-mean",
     lambda d: stream(d).update(output_tokens={"kind": "normal", "mean": 300, "std": 50, "max": 100}),
     f"{WL}.output_tokens.max", ["max (100) must be >= mean (300)"]),
    ("exponential-max-below-mean",
     lambda d: stream(d).update(output_tokens={"kind": "exponential", "mean": 300, "max": 100}),
     f"{WL}.output_tokens.max", ["max (100) must be >= mean (300)"]),
    ("duplicate-top-level-key", _text_with_duplicate("duration: 10m", "name: t"), "duration",
     ["duplicate key 'duration' on lines 2 and 3", "expected each key once"]),
    ("duplicate-nested-key", _text_with_duplicate("    hardware: a100-80g", "    hardware: h100-sxm"), f"{DEP}.hardware",
     ["duplicate key 'hardware' on lines", "expected each key once"]),
    ("duplicate-stream-key", _text_with_duplicate("    name: chat2", "  - name: chat"), "workload.streams[0].name",
     ["duplicate key 'name'"]),
]

TABLE = [(i, c, p, e) for i, c, p, e in NEW] + [(f"schema-{i}", c, p, e) for i, c, p, e in CASES]


def _make(tmp_path: Path, case) -> Path:
    if case is MISSING_FILE:
        return tmp_path / "bad.yaml"
    if callable(case) and case.__code__.co_argcount == 2:
        return write(tmp_path, lambda d: case(d, tmp_path))
    return write(tmp_path, case)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _check_message(err: str, path: Path, ypath: str | None, expected: list[str]) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines and all(x.startswith(f"{path}: ") for x in lines), err
    if ypath is None:
        msg = lines[0]
    else:
        head = re.compile(rf"{re.escape(f'{path}: {ypath}')} \(line \d+\): ")
        msg = next((x for x in lines if head.match(x)), None)
        assert msg is not None, err
    for text in expected:
        assert text in msg, msg


def test_the_table_holds_at_least_40_bad_inputs():
    assert len(TABLE) >= 40 and len({i for i, *_ in TABLE}) == len(TABLE)


@pytest.mark.parametrize(("case", "ypath", "expected"), [pytest.param(c, p, e, id=i) for i, c, p, e in TABLE])
def test_bad_input_is_refused_by_validate_and_run(tmp_path, capsys, case, ypath, expected):
    path = _make(tmp_path, case)
    before = _files(tmp_path)
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    _check_message(err, path, ypath, expected)
    out_dir = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out_dir), "--quiet", "--no-charts"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    _check_message(err, path, ypath, expected)
    assert _files(tmp_path) == before  # nothing written: no output directory, no temporary left behind


def test_run_duration_override_is_checked_against_memory(tmp_path, capsys):
    path = write(tmp_path, None)
    before = _files(tmp_path)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet", "--duration", "1000000000h"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith(f"{path}: {WL}.arrival.rate: with --duration 1000000000h: the workload implies about")
    assert _files(tmp_path) == before


def _out_through_a_file(tmp: Path) -> Path:
    (tmp / "plain.txt").write_text("x")
    return tmp / "plain.txt" / "run"


def _out_is_a_file(tmp: Path) -> Path:
    (tmp / "plain.txt").write_text("x")
    return tmp / "plain.txt"


def _out_not_results(tmp: Path) -> Path:
    (tmp / "mine").mkdir()
    (tmp / "mine" / "notes.txt").write_text("keep")
    return tmp / "mine"


@pytest.mark.parametrize(("where", "expected"), [
    pytest.param(_out_through_a_file, "is a file, not a directory", id="through-a-file"),
    pytest.param(_out_is_a_file, "exists and is not a directory", id="is-a-file"),
    pytest.param(_out_not_results, "is not an infersim results directory", id="not-a-results-dir"),
    pytest.param(lambda tmp: Path("/proc/infersim-test-out/run"), "cannot write in /proc", id="unwritable"),
])
def test_run_checks_out_before_simulating(tmp_path, capsys, monkeypatch, where, expected):
    import infersim.results.simulate as sim

    def never(*a, **k):
        raise AssertionError("simulated although --out cannot be written")

    monkeypatch.setattr(sim, "simulate", never)
    path = write(tmp_path, None)
    out_dir = where(tmp_path)
    before = _files(tmp_path)
    assert main(["run", str(path), "--out", str(out_dir), "--quiet", "--no-charts"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(out_dir) in err and expected in err
    assert _files(tmp_path) == before


def test_a_cursor_scale_hour_stays_allowed(monkeypatch):
    """~17 M requests in an hour over cursor.yaml's five platforms and thousands of replicas: allowed on a
    machine with 32 GB available; the same at 100x the rate is refused there."""
    import infersim.validate as v
    from infersim.workload import footprint as fp

    monkeypatch.setattr(v, "available_memory_bytes", lambda: 32 * 10**9)
    scen = Path(__file__).parents[1] / "scenarios" / "cursor.yaml"
    data = yaml.safe_load(scen.read_text())
    rates = [float(str(s["arrival"]["rate"]).split("/")[0]) for s in data["workload"]["streams"]]
    k = 17e6 / 3600 / sum(rates)
    sets = {f"workload.streams[{i}].arrival.rate": r * k for i, r in enumerate(rates)}
    sets["duration"] = "1h"
    sets["platforms[0].deployments[0].replicas"] = 3000
    sc = v.load_scenario(scen, sets)
    f = fp.footprint(sc.workload, sc.duration, len(sc.platforms))
    assert 16e6 < f.requests < 18e6 and f.platforms == 5
    big = {**sets, **{p: r * 100 for p, r in sets.items() if p.endswith("rate")}}
    from infersim.core.errors import ScenarioError

    with pytest.raises(ScenarioError, match="implies about 1,7"):
        v.load_scenario(scen, big)


def test_replicated_kv_heads_are_in_the_memory_plan():
    """tp above the KV-head count (a multiple of it): each GPU holds one KV head, replicated tp/kv times, so a
    token's KV per GPU stops shrinking at tp = kv_heads."""
    from infersim.catalog import default_catalog
    from infersim.perf.gpu import GpuConfig
    from infersim.perf.memory import plan_memory

    cat = default_catalog()
    m, hw = cat.get_model("qwen2.5-coder-7b"), cat.get_hardware("h100-sxm")
    plans = {tp: plan_memory(GpuConfig(hw, m, "bf16", "bf16", tp, 1)) for tp in (1, 2, 4, 28)}
    full = m.kv_bytes_per_token("bf16")
    assert plans[2].kv_bytes_per_token == pytest.approx(full / 2)
    assert plans[4].kv_bytes_per_token == pytest.approx(full / 4) and plans[4].kv_replication == 1
    assert plans[28].kv_bytes_per_token == pytest.approx(full / 4) and plans[28].kv_replication == 7


def test_duplicate_keys_inside_merges_are_still_allowed(tmp_path, capsys):
    """A YAML merge key (``<<``) may be overridden: that is what merges are for."""
    d = copy.deepcopy(VALID)
    text = yaml.safe_dump(d, sort_keys=False).replace(
        "  - name: fleet\n", "  - name: fleet\n    <<: {name: other}\n")
    path = write(tmp_path, text)
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
