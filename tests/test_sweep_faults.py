"""Sweep faults: ``infersim sweep`` killed (SIGKILL) or stopped (SIGTERM) at a random point leaves no process
behind, and re-running the same command resumes: the finished units are not run again, and the tables are
identical to those of a sweep that was never interrupted. SIGTERM, like Ctrl-C, writes the tables of what
finished before exiting (status 130).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from test_scenario_errors import VALID

ROOT = Path(__file__).resolve().parents[1]
RATES = [2, 4, 6, 8, 10, 12]
SETS = ["--set", "workload.streams[0].arrival.rate=" + ",".join(map(str, RATES))]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def _cmd(scen: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "infersim.cli", "sweep", str(scen), *SETS, "--workers", "2",
            "--duration", "8s", "--out", str(out)]


def _scenario(tmp_path: Path) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(VALID, sort_keys=False))
    return p


def _ok_parts(out: Path) -> dict[str, int]:
    """Finished units: part file name -> modification time (ns)."""
    parts = out / "parts"
    found = {}
    for f in parts.glob("*.json") if parts.is_dir() else []:
        if f.name == "definition.json":
            continue
        try:
            if json.loads(f.read_text()).get("status") == "ok":
                found[f.name] = f.stat().st_mtime_ns
        except (OSError, ValueError):
            pass
    return found


def _session_processes(sid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getsid(int(d.name)) == sid and not _zombie(d):
                    pids.append(int(d.name))
            except (ProcessLookupError, PermissionError, OSError):
                pass
    return pids


def _zombie(d: Path) -> bool:
    try:
        return d.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _no_process_left(sid: int, within_s: float = 20.0) -> list[int]:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        left = _session_processes(sid)
        if not left:
            return []
        time.sleep(0.2)
    return _session_processes(sid)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("whole")
    out = tmp / "out"
    r = subprocess.run(_cmd(_scenario(tmp), out), env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return pd.read_csv(out / "points.csv"), pd.read_csv(out / "summary.csv")


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc to find the sweep's processes")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_interrupted_sweep_leaves_nothing_running_and_resumes(tmp_path, uninterrupted, sig):
    scen, out = _scenario(tmp_path), tmp_path / "out"
    n_units = len(RATES)
    # a random point of the sweep that leaves a unit not yet started once `stop_after` have finished (2 workers: at
    # most two others are running then), so the sweep cannot finish between two polls however fast a unit is
    stop_after = random.Random(int(time.time())).randint(1, n_units - 3)
    proc = subprocess.Popen(_cmd(scen, out), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        end = time.monotonic() + 240
        while len(_ok_parts(out)) < stop_after and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        assert proc.poll() is None, f"the sweep ended before it could be interrupted: {proc.communicate()}"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = _no_process_left(proc.pid)
    assert left == [], f"processes left behind after {sig.name}: {left}"
    if sig == signal.SIGTERM:
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "sweep interrupted" in err
        done = _ok_parts(out)
        points = pd.read_csv(out / "points.csv")  # the tables of what finished were written
        assert len(points) == len(done) and set(points["status"]) <= {"ok"}
    else:
        assert proc.returncode == -signal.SIGKILL
    done = _ok_parts(out)
    assert 1 <= len(done) < n_units
    r = subprocess.run(_cmd(scen, out), env=_env(), capture_output=True, text=True, timeout=300,
                       start_new_session=True)
    assert r.returncode == 0, r.stderr
    assert f"{n_units - len(done)} runs in" in r.stdout and f"({len(done)} already done, 0 failed)" in r.stdout
    after = _ok_parts(out)
    assert len(after) == n_units
    assert {k: after[k] for k in done} == done  # the finished units were not run (nor rewritten) again
    whole_points, whole_summary = uninterrupted
    pd.testing.assert_frame_equal(pd.read_csv(out / "points.csv"), whole_points)
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), whole_summary)
