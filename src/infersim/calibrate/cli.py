"""``infersim calibrate``: predicted vs measured for a CSV of measured runs, and an optional profile fit.

    infersim calibrate MEASURED.csv [--fit] [--json] [--out DIR] [--profile FILE] [--processes N]

Every valid row is simulated (``infersim.calibrate.runner``) with the shipped profile of its engine (or
``--profile``); the table shows measured, predicted and the signed % error per metric, then the median and
worst absolute % error per metric and over all metrics. Malformed rows (and rows that cannot be simulated)
are reported on stderr with their row number and skipped. ``--json`` prints one object instead: ``rows``
(per-row results), ``skipped``, ``summary`` (median absolute % error per metric), ``worst`` (worst absolute %
error per metric) and ``overall``. ``--out DIR`` writes ``comparison.csv`` (a row per run and metric) and
``predicted_vs_measured.png``. ``--fit`` also fits a profile per engine present in the rows and writes it
to ``DIR/<engine>-profile.yaml`` (DIR = ``--out`` or the current directory); use it in a scenario with
``engine: {kind: <engine>, profile: <file>}``.

Exit status: 0 when at least one row was compared, 2 when the file cannot be read or no row is usable.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from infersim.core.fileio import atomic_write, atomic_write_text, json_default

#: Parameters ``--fit`` moves, in order of how much a handful of latency rows can say about them; with fewer than
#: two residuals (measured metrics) per name, only the first ones are fitted (the rest keep the shipped values).
FIT_ORDER = ("memory_eff", "step_overhead_s", "compute_eff", "schedule_delay_s", "allreduce_latency_s",
             "per_seq_overhead_s", "attn_eff", "compute_half_tokens")


def add_parser(sub) -> None:
    c = sub.add_parser("calibrate", help="compare the simulator with measured runs (and fit a profile)",
                       description="Simulate every measured run of MEASURED.csv and print predicted vs measured.")
    c.add_argument("measured", help="CSV of measured runs (one row per run; see docs/validation.md)")
    c.add_argument("--fit", action="store_true", help="also fit an engine profile per engine and write it")
    c.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    c.add_argument("--out", help="directory for comparison.csv, predicted_vs_measured.png (and fitted profiles)")
    c.add_argument("--profile", help="simulate with this profile file instead of the shipped engine profiles")
    c.add_argument("--processes", type=int, default=1, help="worker processes for the simulations (default 1)")
    c.set_defaults(fn=_cmd)


def _cmd(args) -> int:
    from infersim.calibrate.fit import error_table
    from infersim.calibrate.measured import read_measured
    from infersim.core.errors import InfersimError

    src = args.measured
    rows, problems = read_measured(src)
    if args.profile and not Path(args.profile).is_file():
        raise InfersimError(f"{args.profile}: no such file (--profile)")
    skipped = [{"row": p.row, "message": p.message} for p in problems]
    sims = _predict(rows, args.profile, args.processes) if rows else []
    ok = []
    for s in sims:
        if s.error:
            skipped.append({"row": s.row.row, "message": f"cannot be simulated: {s.error}"})
        else:
            ok.append(s)
    skipped.sort(key=lambda d: d["row"])
    for sk in skipped:
        print(f"{src}: row {sk['row']}: {sk['message']} (skipped)", file=sys.stderr)
    if not ok:
        raise InfersimError(f"{src}: no usable row ({len(skipped)} skipped)" if skipped or rows
                            else f"{src}: no data rows")
    table = error_table(ok)
    out_dir = Path(args.out) if args.out else None
    fits: list[dict] = []
    if args.fit:
        fits = _fit(ok, out_dir or Path("."), args, quiet=args.json)
    result = _result(src, ok, table, skipped, fits)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / "comparison.csv", lambda f: table.to_csv(f, index=False))
        chart(table, out_dir / "predicted_vs_measured.png", title=f"{Path(src).name}: simulated vs measured",
              source=str(src))
        result["outputs"] = [str(out_dir / "comparison.csv"), str(out_dir / "predicted_vs_measured.png")] + [
            f["profile"] for f in fits]
    if args.json:
        print(json.dumps(result, indent=1, default=json_default))
    else:
        _print(result, table)
    return 0


def _params(engine: str, profile: str | None):
    """``profile`` over the shipped profile of ``engine`` (None: the shipped profile, via the scenario)."""
    from infersim.perf.profiles import load_profile_file, shipped_profile

    return load_profile_file(profile, base=shipped_profile(engine)) if profile else None


def _predict(rows, profile: str | None, processes: int):
    from infersim.calibrate.fit import predict

    sims = []
    for engine in sorted({r.engine for r in rows}):
        sims += predict([r for r in rows if r.engine == engine], _params(engine, profile),
                        processes=max(1, processes))
    return sorted(sims, key=lambda s: s.row.row)


def _num(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def _result(src: str, sims, table, skipped, fits) -> dict:
    from infersim.calibrate.fit import summarize_errors

    rows = []
    errors = {(r.row, r.metric): (r.predicted, r.error_pct) for r in table.itertuples()}  # fit.error_table's
    for s in sims:
        r = s.row
        metrics = {}
        for m, meas in r.metrics.items():
            pred, err = errors[(r.row, m)]
            metrics[m] = {"measured": meas, "predicted": _num(round(pred, 4)),
                          "error_pct": _num(round(err, 3)), "abs_error_pct": _num(round(abs(err), 3))}
        rows.append({"row": r.row, "model": r.model, "hardware": r.hardware, "tp": r.tp, "engine": r.engine,
                     "layout": r.layout(), "label": r.label(),
                     "precision": r.precision, "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
                     "concurrency": r.concurrency, "rate_per_s": r.rate_per_s, "num_requests": r.num_requests,
                     "finished": s.finished, "preemptions": s.preemptions, "metrics": metrics})
    summ = summarize_errors(table)
    abs_err = table["error_pct"].abs().dropna()
    return {
        "file": src,
        "rows": rows,
        "skipped": skipped,
        "summary": {r.metric: round(float(r.median_abs_pct), 3) for r in summ.itertuples()},
        "worst": {r.metric: round(float(r.worst_abs_pct), 3) for r in summ.itertuples()},
        "overall": {"median_abs_pct": _num(round(float(abs_err.median()), 3)) if len(abs_err) else None,
                    "worst_abs_pct": _num(round(float(abs_err.max()), 3)) if len(abs_err) else None,
                    "rows": len(rows), "comparisons": int(len(abs_err)), "skipped": len(skipped)},
        **({"fit": fits} if fits else {}),
    }


def _print(result: dict, table) -> None:
    import pandas as pd

    from infersim.core.tables import render

    t = table.copy()
    layout = {r["row"]: r["layout"] for r in result["rows"]}  # dp/ep, TBO, xPyD: '' for a plain row
    t["run"] = [f"{e} {m} tp{tp} " + (f"{layout[n]} " if layout.get(n) else "") + f"{i}/{o} "
                + (f"c={int(c)}" if c == c and c is not None else f"{q:g}/s")
                for n, e, m, tp, i, o, c, q in zip(t.row, t.engine, t.model, t.tp, t.input_tokens, t.output_tokens,
                                                   t.concurrency, t.rate_per_s, strict=True)]
    t["error"] = [f"{e:+.1f}%" if e == e else "-" for e in t.error_pct]
    render(t, [("row", "row", "int"), ("run", "run", "str"), ("metric", "metric", "str"),
               ("measured", "measured", "num"), ("predicted", "predicted", "num"), ("error", "error", "str")],
           title=f"{result['file']}: predicted vs measured ({result['overall']['rows']} runs)")
    summ = pd.DataFrame([{"metric": m, "median": f"{v:.1f}%", "worst": f"{result['worst'][m]:.1f}%"}
                         for m, v in result["summary"].items()])
    ov = result["overall"]
    summ = pd.concat([summ, pd.DataFrame([{"metric": "overall", "median": f"{ov['median_abs_pct']:.1f}%",
                                            "worst": f"{ov['worst_abs_pct']:.1f}%"}])], ignore_index=True)
    render(summ, [("metric", "metric", "str"), ("median |error|", "median", "str"),
                  ("worst |error|", "worst", "str")], title="absolute % error")
    if ov["skipped"]:
        print(f"{ov['skipped']} row(s) skipped (see the messages above)")
    for f in result.get("fit", []):
        print(f"fitted {f['engine']} profile on {f['rows']} rows -> {f['profile']}: median |error| "
              + ", ".join(f"{m} {v:.1f}%" for m, v in f["summary"].items()))
    for p in result.get("outputs", []):
        print(f"wrote {p}")


def _fit(sims, out_dir: Path, args, quiet: bool) -> list[dict]:
    """Fit one profile per engine present in the rows; write it; return what was written."""
    from infersim.calibrate.fit import DEFAULT_WEIGHTS, error_table, fit_rows, predict, profile_document
    from infersim.perf.profiles import shipped_profile

    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    engines = sorted({s.row.engine for s in sims})
    for engine in engines:
        rows = [s.row for s in sims if s.row.engine == engine]
        n_res = sum(1 for r in rows for m in r.metrics if m in DEFAULT_WEIGHTS)
        if n_res == 0:
            print(f"--fit: no ttft_mean_ms or itl_mean_ms in the {engine} rows; nothing to fit", file=sys.stderr)
            continue
        start = _params(engine, args.profile) or shipped_profile(engine)
        names = FIT_ORDER[:max(1, min(len(FIT_ORDER), n_res // 2))]  # at least two residuals per parameter
        if not quiet:
            print(f"fitting {engine} ({len(rows)} rows, parameters: {', '.join(names)}) ...", file=sys.stderr)
        res = fit_rows(rows, start, names, processes=max(1, args.processes), max_nfev=40)
        table = error_table(predict(rows, res.params, processes=max(1, args.processes)))
        doc = profile_document(
            engine, res.params, table, version=rows[0].engine_version or "", fitted_on=str(args.measured),
            method=("infersim calibrate --fit: scipy least_squares (soft-L1) on log(predicted/measured) of mean "
                    f"ITL (weight 1) and mean TTFT (weight 0.5) over simulated rows; fitted: {', '.join(names)}; "
                    f"the rest from the {'profile ' + args.profile if args.profile else 'shipped ' + engine} "
                    "profile"),
            extra={"fitted_params": list(names), "fit_evaluations": res.evaluations})
        import yaml

        path = out_dir / f"{engine}-profile.yaml"
        atomic_write_text(path, f"# {engine} profile fitted by 'infersim calibrate --fit {args.measured}'.\n"
                                f"# Use it in a scenario: engine: {{kind: {engine}, profile: {path.name}}}\n"
                                + yaml.safe_dump(doc, sort_keys=False, width=110))
        from infersim.calibrate.fit import summarize_errors

        summ = summarize_errors(table)
        results.append({"engine": engine, "rows": len(rows), "profile": str(path), "params": res.params.as_dict(),
                        "fitted_params": list(names),
                        "summary": {r.metric: round(float(r.median_abs_pct), 3) for r in summ.itertuples()}})
    return results


#: words and unit of a measured metric's column, for axis labels
METRIC_WORDS = {"ttft": "time to first token", "itl": "inter-token latency", "tpot": "time per output token",
                "e2e": "end-to-end latency", "output_tok_s": "output throughput"}


def metric_axis_label(metric: str) -> str:
    """``ttft_mean_ms`` -> 'time to first token, mean (ms)'; ``output_tok_s`` -> 'output throughput (tokens/s)'."""
    unit = "ms" if metric.endswith("_ms") else "tokens/s" if metric.endswith("tok_s") else ""
    stem = metric.removesuffix("_ms")
    for key, words in METRIC_WORDS.items():
        if stem == key or stem.startswith(key + "_"):
            stat = stem[len(key):].strip("_").replace("_", " ")
            label = words + (f", {stat}" if stat else "")
            break
    else:
        label = stem.replace("_", " ")
    return f"{label} ({unit})" if unit else label


def chart(table, path: Path, title: str = "predicted vs measured", source: str = "") -> None:
    """Log-log scatter of predicted vs measured per metric (axes in the metric's unit, ticks at 1-2-5 of each
    decade), with the y = x line, a +-20 % band and a provenance line (measured file, infersim version)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    t = table.dropna(subset=["predicted", "measured"])
    t = t[(t["predicted"] > 0) & (t["measured"] > 0)]
    metrics = list(dict.fromkeys(t["metric"]))
    n = max(len(metrics), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 5.0), squeeze=False, layout="constrained")
    for ax, m in zip(axes[0], metrics, strict=False):
        g = t[t["metric"] == m]
        for eng, ge in g.groupby("engine", sort=True):
            ax.scatter(ge["measured"], ge["predicted"], s=14, alpha=0.7, label=str(eng))
        lo = float(min(g["measured"].min(), g["predicted"].min())) * 0.8
        hi = float(max(g["measured"].max(), g["predicted"].max())) * 1.25
        xs = np.geomspace(lo, hi, 50)
        ax.plot(xs, xs, color="black", lw=1)
        ax.fill_between(xs, xs * 0.8, xs * 1.2, color="grey", alpha=0.15, lw=0, label="±20 %")
        ax.set_xscale("log")
        ax.set_yscale("log")
        decades = math.log10(hi / lo)
        # labelled ticks in every range: each integer of a decade when the range spans about one, 1-2-5 up to
        # three decades, the powers of ten beyond
        subs = tuple(float(k) for k in range(1, 10)) if decades < 1.3 else (1.0, 2.0, 5.0) if decades < 3.5 else (1.0,)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=30))
            axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        med = g["error_pct"].abs().median()
        unit = metric_axis_label(m)
        ax.set_title(f"{unit.split(' (')[0]}\nmedian |error| {med:.1f} % over {len(g)} rows", fontsize=10)
        ax.set_xlabel(f"measured {unit}", fontsize=10)
        ax.set_ylabel(f"simulated {unit}", fontsize=10)
        ax.legend(fontsize=9, loc="upper left")
    fig.suptitle(title, fontsize=11)
    from infersim.core.version import installed_version

    ver = installed_version()
    # where the numbers came from, inside the canvas: the layout leaves the bottom strip to it
    fig.text(0.01, 0.01, f"shaded: within ±20 % of measured; line: simulated = measured. Measured: "
             f"{Path(source).name if source else 'the calibration file'}; simulated by infersim {ver} (infersim "
             "calibrate), one run per measured row", fontsize=8.5, color="#444444", style="italic", va="bottom",
             wrap=True)
    fig.get_layout_engine().set(rect=(0, 0.07, 1, 0.93))
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
