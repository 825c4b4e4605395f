"""Plain-text tables for the terminal (rich), from DataFrames."""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console
from rich.table import Table

from infersim.core.units import format_duration


def fmt(value, kind: str = "num") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "s":
        return format_duration(float(value))
    if kind == "pct":
        return f"{100 * float(value):.1f}%"
    if kind == "int":
        return f"{int(value):,}"
    v = float(value)
    if 0 < abs(v) < 0.01:  # per-request dollars: keep two significant digits instead of printing 0.00
        return f"{v:.2g}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


SUMMARY_COLUMNS = [
    ("platform", "platform", "str"),
    ("TTFT p50", "ttft_p50_s", "s"), ("TTFT p99", "ttft_p99_s", "s"),
    ("TPOT p50", "tpot_p50_s", "s"), ("TPOT p99", "tpot_p99_s", "s"),
    ("ITL p99", "itl_p99_s", "s"),
    ("E2E p50", "e2e_p50_s", "s"), ("E2E p99", "e2e_p99_s", "s"),
    ("SLO", "slo_attainment", "pct"),
    ("tok/s/user", "output_tok_s_per_user", "num"),
    ("req/s", "throughput_req_s", "num"), ("out tok/s", "output_tok_s", "num"),
    ("util", "utilization", "pct"), ("KV max", "kv_usage_max", "pct"),
    ("prefix hit", "prefix_hit_rate", "pct"),
    ("done", "finished", "int"), ("rejected", "rejected", "int"), ("in flight", "in_flight", "int"),
    ("lost", "lost", "int"),
]

FLEET_COLUMNS = [
    ("platform", "platform", "str"),
    ("peak replicas", "peak_replicas", "int"), ("mean replicas", "mean_replicas", "num"),
    ("GPU-h", "gpu_hours", "num"), ("GPU-minutes billed $", "cost_usd", "num"), ("idle", "idle_share", "pct"),
    ("cold starts", "cold_starts", "int"), ("cold p50", "cold_start_p50_s", "s"),
    ("cold p99", "cold_start_p99_s", "s"), ("waited cold", "requests_waited_cold_start", "int"),
    ("capacity wait", "capacity_wait_s", "s"), ("failures", "replica_failures", "int"),
    ("retried", "requests_retried", "int"),
]

CAPACITY_COLUMNS = [  # fixed-capacity platforms (lpu, wafer) and token APIs: docs/competitors.md
    ("platform", "platform", "str"), ("kind", "kind", "str"),
    ("replicas", "replicas", "int"), ("chips/replica", "units_per_replica", "int"),
    ("slots/replica", "pipeline_slots", "int"), ("peak-minute req/s", "slo_sizing_rate_req_s", "num"),
    ("replicas for SLO", "replicas_for_slo", "int"), ("owned $/h", "owned_usd_per_hour", "num"),
    ("rate-limited", "rate_limited_total", "int"),
]

ECONOMICS_COLUMNS = [
    ("platform", "platform", "str"),
    ("customer pays $", "customer_usd", "num"), ("customer $/Mtok (all tokens)", "customer_usd_per_mtok", "num"),
    ("customer $/Mtok out", "customer_usd_per_mtok_out", "num"), ("customer $/request", "customer_usd_per_request", "num"),
    ("list $/Mtok in", "price_usd_per_mtok_in", "num"), ("list $/Mtok out", "price_usd_per_mtok_out", "num"),
    ("provider cost $", "provider_cost_usd", "num"), ("provider $/Mtok", "provider_usd_per_mtok", "num"),
    ("margin", "gross_margin", "pct"), ("idle", "idle_share", "pct"),
    ("chips", "chips", "int"), ("racks", "racks", "num"), ("kW", "power_kw", "num"),
    ("quality", "quality", "pct"), ("vs strongest", "quality_ratio", "pct"),
]


def render(df: pd.DataFrame, columns, title: str | None = None, console: Console | None = None) -> None:
    if console is None:
        import sys

        console = Console() if sys.stdout.isatty() else Console(width=240)
    cols = [(h, k, t) for h, k, t in columns if k in df.columns]
    if len(cols) <= 1:  # nothing but the key column: no table
        return
    table = Table(title=title, show_lines=False, header_style="bold")
    # durations: one unit per column, named in its header (never 475us above 2.7ms in one column)
    units = {k: row_time_unit(df[k].tolist()) for _h, k, t in cols if t == "s"}
    for h, k, t in cols:
        head = f"{h} ({units[k][0]})" if k in units else h
        table.add_column(head, justify="left" if t == "str" else "right", no_wrap=True)
    for _, row in df.iterrows():
        table.add_row(*[str(row[k]) if t == "str" else
                        (fmt(row[k] / units[k][1] if row[k] == row[k] and row[k] is not None else None, "num")
                         if k in units else fmt(row[k], t)) for _h, k, t in cols])
    console.print(table)


