"""``Results``: the run's tables as DataFrames, and writing them to an output directory.

Tables: ``requests`` (a row per platform x request), ``timeline`` (sampled per replica), ``summary``
(a row per platform), ``streams`` (a row per platform x stream), and for autoscaled deployments ``fleet``
(sampled per deployment: replicas by state, queue, cost; ``fleet.parquet``) and ``replica_log`` (a row per
replica's life; ``replicas.parquet``), see ``infersim.fleet.collect``; ``deployments`` (a row per platform x
deployment: traffic share, economics; ``deployments.csv``). Writing is atomic: files go to a
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

from infersim.engine.recorder import OUTCOMES, REASONS
from infersim.fileio import FILE_MODE, json_default, replace_dir, temp_dir_for
from infersim.fleet.report import fleet_summary
from infersim.metrics.summary import summarize


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

    @classmethod
    def build(cls, sc, reqs, runs) -> Results:
        frames, tls, rows, srows = [], [], [], []
        fleets, logs, drows = [], [], []
        slos = {s.name: s.slo.model_dump() for s in sc.workload.streams}
        window = sc.duration - sc.warmup
        itl = {}
        for run in runs:
            rec = run.recorder
            arrival = rec.arrival_s
            first, finish = rec.first_token_s, rec.finish_s
            out_tok = reqs.output_tokens
            with np.errstate(invalid="ignore", divide="ignore"):
                tpot = np.where(out_tok > 1, (finish - first) / (out_tok - 1), np.nan)
            dep_names = list(dict.fromkeys(run.deployments)) + [""]
            dep_codes = np.where(rec.deployment >= 0, rec.deployment, len(dep_names) - 1)
            df = pd.DataFrame({
                "platform": pd.Categorical.from_codes(np.zeros(len(reqs), np.int8), [run.name]),
                "request_id": np.arange(len(reqs), dtype=np.int64),
                "stream": pd.Categorical.from_codes(reqs.stream.astype(np.int16), list(reqs.stream_names)),
                "arrival_s": arrival,
                "first_token_s": first,
                "finish_s": finish,
                "input_tokens": reqs.input_tokens.astype(np.int32),
                "output_tokens": out_tok.astype(np.int32),
                "cached_tokens": rec.cached_tokens,
                "deployment": pd.Categorical.from_codes(dep_codes.astype(np.int16), dep_names),
                "replica": rec.replica,
                "preemptions": rec.preemptions,
                "outcome": pd.Categorical.from_codes(rec.outcome.astype(np.int8), list(OUTCOMES)),
                "reason": pd.Categorical.from_codes(rec.reason.astype(np.int8), list(REASONS)),
                "ttft_s": first - arrival,
                "tpot_s": tpot,
                "e2e_s": np.where(rec.outcome == 1, finish - arrival, np.nan),
            })
            for col, values in run.request_columns.items():
                df[col] = values
            df = df[~np.isnan(df["arrival_s"].to_numpy())]
            frames.append(df)
            tl = run.timeline.copy()
            tl.insert(0, "platform", run.name)
            tls.append(tl)
            win = df[(df["arrival_s"] >= sc.warmup) & (df["arrival_s"] < sc.duration)]
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
            drows.extend({"platform": run.name, **d} for d in run.deployment_rows)
            for part, out in ((run.fleet, fleets), (run.replica_log, logs)):
                if len(part):
                    out.append(part.assign(platform=run.name)[["platform", *part.columns]])
            rows.append(row)
            itl[run.name] = rec.itl_hist
            for sname in reqs.stream_names:
                w = win[win["stream"] == sname]
                srow = {"platform": run.name, "stream": sname}
                srow.update(summarize(w, window_s=window, slos=slos))
                srows.append(srow)
        extra_cols = list(dict.fromkeys(c for r in runs for c in r.request_columns))
        frames = [f.assign(**{c: np.nan for c in extra_cols if c not in f.columns}) for f in frames]
        requests = _concat_categorical(frames)
        timeline = pd.concat(tls, ignore_index=True) if tls else pd.DataFrame()
        meta = {"scenario": sc.name, "seed": sc.seed, "duration_s": sc.duration, "warmup_s": sc.warmup,
                "requests_generated": len(reqs)}
        return cls(sc, requests, timeline, pd.DataFrame(rows), pd.DataFrame(srows), meta, itl,
                   pd.concat(fleets, ignore_index=True) if fleets else pd.DataFrame(),
                   pd.concat(logs, ignore_index=True) if logs else pd.DataFrame(), pd.DataFrame(drows))

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
            doc = {"meta": self.meta, "platforms": _records(self.summary), "streams": _records(self.streams),
                   "deployments": _records(self.deployments)}
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


