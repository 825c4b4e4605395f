"""Large runs keep the requests table on disk (``footprint.SPILL_MIN_ROWS``): the same tables and files as in memory.

The threshold is lowered so that short runs spill: serial and on local worker processes, the saved directory
(summary.json, summary.csv, streams.csv, requests.parquet read back) equals the in-memory run's; a failure
in a platform or while saving leaves neither an output directory nor staging parts; and the parent builds
one platform's rows at a time.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from infersim.core.errors import InfersimError
from infersim.results import simulate as sim
from infersim.results import spilled, tables
from infersim.sweep import platforms as par
from infersim.validate import load_scenario
from infersim.workload import footprint as fp

ROOT = Path(__file__).resolve().parents[1]
DURATION_S = 36


@pytest.fixture(scope="module")
def cursor():
    return load_scenario(str(ROOT / "scenarios" / "cursor.yaml"))


@pytest.fixture(scope="module")
def in_memory(cursor, tmp_path_factory):
    res = sim.simulate(cursor, duration_s=DURATION_S)
    assert res.spilled is None and res.request_rows == len(res.requests)
    return res, res.save(tmp_path_factory.mktemp("mem") / "out")


def _frames(res) -> dict[str, pd.DataFrame]:
    return {k: v for k, v in vars(res).items() if isinstance(v, pd.DataFrame) and k != "requests"}


def _same_dirs(a: Path, b: Path) -> None:
    for name in ("summary.json", "summary.csv", "streams.csv", "deployments.csv", "scenario.json"):
        assert (a / name).exists() == (b / name).exists(), name
        if (a / name).exists():
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for name in ("timeline.parquet", "fleet.parquet", "replicas.parquet", "requests.parquet"):
        assert (a / name).exists() == (b / name).exists(), name
        if (a / name).exists():
            pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name), check_exact=True,
                                          obj=name)
    assert pq.read_schema(a / "requests.parquet").equals(pq.read_schema(b / "requests.parquet"), check_metadata=True)


def _check_spilled(res, mem, mem_dir: Path, tmp_path: Path, staging: Path) -> None:
    assert res.spilled is not None and "requests" not in vars(res)
    assert len(list(staging.iterdir())) == 1  # the run's staging directory, with a part per platform
    assert len(list(next(staging.iterdir()).iterdir())) == 5
    fa, fb = _frames(mem), _frames(res)
    assert sorted(fa) == sorted(fb)
    for k in fa:
        pd.testing.assert_frame_equal(fa[k], fb[k], check_exact=True, obj=k)
    assert res.meta == mem.meta and res.request_rows == len(mem.requests)
    pd.testing.assert_frame_equal(res.requests, mem.requests, check_exact=True)  # read from the parts
    pd.testing.assert_frame_equal(res.read_requests(["outcome", "e2e_s"]), mem.requests[["outcome", "e2e_s"]],
                                  check_exact=True)
    out = res.save(tmp_path / "out")
    assert not any(staging.iterdir())  # parts removed once saved
    _same_dirs(mem_dir, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "staging"]  # no temporary directory left
    pd.testing.assert_frame_equal(res.read_requests(["ttft_s"]), mem.requests[["ttft_s"]], check_exact=True)


def test_spilled_serial_run_equals_in_memory(cursor, in_memory, tmp_path, monkeypatch):
    mem, mem_dir = in_memory
    monkeypatch.setattr(fp, "SPILL_MIN_ROWS", 1000)
    monkeypatch.setattr(spilled, "ROW_GROUP_ROWS", 2500)  # several row groups per part
    live: list[weakref.ref] = []
    build = tables._platform_frame

    def one_at_a_time(run, cols):  # the previous platform's rows are gone when the next one's are built
        gc.collect()
        assert all(r() is None for r in live)
        df = build(run, cols)
        live.append(weakref.ref(df))
        return df

    monkeypatch.setattr(tables, "_platform_frame", one_at_a_time)
    staging = tmp_path / "staging"
    res = sim.simulate(cursor, duration_s=DURATION_S, spill_dir=staging)
    assert len(live) == 5
    _check_spilled(res, mem, mem_dir, tmp_path, staging)


def test_spilled_parallel_run_equals_in_memory(cursor, in_memory, tmp_path, monkeypatch):
    mem, mem_dir = in_memory
    monkeypatch.setattr(fp, "SPILL_MIN_ROWS", 1000)  # read by the parent only: the workers write parts
    monkeypatch.setattr(par, "LOCAL_MIN_REQUESTS", 0)
    consumed = []
    runner = par.platforms_runner("local", workers=2)

    def spy(*a, **kw):
        consume = kw["consume"]
        kw["consume"] = lambda i, run: consumed.append(type(run).__name__) or consume(i, run)
        return runner(*a, **kw)

    staging = tmp_path / "staging"
    res = sim.simulate(cursor, duration_s=DURATION_S, platforms_runner=spy, spill_dir=staging)
    assert consumed == ["PlatformPart"] * 5  # each made in its worker, rows written there
    _check_spilled(res, mem, mem_dir, tmp_path, staging)


def test_failing_platform_leaves_no_staging(cursor, tmp_path, monkeypatch):
    monkeypatch.setattr(fp, "SPILL_MIN_ROWS", 1000)
    real = dict(sim.SIMULATORS)

    def broken(sc, plat, *a, **kw):
        if plat.name == cursor.platforms[2].name:
            raise RuntimeError("platform model bug")
        return real[plat.kind](sc, plat, *a, **kw)

    monkeypatch.setattr(sim, "SIMULATORS", {k: broken for k in real})
    staging = tmp_path / "staging"
    with pytest.raises(RuntimeError, match="platform model bug"):
        sim.simulate(cursor, duration_s=31, spill_dir=staging)
    assert not any(staging.iterdir())


def test_failing_save_leaves_nothing(cursor, tmp_path, monkeypatch):
    monkeypatch.setattr(fp, "SPILL_MIN_ROWS", 1000)
    staging = tmp_path / "staging"
    res = sim.simulate(cursor, duration_s=31, spill_dir=staging)
    assert any(next(staging.iterdir()).iterdir())

    def boom(*a, **kw):
        raise OSError("disk full")

    monkeypatch.setattr(tables.np, "savez_compressed", boom)  # after requests.parquet was written
    with pytest.raises(OSError, match="disk full"):
        res.save(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["staging"]  # no output, no temporary directory
    assert not any(staging.iterdir())


def test_small_run_stays_in_memory(cursor, tmp_path):
    res = sim.simulate(cursor, duration_s=31, spill_dir=tmp_path)
    assert res.spilled is None and isinstance(vars(res)["requests"], pd.DataFrame)
    assert not any(tmp_path.iterdir())
    assert len(res.requests) * len(cursor.platforms) <= fp.SPILL_MIN_ROWS
    assert np.array_equal(res.read_requests(["request_id"])["request_id"], res.requests["request_id"])


def test_parallel_failure_leaves_no_staging(cursor, tmp_path, monkeypatch):
    monkeypatch.setattr(fp, "SPILL_MIN_ROWS", 1000)
    monkeypatch.setattr(par, "LOCAL_MIN_REQUESTS", 0)
    runner = par.platforms_runner("local", workers=2)

    def failing(*a, **kw):
        consume = kw["consume"]

        def bad(i, run):
            if i == 3:
                raise InfersimError("platform 'x' failed on a local worker: boom")
            return consume(i, run)

        kw["consume"] = bad
        return runner(*a, **kw)

    staging = tmp_path / "staging"
    with pytest.raises(InfersimError, match="boom"):
        sim.simulate(cursor, duration_s=31, platforms_runner=failing, spill_dir=staging)
    assert not any(staging.iterdir())


def test_report_reads_columns_and_row_groups(tmp_path):
    """The charts' arrivals (each request once, its first row) and window rows, read a row group / a few
    columns at a time, equal what the whole table gives."""
    from infersim.report.charts import _arrivals_once
    from infersim.report.load import RunDir

    g = np.random.default_rng(1)
    n = 500
    parts = []
    for name, sent in (("a", n - 40), ("b", n), ("c", n - 7)):  # closed-loop rows: each platform sends its own
        ids = np.sort(g.choice(n, sent, replace=False))
        parts.append(pd.DataFrame({
            "platform": pd.Categorical([name] * sent, ["a", "b", "c"]), "request_id": ids.astype(np.int64),
            "arrival_s": g.uniform(0, 60, sent), "ttft_s": g.uniform(0, 1, sent),
            "outcome": pd.Categorical(g.choice(["finished", "rejected"], sent), ["finished", "rejected"])}))
    df = pd.concat(parts, ignore_index=True)
    df.to_parquet(tmp_path / "requests.parquet", index=False, row_group_size=333)  # groups straddle platforms
    pd.DataFrame({"platform": ["a", "b", "c"]}).to_csv(tmp_path / "summary.csv", index=False)
    (tmp_path / "summary.json").write_text('{"meta": {"warmup_s": 10, "duration_s": 50}}')
    run = RunDir(tmp_path)
    want = df.drop_duplicates("request_id")["arrival_s"].to_numpy(dtype=float)
    np.testing.assert_array_equal(_arrivals_once(run), want)
    part = run.window_requests(columns=["request_id", "ttft_s"])
    assert "e2e_s" not in part.columns and "requests" not in vars(run)
    whole = RunDir(tmp_path).window_requests()
    pd.testing.assert_frame_equal(part[["request_id", "ttft_s", "platform"]], whole[["request_id", "ttft_s", "platform"]])
    run.requests  # noqa: B018 - loaded: the same answers from memory
    np.testing.assert_array_equal(_arrivals_once(run), want)


def test_footprint_counts_one_platform_when_spilled(monkeypatch):
    sc = load_scenario(str(ROOT / "scenarios" / "cursor.yaml"))
    small = fp.footprint(sc.workload, 60.0, 5)
    n = sum(x for _, x in fp.stream_requests(sc.workload, 60.0, ROOT / "scenarios"))
    assert small.bytes == int(n * (fp.WORKLOAD_BYTES_PER_REQUEST + 5 * fp.RECORD_BYTES_PER_REQUEST))
    monkeypatch.setattr(fp, "SPILL_MIN_ROWS", 1000)
    big = fp.footprint(sc.workload, 60.0, 5)
    assert big.bytes == int(n * (fp.WORKLOAD_BYTES_PER_REQUEST + fp.RECORD_BYTES_PER_REQUEST))
