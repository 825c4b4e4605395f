"""A run's platforms on worker processes (``infersim run --executor``) give the tables of a serial run."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infersim.results.simulate import simulate
from infersim.sweep import platforms as par
from infersim.validate import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def _frames(res) -> dict[str, pd.DataFrame]:
    return {k: v for k, v in vars(res).items() if isinstance(v, pd.DataFrame)}


def _same(a, b) -> None:
    fa, fb = _frames(a), _frames(b)
    assert sorted(fa) == sorted(fb) and "requests" in fa
    for k in fa:
        pd.testing.assert_frame_equal(fa[k], fb[k], check_exact=True, obj=k)


@pytest.fixture(scope="module")
def cursor():
    return load_scenario(str(ROOT / "scenarios" / "cursor.yaml"))


@pytest.fixture(scope="module")
def serial(cursor):
    return simulate(cursor, duration_s=40)


def test_local_processes_match_serial(cursor, serial, monkeypatch):
    monkeypatch.setattr(par, "LOCAL_MIN_REQUESTS", 0)  # this short run would otherwise stay in-process
    calls = []
    runner = par.platforms_runner("local", workers=2)

    def spy(*a):
        calls.append(a)
        return runner(*a)

    res = simulate(cursor, duration_s=40, platforms_runner=spy)
    assert calls and len(cursor.platforms) == 5
    _same(serial, res)


def test_small_run_stays_in_process(cursor):
    runner = par.platforms_runner("local", workers=2)
    assert runner(cursor, str(ROOT / "scenarios"), 600, par.LOCAL_MIN_REQUESTS - 1) is None


def test_dask_matches_serial(cursor, serial):
    pytest.importorskip("distributed")
    res = simulate(cursor, duration_s=40, platforms_runner=par.platforms_runner("dask", workers=1))
    _same(serial, res)


def test_recorder_pickles_with_its_columns():
    from infersim.engine.recorder import Recorder

    rec = Recorder(4)
    rec.finish(2, 1.5)
    rec.reject(1, "queue_timeout", 0.5)
    rec.itl_one(0.01, 3)
    back = pickle.loads(pickle.dumps(rec))
    for k in ("outcome", "finish_s", "reason", "itl_hist", "replica"):
        np.testing.assert_array_equal(getattr(back, k), getattr(rec, k))
    back.finish(3, 2.0)  # the engine's typed views write into the restored columns
    assert back.finish_s[3] == 2.0 and back.outcome[3] == 1
