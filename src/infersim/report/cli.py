"""``infersim plot`` and ``infersim report`` (registered by ``infersim.cli.build_parser``)."""

from __future__ import annotations

import sys


def _cmd_plot(args) -> int:
    from infersim.report.api import write_charts

    cs = write_charts(args.results_dir, charts=[args.chart] if args.chart else None, metric=args.metric)
    for name in cs.data:
        print(f"wrote {cs.paths(name)} (and .svg)")
    for name, why in cs.skipped.items():
        print(f"{name}: not drawn: {why}", file=sys.stderr)
    for n in cs.notes:
        print(f"note: {n}", file=sys.stderr)
    return 0


def _cmd_report(args) -> int:
    from infersim.report.memo import write_report

    md, page = write_report(args.results_dir, metric=args.metric)
    print(f"wrote {md} and {page}")
    return 0


def add_parsers(sub) -> None:
    """Add the ``plot`` and ``report`` subcommands to an argparse subparsers object."""
    p = sub.add_parser("plot", help="draw charts of a run or sweep directory into DIR/charts/ (PNG and SVG)")
    p.add_argument("results_dir", metavar="RESULTS_DIR")
    p.add_argument("--chart", help="only this chart (run: latency_cdf, cost_latency, usd_per_mtok, "
                                   "fleet_timeline; sweep: sweep_lines, sweep_heatmap, tornado, cost_latency, "
                                   "usd_per_mtok)")
    p.add_argument("--metric", help="summary metric of the sweep charts (default customer_usd_per_mtok, else "
                                    "ttft_p99_s)")
    p.set_defaults(fn=_cmd_plot)
    r = sub.add_parser("report", help="write report.md and a self-contained report.html for a run or sweep")
    r.add_argument("results_dir", metavar="RESULTS_DIR")
    r.add_argument("--metric", help="summary metric the sweep findings and charts focus on")
    r.set_defaults(fn=_cmd_report)
