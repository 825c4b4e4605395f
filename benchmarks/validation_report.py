"""Regenerate docs/validation.md: infersim's predictions against every calibration row in shared/calibration.

    python benchmarks/validation_report.py [--shared ../shared] [--out docs/validation.md] [--processes 1]

Re-runnable at any time (it reads the shipped profiles, catalog and presets as they are now); takes about a
minute on one core. Sections: serving throughput (serving_benchmarks.csv), engine latency (engine_latency.csv,
every row simulated, summarised per engine/model/TP), MLPerf (mlperf.csv: the Server rows simulated at their
target QPS, the Offline rows as saturation throughput) and provider speeds (provider_speeds.csv: SRAM systems
via ``infersim.perf.sram.pipeline.sram_estimate``, token APIs via the presets of ``infersim.perf.token_api``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

# MLPerf Llama-2-70B (mlperf.csv): deployment and workload assumptions, stated in the report.
MLPERF_OUT_MEAN = None  # derived per row from tokens_per_s / samples_per_s of the Offline row
MLPERF_SETUPS = {
    "H100 SXM 80GB": {"hardware": "h100-sxm", "engine": "trtllm", "precision": "fp8", "tp": 2, "replicas": 4,
                      "note": "TensorRT-LLM, FP8 weights and KV, 4 replicas x TP2 on the 8 GPUs (assumption: "
                              "NVIDIA's submission does not appear in the CSV beyond 'TensorRT')"},
    "MI300X": {"hardware": "mi300x", "engine": "vllm", "precision": "fp8", "tp": 1, "replicas": 8,
               "note": "vLLM profile (fitted on H100: an assumption for MI300X), FP8 weights, 8 replicas x TP1 "
                       "(one 70B FP8 model per 192 GB GPU; assumption)"},
}


def pct(pred: float, meas: float) -> float:
    return 100.0 * (pred - meas) / meas if meas and math.isfinite(pred) else math.nan


def fmt_pct(v: float) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:+.1f}%"


def fmt_num(v: float, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:,.{digits}f}"


def md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def abs_stats(errs) -> tuple[float, float, int]:
    a = np.abs(np.asarray([e for e in errs if e is not None and math.isfinite(e)], dtype=float))
    if not a.size:
        return math.nan, math.nan, 0
    return float(np.median(a)), float(a.max()), int(a.size)


# -- serving throughput ------------------------------------------------------------------------------------------
def serving_throughput(cal: Path) -> tuple[str, dict]:
    from infersim.calibrate.throughput import errors, trtllm_rows
    from infersim.perf.profiles import shipped_profile

    rows = trtllm_rows(cal / "serving_benchmarks.csv")
    err = errors(rows, shipped_profile("trtllm"))
    tab = pd.DataFrame({
        "row": err["row"], "model": err["model"], "TP": err["tp"], "in/out": [f"{i}/{o}" for i, o in
                                                                            zip(err["input"], err["output"], strict=True)],
        "measured tok/s": [fmt_num(v, 0) for v in err["measured_tok_s"]],
        "predicted tok/s": [fmt_num(v, 0) for v in err["predicted_tok_s"]],
        "error": [fmt_pct(v) for v in err["error_pct"]]})
    med, worst, n = abs_stats(err["error_pct"])
    raw = pd.read_csv(cal / "serving_benchmarks.csv")
    others = raw[raw["engine"] != "TensorRT-LLM"]
    text = [
        "## Serving throughput (serving_benchmarks.csv)",
        "",
        "TensorRT-LLM max-throughput table on H100 (FP8, requests at infinite rate): saturation output tokens/s from "
        "the analytic steady state of chunked-prefill continuous batching (`infersim.perf.analytic`) with the shipped "
        "`trtllm` profile, which was fitted on these rows jointly with the TensorRT-LLM latency rows.",
        "",
        md_table(tab),
        "",
        f"**Median |error| {med:.1f} %, worst {worst:.1f} % over {n} rows.**",
        "",
        f"Not compared ({len(others)} rows): "
        + "; ".join(f"row {i + 1} ({r.engine}, {r.model}: {r.metric} = {r.value})" for i, r in others.iterrows())
        + " — ratios between engine versions or headline numbers without the workload needed to simulate them.",
        "",
    ]
    return "\n".join(text), {"kind": "serving throughput (TRT-LLM table)", "metric": "output tok/s", "n": n,
                             "median": med, "worst": worst}


# -- engine latency ----------------------------------------------------------------------------------------------
def engine_latency(cal: Path, processes: int, img_dir: Path) -> tuple[str, list[dict]]:
    from infersim.calibrate.cli import chart
    from infersim.calibrate.fit import error_table, predict, summarize_errors
    from infersim.calibrate.measured import read_measured

    rows, problems = read_measured(cal / "engine_latency.csv")
    t = time.time()
    sims = []
    for engine in ("vllm", "sglang", "trtllm"):
        sims += predict([r for r in rows if r.engine == engine], None, processes=processes)
    wall = time.time() - t
    table = error_table(sims)
    failed = [s for s in sims if s.error]
    by_group = summarize_errors(table, by=("engine", "model", "tp"))
    by_engine = summarize_errors(table, by=("engine",))

    def pivot(summ: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        out = []
        for key, g in summ.groupby(keys, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            e = dict(zip(keys, key, strict=True))
            for r in g.itertuples():
                short = "TTFT" if r.metric.startswith("ttft") else "ITL"
                e["rows"] = int(r.n)
                e[f"{short} median"] = f"{r.median_abs_pct:.1f}%"
                e[f"{short} worst"] = f"{r.worst_abs_pct:.1f}%"
            out.append(e)
        return pd.DataFrame(out)

    eng_tab = pivot(by_engine, ["engine"])
    grp_tab = pivot(by_group, ["engine", "model", "tp"])
    img_dir.mkdir(parents=True, exist_ok=True)
    chart(table, img_dir / "engine_latency.png", title="engine_latency.csv: predicted vs measured (shipped profiles)")
    table.drop(columns=["sim_error"]).round({"predicted": 3, "error_pct": 2}).to_csv(
        img_dir / "engine_latency.csv", index=False)
    summary = []
    for r in by_engine.itertuples():
        summary.append({"kind": f"engine latency, {r.engine}", "metric": "TTFT mean" if r.metric.startswith("ttft")
                        else "ITL mean", "n": int(r.n), "median": float(r.median_abs_pct),
                        "worst": float(r.worst_abs_pct)})
    # worst rows, to show where the model is off
    t2 = table.dropna(subset=["error_pct"]).assign(abs=lambda d: d["error_pct"].abs())
    worst = t2.sort_values("abs", ascending=False).head(12)
    worst_tab = pd.DataFrame({
        "row": worst["row"], "engine": worst["engine"], "model": worst["model"], "TP": worst["tp"],
        "in/out": [f"{i}/{o}" for i, o in zip(worst["input_tokens"], worst["output_tokens"], strict=True)],
        "concurrency": worst["concurrency"].astype(int), "metric": worst["metric"],
        "measured ms": [fmt_num(v) for v in worst["measured"]], "predicted ms": [fmt_num(v) for v in worst["predicted"]],
        "error": [fmt_pct(v) for v in worst["error_pct"]]})
    text = [
        "## Engine latency (engine_latency.csv)",
        "",
        f"All {len(rows)} closed-loop rows (H100; vLLM 0.12, SGLang 0.5, TensorRT-LLM 1.0), each replayed by the "
        "simulator with the shipped profile of its engine (`infersim calibrate` does the same: "
        "`infersim calibrate ../shared/calibration/engine_latency.csv`). Mean TTFT and mean ITL; the profiles were "
        "fitted on a stratified subsample of these rows (see each profile's `rows` for which), so these are mostly "
        f"in-sample errors. {len(problems)} malformed rows, {len(failed)} rows that could not be simulated; "
        f"simulating all rows took {wall:.0f} s.",
        "",
        "Per engine (targets from the issue: median |error| ITL <= 10 %, TTFT <= 20 %):",
        "",
        md_table(eng_tab),
        "",
        *targets_text(by_engine),
        "",
        "Per engine, model and TP:",
        "",
        md_table(grp_tab),
        "",
        "The rows with the largest errors:",
        "",
        md_table(worst_tab),
        "",
        "Every row's prediction: [validation/engine_latency.csv](validation/engine_latency.csv).",
        "",
        "![predicted vs measured](validation/engine_latency.png)",
        "",
    ]
    return "\n".join(text), summary


TARGETS = {"itl_mean_ms": 10.0, "ttft_mean_ms": 20.0}
#: What each engine does that the model lacks, where a target is missed (from the residuals of the fits).
WHY = {
    ("vllm", "ttft_mean_ms"): (
        "How the benchmark's clients were spread in time is not recorded, and vLLM's TTFT depends on it more than on "
        "the GPU: with all clients starting together ('burst') requests that are prefilled together stay together "
        "(fixed lengths); with clients spread ('staggered', shipped) the Llama-3.1-70B rows fit within ~20 % at TP 4 "
        "and 8, and the Qwen3-32B rows carry most of the error (medians 50-64 % at TP 2-8). The GEMM and "
        "weight-streaming rates are measured kernels, not fitted (docs/model.md), so prefill can no longer absorb "
        "API-server time as it did; vLLM's API-server/detokeniser CPU time under load is modelled as one serial "
        "queue (api_serial_s) plus a fixed delay. Quote vLLM TTFT with its held-out band (leave-one-source-out "
        "section above), not with this in-sample figure."),
    ("trtllm", "ttft_mean_ms"): (
        "The measured TensorRT-LLM TTFT is not monotonic in load: at 8 clients it grows with the *output* length "
        "(Llama-3.1-8B TP1, 1024 in: 191 / 318 / 550 ms for 128 / 256 / 512 out) and it is lower at 32 clients than at "
        "8. No serving mechanism in the model (or, as far as we know, in the engine) makes a prompt's first token "
        "wait for the length of other requests' outputs; it looks like a one-off warm-up cost averaged over a "
        "fixed-duration run. The fit therefore does not chase TTFT (soft-L1 loss) and TTFT should not be quoted from "
        "this profile with better than +-50 %."),
    ("trtllm", "itl_mean_ms"): (
        "The joint fit trades these latency rows (batch <= 224) against the max-throughput table (batch up to "
        "thousands, FP8) and the other TensorRT-LLM publications; with the GEMM and weight-streaming rates fixed to "
        "measured kernels its freedom is the CPU time per step and per sequence, the attention efficiency and the "
        "FP8 scale, and the Qwen3-32B rows keep the largest residual (medians 18-24 %)."),
    ("sglang", "itl_mean_ms"): (
        "The profile is fitted jointly on SGLang's publications (this closed-loop sweep, its Blackwell runs and the "
        "dstack posts) with the GEMM rates fixed to measured kernels; what this source alone would want is traded "
        "against the others (held-out: leave-one-source-out section above)."),
}


def targets_text(by_engine: pd.DataFrame) -> list[str]:
    out = []
    for r in by_engine.itertuples():
        target = TARGETS.get(r.metric)
        if target is None:
            continue
        metric = "TTFT" if r.metric.startswith("ttft") else "ITL"
        if r.median_abs_pct <= target:
            out.append(f"- {r.engine} {metric}: median {r.median_abs_pct:.1f} % meets the {target:g} % target.")
        else:
            why = WHY.get((r.engine, r.metric), "")
            out.append(f"- {r.engine} {metric}: median {r.median_abs_pct:.1f} % misses the {target:g} % target by "
                       f"{r.median_abs_pct - target:.1f} points. {why}")
    return out


# -- MLPerf ------------------------------------------------------------------------------------------------------
def mlperf(cal: Path) -> tuple[str, list[dict]]:
    from infersim.catalog import default_catalog
    from infersim.perf import GpuConfig, GpuRoofline, plan_memory
    from infersim.perf.analytic import estimate
    from infersim.perf.profiles import shipped_profile
    from infersim.results.simulate import simulate
    from infersim.validate import load_scenario

    df = pd.read_csv(cal / "mlperf.csv")
    cat = default_catalog()
    lines, summary, rows_out = [], [], []
    for accel, setup in MLPERF_SETUPS.items():
        sub = df[df["accelerator"] == accel]
        if sub.empty:
            continue
        try:
            hw = cat.get_hardware(setup["hardware"])
        except Exception:  # noqa: BLE001 - hardware not in the catalog: skip the row, say so
            lines.append(f"- {accel}: not in the catalog, not simulated.")
            continue
        off = sub[sub["scenario"] == "Offline"]
        out_mean = float(off["tokens_per_s"].iloc[0] / off["samples_per_s"].iloc[0]) if len(off) else 290.0
        sigma = 0.69  # assumption: lognormal lengths, p99/median = 5
        median = out_mean / math.exp(sigma ** 2 / 2)
        length = {"kind": "lognormal", "median": round(median, 1), "p99": round(median * math.exp(2.326 * sigma), 1),
                  "max": 1024}
        for _, r in sub.iterrows():
            if r["scenario"] == "Server":
                qps = float(re.search(r"target_qps ([\d.]+)", str(r["notes"])).group(1))
                data = {
                    "name": f"mlperf-{setup['hardware']}", "seed": 1, "duration": 180, "warmup": 30, "drain": 600,
                    "workload": {"streams": [{"name": "orca", "arrival": {"kind": "poisson", "rate": qps},
                                              "input_tokens": length, "output_tokens": length}]},
                    "platforms": [{"name": "p", "kind": "gpu_fleet", "deployments": [{
                        "model": "llama-2-70b", "hardware": setup["hardware"], "precision": setup["precision"],
                        "tp": setup["tp"], "replicas": setup["replicas"], "load_balancer": {"kind": "least_outstanding"},
                        "engine": {"kind": setup["engine"], "max_num_seqs": 512, "max_batched_tokens": 8192}}]}],
                }
                sc = load_scenario("mlperf.yaml", data=data)
                res = simulate(sc, timeline_points=20)
                q = res.requests
                q = q[(q["outcome"] == "finished") & (q["arrival_s"] >= sc.warmup)]
                ttft = q["ttft_s"].to_numpy() * 1e3
                tpot = q["tpot_s"].dropna().to_numpy() * 1e3
                pred = {"mean_ttft_ms": float(ttft.mean()), "p99_ttft_ms": float(np.quantile(ttft, 0.99)),
                        "mean_tpot_ms": float(tpot.mean()), "p99_tpot_ms": float(np.quantile(tpot, 0.99))}
                for k, label in (("mean_ttft_ms", "TTFT mean"), ("p99_ttft_ms", "TTFT p99"),
                                 ("mean_tpot_ms", "TPOT mean"), ("p99_tpot_ms", "TPOT p99")):
                    e = pct(pred[k], float(r[k]))
                    rows_out.append({"system": accel, "scenario": f"Server {qps:g} QPS", "metric": label,
                                     "measured": fmt_num(float(r[k])) + " ms", "predicted": fmt_num(pred[k]) + " ms",
                                     "error": fmt_pct(e), "_e": e})
                done = len(q) / (sc.duration - sc.warmup)
                rows_out.append({"system": accel, "scenario": f"Server {qps:g} QPS", "metric": "completed samples/s",
                                 "measured": fmt_num(float(r["samples_per_s"]), 2), "predicted": fmt_num(done, 2),
                                 "error": fmt_pct(pct(done, float(r["samples_per_s"]))), "_e": math.nan})
            else:  # Offline: saturation throughput of the replicas (analytic steady state)
                m = cat.get_model("llama-2-70b")
                cfg = GpuConfig(hw, m, setup["precision"], "fp8" if setup["engine"] == "trtllm" else "bf16",
                                setup["tp"], 1)
                plan = plan_memory(cfg, max_batched_tokens=8192, max_num_seqs=2048, gpu_memory_utilization=0.9)
                est = estimate(GpuRoofline(cfg, shipped_profile(setup["engine"]), engine=setup["engine"]), plan, int(out_mean), int(out_mean),
                               max_num_seqs=2048, max_batched_tokens=8192)
                pred_tok = est.max_output_tok_s * setup["replicas"]
                e = pct(pred_tok, float(r["tokens_per_s"]))
                rows_out.append({"system": accel, "scenario": "Offline", "metric": "output tok/s",
                                 "measured": fmt_num(float(r["tokens_per_s"]), 0), "predicted": fmt_num(pred_tok, 0),
                                 "error": fmt_pct(e), "_e": e})
        lines.append(f"- {accel}: {setup['note']}.")
    tab = pd.DataFrame(rows_out)
    for kind in ("TTFT", "TPOT"):
        errs = [r["_e"] for r in rows_out if r["metric"].startswith(kind)]
        med, worst, n = abs_stats(errs)
        if n:
            summary.append({"kind": "MLPerf Llama-2-70B Server", "metric": f"{kind} mean and p99", "n": n,
                            "median": med, "worst": worst})
    errs = [r["_e"] for r in rows_out if r["scenario"] == "Offline"]
    med, worst, n = abs_stats(errs)
    if n:
        summary.append({"kind": "MLPerf Llama-2-70B Offline", "metric": "output tok/s", "n": n, "median": med,
                        "worst": worst})
    text = [
        "## MLPerf Inference v4.1, Llama-2-70B (mlperf.csv)",
        "",
        "The Server rows are simulated as Poisson arrivals at the row's target QPS for 180 s (the first 30 s "
        "excluded) on 8 accelerators; TTFT and TPOT (per request: (finish - first token) / (output - 1), MLPerf's "
        "definition) mean and p99 against the published ones. The Offline rows are the analytic saturation "
        "throughput of the same replicas. Assumptions:",
        "",
        *lines,
        "- Lengths: lognormal input and output, mean = output tokens per sample of the Offline row "
        "(tokens_per_s / samples_per_s, e.g. 24,524.9 / 84.48 = 290 for H100), p99 = 5 x median, at most 1,024 "
        "(MLPerf's cap); the input distribution is not in the CSV and is assumed equal to the output's.",
        "- Least-outstanding balancing across replicas; max_num_seqs 512; no speculative decoding.",
        "",
        md_table(tab.drop(columns="_e")) if len(tab) else "(no rows)",
        "",
        "Reading it: on H100 the simulated fleet completes the offered load (samples/s within a few %) and the "
        "Offline throughput is close, so capacity is right; but the measured Server TPOT (155 ms mean, p99 175 ms "
        "against MLPerf's 200 ms limit) is more than twice the simulated one. At a fixed arrival rate a slower TPOT "
        "means more requests in flight (Little's law: ~75/s x 290 tokens x 0.155 s = 3,400 sequences on 8 GPUs), "
        "i.e. the submission ran much larger batches than the model needs for the same throughput: MLPerf harnesses "
        "tune batching to sit just under the latency limit, which the simulated scheduler (admit as soon as possible) "
        "does not do. Use infersim's MLPerf-like latencies as what a latency-friendly scheduler would give, not what "
        "a throughput-tuned submission reports. MI300X is the model's weak point: it has no kernel measurement of "
        "its own (it takes the H100's real-shape GEMM and weight-streaming shares, an ASSUMPTION in "
        "perf/kernels.py), the vLLM profile's FP8 GEMM scale is fitted on NVIDIA rows, and the assumed 8 x TP1 "
        "layout comes out too slow (Offline) and queues at the Server rate the real system held. Do not quote "
        "MI300X capacity from this model until its kernels are measured (benchmarks/gpu_kernels.py on an MI300X).",
        "",
    ]
    return "\n".join(text), summary


# -- provider speeds ---------------------------------------------------------------------------------------------
def provider_speeds(cal: Path) -> tuple[str, list[dict]]:
    from infersim.catalog import default_catalog
    from infersim.perf.sram.params import sram_profile
    from infersim.perf.sram.pipeline import sram_estimate
    from infersim.perf.token_api import token_api_presets

    df = pd.read_csv(cal / "provider_speeds.csv")
    cat = default_catalog()
    presets = token_api_presets()
    out, summary_sram, summary_api = [], [], []
    calib = {}
    for name in ("groq", "cerebras"):
        for c in sram_profile(name).doc.get("calibration", []):
            calib[(name, c["model"], str(c.get("units", "")))] = c
    for i, r in df.iterrows():
        provider = str(r["provider"])
        raw_speed = str(r["output_tok_s_per_user"])
        meas = float(re.sub(r"[^\d.]", "", raw_speed)) if re.search(r"\d", raw_speed) else math.nan
        bound = ">" if raw_speed.strip().startswith(">") else ("~" if raw_speed.strip().startswith("~") else "")
        model_txt = str(r["model"])
        mm = re.match(r"(Llama)\s*([\d.]+)\s*(\d+B)", model_txt)
        model_id = f"llama-{mm.group(2)}-{mm.group(3).lower()}" if mm else None
        entry = {"row": i + 1, "date": r["date"], "provider": provider, "model": model_txt,
                 "measured tok/s/user": raw_speed}
        if provider in ("Groq", "Cerebras"):
            name = provider.lower()
            prof = sram_profile(name)
            hw = cat.get_hardware(prof.hardware)
            model = cat.get_model(model_id)
            chips = re.search(r"(\d+) chips", str(r["hardware"]))
            units = int(chips.group(1)) if chips else None
            if units is None:
                for (n, mid, u) in calib:
                    if n == name and mid == model.id and u:
                        units = int(u)
            ctx = 2048 if "4096 ctx" in model_txt else 1000
            est = sram_estimate(model, hw, ctx, 1, units=units)
            pred = est.output_tok_s_per_user
            e = pct(pred, meas)
            ok = (pred >= meas) if bound == ">" else None
            entry.update({"how": f"sram_estimate, {est.chips} x {hw.id}, {prof.default_precision}, context {ctx}",
                          "predicted": fmt_num(pred, 0),
                          "error": ("lower bound " + ("met" if ok else "missed")) if bound == ">" else fmt_pct(e)})
            if bound != ">":
                summary_sram.append(e)
        else:
            key = None
            for pid, p in presets.items():
                if p.model == model_id and provider.split()[0].lower() in p.provider.lower():
                    key = pid
            if key is None:
                entry.update({"how": "no token-API preset", "predicted": "-", "error": "-"})
            else:
                lat = presets[key].latency
                pred = lat.speed.median
                e = pct(pred, meas)
                how = f"preset {key} (median)"
                entry.update({"how": how, "predicted": fmt_num(pred, 1), "error": fmt_pct(e)})
                summary_api.append(e)
                if lat.load_curve is not None and isinstance(r["notes"], str):
                    for conc, speed, ttft in re.findall(r"conc (\d+): ([\d.]+) tok/s/user TTFT ([\d.]+) s", r["notes"]):
                        t_pred, s_pred = lat.load_curve.at(float(conc))
                        out.append({"row": i + 1, "date": r["date"], "provider": provider,
                                    "model": f"{model_txt} at concurrency {conc}", "measured tok/s/user": speed,
                                    "how": f"preset {key} load curve", "predicted": fmt_num(s_pred, 1),
                                    "error": fmt_pct(pct(s_pred, float(speed)))})
                        out.append({"row": i + 1, "date": r["date"], "provider": provider,
                                    "model": f"{model_txt} at concurrency {conc}: TTFT s", "measured tok/s/user": ttft,
                                    "how": f"preset {key} load curve", "predicted": fmt_num(t_pred, 2),
                                    "error": fmt_pct(pct(t_pred, float(ttft)))})
                        summary_api.append(pct(s_pred, float(speed)))
        out.append(entry)
    tab = pd.DataFrame(out)
    summary = []
    for kind, errs in (("provider speeds, SRAM systems (Groq, Cerebras)", summary_sram),
                       ("provider speeds, token APIs", summary_api)):
        med, worst, n = abs_stats(errs)
        if n:
            summary.append({"kind": kind, "metric": "output tok/s per user", "n": n, "median": med, "worst": worst})
    text = [
        "## Provider speeds (provider_speeds.csv)",
        "",
        "Per-user output speed. Groq and Cerebras rows: `infersim.perf.sram.pipeline.sram_estimate` at batch 1 with the "
        "shipped SRAM profiles (chip counts from the row or the profile's calibration entry); some of these rows are "
        "the ones the profiles were fitted on (see `perf/profiles/groq.yaml`, `cerebras.yaml`), so they check the "
        "fit rather than predict. Token-API rows: the shipped presets (`catalog/data/token_apis.yaml`) carry the "
        "published medians, so agreement there only confirms the preset matches its source.",
        "",
        md_table(tab),
        "",
    ]
    return "\n".join(text), summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "validation.md"))
    ap.add_argument("--processes", type=int, default=1)
    args = ap.parse_args(argv)
    cal = Path(args.shared) / "calibration"
    out = Path(args.out)
    t0 = time.time()
    sections, summary = [], []
    s, row = serving_throughput(cal)
    sections.append(s)
    summary.append(row)
    s, rows = engine_latency(cal, args.processes, out.parent / "validation")
    sections.append(s)
    summary += rows
    s, rows = mlperf(cal)
    sections.append(s)
    summary += rows
    s, rows = provider_speeds(cal)
    sections.append(s)
    summary += rows
    summ = pd.DataFrame([{"kind of number": r["kind"], "metric": r["metric"], "rows": r["n"],
                          "median abs error": f"{r['median']:.1f}%", "worst abs error": f"{r['worst']:.1f}%"}
                         for r in summary])
    head = [
        "# Validation: predicted vs measured",
        "",
        "Generated by `python benchmarks/validation_report.py` on "
        f"{dt.date.today().isoformat()} ({time.time() - t0:.0f} s); do not edit by hand. Every calibration row in "
        "`../shared/calibration/` that infersim can simulate is compared with the prediction of the shipped "
        "profiles, catalog and presets. Errors are (predicted - measured) / measured.",
        "",
        "## How far to trust each kind of number",
        "",
        md_table(summ),
        "",
        "Reading the table: the GPU rows below are *in-sample* (the profiles were fitted on every source, "
        "benchmarks/loso.py), so they say how well the model's structure describes the engines; how well it "
        "extrapolates is the leave-one-source-out section above. Token-API speeds are the published medians "
        "themselves.",
        "",
        "## Checking your own measurements",
        "",
        "`infersim calibrate MEASURED.csv [--fit] [--json] [--out DIR]` simulates every row of a CSV of measured "
        "runs and prints predicted vs measured with the error per metric and the median/worst absolute error; "
        "`--out` writes `comparison.csv` and `predicted_vs_measured.png`; `--fit` fits a profile per engine and "
        "writes `DIR/<engine>-profile.yaml` for `engine: {kind: ..., profile: ...}` in a scenario. Columns (one row "
        "per run, extra columns ignored, missing metrics skipped): `model, hardware, tp, engine, input_tokens, "
        "output_tokens` and `concurrency` (closed loop) or `rate_per_s` (open loop; `arrival` `poisson` (default), "
        "`constant` or `gamma` with `burstiness` b as vLLM's `vllm bench serve --burstiness`: gamma gaps of shape b, "
        "b = 1 Poisson); optional `precision` (bf16), `pp` (1), `num_requests`, `max_num_seqs`, "
        "`max_batched_tokens`, `prefix_tokens`, `prefix_share`, `prefix_groups` (1), `kv_precision`, "
        "`gpu_memory_utilization`, `think_time_s`, `engine_version`, `client_start` (`burst`/`staggered`); metrics "
        "`ttft_mean_ms, ttft_p50_ms, ttft_p90_ms, ttft_p99_ms, itl_mean_ms, e2e_mean_ms, e2e_p50_ms, e2e_p90_ms, "
        "e2e_p99_ms, output_tok_s`. Model and hardware accept catalog ids and common spellings "
        "(`meta-llama/Llama-3.1-70B`, `H100-SXM-80GB`). A malformed row is reported with its row number and skipped.",
        "",
    ]
    # keep the leave-one-source-out section benchmarks/loso.py wrote (it takes minutes to regenerate)
    loso = ""
    if out.exists():
        m = re.search(r"<!-- loso:begin -->.*?<!-- loso:end -->", out.read_text(), flags=re.S)
        loso = m.group(0) + "\n" if m else ""
    head.insert(head.index("## How far to trust each kind of number"), loso)
    # and the hand-written sections (between <!-- hand:begin NAME --> and <!-- hand:end NAME -->), at the end
    kept = [m.group(0) for m in re.finditer(r"<!-- hand:begin (\S+) -->.*?<!-- hand:end \1 -->",
                                             out.read_text(), flags=re.S)] if out.exists() else []
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(head + sections + ["", *kept, ""] if kept else head + sections))
    print(f"wrote {out} in {time.time() - t0:.0f}s")
    print(summ.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
