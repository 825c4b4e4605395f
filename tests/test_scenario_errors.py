"""Bad scenario files: every problem names the file, the YAML path and what was expected; exit status 2.

Each case starts from a small valid scenario, breaks one thing, and runs ``infersim validate`` on it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infersim.cli import main

VALID: dict[str, Any] = {
    "name": "t",
    "duration": "60s",
    "workload": {
        "streams": [{
            "name": "chat",
            "arrival": {"kind": "poisson", "rate": "5/s"},
            "input_tokens": {"kind": "fixed", "value": 200},
            "output_tokens": {"kind": "fixed", "value": 20},
        }],
    },
    "platforms": [{
        "name": "fleet",
        "kind": "gpu_fleet",
        "deployments": [{"model": "llama-3.1-8b", "hardware": "h100-sxm"}],
    }],
}

MISSING_FILE = object()  # the case's file is not written at all

WL = "workload.streams[0]"
DEP = "platforms[0].deployments[0]"


def stream(d: dict) -> dict:
    return d["workload"]["streams"][0]


def dep(d: dict) -> dict:
    return d["platforms"][0]["deployments"][0]


def write(tmp_path: Path, case: Callable[[dict], Any] | str | None, name: str = "bad.yaml") -> Path:
    """A scenario file: VALID changed in place by ``case``, or the raw text ``case``."""
    path = tmp_path / name
    if isinstance(case, str):
        path.write_text(case)
    else:
        data = copy.deepcopy(VALID)
        if case is not None:
            case(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def validate(capsys, path: Path) -> tuple[int, str, str]:
    rc = main(["validate", str(path)])
    out, err = capsys.readouterr()
    return rc, out, err


# (id, how to break VALID, expected YAML path (None: about the whole file), expected texts)
CASES: list[tuple[str, Any, str | None, list[str]]] = [
    ("unknown-hardware", lambda d: dep(d).update(hardware="h10O"), f"{DEP}.hardware",
     ["unknown accelerator 'h10O' (did you mean 'h100-sxm'?)"]),
    ("unknown-model", lambda d: dep(d).update(model="llama-3.1-8x"), f"{DEP}.model",
     ["unknown model 'llama-3.1-8x'", "did you mean 'llama-3.1-8b'?"]),
    ("unknown-field", lambda d: dep(d).update(replcas=2), f"{DEP}.replcas",
     ["unknown field 'replcas' (did you mean 'replicas'?)"]),
    ("unknown-top-level-field", lambda d: d.update(sede=3), "sede",
     ["unknown field 'sede' (did you mean 'seed'?)"]),
    ("unknown-field-no-match", lambda d: dep(d).update(zzzzzz=1), f"{DEP}.zzzzzz",
     ["unknown field 'zzzzzz'", "expected one of: ", "hardware", "replicas"]),
    ("unknown-arrival-kind", lambda d: stream(d)["arrival"].update(kind="poison"), f"{WL}.arrival.kind",
     ["unknown kind 'poison' (did you mean 'poisson'?)", "expected one of: poisson, gamma, stages"]),
    ("unknown-length-kind", lambda d: stream(d)["input_tokens"].update(kind="zipf"), f"{WL}.input_tokens.kind",
     ["unknown kind 'zipf'", "expected one of: fixed, uniform"]),
    ("unknown-load-balancer-kind", lambda d: dep(d).update(load_balancer={"kind": "random"}),
     f"{DEP}.load_balancer.kind", ["unknown kind 'random'", "expected one of: round_robin"]),
    ("unknown-platform-kind", lambda d: d["platforms"][0].update(kind="gpu_flet"), "platforms[0].kind",
     ["unknown kind 'gpu_flet' (did you mean 'gpu_fleet'?)", "expected one of: gpu_fleet"]),
    ("missing-arrival-kind", lambda d: stream(d)["arrival"].pop("kind"), f"{WL}.arrival.kind",
     ["missing 'kind'", "expected one of: poisson, gamma"]),
    ("missing-platform-kind", lambda d: d["platforms"][0].pop("kind"), "platforms[0].kind",
     ["missing 'kind' (expected one of: gpu_fleet"]),
    ("bad-duration", lambda d: d.update(duration="10 parsecs"), "duration",
     ["unknown duration unit 'parsecs'", "ms, s, m, h"]),
    ("bad-duration-type", lambda d: d.update(duration=True), "duration", ["expected a duration, got True"]),
    ("bad-slo-duration", lambda d: stream(d).update(slo={"ttft": "fast"}), f"{WL}.slo.ttft",
     ["expected a duration like '500ms', '90s'", "got 'fast'"]),
    ("zero-duration", lambda d: d.update(duration="0s"), "duration", ["greater than 0", "got '0s'"]),
    ("infinite-duration", lambda d: d.update(duration=float("inf")), "duration",
     ["expected a finite duration, got inf"]),
    ("non-finite-number", lambda d: stream(d).update(prefix={"kind": "shared", "tokens": 5, "zipf_s": float("nan")}),
     f"{WL}.prefix.zipf_s", ["expected a finite number, got nan"]),
    ("bad-rate", lambda d: stream(d)["arrival"].update(rate="fast"), f"{WL}.arrival.rate",
     ["expected a rate like '20/s' or '1200/min', got 'fast'"]),
    ("bad-rate-unit", lambda d: stream(d)["arrival"].update(rate="5/fortnight"), f"{WL}.arrival.rate",
     ["unknown rate unit 'fortnight'", "/s, /min"]),
    ("negative-tp", lambda d: dep(d).update(tp=-2), f"{DEP}.tp", ["greater than or equal to 1", "got -2"]),
    ("tp-above-heads", lambda d: dep(d).update(tp=64), f"{DEP}.tp", ["tp=64 exceeds the model's 32 attention heads"]),
    ("precision-not-on-hardware", lambda d: dep(d).update(hardware="a100-80g", precision="fp8"),
     f"{DEP}.precision", ["a100-80g has no fp8 tensor cores", "it has: bf16"]),
    ("unknown-precision", lambda d: dep(d).update(precision="bf61"), f"{DEP}.precision",
     ["expected 'fp32', 'bf16'", "got 'bf61'"]),
    ("model-does-not-fit", lambda d: dep(d).update(model="llama-3.1-405b", hardware="l4"), DEP,
     ["llama-3.1-405b at bf16 does not fit on 1x l4", "GB is usable", "try tp="]),
    ("lpu-in-gpu-fleet", lambda d: dep(d).update(hardware="groq-lpu"), f"{DEP}.hardware",
     ["groq-lpu is a lpu", "platform of kind 'lpu'"]),
    ("warmup-not-shorter-than-duration", lambda d: d.update(warmup="2m"), "warmup",
     ["warmup (120s) must be shorter than duration (60s)"]),
    ("missing-model", lambda d: dep(d).pop("model"), f"{DEP}.model", ["missing required field 'model'"]),
    ("missing-workload", lambda d: d.pop("workload"), "workload", ["missing required field 'workload'"]),
    ("duplicate-stream-names",
     lambda d: d["workload"]["streams"].append(copy.deepcopy(stream(d))), "workload.streams[1].name",
     ["duplicate stream name 'chat'", "must be unique"]),
    ("duplicate-platform-names",
     lambda d: d["platforms"].append(copy.deepcopy(d["platforms"][0])), "platforms[1].name",
     ["duplicate platform name 'fleet'"]),
    ("duplicate-deployments",
     lambda d: d["platforms"][0]["deployments"].append(copy.deepcopy(dep(d))), "platforms[0].deployments[1]",
     ["duplicate deployment name 'llama-3.1-8b'", "give 'name'"]),
    ("lognormal-p99-below-median",
     lambda d: stream(d).update(input_tokens={"kind": "lognormal", "median": 100, "p99": 50}),
     f"{WL}.input_tokens.p99", ["p99 (50) must be >= median (100)"]),
    ("uniform-high-below-low",
     lambda d: stream(d).update(output_tokens={"kind": "uniform", "low": 100, "high": 50}),
     f"{WL}.output_tokens.high", ["high (50) must be >= low (100)"]),
    ("diurnal-trough-above-peak",
     lambda d: stream(d).update(arrival={"kind": "diurnal", "peak_rate": "1/s", "trough_rate": "3/s"}),
     f"{WL}.arrival.trough_rate", ["trough_rate (3/s) must be <= peak_rate (1/s)"]),
    ("unknown-trace",
     lambda d: stream(d).update(arrival={"kind": "trace", "path": "azure-code-2032"}), f"{WL}.arrival.path",
     ["unknown trace 'azure-code-2032' (did you mean 'azure-code-2023'?)", "expected a shipped trace"]),
    ("unknown-empirical-trace",
     lambda d: stream(d).update(input_tokens={"kind": "empirical", "trace": "azure-conv-2032", "column": "input"}),
     f"{WL}.input_tokens.trace", ["unknown trace 'azure-conv-2032' (did you mean 'azure-conv-2023'?)"]),
    ("deployment-streams-unknown", lambda d: dep(d).update(streams=["chta"]), f"{DEP}.streams[0]",
     ["unknown stream 'chta' (did you mean 'chat'?)"]),
    ("stream-without-rate-or-share", lambda d: stream(d)["arrival"].pop("rate"), f"{WL}.arrival.rate",
     ["stream 'chat' has no rate", "give arrival.rate, or a workload rate and a share"]),
    ("stream-without-input-tokens", lambda d: stream(d).pop("input_tokens"), f"{WL}.input_tokens",
     ["stream 'chat' needs input_tokens"]),
    ("nested-stage-bad-rate",
     lambda d: stream(d).update(arrival={"kind": "stages", "stages": [{"rate": "1/s", "duration": "1m"},
                                                                       {"rate": "zz", "duration": "1m"}]}),
     f"{WL}.arrival.stages[1].rate", ["expected a rate like '20/s'", "got 'zz'"]),
    ("nested-stage-unknown-field",
     lambda d: stream(d).update(arrival={"kind": "stages", "stages": [{"rate": "1/s", "durtion": "1m"}]}),
     f"{WL}.arrival.stages[0].durtion", ["unknown field 'durtion' (did you mean 'duration'?)"]),
    ("empty-stages", lambda d: stream(d).update(arrival={"kind": "stages", "stages": []}),
     f"{WL}.arrival.stages", ["expected at least 1 item(s), got 0"]),
    ("nested-union-unknown-field",
     lambda d: dep(d).update(load_balancer={"kind": "prefix_affinity", "virtual_node": 3}),
     f"{DEP}.load_balancer.virtual_node", ["unknown field 'virtual_node' (did you mean 'virtual_nodes'?)"]),
    ("engine-perf-out-of-range", lambda d: dep(d).update(engine={"perf": {"compute_eff": 2}}),
     f"{DEP}.engine.perf.compute_eff", ["less than or equal to 1", "got 2"]),
    ("streams-not-a-list", lambda d: d["workload"].update(streams={"name": "chat"}), "workload.streams",
     ["expected a valid list, got a mapping"]),
    ("deployment-not-a-mapping", lambda d: d["platforms"][0].update(deployments=["x"]), f"{DEP}",
     ["expected a mapping, got 'x'"]),
    ("no-deployments", lambda d: d["platforms"][0].update(deployments=[]), "platforms[0].deployments",
     ["expected at least 1 item(s), got 0"]),
    ("unknown-catalog-file", lambda d: d.update(catalog=["nope.yaml"]), "catalog[0]",
     ["catalog file 'nope.yaml' not found"]),
    ("top-level-not-a-mapping", "- workload\n- platforms\n", None,
     ["expected a mapping with 'workload' and 'platforms'", "got a list"]),
    ("empty-file", "", None, ["empty file"]),
    ("non-existent-file", MISSING_FILE, None, ["no such file"]),
]


@pytest.mark.parametrize(("case", "ypath", "expected"), [pytest.param(c, p, e, id=i) for i, c, p, e in CASES])
def test_bad_input_names_file_path_and_expectation(tmp_path, capsys, case, ypath, expected):
    path = tmp_path / "bad.yaml" if case is MISSING_FILE else write(tmp_path, case)
    rc, out, err = validate(capsys, path)
    assert rc == 2
    assert "Traceback" not in out + err
    assert out == ""
    lines = err.strip().splitlines()
    assert lines and all(x.startswith(f"{path}: ") for x in lines), err
    if ypath is None:
        assert len(lines) == 1
        msg = lines[0]
    else:
        # the exact path, followed by its line and the message (not a longer path that merely starts with it)
        head = re.compile(rf"{re.escape(f'{path}: {ypath}')} \(line \d+\): ")
        msg = next((x for x in lines if head.match(x)), None)
        assert msg is not None, err
    for text in expected:
        assert text in msg


def test_unknown_hardware_message_matches_the_documented_form(tmp_path, capsys):
    path = write(tmp_path, lambda d: dep(d).update(hardware="h10O"))
    _, _, err = validate(capsys, path)
    line = yaml.safe_dump(VALID, sort_keys=False).splitlines().index("    hardware: h100-sxm") + 1
    assert err.strip() == (f"{path}: platforms[0].deployments[0].hardware (line {line}): "
                           "unknown accelerator 'h10O' (did you mean 'h100-sxm'?)")


@pytest.mark.parametrize(("text", "line"), [
    pytest.param("name: t\nworkload:\n  streams: [\n  - a: b\nplatforms: x\n", 4, id="unclosed-flow"),
    pytest.param("name: t\nworkload:\n  streams:\n    - name: a\n   bad: 1\n", 5, id="bad-indent"),
    pytest.param("name: t\n\tworkload: 1\n", 2, id="tab"),
])
def test_malformed_yaml_reports_the_line(tmp_path, capsys, text, line):
    path = write(tmp_path, text)
    rc, _, err = validate(capsys, path)
    assert rc == 2 and "Traceback" not in err
    assert err.startswith(f"{path}:{line}: malformed YAML: ")


def test_line_numbers_point_at_the_offending_key(tmp_path, capsys):
    text = ("name: t\nduration: 60s\nworkload:\n  streams:\n    - name: chat\n"
            "      arrival: {kind: poisson, rate: fast}\n"
            "      input_tokens: {kind: fixed, value: 200}\n      output_tokens: {kind: fixed, value: 20}\n"
            "platforms:\n  - name: fleet\n    kind: gpu_fleet\n    deployments:\n"
            "      - model: llama-3.1-8b\n        hardware: h10O\n")
    path = write(tmp_path, text)
    _, _, err = validate(capsys, path)
    assert f"{path}: workload.streams[0].arrival.rate (line 6): " in err
    path.write_text(text.replace("rate: fast", "rate: 5/s"))
    _, _, err = validate(capsys, path)
    assert f"{path}: platforms[0].deployments[0].hardware (line 14): " in err


def test_several_schema_errors_are_all_reported(tmp_path, capsys):
    def breaks(d):
        stream(d)["arrival"]["rate"] = "fast"
        dep(d).update(tp=0, replcas=3)

    path = write(tmp_path, breaks)
    rc, _, err = validate(capsys, path)
    assert rc == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 3
    assert all(x.startswith(f"{path}: ") for x in lines)
    assert any(f"{WL}.arrival.rate (line" in x and "'fast'" in x for x in lines)
    assert any(f"{DEP}.tp (line" in x and "got 0" in x for x in lines)
    assert any(f"{DEP}.replcas (line" in x and "did you mean 'replicas'?" in x for x in lines)


def test_several_catalog_errors_are_all_reported(tmp_path, capsys):
    def breaks(d):
        deps = d["platforms"][0]["deployments"]
        deps.append({"name": "big", "model": "llama-3.1-405b", "hardware": "l4"})
        deps.append({"name": "typo", "model": "llama-3.1-8b", "hardware": "h200x", "streams": ["nope"]})
        deps[0]["hardware"] = "h10O"

    path = write(tmp_path, breaks)
    rc, _, err = validate(capsys, path)
    assert rc == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 4, err
    assert lines[0].startswith(f"{path}: platforms[0].deployments[0].hardware (line")
    assert lines[1].startswith(f"{path}: platforms[0].deployments[1] (line") and "does not fit" in lines[1]
    assert lines[2].startswith(f"{path}: platforms[0].deployments[2].streams[0] (line")
    assert lines[3].startswith(f"{path}: platforms[0].deployments[2].hardware (line") and "'h200'" in lines[3]


def test_validate_reports_each_file(tmp_path, capsys):
    good = write(tmp_path, None, "good.yaml")
    bad = write(tmp_path, lambda d: dep(d).update(hardware="h10O"), "bad.yaml")
    rc = main(["validate", str(good), str(bad)])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out.strip() == f"{good}: ok"
    assert err.startswith(f"{bad}: platforms[0].deployments[0].hardware")


def test_valid_file_prints_ok(tmp_path, capsys):
    path = write(tmp_path, None)
    rc, out, err = validate(capsys, path)
    assert rc == 0, err
    assert out.strip() == f"{path}: ok"
    assert err == ""


def test_shipped_scenarios_validate(capsys):
    files = sorted(str(p) for p in (Path(__file__).parents[1] / "scenarios").glob("*.yaml"))
    assert files
    rc, out, err = main(["validate", *files]), *capsys.readouterr()
    assert rc == 0, err
    assert out.count(": ok") == len(files)


def test_schema_prints_json_schema(capsys):
    assert main(["schema"]) == 0
    out, _ = capsys.readouterr()
    schema = json.loads(out)
    assert {"workload", "platforms"} <= set(schema["properties"])
    assert set(schema["required"]) >= {"workload", "platforms"}


def test_run_on_bad_file_exits_2_and_writes_nothing(tmp_path, capsys):
    path = write(tmp_path, lambda d: dep(d).update(hardware="h10O"))
    _, _, expected = validate(capsys, path)
    out_dir = tmp_path / "out"
    rc = main(["run", str(path), "--out", str(out_dir), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert "Traceback" not in out + err
    assert expected.strip() in err
    assert len(err.strip().splitlines()) == 1
    assert not out_dir.exists()


def test_loading_from_data_gives_no_line_numbers(tmp_path):
    from infersim.core.errors import ScenarioError
    from infersim.validate import load_scenario

    data = copy.deepcopy(VALID)
    dep(data)["tp"] = 0
    with pytest.raises(ScenarioError) as e:
        load_scenario("mem.yaml", data=data)
    assert str(e.value).startswith("mem.yaml: platforms[0].deployments[0].tp: ")


@pytest.mark.parametrize("flags,expected", [
    (["--duration", "0.5s"], "--duration: 0.5s must be longer than the scenario's warm-up"),
    (["--duration", "ten minutes"], "--duration: "),
    (["--seed", "-3"], "--seed: expected a non-negative integer, got -3"),
])
def test_run_flags_out_of_range_exit_2_and_write_nothing(tmp_path, capsys, flags, expected):
    data = copy.deepcopy(VALID)
    data["warmup"] = "1s"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    out_dir = tmp_path / "out"
    rc = main(["run", str(path), "--out", str(out_dir), "--quiet", *flags])
    out, err = capsys.readouterr()
    assert rc == 2
    assert "Traceback" not in out + err
    assert err.startswith(expected)
    assert not out_dir.exists()


def test_run_never_replaces_a_directory_that_is_not_a_result(tmp_path, capsys):
    """--out naming a folder of other files (say, all earlier results) is refused, and nothing in it is lost;
    re-running into an earlier run's directory replaces that run; files are readable like plain files."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(copy.deepcopy(VALID)))
    keep = tmp_path / "results"
    (keep / "older-run").mkdir(parents=True)
    (keep / "notes.txt").write_text("mine")
    rc = main(["run", str(path), "--out", str(keep), "--quiet", "--no-charts", "--duration", "2s"])
    assert rc == 2
    assert "is not an infersim results directory" in capsys.readouterr().err
    assert (keep / "notes.txt").read_text() == "mine" and (keep / "older-run").is_dir()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left behind
    run_dir = keep / "older-run" / "r1"
    for _ in range(2):  # the second run replaces the first
        assert main(["run", str(path), "--out", str(run_dir), "--quiet", "--no-charts", "--duration", "2s"]) == 0
    assert (run_dir / "summary.json").exists()
    import os
    import stat

    from infersim.core.fileio import FILE_MODE
    assert stat.S_IMODE(os.stat(run_dir / "summary.json").st_mode) == FILE_MODE  # as open() would (not 0o600)
