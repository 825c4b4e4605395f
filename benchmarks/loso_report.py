"""Write what ``benchmarks/loso.py`` found: the shipped profiles, the validation bands and docs/validation.md's
leave-one-source-out section."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from loso_sources import BANDS, BEGIN, DOC, END, ENGINES, PROFILES, saturates, summarise

GOALS = {"ttft": 20.0, "itl": 10.0, "e2e": 10.0, "throughput": 10.0}
TITLES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM"}
METRICS = ("ttft", "itl", "e2e", "throughput")


def _r(v: float) -> float:
    return float(f"{v:.5g}") if v and math.isfinite(v) else float(v)


def per_source_table(records: list[dict], sources) -> pd.DataFrame:
    s = summarise(records)
    rows = []
    for src in sources:
        sub = s[s["source"] == src.id]
        if sub.empty:
            continue
        e = {"source": src.id, "engine": src.engine, "hardware": src.hardware_class, "rows": src.n_rows}
        for m in METRICS:
            hit = sub[sub["metric"] == m]
            e[m] = float(hit["median"].iloc[0]) if len(hit) else math.nan
        e["saturated"] = sum(saturates(r) for r in records if r["source"] == src.id)
        rows.append(e)
    return pd.DataFrame(rows)


def engine_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Median over sources of each source's median |error|, per engine and metric, with the source count."""
    rows = []
    for e in ENGINES:
        sub = table[table["engine"] == e]
        rec = {"engine": e, "sources": len(sub)}
        for m in METRICS:
            v = sub[m].dropna()
            rec[m] = float(v.median()) if len(v) else math.nan
            rec[f"{m}_n"] = len(v)
        rows.append(rec)
    return pd.DataFrame(rows)


def bands(held: list[dict], sources, date: str) -> pd.DataFrame:
    """One band per (engine, hardware class, metric): median over held-out sources of their median |error|,
    p90 of the held-out rows' |error| with every source weighted alike (each row 1 / its source's rows: a source
    of 200 rows does not outvote four of five, as it would not in the median), how many sources and rows."""
    cls = {s.id: (s.engine, s.hardware_class) for s in sources}
    t = pd.DataFrame(held).dropna(subset=["error_pct"])
    t["abs"] = t["error_pct"].abs()
    t["engine"] = t["source"].map(lambda s: cls[s][0])
    t["hardware_class"] = t["source"].map(lambda s: cls[s][1])
    out = []
    for (eng, hc, m), g in t.groupby(["engine", "hardware_class", "metric"], sort=True):
        per_src = g.groupby("source")["abs"].median()
        out.append({"engine": eng, "hardware_class": hc, "metric": m,
                    "median_abs_error_pct": round(float(per_src.median()), 1),
                    "p90_abs_error_pct": round(float(np.quantile(
                        g["abs"].to_numpy(), 0.9, method="inverted_cdf",  # weights: numpy >= 2.0
                        weights=1.0 / g.groupby("source")["abs"].transform("size").to_numpy())), 1),
                    "n_heldout_sources": int(len(per_src)), "n_rows": int(len(g)),
                    "sources": ";".join(sorted(per_src.index)), "generated_by": f"benchmarks/loso.py {date}"})
    return pd.DataFrame(out)


def _fmt(v: float) -> str:
    return "" if v != v else f"{v:.1f}%"


def _md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines)


