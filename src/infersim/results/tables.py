"""``Results``: the run's tables as DataFrames, and writing them to an output directory.

Tables: ``requests`` (a row per platform x request), ``timeline`` (sampled per replica), ``summary``
(a row per platform), ``streams`` (a row per platform x stream), and for autoscaled deployments ``fleet``
(sampled per deployment: replicas by state, queue, cost; ``fleet.parquet``) and ``replica_log`` (a row per
replica's life; ``replicas.parquet``), see ``infersim.fleet.collect``; ``deployments`` (a row per platform x
deployment: traffic share, economics; ``deployments.csv``), ``customers`` (a row per platform x customer when
the workload names customers: revenue, cost share, margin, SLO; ``customers.csv``, see
``infersim.results.customers``). Writing is atomic: files go to a
temporary directory first and are moved into place only when all of them were written.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from infersim.core.fileio import FILE_MODE, json_default, replace_dir, temp_dir_for
from infersim.engine.recorder import FINISHED, OUTCOMES, REASONS
from infersim.results.customers import customer_rows
from infersim.results.fleet_summary import fleet_summary
from infersim.results.part import PlatformPart
from infersim.results.spilled import SpilledRequests, concat_categorical, write_parquet
from infersim.results.summary import against_baseline, run_rates, summarize

# the threshold above which a run's requests table stays on disk: ``infersim.workload.footprint.SPILL_MIN_ROWS``;
# the table on disk is ``infersim.results.spilled``


@dataclass
class Results:
    """A run's tables. ``requests`` is a DataFrame, except in a run above ``footprint.SPILL_MIN_ROWS`` rows,
    where the table lives on disk (``spilled``: Parquet parts until ``save``, then the saved ``requests.parquet``) and
    reading ``requests`` loads it whole each time: code that needs a few columns of a large run should call
    ``read_requests(columns)``."""

    scenario: object
    requests: pd.DataFrame | None = field(repr=False)
    timeline: pd.DataFrame
    summary: pd.DataFrame
    streams: pd.DataFrame
    meta: dict = field(default_factory=dict)
    itl_hist: dict = field(default_factory=dict)
    fleet: pd.DataFrame = field(default_factory=pd.DataFrame)  # autoscaled deployments over time
    replica_log: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per autoscaled replica
    deployments: pd.DataFrame = field(default_factory=pd.DataFrame)  # a row per platform x deployment
    customers: pd.DataFrame = field(default_factory=pd.DataFrame)  # a row per platform x customer
    spilled: SpilledRequests | None = None  # the requests table on disk (large runs), else None

    def __post_init__(self):
        if self.spilled is not None:  # no attribute: ``requests`` resolves through __getattr__, lazily
            self.__dict__.pop("requests", None)

    def __getattr__(self, name: str):
        spilled = self.__dict__.get("spilled")
        if name == "requests" and spilled is not None:
            return spilled.read()
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def read_requests(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The requests table, or only ``columns`` of it (read from disk when the run spilled it)."""
        if self.spilled is not None:
            return self.spilled.read(columns)
        return self.requests if columns is None else self.requests[list(columns)]

    @property
    def request_rows(self) -> int:
        """Rows of the requests table (without reading it when it is on disk)."""
        return self.spilled.n_rows if self.spilled is not None else len(self.requests)

    @classmethod
    def build(cls, sc, reqs, runs) -> Results:
        """The results of ``runs`` (each a ``PlatformRun``, or a ``PlatformPart`` already made from one)."""
        reqs = RequestColumns.of(reqs)  # stream codes and int32 token counts, shared by every platform's rows
        parts = [r if isinstance(r, PlatformPart) else platform_part(sc, reqs, r) for r in runs]
        return cls.assemble(sc, len(reqs), parts)

    @classmethod
    def assemble(cls, sc, n_requests: int, parts: list[PlatformPart], staging: Path | None = None) -> Results:
        """The results from every platform's part, in platform order. Parts hold their rows in memory
        (``frame``) or on disk (``path``, all of them then, under ``staging``, which the results then own)."""
        rows = [p.row for p in parts]
        against_baseline(rows, sc.baseline)
        price_sources = {p.name: p.price_source for p in parts if p.price_source is not None}
        extra_cols = list(dict.fromkeys(c for p in parts for c in p.request_columns))
        spilled = None
        if parts and all(p.path is not None for p in parts):
            requests = None
            spilled = SpilledRequests(parts, extra_cols, staging)
        else:
            frames = [p.frame.assign(**{c: np.nan for c in extra_cols if c not in p.frame.columns})
                      for p in parts]
            for p in parts:
                p.frame = None
            requests = concat_categorical(frames)
            del frames
        tls = [p.timeline for p in parts]
        timeline = pd.concat(tls, ignore_index=True) if tls else pd.DataFrame()
        fleets = [p.fleet for p in parts if p.fleet is not None]
        logs = [p.replica_log for p in parts if p.replica_log is not None]
        meta = {"scenario": sc.name, "seed": sc.seed, "duration_s": sc.duration, "warmup_s": sc.warmup,
                "requests_generated": n_requests, "baseline": sc.baseline,
                "scale": sc.workload.scale.model_dump() if sc.workload.scale else None}
        if price_sources:
            meta["price_sources"] = price_sources
        return cls(sc, requests, timeline, pd.DataFrame(rows),
                   pd.DataFrame([r for p in parts for r in p.stream_rows]), meta,
                   {p.name: p.itl_hist for p in parts},
                   pd.concat(fleets, ignore_index=True) if fleets else pd.DataFrame(),
                   pd.concat(logs, ignore_index=True) if logs else pd.DataFrame(),
                   pd.DataFrame([r for p in parts for r in p.deployment_rows]),
                   pd.DataFrame([r for p in parts for r in p.customer_rows]), spilled)

    def save(self, out_dir: str | Path) -> Path:
        """Write summary.json, requests.parquet, timeline.parquet, streams.csv and scenario.json.

        A spilled requests table is streamed from its parts into requests.parquet (row group by row group);
        the parts are removed once the directory is in place, or when writing fails."""
        out = Path(out_dir)
        tmp = temp_dir_for(out)
        try:
            if self.spilled is not None:
                self.spilled.write(tmp / "requests.parquet")
            else:
                self.requests.to_parquet(tmp / "requests.parquet", index=False)
            self.timeline.to_parquet(tmp / "timeline.parquet", index=False)
            if len(self.fleet):
                self.fleet.to_parquet(tmp / "fleet.parquet", index=False)
            if len(self.replica_log):
                self.replica_log.to_parquet(tmp / "replicas.parquet", index=False)
            self.summary.to_csv(tmp / "summary.csv", index=False)
            self.streams.to_csv(tmp / "streams.csv", index=False)
            if len(self.deployments):
                self.deployments.to_csv(tmp / "deployments.csv", index=False)
            if len(self.customers):
                self.customers.to_csv(tmp / "customers.csv", index=False)
            doc = {"meta": self.meta, "platforms": _records(self.summary), "streams": _records(self.streams),
                   "deployments": _records(self.deployments)}
            if len(self.customers):
                doc["customers"] = _records(self.customers)
            (tmp / "summary.json").write_text(json.dumps(doc, indent=2, default=json_default))
            (tmp / "scenario.json").write_text(self.scenario.model_dump_json(indent=2))
            np.savez_compressed(tmp / "itl_hist.npz", **{k: v for k, v in self.itl_hist.items()})
            for f in tmp.iterdir():
                os.chmod(f, FILE_MODE)
            replace_dir(tmp, out, marker="summary.json")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if self.spilled is not None:
                self.spilled.discard()
            raise
        if self.spilled is not None:
            self.spilled.saved_as(out / "requests.parquet")
        return out


