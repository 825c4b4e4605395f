"""Fit the engine profiles on every calibration source, then check them leave-one-source-out.

    python benchmarks/loso.py [--shared ../shared] [--max-nfev 30] [--loso-nfev 30] [--per-group 5]
                              [--processes 1] [--no-write] [--only SOURCE ...]

Sources (``loso_sources.py``): the aiconfigurator closed-loop runs per engine version, each TensorRT-LLM H100
throughput table, MLPerf v4.1 per submitter, the apex_plus vLLM 0.6 open-loop replays, and every ``source_id``
in ``data/calibration/*.csv``. For each engine the profile's fitted parameters (:data:`FIT_NAMES`; the rest are
physical priors, docs/model.md) are fitted on all of that engine's sources (``infersim.calibrate.fit``: every
latency row simulated by ``infersim.calibrate.runner``, throughput rows by the analytic steady state). Then for
every source: refit its engine without it (from the same priors, never from the all-source fit) and predict
it. The held-out errors per source, engine and metric go into docs/validation.md (between the ``loso``
markers) and ``src/infersim/catalog/data/validation_bands.csv``; the all-source fits are written to the shipped
profiles.

Metrics: TTFT (mean), ITL (mean ITL or TPOT), E2E (mean), throughput (saturation output tokens/s). MLPerf
Server rows are held out always (never fitted): the harness's batching policy is not the engine's.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loso_sources import (  # noqa: E402
    ENGINES,
    ROOT,
    Source,
    load_sources,
    summarise,
)

from infersim.calibrate import throughput  # noqa: E402
from infersim.calibrate.fit import predict  # noqa: E402
from infersim.perf.kernels import gemm_prior  # noqa: E402
from infersim.perf.params import PerfParams  # noqa: E402

METRIC = {"ttft_mean_ms": "ttft", "itl_mean_ms": "itl", "e2e_mean_ms": "e2e", "output_tok_s": "throughput"}
WEIGHTS = {"itl_mean_ms": 1.0, "ttft_mean_ms": 0.5, "e2e_mean_ms": 0.5}
#: Fitted per engine, in the order a fit with few residuals keeps them (two residuals per parameter at least):
#: what differs between engines and versions (CPU time per step and per sequence, the API server's delays,
#: attention kernels, the FP8 GEMM path, the all-reduce latency in a step). ``schedule_delay_per_seq_s`` is not among
#: them: the closed-loop TTFT growth with clients is the harness's (:func:`client_delay_ms`), and open-loop runs
#: at load do not show it (docs/validation.md). The GEMM and weight-streaming efficiencies are NOT fitted: they
#: are measured kernels (``perf.kernels.gemm_prior``, ``benchmarks/kernel_priors.py``), the same for every engine.
FIT_NAMES = ("step_overhead_s", "schedule_delay_s", "attn_eff", "per_seq_overhead_s", "allreduce_latency_s",
             "api_serial_s", "low_precision_compute_scale")
#: Physical priors every fit starts from (docs/model.md: where each comes from). compute_eff = memory_eff = 1:
#: the engine's GEMMs and weight streaming run at the measured kernels' rates (kernel_priors.csv);
#: compute_half_tokens: the measured H100 GEMM ramp (the hardware most rows run on); moe_half_tokens: the same
#: ramp for the grouped expert GEMMs in tokens per expert (ASSUMPTION: the same tile under-fill as a dense GEMM
#: of that M; fitting it let it run to 0 against the FP4 scale, docs/validation.md); attn_eff in [0.2, 0.9]
#: (calibrate.fit.BOUNDS: FlashAttention's physical range).
PRIOR = PerfParams(compute_eff=1.0, compute_half_tokens=round(gemm_prior("h100-sxm").half_tokens, 1),
                   moe_half_tokens=round(gemm_prior("h100-sxm").half_tokens, 1), attn_eff=0.35, memory_eff=1.0,
                   step_overhead_s=0.003, per_seq_overhead_s=2e-5, low_precision_compute_scale=0.8,
                   allreduce_latency_s=1e-5, comm_eff=0.7, schedule_delay_s=0.02, schedule_delay_per_seq_s=0.0,
                   api_serial_s=5e-4)
#: Weight of each fitted parameter's prior residual (``fit_engine``); 0 = no prior.
PRIOR_WEIGHT = 1.0
STRUCTURE = {"vllm": {"prefill_priority": 0.0}, "sglang": {"prefill_priority": 1.0},
             "trtllm": {"prefill_priority": 0.0}}


def start_params(engine: str) -> PerfParams:
    return PRIOR.with_(**STRUCTURE[engine])


def fit_subsample(rows, per_group: int, source_id: str, max_rows: int = 0):
    """At most ``per_group`` rows per (model, hardware, precision, TP, load kind) of a source, spread over
    lengths and load, and at most ``max_rows`` in all (0: no cap; evenly over the groups' picks), with fewer
    simulated requests (4 rounds of a closed loop's clients; at most 300 open-loop requests)."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r.model, r.hardware, r.precision, r.tp, r.concurrency is None), []).append(r)
    out = []
    for key in sorted(groups, key=str):
        g = sorted(groups[key], key=lambda r: (r.input_tokens, r.output_tokens, r.concurrency or 0, r.rate_per_s or 0))
        idx = np.unique(np.round(np.linspace(0, len(g) - 1, min(per_group, len(g)))).astype(int))
        for i in idx:
            r = g[i]
            n = min(max(4 * r.concurrency, 32), 256) if r.concurrency else min(r.num_requests, 300)
            out.append(replace(r, num_requests=int(n)))
    if max_rows and len(out) > max_rows:
        out = [out[i] for i in np.unique(np.round(np.linspace(0, len(out) - 1, max_rows)).astype(int))]
    return out


def mlperf_offline(src_row: dict, params: PerfParams) -> float:
    from infersim.catalog import default_catalog
    from infersim.perf import GpuConfig, GpuRoofline, plan_memory
    from infersim.perf.analytic import estimate

    cat = default_catalog()
    out_mean = int(float(src_row["tokens_per_s"]) / float(src_row["samples_per_s"]))
    cfg = GpuConfig(cat.get_hardware(src_row["hardware"]), cat.get_model("llama-2-70b"), src_row["precision"],
                    "fp8" if src_row["engine"] == "trtllm" else "bf16", src_row["tp"], 1)
    plan = plan_memory(cfg, max_batched_tokens=8192, max_num_seqs=2048, gpu_memory_utilization=0.9)
    est = estimate(GpuRoofline(cfg, params, engine=src_row["engine"]), plan, out_mean, out_mean, max_num_seqs=2048, max_batched_tokens=8192)
    return est.max_output_tok_s * src_row["replicas"]


def mlperf_server(src_row: dict, out_mean: float, params: PerfParams) -> dict[str, float]:
    import re

    from infersim.results.simulate import simulate
    from infersim.validate import load_scenario

    sigma = 0.69  # ASSUMPTION (as validation_report.py): lognormal lengths, p99 = 5 x median, capped at 1,024
    median = out_mean / math.exp(sigma ** 2 / 2)
    length = {"kind": "lognormal", "median": round(median, 1), "p99": round(median * math.exp(2.326 * sigma), 1),
              "max": 1024}
    qps = float(re.search(r"target_qps ([\d.]+)", str(src_row["notes"])).group(1))
    data = {"name": "mlperf", "seed": 1, "duration": 120, "warmup": 30, "drain": 600,
            "workload": {"streams": [{"name": "orca", "arrival": {"kind": "poisson", "rate": qps},
                                      "input_tokens": length, "output_tokens": length}]},
            "platforms": [{"name": "p", "kind": "gpu_fleet", "deployments": [{
                "model": "llama-2-70b", "hardware": src_row["hardware"], "precision": src_row["precision"],
                "tp": src_row["tp"], "replicas": src_row["replicas"], "load_balancer": {"kind": "least_outstanding"},
                "engine": {"kind": src_row["engine"], "max_num_seqs": 512, "max_batched_tokens": 8192,
                           "perf": params.as_dict()}}]}]}
    sc = load_scenario("mlperf.yaml", data=data)
    q = simulate(sc, timeline_points=10).requests
    q = q[(q["outcome"] == "finished") & (q["arrival_s"] >= sc.warmup)]
    return {"ttft_mean_ms": float(q["ttft_s"].mean() * 1e3), "itl_mean_ms": float(q["tpot_s"].dropna().mean() * 1e3)}


def extra_residuals(srcs: list[Source]):
    """Log-ratio residuals of the throughput rows (TRT-LLM tables, MLPerf Offline) of ``srcs``."""
    tput = [r for s in srcs for r in s.tput]
    offline = [r for s in srcs for r in s.mlperf if r["scenario"] == "Offline"]
    if not tput and not offline:
        return None

    def extra(p: PerfParams) -> np.ndarray:
        res = [math.log(throughput.predict(r, p) / r.measured_tok_s) for r in tput]
        res += [math.log(mlperf_offline(r, p) / float(r["tokens_per_s"])) for r in offline]
        return np.asarray(res, dtype=float)
    return extra


def harness_of(source_id: str, row) -> str | None:
    """The benchmark client (harness) of a closed-loop row, whose own per-client time is fitted apart from the
    engine: the aiconfigurator sweeps (``aic-*``) all ran one harness. Open-loop rows: None."""
    if row.concurrency is None:
        return None
    return "aic" if source_id.startswith("aiconfigurator/") else source_id


def client_delay_ms(rec_row, source_id: str, metric: str, harness: dict[str, float]) -> float:
    """Client-side time a harness adds to TTFT and E2E: ``harness[h]`` seconds per concurrent client
    (ASSUMPTION: the client's per-request work grows with the requests it tracks, docs/validation.md)."""
    h = harness_of(source_id, rec_row)
    if h is None or h not in harness or metric not in ("ttft_mean_ms", "e2e_mean_ms"):
        return 0.0
    return 1e3 * harness[h] * rec_row.concurrency


def fit_engine(engine: str, srcs: list[Source], start: PerfParams, args, max_nfev: int,
               harness0: dict[str, float] | None = None) -> tuple[PerfParams, list, dict[str, float]]:
    """Fit ``engine``'s parameters on ``srcs`` (its fit sources) with each closed-loop harness's per-client delay;
    returns the parameters, the names fitted and the harness delays (s per client)."""
    from scipy.optimize import least_squares

    from infersim.calibrate.fit import BOUNDS, SCALES

    subs = [(s.id, r) for s in srcs for r in fit_subsample(s.rows, args.per_group, s.id, args.max_fit_rows)]
    rows = [r for _, r in subs]
    extra = extra_residuals(srcs)
    n_res = sum(len([m for m in r.metrics if m in WEIGHTS]) for r in rows)
    n_res += sum(len(s.tput) + sum(r["scenario"] == "Offline" for r in s.mlperf) for s in srcs)
    harnesses = sorted({h for sid, r in subs if (h := harness_of(sid, r))})
    if n_res == 0:
        return start, [], {}
    names = [n for n in FIT_NAMES if n != "low_precision_compute_scale"]
    precisions = {r.precision in ("bf16", "fp16") for r in rows} | ({False} if extra is not None else set())
    if len(precisions) > 1:
        names.append("low_precision_compute_scale")  # rows at 16- and 8-bit compute: identifiable
    if any(r.precision == "fp4" for r in rows):
        names.insert(2, "fp4_compute_scale")  # FP4 rows (published Blackwell runs) fix the FP4 GEMM efficiency
    if not any(r.concurrency for r in rows) and "api_serial_s" in names:
        names.remove("api_serial_s")  # nothing arrives in bursts: not identifiable
    if not rows:  # throughput only: parameters that move saturation throughput
        names = [n for n in names if n in ("step_overhead_s", "attn_eff", "per_seq_overhead_s",
                                           "low_precision_compute_scale")]
    names = names[:max(1, min(n_res // 2 - len(harnesses), args.max_params or len(names)))]
    sc = np.array([SCALES[n] for n in names] + [1e-3] * len(harnesses))
    lo = np.array([BOUNDS[n][0] for n in names] + [0.0] * len(harnesses)) / sc
    hi = np.array([BOUNDS[n][1] for n in names] + [0.01] * len(harnesses)) / sc
    h0 = harness0 or {}
    x0 = np.clip(np.array([getattr(start, n) for n in names] + [h0.get(h, 1e-3) for h in harnesses]) / sc, lo, hi)

    def unpack(x):
        v = x * sc
        return start.with_(**dict(zip(names, v[:len(names)], strict=True))), dict(zip(harnesses, v[len(names):],
                                                                                   strict=True))

    def resid(x):
        p, harness = unpack(x)
        res = []
        for (sid, _r), sim in zip(subs, predict(rows, p, processes=args.processes), strict=True):
            for m, meas in sim.row.metrics.items():
                w = WEIGHTS.get(m, 0.0)
                if w <= 0:
                    continue
                pred = sim.predicted.get(m, math.nan) + client_delay_ms(sim.row, sid, m, harness)
                res.append(w * 5.0 if sim.error or not pred > 0 else w * math.log(pred / meas))
        if extra is not None:
            res += list(extra(p))
        # the physical prior of every fitted parameter counts as evidence too (about one row's worth each): a
        # parameter leaves its prior only as far as the rows need, so a fold left with few or one-sided rows
        # cannot drive it to a bound (ridge toward PRIOR, in units of the parameter's typical magnitude)
        w = getattr(args, "prior_weight", PRIOR_WEIGHT)
        if w > 0:
            res += [w * (getattr(p, n) - getattr(PRIOR, n)) / SCALES[n] for n in names]
        return np.asarray(res, dtype=float)

    sol = least_squares(resid, x0, bounds=(lo, hi), diff_step=0.03, loss="soft_l1", f_scale=0.15, max_nfev=max_nfev)
    p, harness = unpack(sol.x)
    return p, list(names), harness


def evaluate(src: Source, params: PerfParams, processes: int = 1, harness: dict[str, float] | None = None,
             every: int = 1) -> list[dict]:
    """One record per (row, metric) of ``src`` predicted with ``params`` (and the client delay of its harness
    when ``harness`` knows it); ``every``: only every n-th latency row (in file order; a shorter check)."""
    out = []
    rows = src.rows[::every] if every > 1 else src.rows
    sims = predict(rows, params, processes=processes) if rows else []
    for s in sims:
        for m, meas in s.row.metrics.items():
            if m in METRIC:
                pred = s.predicted.get(m, math.nan) + client_delay_ms(s.row, src.id, m, harness or {})
                out.append({"row": s.row.row, "metric": METRIC[m], "measured": meas, "predicted": pred,
                            "preemptions": s.preemptions, "sim_error": s.error or ""})
    for r in src.tput:
        out.append({"row": r.row, "metric": "throughput", "measured": r.measured_tok_s,
                    "predicted": throughput.predict(r, params), "preemptions": 0, "sim_error": ""})
    offline = {r["accelerator"]: r for r in src.mlperf if r["scenario"] == "Offline"}
    for r in src.mlperf:
        if r["scenario"] == "Offline":
            out.append({"row": f"{r['accelerator']} Offline", "metric": "throughput",
                        "measured": float(r["tokens_per_s"]), "predicted": mlperf_offline(r, params),
                        "preemptions": 0, "sim_error": ""})
        else:
            off = offline.get(r["accelerator"])
            out_mean = float(off["tokens_per_s"]) / float(off["samples_per_s"]) if off else 290.0
            pred = mlperf_server(r, out_mean, params)
            for m, col in (("ttft_mean_ms", "mean_ttft_ms"), ("itl_mean_ms", "mean_tpot_ms")):
                out.append({"row": f"{r['accelerator']} Server", "metric": METRIC[m], "measured": float(r[col]),
                            "predicted": pred[m], "preemptions": 0, "sim_error": ""})
    for o in out:
        p, m = o["predicted"], o["measured"]
        o["error_pct"] = 100.0 * (p - m) / m if m and p == p and math.isfinite(p) else math.nan
        o["source"] = src.id
    return out



def run(args) -> dict:
    t0 = time.time()
    srcs, skipped = load_sources(Path(args.shared), ROOT / "data" / "calibration")
    for s in skipped:
        print("skipped:", s)
    by_engine = {e: [s for s in srcs if s.engine == e] for e in ENGINES}
    print("sources:", ", ".join(f"{s.id} ({s.n_rows})" for s in srcs), flush=True)
    full: dict[str, PerfParams] = {}
    fitted: dict[str, list] = {}
    harness: dict[str, dict[str, float]] = {}
    for e in ENGINES:
        t = time.time()
        full[e], fitted[e], harness[e] = fit_engine(e, by_engine[e], start_params(e), args, args.max_nfev)
        print(f"== {e}: fitted {fitted[e]} in {time.time() - t:.0f}s; harness delay per client "
              + ", ".join(f"{h} {1e3 * v:.3f} ms" for h, v in harness[e].items()), flush=True)
        print("   " + ", ".join(f"{k}={v:.4g}" for k, v in full[e].as_dict().items()), flush=True)
    insample, held = [], []
    for s in srcs:
        recs = evaluate(s, full[s.engine], args.processes, harness[s.engine], args.eval_every)
        insample += recs
        print(f"   in sample {s.id}: " + ", ".join(f"{r.metric} {r.median:.1f}%" for r in summarise(recs).itertuples()),
              flush=True)
    folds = sorted({(s.engine, s.group) for s in srcs})
    for engine, group in folds:
        units = [s for s in by_engine[engine] if s.group == group]
        if args.only and not any(u.id in args.only or group in args.only for u in units):
            continue
        t = time.time()
        others = [o for o in by_engine[engine] if o.group != group]  # a publication is held out whole
        # the held-out fit starts from the physical priors, not from the all-source fit: a warm start from
        # parameters that saw the held-out source, stopped after a few evaluations, would carry its information
        p, _, h = fit_engine(engine, others, start_params(engine), args, args.loso_nfev) \
            if others else (start_params(engine), [], {})
        for s in units:
            recs = evaluate(s, p, args.processes, h, args.eval_every)
            held += recs
            summ = summarise(recs) if recs else None
            print(f"-- held out {s.id} ({time.time() - t:.0f}s): " + (", ".join(
                f"{r.metric} {r.median:.1f}%" for r in summ.itertuples()) if summ is not None else "no rows"),
                flush=True)
    print(f"total {time.time() - t0:.0f}s")
    return {"sources": srcs, "skipped": skipped, "full": full, "fitted": fitted, "harness": harness,
            "insample": insample,
            "held": held, "seconds": time.time() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--max-nfev", type=int, default=30)
    ap.add_argument("--loso-nfev", type=int, default=30)
    ap.add_argument("--per-group", type=int, default=5)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=[])
    ap.add_argument("--max-fit-rows", type=int, default=0, help="at most this many rows of a source in a fit")
    ap.add_argument("--prior-weight", type=float, default=PRIOR_WEIGHT,
                    help="weight of each fitted parameter's residual toward its physical prior (0: none)")
    ap.add_argument("--max-params", type=int, default=0, help="fit at most this many parameters (first in order)")
    ap.add_argument("--eval-every", type=int, default=1, help="check every n-th latency row of a source (faster)")
    ap.add_argument("--no-write", action="store_true", help="print only; write no profile, doc or bands file")
    ap.add_argument("--no-profiles", action="store_true", help="write the doc and bands, keep the shipped profiles")
    ap.add_argument("--save", help="also pickle the results to this file (to rewrite the outputs with --load)")
    ap.add_argument("--load", help="write the outputs from results pickled by --save instead of fitting again")
    ap.add_argument("--before", help="results of a baseline run pickled by --save: its held-out bands are the "
                                     "'before' column of the doc's before/after table (default: the previous "
                                     "validation_bands.csv)")
    ap.add_argument("--before-note", default="", help="how the --before run differs (one sentence for the doc)")
    args = ap.parse_args(argv)
    import pickle

    if args.load:
        with open(args.load, "rb") as f:
            out = pickle.load(f)
    else:
        out = run(args)
    if args.save:
        with open(args.save, "wb") as f:
            pickle.dump(out, f)
    if not args.no_write:
        import loso_report

        loso_report.write_all(out, args, date=dt.date.today().isoformat())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