def before_after(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame | None:
    """Each band of this run next to the band the previous run wrote (median |error| and held-out sources)."""
    if old is None or old.empty:
        return None
    key = ["engine", "hardware_class", "metric"]
    m = old[key + ["median_abs_error_pct", "n_heldout_sources"]].merge(
        new[key + ["median_abs_error_pct", "n_heldout_sources"]], on=key, how="outer", suffixes=(" before", " after"))
    m = m.sort_values(key).reset_index(drop=True)
    for c in ("median_abs_error_pct before", "median_abs_error_pct after"):
        m[c] = m[c].astype(float)
    for c in ("n_heldout_sources before", "n_heldout_sources after"):
        m[c] = m[c].map(lambda v: "" if v != v else str(int(v)))
    return m.rename(columns={"median_abs_error_pct before": "median before", "median_abs_error_pct after": "median after",
                             "n_heldout_sources before": "sources before", "n_heldout_sources after": "sources after"})


def doc_section(out: dict, args, date: str, previous: pd.DataFrame | None = None) -> str:
    srcs = out["sources"]
    held_t = per_source_table(out["held"], srcs)
    ins_t = per_source_table(out["insample"], srcs)
    both = held_t[["source", "engine", "hardware", "rows", *METRICS, "saturated"]].rename(
        columns={m: f"{m} held-out" for m in METRICS} | {"saturated": "saturated rows"})
    for m in METRICS:
        both[f"{m} in-sample"] = ins_t.set_index("source").loc[both["source"], m].to_numpy()
    eng_h, eng_i = engine_summary(held_t), engine_summary(ins_t)
    lines = [BEGIN, "", "## Leave-one-source-out (out of sample)", "",
             f"Generated by `python benchmarks/loso.py` on {date} ({out['seconds']:.0f} s; fits of at most "
             f"{args.max_nfev} evaluations, refits of {args.loso_nfev}, {args.per_group} rows per source, model, TP "
             "and load kind in a fit" + (f"; one latency row in {args.eval_every} of each source checked"
                                        if getattr(args, "eval_every", 1) > 1 else "") + "); do not edit by hand. "
             "A *source* (a row below) is one publication's measurements of one engine on one hardware class; "
             "a *fold* holds out a whole publication: its rows under every name (the shared engine-latency rows "
             "and `aiconfigurator_silicon` are one; the shared apex rows and `apex_plus` one; the two dstack posts "
             "one; the two TensorRT-LLM H100 throughput tables one), so no harness leaks from the fit into its "
             "own check. For every fold, the engine's profile is refitted on the engine's *other* publications, "
             "starting from the same physical priors as the all-source fit (never from the all-source fit, which "
             "saw the fold), and the fold's sources are predicted; physical priors (measured kernels, matmul "
             "ceilings, link speeds, datasheets) are never fitted, and each fitted parameter carries a residual "
             f"toward its prior (weight {getattr(args, 'prior_weight', 0.0):g}: about one row's worth of evidence), "
             "so a fold left with few or one-sided rows cannot push it to a bound. Errors are median |predicted - measured| / measured over "
             "the source's rows; *saturated rows* count held-out rows whose predicted TTFT exceeds 10x the "
             "measured one and 2 s (the simulator's queue grew where the real server held). A publication that is "
             "its engine's only one is predicted from the physical priors alone. A band (last section) counts "
             "held-out publications.", "",
             "Per engine (median over held-out sources of each source's median |error|; goals TTFT <= 20 %, "
             "ITL <= 10 %, E2E <= 10 %, throughput <= 10 %):", "",
             _md(eng_h.rename(columns={m: f"{m} held-out" for m in METRICS})), "",
             "In sample (every source in the fit):", "", _md(eng_i), "",
             *(["The shipped profiles were not rewritten by this run (`--no-profiles`): they are an earlier "
                "all-source fit, kept so that the shipped scenarios' numbers do not move with a change to the "
                "validation harness alone; the in-sample rows above are this run's all-source fit. The held-out "
                "errors and bands here are those of the fitting procedure on every source today, one publication "
                "held out at a time; they are the statement of out-of-sample error the run output quotes.", ""]
               if getattr(args, "no_profiles", False) else []), "Per source:", "", _md(both), ""]
    if out["skipped"]:
        why: dict[str, int] = {}
        for m in out["skipped"]:
            key = re.sub(r" row_id [^:]+:", ":", m)
            why[key] = why.get(key, 0) + 1
        lines += ["Not simulated: " + "; ".join(f"{k} ({n} rows)" if n > 1 else k for k, n in why.items()) + ".", ""]
    lines += ["Validation bands (`src/infersim/catalog/data/validation_bands.csv`): one per engine, hardware class "
              "and metric; a band quoted next to a number needs at least two held-out sources (publications), so "
              "these combinations are validated: " + (", ".join(
                  f"{r.engine} {r.hardware_class} {r.metric} ±{r.median_abs_error_pct:.0f} %"
                  for r in out["bands"].itertuples() if r.n_heldout_sources >= 2) or "none") +
              "; every other engine, hardware class and metric prints \"not validated for this engine/GPU\".", ""]
    ba = before_after(previous, out["bands"])
    if ba is not None:
        lines += [(out.get("before_note") or "Bands before this run (the previous `validation_bands.csv`)")
                  + " and after (median |error| over held-out sources):", "", _md(ba), ""]
    lines += [END]
    return "\n".join(lines)


def profile_doc(engine: str, out: dict, date: str) -> dict:
    srcs = [s for s in out["sources"] if s.engine == engine]
    ins = per_source_table([r for r in out["insample"] if r["source"] in {s.id for s in srcs}], srcs)
    held = per_source_table([r for r in out["held"] if r["source"] in {s.id for s in srcs}], srcs)
    p = out["full"][engine]
    per_src = []
    for s in srcs:
        e = {"source": s.id, "title": s.title, "rows": s.n_rows}
        for tab, tag in ((ins, "in_sample"), (held, "held_out")):
            hit = tab[tab["source"] == s.id]
            if len(hit):
                e[tag] = {m: round(float(hit[m].iloc[0]), 1) for m in METRICS if hit[m].iloc[0] == hit[m].iloc[0]}
        per_src.append(e)
    rows = [{"source": r["source"], "row": r["row"] if isinstance(r["row"], str) else int(r["row"]), "metric": r["metric"], "measured": _r(r["measured"]),
             "predicted": _r(r["predicted"]), "error_pct": float(round(r["error_pct"], 1)) if r["error_pct"] == r["error_pct"]
             else None} for r in out["insample"] if r["source"] in {s.id for s in srcs}]
    return {
        "engine": engine, "version": "per source (see sources)", "fitted": date,
        "method": ("benchmarks/loso.py: scipy least_squares (soft-L1) on log(predicted/measured) of mean ITL (weight 1), "
                   "mean TTFT and E2E (0.5) of every latency row simulated by infersim.calibrate.runner, and saturation "
                   "throughput (1, analytic steady state), over all of the engine's sources; the parameters not in "
                   "fitted_params are physical priors (docs/model.md). Held-out errors: each source predicted by a "
                   "refit without it."),
        "fitted_on": [f"{s.id}: {s.title} ({s.n_rows} rows)" for s in srcs if s.rows or s.tput or s.mlperf],
        "params": {k: _r(v) for k, v in p.as_dict().items()},
        "fitted_params": out["fitted"][engine],
        "client_start_default": {"vllm": "staggered"}.get(engine, "burst"),
        "sources": per_src,
        "median_abs_error_pct": {m: round(float(ins[m].median()), 1) for m in METRICS if ins[m].notna().any()},
        "rows": rows,
    }


def write_all(out: dict, args, date: str) -> None:
    header = "# {t} engine profile, fitted by benchmarks/loso.py; do not edit by hand.\n"
    for e in ([] if getattr(args, "no_profiles", False) else ENGINES):
        doc = profile_doc(e, out, date)
        path = PROFILES / f"{e}.yaml"
        # hand-kept, sourced engine facts (the prefix cache's block size, the scheduler limits) survive a refit
        if path.exists():
            kept = yaml.safe_load(path.read_text()) or {}
            for block in ("kv_cache", "scheduler_limits"):
                if block in kept:
                    doc[block] = kept[block]
        rows = doc.pop("rows")
        text = header.format(t=TITLES[e]) + yaml.safe_dump(doc, sort_keys=False, width=110)
        text += "rows:\n" + "".join("- " + yaml.safe_dump(r, default_flow_style=True, sort_keys=False,
                                                           width=10_000).strip() + "\n" for r in rows)
        (PROFILES / f"{e}.yaml").write_text(text)
    previous = pd.read_csv(BANDS) if BANDS.exists() else None
    before = getattr(args, "before", None)
    if before:  # a baseline run pickled by --save (the procedure before a change), checked the same way
        import pickle

        with open(before, "rb") as f:
            base = pickle.load(f)
        previous = bands(base["held"], base["sources"], date)
        out = {**out, "before_note": getattr(args, "before_note", "") or f"Bands of the baseline run {Path(before).name}"}
    out = {**out, "bands": bands(out["held"], out["sources"], date)}
    out["bands"].to_csv(BANDS, index=False)
    section = doc_section(out, args, date, previous)
    text = DOC.read_text() if DOC.exists() else "# Validation\n"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: section, text, flags=re.S)
    else:
        head, sep, rest = text.partition("\n## ")
        text = head.rstrip() + "\n\n" + section + "\n\n" + (sep.strip() + " " + rest if sep else "")
    DOC.write_text(text)
    print("wrote " + ("" if getattr(args, "no_profiles", False) else f"{PROFILES}/*.yaml, ") + f"{BANDS}, {DOC}")
