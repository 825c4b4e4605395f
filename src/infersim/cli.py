"""The ``infersim`` command line. Bad input prints one message naming the file and path; exit status 2."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from infersim.core.errors import InfersimError, ScenarioError


def _cmd_validate(args) -> int:
    from infersim.validate import load_scenario

    bad = 0
    for f in args.files:
        try:
            load_scenario(f)
            print(f"{f}: ok")
        except InfersimError as exc:
            print(str(exc), file=sys.stderr)
            bad += 1
    return 2 if bad else 0


def _cmd_schema(args) -> int:
    from infersim.scenario.schema import Scenario

    print(json.dumps(Scenario.model_json_schema(), indent=2))
    return 0


def _cmd_catalog(args) -> int:
    import pandas as pd

    from infersim.catalog import default_catalog
    from infersim.core.tables import render

    cat = default_catalog()
    if args.what in ("hardware", "all"):
        df = pd.DataFrame([{
            "id": h.id, "kind": h.kind, "bf16": h.tflops.get("bf16"), "fp8": h.tflops.get("fp8"),
            "fp4": h.tflops.get("fp4"), "mem GB": h.memory_gb, "TB/s": h.memory_bw_tbps, "SRAM MB": h.sram_mb,
            "link GB/s": h.interconnect_gbps, "TDP W": h.tdp_w, "$/h": h.usd_per_hour, "list $": h.list_price_usd,
        } for h in cat.hardware.values()])
        render(df, [(c, c, "str" if c in ("id", "kind") else "num") for c in df.columns],
               title="Accelerators (dense peak TFLOPS per precision; sources in catalog/data/hardware.yaml)")
    if args.what in ("models", "all"):
        df = pd.DataFrame([{
            "id": m.id, "layers": m.layers, "hidden": m.hidden_size, "heads": m.num_heads, "kv heads": m.num_kv_heads,
            "head dim": m.head_dim, "params B": m.total_params_b, "active B": m.active_params_b,
            "experts": f"{m.experts_per_token}/{m.num_experts}" if m.num_experts else "-",
            "KV KB/token (bf16)": m.kv_bytes_per_token("bf16") / 1024, "context": m.max_context,
        } for m in cat.models.values()])
        render(df, [(c, c, "str" if c in ("id", "experts") else "num") for c in df.columns],
               title="Models (from published config.json; sources in catalog/data/models.yaml)")
    if args.what in ("prices", "speeds", "gpus"):
        return _cmd_market(args)
    return 0


def _cmd_market(args) -> int:
    """``infersim catalog prices|speeds|gpus``: the dated market rows with their sources."""
    import pandas as pd

    from infersim.catalog import market
    from infersim.core.tables import render

    if args.what == "prices":
        rows = market.prices(args.model, args.provider, args.as_of)
        df = pd.DataFrame([{
            "model": r.catalog_model, "provider": r.provider, "model id": r.model_id, "as of": r.as_of,
            "$/Mtok in": r.input_usd_per_mtok, "cached in": r.cached_input_usd_per_mtok,
            "$/Mtok out": r.output_usd_per_mtok, "batch -%": r.batch_discount_pct,
            "source": r.source_url or r.source, "retrieved": r.retrieved} for r in rows])
        title = "Token prices ($ per million tokens; catalog/data/token_prices.csv)"
        text = ("model", "provider", "model id", "as of", "source", "retrieved")
    elif args.what == "speeds":
        rows = market.speeds(args.model, args.provider, args.as_of)
        df = pd.DataFrame([{
            "model": r.catalog_model, "provider": r.provider, "hardware": r.hardware, "date": r.date,
            "tok/s/user": r.output_tok_s_per_user, "TTFT s": r.ttft_s, "TTFT kind": r.ttft_kind,
            "input tok": r.input_tokens, "measured by": r.measured_by, "source": r.source_url or r.source,
            "retrieved": r.retrieved} for r in rows])
        title = "Published per-user speeds (catalog/data/provider_speeds.csv)"
        text = ("model", "provider", "hardware", "date", "TTFT kind", "measured by", "source", "retrieved")
    else:
        if args.term is not None and args.term not in market.TERMS:
            raise InfersimError(f"--term: unknown term '{args.term}' (expected one of: {', '.join(market.TERMS)})")
        rows = market.gpu_rentals(args.model, term=args.term)
        df = pd.DataFrame([{
            "hardware": r.hardware, "provider": r.provider, "class": r.provider_class, "quarter": r.quarter,
            "term": r.term, "$/GPU-h": r.usd_per_gpu_hour, "source": r.source_url, "retrieved": r.retrieved}
            for r in rows if args.provider is None or market.provider_slug(args.provider)
            in market.provider_slug(r.provider)])
        title = "GPU rental ($ per GPU-hour; catalog/data/gpu_rental.csv)"
        text = ("hardware", "provider", "class", "quarter", "term", "source", "retrieved")
    if df.empty:
        print(f"no {args.what} rows match", file=sys.stderr)
        return 1
    render(df, [(c, c, "str" if c in text else "num") for c in df.columns], title=title)
    return 0


def _cmd_estimate(args) -> int:
    from infersim.estimate import run_estimate

    est, setup = run_estimate(model=args.model, hardware=args.hardware, tp=args.tp, pp=args.pp,
                              precision=args.precision, input_tokens=args.input, output_tokens=args.output,
                              batch=args.batch, engine=args.engine, max_num_seqs=args.max_num_seqs,
                              max_batched_tokens=args.max_batched_tokens, chips=args.chips, dp=args.dp,
                              ep=args.ep, prefill_replicas=args.prefill_replicas,
                              decode_replicas=args.decode_replicas, decode_tp=args.decode_tp,
                              decode_dp=args.decode_dp, decode_ep=args.decode_ep, placement=args.placement,
                              first_token=args.first_token)
    if args.json:
        print(json.dumps(est.as_dict()))
        return 0
    from infersim.core.units import format_duration as fd

    layout = f"tp{args.tp}" + (f" pp{args.pp}" if args.pp > 1 else "") + (f" dp{args.dp}" if args.dp > 1 else "") \
        + (f" ep{args.ep}" if args.ep > 1 else "")
    if args.prefill_replicas is not None:
        print(f"{setup['model']} on {setup['hardware']} at {args.precision} ({args.engine} profile), "
              f"{args.prefill_replicas}P{args.decode_replicas}D: prefill replicas of {setup['gpus']} GPUs ({layout}), "
              f"decode replicas of {setup['decode_gpus']} GPUs, KV over {setup['link']}; "
              f"{args.input} in / {args.output} out")
        print(f"  lone request: TTFT {fd(est.ttft_s)} = prefill {fd(est.prefill_s)} + KV transfer "
              f"{fd(est.transfer_s)} + first decode step")
        print(f"  batch {est.batch} per decode replica: TPOT {fd(est.tpot_s)}, "
              f"{est.output_tok_s_per_user:,.1f} output tok/s per user")
        print(f"  capacity: prefill pool {est.prefill_req_s:,.2f} req/s, decode pool {est.decode_req_s:,.2f} req/s "
              f"(best decode batch {est.best_decode_batch:,}); the {est.bottleneck} pool binds")
        print(f"  saturation: {est.max_output_tok_s:,.0f} output tok/s, {est.output_tok_s_per_gpu:,.0f} per GPU "
              f"({est.gpus} GPUs)")
        return 0
    gpus = f"{setup.get('gpus', args.tp * args.pp)}x {setup['hardware']}"
    print(f"{setup['model']} on {gpus} ({layout}) at {args.precision} ({args.engine} profile), "
          f"{args.input} in / {args.output} out")
    print(f"  batch {est.batch}: TTFT {fd(est.ttft_s)}, TPOT {fd(est.tpot_s)}, "
          f"{est.output_tok_s_per_user:,.1f} output tok/s per user")
    print(f"  KV cache: {est.kv_capacity_tokens:,} tokens; largest batch that fits: {est.max_batch:,}")
    print(f"  saturation: {est.max_output_tok_s:,.0f} output tok/s at batch {est.best_batch:,}")
    if est.chips is not None:
        print(f"  chips/systems holding the model: {est.chips}")
    return 0


def _cmd_run(args) -> int:
    from infersim.core.fileio import check_out_dir
    from infersim.core.tables import (
        CAPACITY_COLUMNS,
        ECONOMICS_COLUMNS,
        FLEET_COLUMNS,
        SUMMARY_COLUMNS,
        render,
        render_run_table,
    )
    from infersim.core.units import duration_option_s
    from infersim.results.notes import run_notes
    from infersim.results.simulate import simulate
    from infersim.validate import check_footprint, load_scenario

    sc = load_scenario(args.file)
    duration = duration_option_s(args.duration)
    if duration is not None:
        try:
            check_footprint(sc, Path(args.file).parent, duration)
        except ScenarioError as exc:
            raise ScenarioError(f"with --duration {args.duration}: {exc.message}", file=args.file,
                                path=exc.path) from None
    out = Path(args.out) if args.out else Path("results") / f"{Path(args.file).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_out_dir(out, marker="summary.json")  # before simulating: a run's results must never be lost at the end
    from infersim.sweep.platforms import platforms_runner

    executor = args.executor or ("dask" if args.scheduler else "local")
    if args.scheduler and executor != "dask":
        raise InfersimError("--scheduler needs --executor dask")
    runner = platforms_runner(executor, workers=args.workers, scheduler=args.scheduler)
    t0 = time.perf_counter()
    progress = not args.quiet and sys.stderr.isatty()
    # a large run stages its requests rows next to the output (same file system), never all in memory
    res = simulate(sc, seed=args.seed, duration_s=duration, base_dir=Path(args.file).parent, progress=progress,
                   platforms_runner=runner, spill_dir=out.parent)
    wall = time.perf_counter() - t0
    res.meta["wall_s"] = wall
    res.meta["scenario_file"] = str(Path(args.file).resolve())
    res.save(out)
    chart_note = _default_charts(out) if not args.no_charts else ""
    if not args.quiet:
        title = (f"{sc.name}: {res.meta['requests_generated']:,} requests generated over "
                 f"{res.scenario.duration:g}s of arrivals; measurement window {sc.warmup:g}s to "
                 f"{res.scenario.duration:g}s (warm-up excluded), whole run includes warm-up and drain")
        if args.wide:
            render(res.summary, SUMMARY_COLUMNS, title=title)
            render(res.summary, ECONOMICS_COLUMNS, title="economics (whole run: what the customer pays, what "
                                                         "serving costs the platform)")
            if "cost_usd" in res.summary.columns:
                render(res.summary, FLEET_COLUMNS, title="fleet (whole run; billed per the deployments' billing)")
            if "replicas_for_slo" in res.summary.columns or "rate_limited_total" in res.summary.columns:
                fixed = res.summary[res.summary["kind"].isin(["lpu", "wafer", "token_api"])]
                render(fixed, CAPACITY_COLUMNS, title="fixed capacity and rate limits (docs/competitors.md)")
        else:
            from infersim.results.bands import platform_bands

            cells, notes = platform_bands(res.scenario)
            token_api = {p.name for p in res.scenario.platforms if p.kind == "token_api"}
            render_run_table(res.summary, title=title, baseline=res.scenario.baseline, bands=cells,
                             token_api=token_api)
            for line in run_notes(res, notes):
                print(line)
        _print_market_blocks(res)
        print(f"wrote {out}/ (summary.json, requests.parquet, timeline.parquet) in {wall:.1f}s{chart_note}")
    return 0


#: The per-customer block of ``infersim run`` (results.customers; its own block after the comparison table).
CUSTOMER_COLUMNS = [
    ("platform", "platform", "str"), ("customer", "customer", "str"), ("requests", "requests", "int"),
    ("SLO", "slo_attainment", "pct"), ("revenue $", "revenue_usd", "num"), ("revenue share", "revenue_share", "pct"),
    ("cost $", "cost_usd", "num"), ("cost share", "cost_share", "pct"), ("margin", "gross_margin", "pct"),
    ("$/Mtok", "revenue_usd_per_mtok", "num"), ("cost $/Mtok", "cost_usd_per_mtok", "num"),
]


def _print_market_blocks(res) -> None:
    """The customers table (when the workload names customers) and the price row each platform charges."""
    from infersim.core.tables import render

    if len(res.customers):
        render(res.customers, CUSTOMER_COLUMNS, title="customers (whole run; revenue and cost split by each "
                                                     "customer's tokens, results.customers)")
    cited = res.meta.get("price_sources", {})
    if cited:
        print("prices charged (market rows, catalog/data/token_prices.csv):")
        for name, src in cited.items():
            print(f"  {name}: {src}")


def _default_charts(out: Path) -> str:
    """Write the run's default charts after its tables; a chart failure is reported, never loses the tables."""
    from infersim.report import write_default_charts

    try:
        cs = write_default_charts(out)
    except Exception as exc:  # the tables are saved; a chart bug must not turn the run into a failure
        print(f"infersim: charts not written ({type(exc).__name__}: {exc}); the tables in {out}/ are complete",
              file=sys.stderr)
        return ""
    return f"; charts in {cs.out_dir}/ ({len(cs.data)} drawn)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="infersim", description="Simulate AI inference platforms side by side.")
    p.add_argument("--version", action="version", version="infersim 0.1.0")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="simulate a scenario and print the comparison table")
    r.add_argument("file")
    r.add_argument("--out", help="output directory (default results/<scenario>-<timestamp>)")
    r.add_argument("--seed", type=int)
    r.add_argument("--duration", help="override the scenario's duration, e.g. 90s or 10m")
    r.add_argument("--quiet", action="store_true")
    r.add_argument("--wide", action="store_true", help="one wide table per section (a row per platform) instead of "
                                                       "the side-by-side comparison")
    r.add_argument("--no-charts", action="store_true", help="do not draw the default charts into OUT/charts/")
    r.add_argument("--executor", choices=["local", "dask", "serial"],
                   help="where the platforms run: local processes (default, when the run is large enough to "
                        "pay for them), Dask distributed, or one after the other in this process")
    r.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (implies --executor dask)")
    r.add_argument("--workers", type=int, help="worker processes (default: one per platform, at most the cores)")
    r.set_defaults(fn=_cmd_run)

    v = sub.add_parser("validate", help="check scenario files without running them")
    v.add_argument("files", nargs="+")
    v.set_defaults(fn=_cmd_validate)

    s = sub.add_parser("schema", help="print the JSON Schema of a scenario file")
    s.set_defaults(fn=_cmd_schema)

    c = sub.add_parser("catalog", help="list the hardware and model catalog")
    c.add_argument("what", nargs="?", choices=["hardware", "models", "all", "prices", "speeds", "gpus"],
                   default="all")
    c.add_argument("--model", default=None, help="prices/speeds: a catalog model; gpus: a catalog hardware id")
    c.add_argument("--provider", default=None, help="prices/speeds/gpus: a provider (e.g. groq, aws-bedrock)")
    c.add_argument("--as-of", default=None, help="prices/speeds: rows dated on or before (YYYY, YYYY-MM, YYYY-MM-DD)")
    c.add_argument("--term", default=None, help="gpus: on_demand, reserved or spot")
    c.set_defaults(fn=_cmd_catalog)

    e = sub.add_parser("estimate", help="quick analytic estimate for one deployment")
    e.add_argument("--model", required=True)
    e.add_argument("--hardware", required=True)
    e.add_argument("--tp", type=int, default=1)
    e.add_argument("--pp", type=int, default=1)
    e.add_argument("--dp", type=int, default=1, help="attention data-parallel ranks in the replica")
    e.add_argument("--ep", type=int, default=1, help="expert parallelism of MoE layers: 1 or tp x dp")
    e.add_argument("--prefill-replicas", type=int, default=None,
                   help="disaggregated: prefill replicas (with --decode-replicas; e.g. 1 and 3 for 1P3D)")
    e.add_argument("--decode-replicas", type=int, default=None, help="disaggregated: decode replicas")
    e.add_argument("--decode-tp", type=int, default=None, help="disaggregated: decode replicas' tp (default --tp)")
    e.add_argument("--decode-dp", type=int, default=None, help="disaggregated: decode replicas' dp (default --dp)")
    e.add_argument("--decode-ep", type=int, default=None, help="disaggregated: decode replicas' ep")
    e.add_argument("--placement", default="rdma", choices=["same_domain", "rdma"],
                   help="disaggregated: where the KV travels (NVLink inside one domain, or GPUDirect RDMA)")
    e.add_argument("--first-token", default="decode", choices=["decode", "prefill"],
                   help="disaggregated: which pool streams the first token (decode: vLLM's proxy, Dynamo; "
                        "prefill: DistServe)")
    e.add_argument("--precision", default="bf16")
    e.add_argument("--input", type=int, default=1000)
    e.add_argument("--output", type=int, default=1000)
    e.add_argument("--batch", type=int, default=1)
    e.add_argument("--engine", default="trtllm", choices=["vllm", "sglang", "trtllm"])
    e.add_argument("--max-num-seqs", type=int, default=None,
                   help="default: the engine's own on this GPU (vLLM 1024 or 256, SGLang 1024, TensorRT-LLM 2048)")
    e.add_argument("--max-batched-tokens", type=int, default=None,
                   help="default: the engine's own on this GPU (vLLM 8192 or 2048, SGLang 2048-16384, "
                        "TensorRT-LLM 8192)")
    e.add_argument("--chips", type=int, default=None, help="chips/systems for lpu/wafer hardware")
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=_cmd_estimate)
    from infersim.calibrate.cli import add_parser as add_calibrate

    add_calibrate(sub)
    from infersim.sweep.cli import add_parser as add_sweep

    add_sweep(sub)
    from infersim.sweep.solve import add_parser as add_solve

    add_solve(sub)
    from infersim.report.cli import add_parsers as add_report

    add_report(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except InfersimError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("infersim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