def _present(df: pd.DataFrame, key: str) -> bool:
    return key in df.columns and not df[key].isna().all()


def comparison_sections(df: pd.DataFrame, sections) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The (title, rows) sections of a transposed comparison, keeping only metrics some platform has."""
    out = []
    for title, cols in sections:
        rows = [(h, k, t) for h, k, t in cols if k != "platform" and _present(df, k)]
        if rows:
            out.append((title, rows))
    return out


def render_comparison(df: pd.DataFrame, sections, title: str | None = None, console: Console | None = None) -> None:
    """A side-by-side table: one column per platform, one row per metric, grouped in titled sections.

    ``sections`` is a list of ``(section title, columns)`` with columns as in ``SUMMARY_COLUMNS``; metrics that
    no platform reports are left out, and a platform lacking one shows ``-``.
    """
    if console is None:
        import sys

        console = Console() if sys.stdout.isatty() else Console(width=160)
    table = Table(title=title, header_style="bold", show_lines=False)
    table.add_column("metric", justify="left", no_wrap=True)
    for name in df["platform"]:
        table.add_column(str(name), justify="right", no_wrap=True)
    for i, (sec, rows) in enumerate(comparison_sections(df, sections)):
        table.add_row(f"[bold]{sec}[/bold]", *[""] * len(df), end_section=False)
        for j, (h, k, t) in enumerate(rows):
            last = j == len(rows) - 1 and i < len(sections) - 1
            cells = [("-" if v is None or v != v else str(v)) if t == "str" else fmt(v, t) for v in df[k]]
            table.add_row(f"  {h}", *cells, end_section=last)
    console.print(table)


#: time units a row of latencies is printed in: the one that suits the row's median value
_TIME_UNITS = (("us", 1e-6), ("ms", 1e-3), ("s", 1.0))


def row_time_unit(values) -> tuple[str, float]:
    """One unit for a whole row of durations (475us, 2.7ms and 1.06s print as 0.47, 2.70 and 1,060 ms)."""
    import numpy as np

    a = np.abs(np.asarray([v for v in values if v is not None], dtype=float))
    a = a[np.isfinite(a) & (a > 0)]
    if not a.size:
        return "ms", 1e-3
    top = float(a.max())  # the smallest unit in which the row's largest value stays under 10,000
    for unit, scale in _TIME_UNITS:
        if top / scale < 1e4:
            return unit, scale
    return "s", 1.0


def _kind(unit: str) -> str:
    return {"s": "s", "share": "pct", "count": "int"}.get(unit, "num")


#: ``infersim run``'s side-by-side table: (title, window, keys). A section's window is printed in its title; a
#: section with window None mixes windows and each of its rows names its own. Keys come from
#: ``infersim.core.quantities``; rows no platform reports are left out, and so are count rows that are zero for
#: every platform where ``HIDE_ZERO`` says so (they add nothing to the reconciliation).
RUN_SECTIONS: list[tuple[str, str | None, list[str]]] = [
    ("requests (arrivals: whole run; outcomes: measurement window)", None,
     ["arrivals", "warmup_excluded", "arrived_after_window", "requests", "finished", "rejected",
      "rejected_context_length", "rejected_kv_capacity", "rejected_queue_timeout", "rejected_no_replica",
      "rejected_rate_limited", "rejected_replica_failed", "rejected_no_deployment", "in_flight", "lost"]),
    ("latency, server-side; * includes the network", "window",
     ["ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s", "itl_p99_s", "e2e_p50_s", "e2e_p99_s"]),
    ("load and service", "window",
     ["offered_req_s", "throughput_req_s", "offered_output_tok_s", "output_tok_s", "goodput_req_s", "slo_attainment",
      "output_tok_s_per_user", "utilization", "kv_usage_max", "prefix_hit_rate"]),
    ("routing quality", "run", ["quality", "quality_ratio"]),
    ("economics, USD", "run",
     ["customer_usd", "customer_gpu_minutes_usd", "customer_per_token_usd", "customer_token_api_usd",
      "provider_cost_usd", "gross_margin", "customer_usd_per_mtok", "customer_usd_per_mtok_out",
      "customer_usd_per_request", "provider_usd_per_mtok"]),
    ("run rates at the simulated load, USD", "run",
     ["customer_usd_per_hour", "customer_usd_per_month", "provider_cost_usd_per_month",
      "customer_usd_per_month_full_scale", "provider_cost_usd_per_month_full_scale"]),
    ("vs baseline", None, ["baseline_saving_share", "baseline_quality_ratio", "baseline_e2e_p99_change_s"]),
    ("GPU fleet", "run",
     ["peak_replicas", "mean_replicas", "cold_starts", "cold_start_p50_s", "cold_start_p99_s",
      "requests_waited_cold_start", "capacity_wait_s", "replica_failures", "requests_retried",
      "rate_limited_total"]),
    ("billed replica time", "billed", ["gpu_hours", "idle_share"]),
    ("configuration and sizing", "config",
     ["price_usd_per_mtok_in", "price_usd_per_mtok_out", "chips", "racks", "power_kw", "replicas",
      "units_per_replica", "pipeline_slots", "slo_sizing_rate_req_s", "replicas_for_slo", "owned_usd_per_hour"]),
]
HIDE_ZERO = {"arrived_after_window", "lost", "rejected_context_length", "rejected_kv_capacity",
             "rejected_queue_timeout", "rejected_no_replica", "rejected_rate_limited", "rejected_replica_failed",
             "rejected_no_deployment"}
#: indentation of the request-count rows, so the reconciliation reads off the page
_INDENT = {"warmup_excluded": 1, "arrived_after_window": 1, "requests": 1, "finished": 2, "rejected": 2,
           "in_flight": 2, "lost": 2, "customer_gpu_minutes_usd": 1, "customer_per_token_usd": 1,
           "customer_token_api_usd": 1, **{k: 3 for k in HIDE_ZERO if k.startswith("rejected_")}}

#: summary column -> the validated-band metric (``infersim.catalog.bands``) that qualifies it
BAND_METRIC: dict[str, str | None] = {
    **{f"{m}_{p}_s": m for m in ("ttft", "tpot", "itl", "e2e") for p in ("p50", "p90", "p99")},
    "output_tok_s_per_user": "tpot", "throughput_req_s": "throughput", "output_tok_s": "throughput",
    "goodput_req_s": "throughput", "replicas_for_slo": "throughput", "slo_sizing_rate_req_s": None,
}


def comparison_layout(baseline: str | None = None) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The sections of ``infersim run``'s side-by-side table (see ``render_comparison``): each title says its
    window, each row's label is the quantity's one name from ``infersim.core.quantities`` with its unit."""
    from infersim.core.quantities import QUANTITIES, WINDOW_SHORT

    out = []
    for title, window, keys in RUN_SECTIONS:
        if window is not None:
            title = f"{title} ({WINDOW_SHORT[window]})"
        elif title == "vs baseline":
            if baseline is None:
                continue
            title = f"vs baseline {baseline} (same workload)"
        rows = []
        for k in keys:
            q = QUANTITIES[k]
            lab = "  " * _INDENT.get(k, 0) + q.label
            if q.unit not in ("s", "share", "count") and q.unit not in lab and "$" not in lab:
                lab += f" ({q.unit})"
            if window is None and title.startswith("vs baseline"):  # a mixed section: each row names its window
                lab += f", {WINDOW_SHORT[q.window]}"
            rows.append((lab, k, _kind(q.unit)))
        out.append((title, rows))
    return out


