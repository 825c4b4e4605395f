"""Refit the shipped engine profiles (vLLM, SGLang, TensorRT-LLM) and write them.

    python benchmarks/calibrate_profiles.py [--engines vllm sglang trtllm] [--per-group 8] [--max-nfev 25]
                                            [--shared ../shared] [--check] [--processes 1]

Data: ``shared/calibration/engine_latency.csv`` (579 closed-loop H100 points: mean TTFT and mean ITL for
vLLM 0.12, SGLang 0.5 and TensorRT-LLM 1.0) and, for ``trtllm``, the TensorRT-LLM max-throughput table in
``serving_benchmarks.csv`` (20 rows, predicted with the analytic steady state, which is exact enough for a
saturation point and costs microseconds).

Method (per engine): every latency row is replayed by the simulator (one replica, a closed loop of
``concurrency`` clients; ``infersim.calibrate.runner``) and scipy's least_squares moves the parameters of
:data:`FIT_NAMES` within physical bounds to minimise a robust (soft-L1) loss of the log ratio
predicted/measured (ITL weight 1, TTFT weight 0.5; throughput rows weight 1). To keep a fit within
minutes on a 2-core machine it runs on a stratified subsample: per (engine, model, TP) group, at most
``--per-group`` rows spread evenly over (concurrency, input, output); each row simulates 4 rounds of its
clients (at least 32 requests, at most 512). The fitted profile is then evaluated on *every* row at the
default request count (8 rounds), and the YAML records each row's prediction, whether it was in the fit
subsample, and the median/worst error per (model, TP).

``--check`` evaluates the shipped profiles on every row and prints the summary without fitting.
Timings are printed and recorded in the profile.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from infersim.calibrate import throughput
from infersim.calibrate.fit import FitResult, error_table, fit_rows, predict, summarize_errors
from infersim.calibrate.measured import MeasuredRow, read_measured
from infersim.perf.params import PerfParams
from infersim.perf.profiles import shipped_profile, shipped_profile_doc

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "src" / "infersim" / "perf" / "profiles"

FIT_NAMES = ("compute_eff", "compute_half_tokens", "attn_eff", "memory_eff", "step_overhead_s",
             "per_seq_overhead_s", "allreduce_latency_s", "schedule_delay_s", "schedule_delay_per_seq_s", "api_serial_s")
START = PerfParams(compute_eff=0.5, compute_half_tokens=128.0, attn_eff=0.3, memory_eff=0.8,
                   step_overhead_s=0.002, per_seq_overhead_s=1e-5, allreduce_latency_s=1e-5, comm_eff=0.7,
                   schedule_delay_s=0.01, schedule_delay_per_seq_s=2e-4, low_precision_compute_scale=0.7,
                   api_serial_s=2e-3)
#: Where each engine's fit starts: the simulation objective is piecewise smooth and has several local minima
#: (e.g. clustered clients + very fast prefill vs spread clients + realistic prefill), so each fit starts from
#: the best point found by earlier, wider searches with this script (2026-11-30).
STARTS: dict[str, dict[str, float]] = {
    "sglang": {"compute_eff": 0.691, "compute_half_tokens": 210.0, "attn_eff": 0.262, "memory_eff": 0.95, "step_overhead_s": 0.00228, "per_seq_overhead_s": 3.93e-05, "allreduce_latency_s": 1.09e-05, "schedule_delay_s": 0.0936, "schedule_delay_per_seq_s": 3.78e-07, "api_serial_s": 9.28e-05},
    "vllm": {"compute_eff": 0.43428, "compute_half_tokens": 137.41, "attn_eff": 0.13116, "memory_eff": 0.91535, "step_overhead_s": 0.0040065, "per_seq_overhead_s": 1.2316e-05, "allreduce_latency_s": 1.1411e-05, "schedule_delay_s": 0.044512, "schedule_delay_per_seq_s": 0.00069771, "low_precision_compute_scale": 1.0, "api_serial_s": 0.0},
    "trtllm": {"compute_eff": 0.77192, "compute_half_tokens": 158.78, "attn_eff": 0.12747, "memory_eff": 0.72333, "step_overhead_s": 0.00015099, "per_seq_overhead_s": 8.8783e-06, "allreduce_latency_s": 3.5902e-05, "schedule_delay_s": 0.006795, "schedule_delay_per_seq_s": 0.00022939, "low_precision_compute_scale": 0.75683, "api_serial_s": 0.0022061},
}
#: Why an engine's shipped profile is its STARTS point evaluated (``--evaluate-start``) rather than polished again.
NO_POLISH: dict[str, dict] = {
    "vllm": {"evaluations": 123, "seconds": 614, "held": ("low_precision_compute_scale", "api_serial_s"),
             "note": "The parameters are the end point of a 123-evaluation, 614-s search (this script, 2026-11-30, "
                     "before low_precision_compute_scale and api_serial_s existed: they stay at 1 and 0); refits from "
                     "there with those two parameters free did not improve the all-row errors (ITL 7.2 -> 8.3 %, "
                     "TTFT 35 -> 38 %), so it is shipped as found."},
    "trtllm": {"evaluations": 234, "seconds": 239, "held": (),
               "note": "The parameters are the end point of a 234-evaluation, 239-s search from a wider start (this "
                       "script, 2026-11-30, table weight 3); polishing it again on the 64-row subsample over-fitted the "
                       "subsample (all rows: ITL 10.3 -> 10.6 %, throughput-table worst row 21 -> 27 %), so it is "
                       "shipped as found."},
}
#: Weight of each TensorRT-LLM throughput-table row against a latency metric (ITL weighs 1): the table is the
#: only large-batch evidence, 20 rows against ~130 latency residuals.
THROUGHPUT_WEIGHT = 3.0
#: Scheduling structure per engine (not fitted: discrete choices, from the engines' documented defaults).
STRUCTURE = {
    "vllm": {"prefill_priority": 0.0, "mixed_prefill_tokens": 0.0},
    "sglang": {"prefill_priority": 1.0, "mixed_prefill_tokens": 0.0},
    "trtllm": {"prefill_priority": 0.0, "mixed_prefill_tokens": 0.0},
}
#: How the benchmark client started its clients (``runner.drive``): not recorded in engine_latency.csv, so
#: chosen per data source (engine, engine_version) by which describes the rows better (both fits' errors are
#: in the profile's ``client_start_note``); ``*`` is the engine's default. Override with ``--client-start``.
CLIENT_START: dict[str, dict[str, str]] = {
    "vllm": {"*": "staggered"},
    "sglang": {"*": "burst"},
    "trtllm": {"*": "burst"},
}


def client_start_for(row: MeasuredRow, overrides: dict[str, str]) -> str:
    """``ENGINE=mode`` or ``ENGINE@VERSION=mode`` overrides first, then :data:`CLIENT_START`."""
    for key in (f"{row.engine}@{row.engine_version}", row.engine):
        if key in overrides:
            return overrides[key]
    table = CLIENT_START[row.engine]
    return table.get(row.engine_version, table["*"])
#: Engine versions a profile is fitted on; rows of other versions (a handful per engine) are simulated and
#: reported as checks, not fitted.
FIT_VERSIONS = {"vllm": ("0.12.0", "not recorded"), "sglang": ("0.5.1.post1",), "trtllm": ("1.0.0rc3",)}
VERSIONS = {"vllm": "0.12", "sglang": "0.5", "trtllm": "1.0"}
TITLES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM"}
STRUCTURE_NOTES = {
    "vllm": "decodes join every step and prompt chunks fill the rest of the 8192-token budget (vLLM V1 chunked "
            "prefill)",
    "sglang": "prefill priority: while prompts wait, a step runs prompt chunks only and the running decodes "
              "pause (SGLang's default scheduler without --enable-mixed-chunk)",
    "trtllm": "in-flight batching: decodes join every step, prompt chunks fill the rest of max_num_tokens 8192",
}


def fit_requests(row: MeasuredRow) -> int:
    """Requests simulated per row during the fit: 4 rounds of the clients, 32..512."""
    c = row.concurrency or 16
    return int(min(max(4 * c, 32), 512))


def stratified(rows: list[MeasuredRow], per_group: int) -> list[MeasuredRow]:
    """At most ``per_group`` rows per (engine, model, TP), spread evenly over (concurrency, input, output)."""
    groups: dict[tuple, list[MeasuredRow]] = {}
    for r in rows:
        groups.setdefault(r.group, []).append(r)
    out = []
    for key in sorted(groups):
        g = sorted(groups[key], key=lambda r: (r.input_tokens, r.output_tokens, r.concurrency or 0, r.row))
        if len(g) <= per_group:
            out.extend(g)
            continue
        idx = np.unique(np.round(np.linspace(0, len(g) - 1, per_group)).astype(int))
        out.extend(g[i] for i in idx)
    return sorted(out, key=lambda r: r.row)


def throughput_residuals(rows: list[throughput.ThroughputRow], weight: float = 1.0):
    def extra(p: PerfParams) -> np.ndarray:
        return np.array([weight * math.log(throughput.predict(r, p) / r.measured_tok_s) for r in rows])
    return extra


def row_entries(table: pd.DataFrame, fit_rows_set: set[int], by_row: dict[int, MeasuredRow]) -> list[dict]:
    """One compact entry per CSV row (both metrics)."""
    out = []
    for row, g in table.groupby("row", sort=True):
        first = g.iloc[0]
        m = by_row[int(row)]
        e: dict = {"row": int(row), "model": str(first["model"]), "tp": int(first["tp"]),
                   "precision": str(first["precision"]), "version": m.engine_version,
                   "input": int(first["input_tokens"]), "output": int(first["output_tokens"]),
                   "concurrency": int(first["concurrency"]), "clients": m.client_start,
                   "in_fit": int(row) in fit_rows_set}
        for r in g.itertuples():
            short = r.metric.replace("_mean_ms", "")
            e[f"{short}_ms"] = float(r.measured)
            e[f"{short}_pred_ms"] = round(float(r.predicted), 2) if r.predicted == r.predicted else None
            e[f"{short}_err_pct"] = round(float(r.error_pct), 1) if r.error_pct == r.error_pct else None
        out.append(e)
    return out


def dump_profile(doc: dict) -> str:
    """YAML with one line per calibration row (flow mappings), block style elsewhere."""
    rows = doc.pop("rows", None)
    text = yaml.safe_dump(doc, sort_keys=False, width=110)
    if rows is not None:
        text += "rows:\n" + "".join(
            "- " + yaml.safe_dump(r, default_flow_style=True, sort_keys=False, width=10_000).strip() + "\n"
            for r in rows)
    return text


def group_summary(table: pd.DataFrame) -> list[dict]:
    summ = summarize_errors(table, by=("model", "tp"))
    out = []
    for (model, tp), g in summ.groupby(["model", "tp"], sort=True):
        e: dict = {"model": str(model), "tp": int(tp), "rows": int(g["n"].max())}
        for r in g.itertuples():
            short = r.metric.replace("_mean_ms", "")
            e[f"{short}_median_abs_pct"] = round(float(r.median_abs_pct), 1)
            e[f"{short}_worst_abs_pct"] = round(float(r.worst_abs_pct), 1)
        out.append(e)
    return out


def run_engine(engine: str, rows: list[MeasuredRow], args, tput_rows) -> None:
    log = print
    mine = [replace(r, client_start=client_start_for(r, args.client_start)) for r in rows if r.engine == engine]
    sub = stratified([r for r in mine if r.engine_version in FIT_VERSIONS[engine]], args.per_group)
    sub_fit = [replace(r, num_requests=fit_requests(r)) for r in sub]
    extra = throughput_residuals(tput_rows, THROUGHPUT_WEIGHT) if engine == "trtllm" and tput_rows else None
    start = START.with_(**{**STARTS[engine], **STRUCTURE[engine], **args.fix})
    names = tuple(n for n in FIT_NAMES if n not in args.fix)
    if len({r.precision in ("bf16", "fp16", "int4") for r in mine}) > 1 or extra is not None:
        names += ("low_precision_compute_scale",)  # rows at 16- and 8-bit compute: identifiable
    else:  # all rows at one compute precision: keep the datasheet's 8-bit/16-bit ratio
        start = start.with_(low_precision_compute_scale=1.0)
    log(f"== {engine}: {len(mine)} rows, fitting on {len(sub)} "
        f"({sum(r.num_requests for r in sub_fit):,} simulated requests per evaluation)")
    t0 = time.time()
    if engine in args.evaluate_start:
        res = FitResult(start, names, math.nan, 0, True, "STARTS evaluated, not moved (--evaluate-start)")
    else:
        res = fit_rows(sub_fit, start, names, processes=args.processes, extra=extra, max_nfev=args.max_nfev,
                       log=None if args.quiet else (lambda s: print(s, flush=True)))
    t_fit = time.time() - t0
    polished_before = engine in args.evaluate_start and engine in NO_POLISH
    if polished_before:  # record the search that found the point
        np_ = NO_POLISH[engine]
        names = tuple(n for n in names if n not in np_["held"])
        t_fit = float(np_["seconds"])
        res = FitResult(res.params, names, res.cost, int(np_["evaluations"]), True, res.message)
    params = res.params
    log(f"   fit: {res.evaluations} evaluations in {t_fit:.0f}s ({res.message})")
    log("   params: " + ", ".join(f"{k}={v:.4g}" for k, v in params.as_dict().items()))
    t1 = time.time()
    table = error_table(predict(mine, params, processes=args.processes))
    t_eval = time.time() - t1
    summ = summarize_errors(table)
    log(summarize_errors(table, by=("model", "tp")).round(1).to_string(index=False))
    log(summ.round(1).to_string(index=False))
    overall = {r.metric.replace("_mean_ms", ""): (round(float(r.median_abs_pct), 1), round(float(r.worst_abs_pct), 1))
               for r in summ.itertuples()}
    doc: dict = {
        "engine": engine,
        "version": VERSIONS[engine],
        "fitted": dt.date.today().isoformat(),
        "method": (
            f"scipy least_squares (soft-L1 loss, f_scale 0.15) on log(predicted/measured) of mean ITL (weight 1) "
            f"and mean TTFT (weight 0.5), every row replayed by the simulator as a closed loop of its concurrency "
            f"on one replica (infersim.calibrate.runner; engine limits in ENGINE_DEFAULTS). Fitted on a "
            f"stratified subsample of at most {args.per_group} rows per (model, TP) at 4 rounds of clients; "
            f"errors below are for every row at 8 rounds. Scheduling: {STRUCTURE_NOTES[engine]}."
            + (f" Jointly with the TensorRT-LLM max-throughput table (analytic steady state, weight "
               f"{THROUGHPUT_WEIGHT:g} per row)."
               if extra is not None else "")
            + (f" {NO_POLISH[engine]['note']}" if polished_before else "")
            + (""
               if extra is not None else "")),
        "fitted_on": (f"shared/calibration/engine_latency.csv, {TITLES[engine]} rows ({len(mine)}; {len(sub)} in "
                      "the fit; NVIDIA aiconfigurator silicon_sample.csv @ 095f58a5)"
                      + ("; shared/calibration/serving_benchmarks.csv rows 1-20 (TensorRT-LLM perf-overview, "
                         "H100, FP8)" if extra is not None else "")),
        "params": {k: _round(v) for k, v in params.as_dict().items()},
        "fitted_params": list(names),
        "fit_versions": list(FIT_VERSIONS[engine]),
        "client_start_default": CLIENT_START[engine]["*"],
        "client_start": {v: client_start_for(next(r for r in mine if r.engine_version == v), args.client_start)
                         for v in sorted({r.engine_version for r in mine})},
        "kv_cache": shipped_profile_doc(engine)["kv_cache"],  # engine facts with their sources, not fitted: kept
        "fit_seconds": round(t_fit, 1),
        "fit_evaluations": res.evaluations,
        "median_abs_error_pct": {k: v[0] for k, v in overall.items()},
        "worst_abs_error_pct": {k: v[1] for k, v in overall.items()},
        "residuals_by_group": group_summary(table),
    }
    if extra is not None:
        err = throughput.errors(tput_rows, params)
        log(err.round(1).to_string(index=False))
        log(f"   throughput: median |error| {err.error_pct.abs().median():.1f}%, worst {err.error_pct.abs().max():.1f}%")
        doc["throughput_residuals"] = [
            {"row": int(r.row), "model": r.model, "tp": int(r.tp), "input": int(r.input), "output": int(r.output),
             "measured_tok_s": float(r.measured_tok_s), "predicted_tok_s": round(float(r.predicted_tok_s), 1),
             "error_pct": round(float(r.error_pct), 1)} for r in err.itertuples()]
        doc["throughput_median_abs_error_pct"] = round(float(err.error_pct.abs().median()), 1)
        doc["throughput_worst_abs_error_pct"] = round(float(err.error_pct.abs().max()), 1)
    doc["rows"] = row_entries(table, {r.row for r in sub}, {r.row: r for r in mine})
    log(f"   evaluation of all rows: {t_eval:.0f}s")
    out = Path(args.out_dir) / f"{engine}.yaml"
    header = (f"# {TITLES[engine]} engine profile, fitted by benchmarks/calibrate_profiles.py; do not edit by hand.\n"
              "# rows: engine_latency.csv data row numbers (1-based), measured/predicted mean TTFT and ITL.\n")
    out.write_text(header + dump_profile(doc))
    log(f"   wrote {out}")


def check(rows: list[MeasuredRow], engines, processes: int) -> None:
    for engine in engines:
        mine = [r for r in rows if r.engine == engine]
        t = time.time()
        table = error_table(predict(mine, shipped_profile(engine), processes=processes))
        print(f"== {engine}: {len(mine)} rows in {time.time() - t:.0f}s")
        print(summarize_errors(table, by=("model", "tp")).round(1).to_string(index=False))
        print(summarize_errors(table).round(1).to_string(index=False))
        doc = shipped_profile_doc(engine)
        print("   shipped median:", doc.get("median_abs_error_pct"))


def _round(v: float) -> float:
    if v == 0 or not math.isfinite(v):
        return float(v)
    return float(f"{v:.5g}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--engines", nargs="+", default=["vllm", "sglang", "trtllm"])
    ap.add_argument("--per-group", type=int, default=8)
    ap.add_argument("--max-nfev", type=int, default=25)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--out-dir", default=str(PROFILES), help="where to write the profiles (default: the package)")
    ap.add_argument("--client-start", nargs="*", default=[], metavar="ENGINE[@VERSION]=burst|staggered",
                    help="override how an engine's benchmark clients start (default: CLIENT_START)")
    ap.add_argument("--quiet", action="store_true", help="do not log every evaluation")
    ap.add_argument("--evaluate-start", nargs="*", default=[], metavar="ENGINE",
                    help="write these engines' profiles at their STARTS point without moving it (see NO_POLISH)")
    ap.add_argument("--fix", nargs="*", default=[], metavar="NAME=VALUE",
                    help="hold a parameter at a value instead of fitting it")
    args = ap.parse_args(argv)
    args.client_start = dict(kv.split("=", 1) for kv in args.client_start)
    args.fix = {k: float(v) for k, v in (kv.split("=", 1) for kv in args.fix)}
    cal = Path(args.shared) / "calibration"
    rows, problems = read_measured(cal / "engine_latency.csv")
    for p in problems:
        print(f"engine_latency.csv {p}", file=sys.stderr)
    if args.check:
        check(rows, args.engines, args.processes)
        return 0
    tput = throughput.trtllm_rows(cal / "serving_benchmarks.csv")
    t = time.time()
    for engine in args.engines:
        run_engine(engine, rows, args, tput)
    print(f"total {time.time() - t:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
