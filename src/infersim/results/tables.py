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
from infersim.results.summary import summarize


@dataclass
class Results:
    scenario: object
    requests: pd.DataFrame
    timeline: pd.DataFrame
    summary: pd.DataFrame
    streams: pd.DataFrame
    meta: dict = field(default_factory=dict)
    itl_hist: dict = field(default_factory=dict)
    fleet: pd.DataFrame = field(default_factory=pd.DataFrame)  # autoscaled deployments over time
    replica_log: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per autoscaled replica
    deployments: pd.DataFrame = field(default_factory=pd.DataFrame)  # a row per platform x deployment
    customers: pd.DataFrame = field(default_factory=pd.DataFrame)  # a row per platform x customer

    @classmethod
    def build(cls, sc, reqs, runs) -> Results:
        reqs = RequestColumns.of(reqs)  # stream codes and int32 token counts, shared by every platform's rows
        frames, tls, rows, srows = [], [], [], []
        fleets, logs, drows, crows = [], [], [], []
        price_sources: dict[str, str] = {}
        slos = {s.name: s.slo.model_dump() for s in sc.workload.streams}
        window = sc.duration - sc.warmup
        itl = {}
        for run in runs:
            rec = run.recorder
            df = _platform_frame(run, reqs)
            frames.append(df)
            tl = run.timeline.copy()
            tl.insert(0, "platform", run.name)
            tls.append(tl)
            # summarize() copies the rows it keeps (finished, started): hand it only the columns it reads,
            # and cut the window (and each stream) only when it is not every row
            narrow = df[list(SUMMARY_COLUMNS)]
            arrival = df["arrival_s"].to_numpy()
            in_win = (arrival >= sc.warmup) & (arrival < sc.duration)
            win = narrow if in_win.all() else narrow[in_win]
            del narrow, arrival, in_win
            row = {"platform": run.name, "kind": run.kind}
            row.update(summarize(win, window_s=window, slos=slos, itl_hist=rec.itl_hist,
                                 timeline=run.timeline, warmup_s=sc.warmup))
            if run.setups:
                row["replicas"] = int(sum(run.replicas_per_deployment))
                row["gpus"] = int(sum(n * s.config.gpus for n, s in zip(run.replicas_per_deployment, run.setups,
                                                                        strict=True)))
            row["sim_end_s"] = run.end_s
            row.update(fleet_summary(run.fleet, run.fleet_stats))
            row.update(run.summary_extra)
            price_src = row.pop("price_source", None)  # a citation, kept in meta (the summary stays numeric)
            if price_src is not None:
                price_sources[run.name] = price_src
            drows.extend({"platform": run.name, **d} for d in run.deployment_rows)
            for part, out in ((run.fleet, fleets), (run.replica_log, logs)):
                if len(part):
                    out.append(part.assign(platform=run.name)[["platform", *part.columns]])
            rows.append(row)
            crows.extend(customer_rows(sc, row, df, win, slos))
            itl[run.name] = rec.itl_hist
            for sname in reqs.stream_names:
                mine = (win["stream"] == sname).to_numpy()
                w = win if mine.all() else win[mine]
                srow = {"platform": run.name, "stream": sname}
                srow.update(summarize(w, window_s=window, slos=slos))
                srows.append(srow)
        extra_cols = list(dict.fromkeys(c for r in runs for c in r.request_columns))
        frames = [f.assign(**{c: np.nan for c in extra_cols if c not in f.columns}) for f in frames]
        requests = _concat_categorical(frames)
        timeline = pd.concat(tls, ignore_index=True) if tls else pd.DataFrame()
        meta = {"scenario": sc.name, "seed": sc.seed, "duration_s": sc.duration, "warmup_s": sc.warmup,
                "requests_generated": len(reqs)}
        if price_sources:
            meta["price_sources"] = price_sources
        return cls(sc, requests, timeline, pd.DataFrame(rows), pd.DataFrame(srows), meta, itl,
                   pd.concat(fleets, ignore_index=True) if fleets else pd.DataFrame(),
                   pd.concat(logs, ignore_index=True) if logs else pd.DataFrame(), pd.DataFrame(drows),
                   pd.DataFrame(crows))

    def save(self, out_dir: str | Path) -> Path:
        """Write summary.json, requests.parquet, timeline.parquet, streams.csv and scenario.json."""
        out = Path(out_dir)
        tmp = temp_dir_for(out)
        try:
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
            raise
        return out


# the columns of the requests table that ``infersim.results.summary.summarize`` reads
SUMMARY_COLUMNS = ("stream", "outcome", "ttft_s", "tpot_s", "e2e_s", "input_tokens", "output_tokens",
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


def _concat_categorical(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-platform tables keeping categorical columns categorical (union of categories)."""
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    from pandas.api.types import union_categoricals

    out = {}
    for col in frames[0].columns:
        parts = [f[col] for f in frames]
        if isinstance(parts[0].dtype, pd.CategoricalDtype):
            out[col] = union_categoricals([p.array for p in parts])
        else:
            out[col] = np.concatenate([p.to_numpy() for p in parts])
    return pd.DataFrame(out)


def _records(df: pd.DataFrame) -> list[dict]:
    recs = df.to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in recs]