def render_run_table(df: pd.DataFrame, *, title: str, baseline: str | None = None,
                     bands: dict[str, dict[str, str]] | None = None, token_api: set[str] | frozenset[str] = frozenset(),
                     console: Console | None = None) -> None:
    """``infersim run``'s table: a column per platform (token APIs marked *), a row per quantity.

    Latency rows print every platform in one unit (named in the row label). ``bands`` maps platform ->
    band metric -> cell suffix (``±17%``, ``n/v``): latency and capacity cells carry it.
    """
    if console is None:
        import sys

        console = Console() if sys.stdout.isatty() else Console(width=200)
    table = Table(title=title, header_style="bold", show_lines=False)
    table.add_column("metric", justify="left", no_wrap=True)
    plats = [str(p) for p in df["platform"]]
    for name in plats:
        table.add_column(name + (" *" if name in token_api else ""), justify="right", no_wrap=True)
    sections = comparison_layout(baseline)
    for i, (sec, rows) in enumerate(sections):
        shown = [(h, k, t) for h, k, t in rows if _present(df, k)
                 and not (k in HIDE_ZERO and not (pd.to_numeric(df[k], errors="coerce").fillna(0) != 0).any())]
        if not shown:
            continue
        table.add_row(f"[bold]{sec}[/bold]", *[""] * len(df), end_section=False)
        for j, (h, k, t) in enumerate(shown):
            vals = list(df[k])
            if t == "s":
                unit, scale = row_time_unit(vals)
                h = f"{h} ({unit})"
                cells = ["-" if v is None or v != v else fmt(float(v) / scale, "num") for v in vals]
            else:
                cells = [("-" if v is None or v != v else str(v)) if t == "str" else fmt(v, t) for v in vals]
            metric = BAND_METRIC.get(k)
            if bands is not None and metric:
                cells = [c if c == "-" else f"{c} {bands.get(p, {}).get(metric, 'n/v')}"
                         for c, p in zip(cells, plats, strict=True)]
            table.add_row(f"  {h}", *cells, end_section=j == len(shown) - 1 and i < len(sections) - 1)
    console.print(table)
