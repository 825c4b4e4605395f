"""Sweep output: one durable part file per finished unit, and the tables assembled from them.

``OUT/parts/<key>.json`` holds one point x replication unit (its values, seed, status, error, platform rows);
it is written to a temporary name, synced and renamed, so a crash leaves either the whole file or none.
``OUT/parts/definition.json`` fingerprints the sweep (resuming into a directory of another sweep is refused).
The tables (``points``, ``summary``, ``sweep.json``; the contract is in ``docs/sweeps.md``) are rebuilt from
the parts at the end of every run, also an interrupted one, each file replaced atomically.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from infersim.core.errors import InfersimError
from infersim.core.fileio import atomic_write, atomic_write_text, json_default
from infersim.sweep.plan import SweepPlan, Unit

__all__ = ["PartStore", "assemble", "summarize_points", "write_tables"]

_KEY_FILE = re.compile(r"^[0-9a-f]{20}\.json$")
LEADING = ["point", "replication", "seed", "platform"]




class PartStore:
    """The ``OUT/parts/`` directory of one sweep: its definition and a JSON file per finished unit."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.dir = self.out / "parts"

    def claim(self, plan: SweepPlan) -> None:
        """Create ``OUT`` for ``plan``, or check that an existing ``OUT`` was made by the same sweep definition.

        Raises InfersimError when ``OUT`` holds another sweep or is a non-empty directory of something else.
        """
        definition = {"fingerprint": plan.fingerprint, "scenario": plan.file,
                      "parameters": [[p.path, p.domain.spec] for p in plan.parameters],
                      "sampling": plan.sampling, "samples": plan.samples}
        dfile = self.dir / "definition.json"
        if dfile.exists():
            try:
                old = json.loads(dfile.read_text())
            except (OSError, ValueError):
                old = {}
            if old.get("fingerprint") != plan.fingerprint:
                changed = [k for k in ("parameters", "sampling", "samples") if old.get(k) != definition[k]]
                what = ", ".join(changed) if changed else "the scenario (its file content or --duration)"
                raise InfersimError(
                    f"{self.out}: holds a different sweep (its {what} differ from this one), so its results cannot "
                    "be resumed; give another --out or remove the directory")
            return
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise InfersimError(f"{self.out}: exists and is not a sweep output directory; give another --out")
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(dfile, json.dumps(definition, indent=2, default=str))

    def load(self) -> dict[str, dict]:
        """Finished units by key (ok and failed). Unreadable files are ignored (their units run again)."""
        out: dict[str, dict] = {}
        if not self.dir.is_dir():
            return out
        for f in self.dir.iterdir():
            if not _KEY_FILE.match(f.name):
                continue
            try:
                rec = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(rec, dict) and rec.get("key") == f.stem:
                out[f.stem] = rec
        return out

    def write(self, unit: Unit, values: dict[str, Any], record: dict) -> None:
        """Persist one finished unit (durably: temporary file, fsync, rename)."""
        doc = {**record, "key": unit.key, "point": unit.point, "replication": unit.replication,
               "seed": unit.seed, "values": values}
        atomic_write_text(self.dir / f"{unit.key}.json", json.dumps(doc, default=str))


def assemble(plan: SweepPlan, records: dict[str, dict]) -> tuple[pd.DataFrame, list[str]]:
    """The tidy points table (a row per point x replication x platform; a failed unit is one row with an empty
    platform) for the plan's finished units, and the metric names in first-seen order."""
    cols = {pt.index: pt.columns for pt in plan.points}
    paths = [p for p in plan.paths if p not in LEADING]
    rows: list[dict[str, Any]] = []
    metrics: dict[str, None] = {}
    for u in plan.units():
        rec = records.get(u.key)
        if rec is None:
            continue
        base = {"point": u.point, "replication": u.replication, "seed": u.seed}
        swept = {p: cols[u.point][p] for p in paths}
        if rec.get("status") == "ok" and rec.get("rows"):
            for r in rec["rows"]:
                for k in r:
                    if k != "platform":
                        metrics.setdefault(k, None)
                rows.append({**base, "platform": r["platform"], **swept, **r, "status": "ok", "error": ""})
        else:
            err = rec.get("error") or "no platform results"
            rows.append({**base, "platform": "", **swept, "status": "failed", "error": err})
    names = list(metrics)
    df = pd.DataFrame(rows, columns=[*LEADING, *paths, *names, "status", "error"])
    for c in ("point", "replication", "seed"):
        df[c] = df[c].astype(np.int64)
    for c in names:
        if df[c].dtype == object:
            df[c] = pd.to_numeric(df[c])
    for c in ("platform", "status", "error"):
        df[c] = df[c].astype(str)
    return df, names