def platform_part(sc, reqs, run, *, spill_to: str | Path | None = None) -> PlatformPart:
    """One platform's rows of every table from its ``PlatformRun`` (``reqs``: the workload or its
    ``RequestColumns``). With ``spill_to``, its requests rows are written there as Parquet and not kept."""
    reqs = RequestColumns.of(reqs)
    slos = {s.name: s.slo.model_dump() for s in sc.workload.streams}
    window = sc.duration - sc.warmup
    rec = run.recorder
    df = _platform_frame(run, reqs)
    tl = run.timeline.copy()
    tl.insert(0, "platform", run.name)
    # summarize() reads each column under the window's (and a stream's) mask, without copying rows
    arrival = df["arrival_s"].to_numpy()
    in_win = (arrival >= sc.warmup) & (arrival < sc.duration)
    all_in = bool(in_win.all())
    row = {"platform": run.name, "kind": run.kind}
    # the reconciliation terms, each counted from its own mask over every arrived request:
    # finished + rejected + in flight (+ lost) + warm-up + after the window = arrivals
    row["arrivals"] = int((~np.isnan(arrival)).sum())
    row["warmup_excluded"] = int((arrival < sc.warmup).sum())
    row["arrived_after_window"] = int((arrival >= sc.duration).sum())
    del arrival
    row.update(summarize(df, window_s=window, slos=slos, itl_hist=rec.itl_hist, timeline=run.timeline,
                         warmup_s=sc.warmup, rows=None if all_in else in_win))
    if run.setups:
        row["replicas"] = int(sum(run.replicas_per_deployment))
        row["gpus"] = int(sum(n * s.config.gpus for n, s in zip(run.replicas_per_deployment, run.setups,
                                                                strict=True)))
    row["sim_end_s"] = run.end_s
    row.update(fleet_summary(run.fleet, run.fleet_stats))
    row.update(run.summary_extra)
    price_src = row.pop("price_source", None)  # a citation, kept in meta (the summary stays numeric)
    fleet, log = ((part.assign(platform=run.name)[["platform", *part.columns]] if len(part) else None)
                  for part in (run.fleet, run.replica_log))
    scale = sc.workload.scale
    row.update(run_rates(row, duration_s=sc.duration, scale_fraction=scale.fraction if scale else None))
    crows = []
    if sc.workload.customers:
        narrow = df[list(SUMMARY_COLUMNS)]
        crows = customer_rows(sc, row, df, narrow if all_in else narrow[in_win], slos)
        del narrow
    srows = []
    for sname in reqs.stream_names:
        mine = (df["stream"] == sname).to_numpy()
        if not all_in:
            mine = mine & in_win
        srow = {"platform": run.name, "stream": sname}
        srow.update(summarize(df, window_s=window, slos=slos, rows=None if mine.all() else mine))
        srows.append(srow)
    del in_win
    part = PlatformPart(run.name, row, srows, crows, [{"platform": run.name, **d} for d in run.deployment_rows],
                        tl, fleet, log, rec.itl_hist, price_src, tuple(run.request_columns),
                        tuple(df["deployment"].cat.categories), len(df))
    if spill_to is None:
        part.frame = df
    else:
        write_parquet(df, Path(spill_to))
        part.path = str(spill_to)
    return part


