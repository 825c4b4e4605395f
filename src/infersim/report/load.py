"""Reading a results directory: a run (``infersim run --out``) or a sweep (``infersim sweep --out``).

Reporting reads only these tables, never the simulation. A run directory holds ``summary.csv`` (a row per
platform), ``requests.parquet``, ``timeline.parquet``, optional ``fleet.parquet``, ``scenario.json`` and
``summary.json`` (meta). A sweep directory holds ``sweep.json``, ``points.parquet`` (a row per point x
replication x platform) and ``summary.parquet`` (a row per point x platform, ``M_mean``/``M_ci_lo``/``M_ci_hi``
per metric). Missing or malformed inputs raise ``InfersimError`` naming the directory or file and what was
expected (the CLI prints it and exits 2).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from infersim.core.errors import InfersimError, suggest

RUN_MARKER = "summary.csv"
SWEEP_MARKER = "sweep.json"


def _read_table(path: Path, what: str, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet or CSV table (of a Parquet file, only ``columns`` when given: those it has); a missing or
    unreadable file raises naming it."""
    if not path.exists():
        raise InfersimError(f"{path}: missing ({what})")
    try:
        if path.suffix == ".parquet":
            if columns is not None:
                import pyarrow.parquet as pq

                have = set(pq.read_schema(path).names)
                columns = [c for c in columns if c in have]
            return pd.read_parquet(path, columns=columns)
        return pd.read_csv(path)
    except Exception as exc:  # pyarrow/pandas raise many kinds for a corrupt file
        raise InfersimError(f"{path}: cannot read ({what}): {exc}") from None


def _read_json(path: Path, what: str) -> dict:
    if not path.exists():
        raise InfersimError(f"{path}: missing ({what})")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InfersimError(f"{path}: cannot read ({what}): {exc}") from None
    if not isinstance(doc, dict):
        raise InfersimError(f"{path}: expected a JSON object ({what})")
    return doc


