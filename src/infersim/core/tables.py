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
    ("GPU-h", "gpu_hours", "num"), ("billed $", "cost_usd", "num"), ("idle", "idle_share", "pct"),
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
    ("customer pays $", "customer_usd", "num"), ("customer $/Mtok", "customer_usd_per_mtok", "num"),
    ("customer $/Mtok out", "customer_usd_per_mtok_out", "num"), ("customer $/request", "customer_usd_per_request", "num"),
    ("list $/Mtok in", "price_usd_per_mtok_in", "num"), ("list $/Mtok out", "price_usd_per_mtok_out", "num"),
    ("platform cost $", "provider_cost_usd", "num"), ("platform cost $/Mtok", "provider_usd_per_mtok", "num"),
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
    for h, _k, t in cols:
        table.add_column(h, justify="left" if t == "str" else "right", no_wrap=True)
    for _, row in df.iterrows():
        table.add_row(*[str(row[k]) if t == "str" else fmt(row[k], t) for _h, k, t in cols])
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


def comparison_layout() -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The sections of ``infersim run``'s side-by-side table (see ``render_comparison``)."""
    latency = [c for c in SUMMARY_COLUMNS if c[2] == "s"]
    service = [c for c in SUMMARY_COLUMNS if c[2] != "s" and c[1] != "platform"]
    service += [c for c in ECONOMICS_COLUMNS if c[1] in ("quality", "quality_ratio")]
    money = [c for c in ECONOMICS_COLUMNS if c[1] not in ("quality", "quality_ratio", "platform")]
    fleet = [c for c in FLEET_COLUMNS if c[1] not in ("platform", "idle_share")]
    fixed = [c for c in CAPACITY_COLUMNS if c[1] not in ("platform", "kind")]
    return [("latency", latency), ("service", service), ("economics (whole run, USD)", money),
            ("GPU fleet", fleet), ("fixed capacity and rate limits", fixed)]