# the columns of the requests table that ``infersim.results.summary.summarize`` reads
SUMMARY_COLUMNS = ("stream", "outcome", "reason", "ttft_s", "tpot_s", "e2e_s", "input_tokens", "output_tokens",
                   "cached_tokens", "preemptions")


@dataclass(frozen=True, eq=False)
class RequestColumns:
    """The part of the workload the requests table needs: stream codes and int32 token counts.

    ``simulate`` swaps the drawn ``Requests`` for this once every platform ran, so the workload's other
    columns (difficulty, prefix keys and blocks, int64 token counts) are freed before the table is built.
    """

    stream: np.ndarray  # int16 codes into stream_names
    stream_names: tuple[str, ...]
    input_tokens: np.ndarray  # int32
    output_tokens: np.ndarray  # int32

    @classmethod
    def of(cls, reqs) -> RequestColumns:
        if isinstance(reqs, RequestColumns):
            return reqs
        return cls(reqs.stream, tuple(reqs.stream_names), reqs.input_tokens.astype(np.int32),
                   reqs.output_tokens.astype(np.int32))

    def __len__(self) -> int:
        return len(self.stream)


def _platform_frame(run, cols: RequestColumns) -> pd.DataFrame:
    """One platform's rows of the requests table (requests that arrived), sharing the recorder's arrays.

    Built column by column without intermediate copies: the recorder's columns go in as they are
    (``copy=False``), the derived latencies are computed in place, and rows that never arrived
    (closed-loop rows not sent) are cut from each column once, only if there are any.
    """
    rec = run.recorder
    n = len(cols)
    arrival, first, finish = rec.arrival_s, rec.first_token_s, rec.finish_s
    out_tok = cols.output_tokens
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = finish - first
        tpot /= out_tok - 1
    tpot[out_tok <= 1] = np.nan
    e2e = finish - arrival
    e2e[rec.outcome != FINISHED] = np.nan
    dep_names = list(dict.fromkeys(run.deployments)) + [""]
    dep_codes = rec.deployment.astype(np.int16)
    dep_codes[dep_codes < 0] = len(dep_names) - 1
    data = {
        "platform": np.zeros(n, np.int8),
        "request_id": np.arange(n, dtype=np.int64),
        "stream": cols.stream.astype(np.int16, copy=False),
        "arrival_s": arrival,
        "first_token_s": first,
        "finish_s": finish,
        "input_tokens": cols.input_tokens.astype(np.int32, copy=False),
        "output_tokens": out_tok.astype(np.int32, copy=False),
        "cached_tokens": rec.cached_tokens,
        "deployment": dep_codes,
        "replica": rec.replica,
        "preemptions": rec.preemptions,
        "outcome": rec.outcome.astype(np.int8, copy=False),
        "reason": rec.reason.astype(np.int8, copy=False),
        "ttft_s": first - arrival,
        "tpot_s": tpot,
        "e2e_s": e2e,
    }
    del tpot, e2e, dep_codes
    for col, values in run.request_columns.items():
        data[col] = np.asarray(values)
    keep = ~np.isnan(arrival)
    if not keep.all():
        for col, values in data.items():
            data[col] = values[keep]
    categories = {"platform": [run.name], "stream": list(cols.stream_names), "deployment": dep_names,
                  "outcome": list(OUTCOMES), "reason": list(REASONS)}
    for col, cats in categories.items():
        data[col] = pd.Categorical.from_codes(data[col], cats)
    return pd.DataFrame(data, copy=False)


def _records(df: pd.DataFrame) -> list[dict]:
    recs = df.to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in recs]