def _fmt_span_s(v) -> str:
    """A simulated duration in words for the provenance line (300 -> '5 min', 45 -> '45 s')."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "?"
    if not math.isfinite(v):
        return "?"
    if v < 120:
        return f"{v:g} s"
    if v < 7200:
        return f"{v / 60:g} min"
    return f"{v / 3600:g} h"


def provenance_line(scenario: str, seed, duration_s, warmup_s=None, extra: str = "") -> str:
    """The line every chart carries: where its numbers came from, and that they are simulated."""
    from infersim.core.version import installed_version

    __version__ = installed_version()  # the package metadata: the report layer may not import the CLI's
    dur = f"{_fmt_span_s(duration_s)} simulated"
    if warmup_s:
        dur += f" (first {_fmt_span_s(warmup_s)} warm-up)"
    parts = [f"scenario {scenario}", f"seed {seed}" if seed is not None else "seed ?", dur]
    if extra:
        parts.append(extra)
    parts.append(f"infersim {__version__}")
    return "Source: " + ", ".join(parts) + ". Simulated, not measured."


@dataclass
class RunDir:
    """A run's output directory; tables are read on first use."""

    path: Path
    notes: list[str] = field(default_factory=list)

    kind = "run"

    @cached_property
    def summary(self) -> pd.DataFrame:
        """A row per platform (``summary.csv``); ``platform`` as str."""
        df = _read_table(self.path / "summary.csv", "the run's summary table, a row per platform")
        if "platform" not in df.columns:
            raise InfersimError(f"{self.path / 'summary.csv'}: expected a 'platform' column")
        df["platform"] = df["platform"].astype(str)
        return df

    @cached_property
    def requests(self) -> pd.DataFrame:
        """A row per platform x request (``requests.parquet``), every column: a large run's table is tens of
        GB in memory; code that needs a few columns reads them with ``read_requests(columns)``."""
        return _read_table(self.path / "requests.parquet", "a row per platform x request")

    def read_requests(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The requests table, or only those of ``columns`` it has (read from disk unless already loaded)."""
        if columns is None:
            return self.requests
        if "requests" in self.__dict__:
            r = self.requests
            return r[[c for c in columns if c in r.columns]]
        return _read_table(self.path / "requests.parquet", "a row per platform x request", list(columns))

    def iter_requests(self, columns: list[str]):
        """``columns`` of the requests table a Parquet row group at a time, in row order (the loaded table
        at once when it is already in memory)."""
        if "requests" in self.__dict__:
            yield self.read_requests(columns)
            return
        import pyarrow.parquet as pq

        path = self.path / "requests.parquet"
        try:
            f = pq.ParquetFile(path)
        except FileNotFoundError:
            raise InfersimError(f"{path}: missing (a row per platform x request)") from None
        except Exception as exc:  # pyarrow raises many kinds for a corrupt file
            raise InfersimError(f"{path}: cannot read (a row per platform x request): {exc}") from None
        have = [c for c in columns if c in f.schema_arrow.names]
        for i in range(f.num_row_groups):
            yield f.read_row_group(i, columns=have).to_pandas()

    @cached_property
    def timeline(self) -> pd.DataFrame:
        """Per-replica samples (``timeline.parquet``); empty when absent."""
        p = self.path / "timeline.parquet"
        return _read_table(p, "per-replica samples") if p.exists() else pd.DataFrame()

    @cached_property
    def fleet(self) -> pd.DataFrame:
        """Autoscaled deployments over time (``fleet.parquet``); empty when the run had none."""
        p = self.path / "fleet.parquet"
        return _read_table(p, "autoscaled deployments over time") if p.exists() else pd.DataFrame()

    @cached_property
    def doc(self) -> dict:
        """``summary.json`` (meta, platforms, streams, deployments); empty when absent."""
        p = self.path / "summary.json"
        return _read_json(p, "run summary") if p.exists() else {}

    @property
    def meta(self) -> dict:
        return self.doc.get("meta", {}) or {}

    @cached_property
    def scenario(self) -> dict:
        """The validated scenario as saved (``scenario.json``); empty when absent."""
        p = self.path / "scenario.json"
        return _read_json(p, "the validated scenario") if p.exists() else {}

    @property
    def scenario_file(self) -> Path | None:
        """The scenario YAML the run came from, when recorded and still present."""
        f = self.meta.get("scenario_file")
        return Path(f) if f and Path(f).exists() else None

    @property
    def platforms(self) -> list[str]:
        return list(self.summary["platform"])

    @property
    def provenance(self) -> str:
        """The provenance line of this run's charts (scenario, seed, simulated duration, version)."""
        m, sc = self.meta, self.scenario
        lo, hi = self.window()
        return provenance_line(m.get("scenario") or sc.get("name") or self.path.name,
                               m.get("seed", sc.get("seed")), hi, lo)

    def window(self) -> tuple[float, float]:
        """The measurement window ``[warmup, duration)`` in seconds (from meta, else scenario)."""
        m, sc = self.meta, self.scenario
        w = m.get("warmup_s", sc.get("warmup", 0.0)) or 0.0
        d = m.get("duration_s", sc.get("duration", math.inf))
        return float(w), float(d if d is not None else math.inf)

    def window_requests(self, finished_only: bool = True, columns: list[str] | None = None) -> pd.DataFrame:
        """Requests that arrived in the measurement window (the rows the summary's percentiles use); with
        ``columns``, only those (and the ones the selection reads) are read."""
        if columns is not None:
            columns = list(dict.fromkeys([*columns, "platform", "arrival_s", "outcome"]))
        r = self.read_requests(columns)
        lo, hi = self.window()
        m = (r["arrival_s"] >= lo) & (r["arrival_s"] < hi)
        if finished_only:
            m &= r["outcome"].astype(str) == "finished"
        out = r[m].copy()
        out["platform"] = out["platform"].astype(str)
        return out


@dataclass
class SweepDir:
    """A sweep's output directory (contract: ``sweep.json``, ``points.parquet``, ``summary.parquet``)."""

    path: Path
    notes: list[str] = field(default_factory=list)

    kind = "sweep"

    @cached_property
    def spec(self) -> dict:
        doc = _read_json(self.path / SWEEP_MARKER, "the sweep's description")
        if not isinstance(doc.get("parameters"), list):
            raise InfersimError(f"{self.path / SWEEP_MARKER}: expected a 'parameters' list")
        return doc

    def _table(self, stem: str, what: str) -> pd.DataFrame:
        pq = self.path / f"{stem}.parquet"
        df = _read_table(pq if pq.exists() else self.path / f"{stem}.csv", what)
        for col in ("point", "platform"):
            if col not in df.columns:
                raise InfersimError(f"{self.path / stem}.parquet: expected a '{col}' column ({what})")
        df["platform"] = df["platform"].astype(str)
        return df

    @cached_property
    def points(self) -> pd.DataFrame:
        """A row per point x replication x platform; failed rows dropped (counted in ``notes``)."""
        df = self._table("points", "a row per point x replication x platform")
        if "status" in df.columns:
            bad = df["status"].astype(str) != "ok"
            if bad.any():
                self.notes.append(f"{int(bad.sum())} failed point x replication x platform rows left out "
                                  f"(see points.csv 'error')")
            df = df[~bad]
        return df.reset_index(drop=True)

    @cached_property
    def summary(self) -> pd.DataFrame:
        """A row per point x platform with ``M_mean``, ``M_ci_lo``, ``M_ci_hi`` per metric; rows of points
        without a single ok replication (empty platform, n = 0) are dropped and counted in ``notes``."""
        df = self._table("summary", "a row per point x platform")
        empty = (df["platform"].isin(["", "nan"])) | (df["n"] == 0 if "n" in df.columns else False)
        if empty.any():
            self.notes.append(f"{int(empty.sum())} sweep point(s) had no successful replication and are left out")
        return df[~empty].reset_index(drop=True)

    @property
    def parameters(self) -> list[str]:
        """Swept parameter paths, in the sweep's order (the column names in both tables)."""
        return [str(p["path"]) for p in self.spec["parameters"]]

    @property
    def platforms(self) -> list[str]:
        return list(dict.fromkeys(self.summary["platform"]))

    @property
    def metrics(self) -> list[str]:
        """Metrics with a mean column in the summary table."""
        return [c[:-5] for c in self.summary.columns if c.endswith("_mean")]

    @property
    def scenario_file(self) -> Path | None:
        f = self.spec.get("scenario")
        return Path(f) if f and Path(f).exists() else None

    @cached_property
    def scenario(self) -> dict:
        """The base scenario as plain data: ``scenario.json`` in the sweep directory when present, else its
        YAML as it reads now (noted: it may have changed since the sweep ran); else empty."""
        saved = self.path / "scenario.json"
        if saved.exists():
            return _read_json(saved, "the sweep's base scenario")
        f = self.scenario_file
        if f is None:
            self.notes.append(f"scenario file {self.spec.get('scenario')!r} not found from here; not described")
            return {}
        self.notes.append(f"scenario described from {f} as it reads now (the sweep directory holds no copy); "
                          f"platforms in the results: {', '.join(self.platforms)}")
        try:
            from infersim.validate import load_scenario

            return json.loads(load_scenario(f).model_dump_json())
        except InfersimError as exc:
            self.notes.append(f"scenario {f} no longer loads ({str(exc).splitlines()[0]}); not described")
            return {}

    @property
    def provenance(self) -> str:
        """The provenance line of this sweep's charts: base scenario and seed, duration, replications."""
        sp, sc = self.spec, self.scenario
        dur = sc.get("duration")
        for p in sp.get("parameters", []):
            if p.get("path") == "duration" and len(p.get("values", [])) == 1:
                dur = p["values"][0]
        seed = sc.get("seed")
        swept_seed = any(p.get("path") == "seed" for p in sp.get("parameters", []))
        extra = (f"sweep of {sp.get('points', '?')} point(s) x {sp.get('replications', '?')} replication(s)"
                 + ("; seed swept" if swept_seed else "; replication r > 0 draws its own seed from the base seed"))
        return provenance_line(sp.get("scenario_name") or sc.get("name") or self.path.name,
                               seed if not swept_seed else "swept", dur, sc.get("warmup"), extra)

    def check_metric(self, metric: str) -> str:
        """``metric`` if the sweep has it; else raise listing the ones it has."""
        have = self.metrics
        if metric not in have:
            raise InfersimError(f"{self.path}: no metric '{metric}' in the sweep{suggest(metric, have)} "
                                f"(has: {', '.join(have)})")
        return metric


def open_results(path: str | Path) -> RunDir | SweepDir:
    """The run or sweep directory at ``path`` (a sweep when it holds ``sweep.json``); raises naming it."""
    p = Path(path)
    if not p.exists():
        raise InfersimError(f"{p}: no such results directory (expected the --out directory of "
                            f"'infersim run' or 'infersim sweep')")
    if not p.is_dir():
        raise InfersimError(f"{p}: not a directory (expected the --out directory of 'infersim run' or "
                            f"'infersim sweep')")
    if (p / SWEEP_MARKER).exists():
        return SweepDir(p)
    if (p / RUN_MARKER).exists():
        return RunDir(p)
    raise InfersimError(f"{p}: not a results directory: expected {RUN_MARKER} (from 'infersim run --out') "
                        f"or {SWEEP_MARKER} (from 'infersim sweep --out')")


def finite(values) -> np.ndarray:
    """Float array with the non-finite entries removed."""
    a = np.asarray(values, dtype=float)
    return a[np.isfinite(a)]