def summarize_points(points: pd.DataFrame, paths: list[str], metrics: list[str]) -> pd.DataFrame:
    """A row per point x platform: the swept values, ``n`` (ok replications) and ``M_mean``, ``M_ci_lo``,
    ``M_ci_hi`` per metric (``report.stats.t_interval`` over the replications with a finite value). A point with no ok
    replication keeps one row with an empty platform and n = 0. A swept ``seed`` is a column here too."""
    keys = ["point", "platform"]
    ok = points[points["status"] == "ok"]
    out_cols = [*keys, *paths, "n"] + [f"{m}_{s}" for m in metrics for s in ("mean", "ci_lo", "ci_hi")]
    frames = []
    if len(ok):
        g = ok.groupby(keys, sort=False)
        first = g[paths].first() if paths else pd.DataFrame(index=g.size().index)
        res = first.assign(n=g.size().astype(np.int64))
        vals = ok[keys + metrics].copy()
        vals[metrics] = vals[metrics].astype(float)
        gv = vals.groupby(keys, sort=False)[metrics]
        mean, sd, cnt = gv.mean(), gv.std(ddof=1), gv.count()
        with np.errstate(invalid="ignore", divide="ignore"):
            half = stats.t.ppf(0.975, cnt - 1) * sd / np.sqrt(cnt)
        half = half.where(cnt >= 2)
        blocks = {}
        for m in metrics:
            blocks[f"{m}_mean"] = mean[m]
            blocks[f"{m}_ci_lo"] = mean[m] - half[m]
            blocks[f"{m}_ci_hi"] = mean[m] + half[m]
        res = pd.concat([res, pd.DataFrame(blocks, index=res.index)], axis=1).reset_index()
        frames.append(res)
    failed_only = points[~points["point"].isin(ok["point"])].drop_duplicates("point")
    if len(failed_only):
        frames.append(failed_only[["point", *paths]].assign(platform="", n=0))
    if not frames:
        return pd.DataFrame(columns=out_cols)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df = df.reindex(columns=out_cols)
    df = df.sort_values("point", kind="stable").reset_index(drop=True)
    df["point"] = df["point"].astype(np.int64)
    df["n"] = df["n"].astype(np.int64)
    df["platform"] = df["platform"].astype(str)
    return df


def _parquet(df: pd.DataFrame, p: Path) -> None:
    df.to_parquet(p, index=False)


def _csv(df: pd.DataFrame, p: Path) -> None:
    df.to_csv(p, index=False)


def write_tables(out: str | Path, plan: SweepPlan, records: dict[str, dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assemble and write points.{parquet,csv}, summary.{parquet,csv} and sweep.json (each atomically)."""
    out = Path(out)
    points, metrics = assemble(plan, records)
    summary = summarize_points(points, plan.paths, metrics)
    for name, df in (("points", points), ("summary", summary)):
        atomic_write(out / f"{name}.parquet", functools.partial(_parquet, df))
        atomic_write(out / f"{name}.csv", functools.partial(_csv, df))
    doc = {"scenario": plan.file, "scenario_name": plan.scenario_name, "parameters": plan.values_listing(),
           "sampling": plan.sampling, "replications": plan.replications, "points": len(plan.points),
           "metrics": metrics}
    if plan.scenario_json:  # the base scenario as it was when the sweep ran (reports describe it from here)
        atomic_write_text(out / "scenario.json", plan.scenario_json)
    atomic_write_text(out / "sweep.json", json.dumps(doc, indent=2, default=json_default))
    return points, summary


