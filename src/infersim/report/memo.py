"""The memo report: ``report.md`` and a self-contained ``report.html`` (charts embedded as base64 PNG).

Both are rendered from one list of blocks (heading, paragraph, list, table, image, quote), so they say the
same thing. Sections: the scenario in plain words, the comparison table, key findings with confidence
intervals (method stated), the charts, assumptions and sources (the scenario file's header comments and
every catalog number used, with its source), and how the numbers were computed. Files are written atomically.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

from infersim.core.fileio import atomic_write_text
from infersim.report.api import ChartSet, default_metric, write_charts
from infersim.report.describe import catalog_sources, describe_scenario, scenario_header
from infersim.report.executive import run_summary, sweep_summary
from infersim.report.findings import (
    N_BOOT,
    SLO_TARGET,
    SUSTAINABILITY_HEAD,
    duration_unit,
    fmt_duration,
    fmt_param,
    fmt_value,
    is_duration,
    run_findings,
    sustainability,
    sweep_findings,
)
from infersim.report.load import RunDir, SweepDir, open_results
from infersim.report.sweep_charts import metric_label, param_label

#: The run comparison, transposed (a column per platform, so it fits a page): sections of summary columns,
#: each section titled with the time window its numbers cover (``core.quantities``). A row is shown when the
#: summary has a finite value in it.
TABLE_SECTIONS = (
    ("Latency (finished requests that arrived in the measurement window; simulated platforms server-side, "
     "token APIs including the network)",
     ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "e2e_p99_s", "output_tok_s_per_user")),
    ("Service (requests that arrived in the measurement window)",
     ("slo_attainment", "throughput_req_s", "utilization", "requests", "finished", "rejected", "in_flight")),
    ("Money (whole run, warm-up and drain included)",
     ("customer_usd", "customer_gpu_minutes_usd", "customer_token_api_usd", "provider_cost_usd", "gross_margin",
      "customer_usd_per_mtok", "provider_usd_per_mtok", "customer_usd_per_month", "provider_cost_usd_per_month",
      "customer_usd_per_month_full_scale", "provider_cost_usd_per_month_full_scale")),
    ("Capacity (as configured or sized)", ("peak_replicas", "gpu_hours", "chips")),
)
SWEEP_TABLE_METRICS = ("ttft_p99_s", "slo_attainment", "customer_usd_per_mtok", "provider_usd_per_mtok",
                       "cost_usd")
MAX_SWEEP_ROWS = 60
CHART_CAPTIONS = {
    "latency_cdf": "Latency distributions (finished requests in the measurement window).",
    "cost_latency": "Cost against p99 time to first token; circled points are on the Pareto frontier.",
    "usd_per_mtok": "Dollars per million tokens (input + output of finished requests, whole run).",
    "fleet_timeline": "The fleet over time: workload, replicas by state, queue, money spent.",
    "sweep_lines": "The chosen metric against each swept value (other parameters averaged), 95% CI bands.",
    "sweep_heatmap": "The chosen metric over two swept values.",
    "tornado": "Which swept parameters move the chosen metric most.",
}


# -- blocks -> markdown / html ---------------------------------------------------------------------------------
def _md_inline(s: str) -> str:
    return s.replace("|", "\\|")


def _html_inline(s: str) -> str:
    t = html.escape(s)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)


def to_markdown(blocks: list[tuple]) -> str:
    """Render blocks as GitHub-flavoured Markdown (images referenced by relative path)."""
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append("#" * b[1] + " " + b[2])
        elif kind == "p":
            out.append(b[1])
        elif kind == "ul":
            out.append("\n".join(f"- {x}" for x in b[1]))
        elif kind == "quote":
            out.append("\n".join(f"> {x}" if x else ">" for x in b[1]))
        elif kind == "table":
            head, rows = b[1], b[2]
            lines = ["| " + " | ".join(_md_inline(h) for h in head) + " |",
                     "|" + "|".join(":--" if i == 0 else "--:" for i in range(len(head))) + "|"]
            lines += ["| " + " | ".join(_md_inline(str(c)) for c in r) + " |" for r in rows]
            out.append("\n".join(lines))
        elif kind == "img":
            out.append(f"![{b[3]}]({b[2]})\n\n*{b[3]}*")
        elif kind == "pagebreak":
            out.append("---")
    return "\n\n".join(out) + "\n"


#: The width in CSS px of an A4 page's printable area with the 12 mm margins of ``@page`` (210 - 24 mm at 96 px
#: per inch): the browser check renders the print rules at this width.
A4_PRINTABLE_PX = 703
#: Screen and print: tables wrap their cells rather than overflow (no scrollbars, nothing hidden); no text
#: under 10 pt (13.33 px) anywhere; long tokens (paths, commands) break.
CSS = """body{font-family:Helvetica,Arial,sans-serif;font-size:16px;max-width:1180px;margin:2em auto;padding:0 1em;
color:#111;line-height:1.45;overflow-wrap:anywhere}
table{border-collapse:collapse;font-size:14px;margin:1em 0;width:100%;table-layout:auto}
th,td{border:1px solid #bbb;padding:3px 6px;text-align:right;vertical-align:top;overflow-wrap:anywhere}
th:first-child,td:first-child{text-align:left}th{background:#eee}tr.section th{text-align:left;background:#f6f6f6}
td:last-child{overflow-wrap:anywhere}code{font-family:monospace,monospace;font-size:14px;overflow-wrap:anywhere}
img{max-width:100%;height:auto;border:1px solid #ddd;box-sizing:border-box}figure{margin:1em 0}
figcaption{font-style:italic;color:#333;margin-bottom:1.5em;font-size:14px}
blockquote{color:#333;border-left:3px solid #999;margin-left:0;padding-left:1em;font-size:14px}
hr.pagebreak{border:0;border-top:1px solid #ccc;margin:2em 0}
@page{size:A4;margin:12mm}
@media print{body{max-width:none;margin:0;padding:0;font-size:11pt}table{font-size:10pt}
th,td{padding:2px 4px}code,figcaption,blockquote{font-size:10pt}hr.pagebreak{break-after:page;border:0;margin:0}
tr,figure,img{break-inside:avoid}h2,h3{break-after:avoid}}"""


def to_html(blocks: list[tuple], title: str) -> str:
    """Render blocks as one HTML page with every image embedded (base64 PNG): no external files."""
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
           f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"]
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append(f"<h{b[1]}>{_html_inline(b[2])}</h{b[1]}>")
        elif kind == "p":
            out.append(f"<p>{_html_inline(b[1])}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_html_inline(x)}</li>" for x in b[1]) + "</ul>")
        elif kind == "quote":
            out.append("<blockquote>" + "<br>".join(html.escape(x) for x in b[1]) + "</blockquote>")
        elif kind == "table":
            head, rows = b[1], b[2]
            t = ["<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"]
            for r in rows:
                if str(r[0]).startswith("**") and not any(str(c) for c in r[1:]):  # a section row
                    t.append(f"<tr class='section'><th colspan='{len(r)}'>{_html_inline(str(r[0]))}</th></tr>")
                else:
                    t.append("<tr>" + "".join(f"<td>{_html_inline(str(c))}</td>" for c in r) + "</tr>")
            out.append("".join(t) + "</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(Path(b[1]).read_bytes()).decode("ascii")
            out.append(f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(b[3])}'>"
                       f"<figcaption>{html.escape(b[3])}</figcaption></figure>")
        elif kind == "pagebreak":
            out.append("<hr class='pagebreak'>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# -- sections --------------------------------------------------------------------------------------------------
def quantity_label(col: str) -> str:
    """The one name of a summary column (``core.quantities``), with its unit where the value does not show it."""
    from infersim.core.quantities import QUANTITIES

    q = QUANTITIES.get(col)
    if q is None:
        return col
    unit = "" if q.unit in ("s", "share", "count", "USD", "USD/Mtok") or q.unit in q.label else q.unit
    return f"{q.label} ({unit})" if unit else q.label


def _fmt_row(col: str, values) -> list[str]:
    if is_duration(col):
        unit = duration_unit(pd.to_numeric(pd.Series(list(values)), errors="coerce"))
        return [fmt_duration(v, unit) if isinstance(v, int | float) else "–" for v in values]
    return [fmt_value(col, v) for v in values]


def comparison_table(summary: pd.DataFrame) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows, missing columns) of the run comparison: a column per platform, a row per quantity,
    section rows (bold, empty cells) naming each section's window; durations in one unit per row."""
    head = ["quantity"] + [str(p) for p in summary["platform"]]
    rows, missing = [], []
    if "kind" in summary.columns:
        rows.append(["platform kind"] + [str(k) for k in summary["kind"]])
    for title, cols in TABLE_SECTIONS:
        sec = []
        for c in cols:
            if c not in summary.columns:
                missing.append(c)
                continue
            vals = pd.to_numeric(summary[c], errors="coerce")
            if not vals.notna().any():
                continue
            sec.append([quantity_label(c)] + _fmt_row(c, [float(v) for v in vals]))
        if sec:
            rows.append([f"**{title}**"] + [""] * len(summary))
            rows += sec
    return head, rows, missing


def sweep_table(sw: SweepDir, metric: str) -> tuple[list[str], list[list[str]], str]:
    """(header, rows, note) for a sweep: point x platform, swept values, metric means with 95% CIs."""
    s = sw.summary
    params = [p for p in sw.parameters if p in s.columns]
    mets = [m for m in dict.fromkeys([metric, *SWEEP_TABLE_METRICS]) if f"{m}_mean" in s.columns]
    # readable names with units (the raw YAML paths and column names are in summary.csv)
    head = ["platform", "point", *[param_label(p, sw.scenario) for p in params], "replications",
            *[f"{metric_label(m)}: mean [95% CI]" for m in mets]]
    rows = []
    for _, r in s.sort_values(["point", "platform"]).head(MAX_SWEEP_ROWS).iterrows():
        cells = [str(r["platform"]), str(r["point"]), *[fmt_param(r[p]) for p in params], str(r.get("n", ""))]
        for m in mets:
            lo, hi = r.get(f"{m}_ci_lo", np.nan), r.get(f"{m}_ci_hi", np.nan)
            ci = f" [{fmt_value(m, lo)}, {fmt_value(m, hi)}]" if pd.notna(lo) and pd.notna(hi) else ""
            cells.append(fmt_value(m, r[f"{m}_mean"]) + ci)
        rows.append(cells)
    note = f"First {MAX_SWEEP_ROWS} of {len(s)} rows; all rows in summary.csv." if len(s) > MAX_SWEEP_ROWS else ""
    return head, rows, note


def _sources_blocks(entries: list[dict]) -> list[tuple]:
    blocks: list[tuple] = []
    for e in entries:
        blocks.append(("h", 3, e["title"]))
        if e["numbers"]:
            blocks.append(("table", ["number used", "value"], [[k, v] for k, v in e["numbers"]]))
        items = [f"source ({k}): {v}" for k, v in e["sources"]]
        items += [f"ASSUMPTION: {a}" for a in e["assumptions"]]
        if e.get("notes"):
            items.append(f"note: {e['notes']}")
        if items:
            blocks.append(("ul", items))
    return blocks


def build_blocks(res: RunDir | SweepDir, charts: ChartSet, metric: str | None) -> tuple[str, list[tuple]]:
    """The report's title and blocks."""
    sc = res.scenario
    name = sc.get("name") or (res.spec.get("scenario_name") if isinstance(res, SweepDir) else None) or res.path.name
    kind = "sweep" if isinstance(res, SweepDir) else "run"
    title = f"infersim {kind} report: {name}"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    b: list[tuple] = [("h", 1, title),
                      ("p", f"Results directory `{res.path}`; report generated {now} by infersim. Every number "
                            f"below is read from the results tables in that directory.")]
    notes: list[str] = []
    if isinstance(res, SweepDir):
        m = metric or default_metric(res)
        png = str(charts.paths("tornado")) if "tornado" in charts.data else None
        b += sweep_summary(res, m, png)
    else:
        png = str(charts.paths("cost_latency")) if "cost_latency" in charts.data else None
        b += run_summary(res, png)
    b.append(("pagebreak",))
    d = describe_scenario(sc)
    b += [("h", 2, "The scenario"), *[("p", "Note: " + n) for n in res.notes if n.startswith("scenario ")],
          *[("p", x) for x in d["overview"]]]
    if isinstance(res, SweepDir) and res.parameters:
        # the description is the base scenario's: say which of its values the sweep replaces at every point
        b.append(("p", "This is the base scenario. Every sweep point replaces its value of "
                  + "; ".join(param_label(p, sc) for p in res.parameters)
                  + " with the point's (listed under The sweep); the values written below for those fields are "
                    "the base values, not what was simulated."))
    if d["streams"]:
        b += [("h", 3, "Workload"), ("ul", d["streams"])]
    if d["platforms"]:
        b += [("h", 3, "Platforms"), ("ul", d["platforms"])]
    if isinstance(res, SweepDir):
        sp = res.spec
        metric = metric or default_metric(res)
        b += [("h", 3, "The sweep"),
              ("ul", [f"{p['path']}: {', '.join(str(v) for v in p.get('values', []))}" for p in sp["parameters"]]
               + [f"sampling {sp.get('sampling', '?')}, {sp.get('points', '?')} points, "
                  f"{sp.get('replications', '?')} replications per point (each with its own seed)"])]
        head, rows, note = sweep_table(res, metric)
        b += [("h", 2, "Comparison"), ("table", head, rows)] + ([("p", note)] if note else [])
        b += [("h", 2, "Key findings"), ("ul", sweep_findings(res, metric)),
              ("p", "Intervals are 95% Student-t intervals across replications; differences between platforms "
                    "are paired by replication (every platform serves the identical requests of a seed).")]
    else:
        head, rows, missing = comparison_table(res.summary)
        b += [("h", 2, "Comparison"), ("table", head, rows)]
        if missing:
            b.append(("p", "Not recorded in this run's summary (results written by an older infersim), so left "
                           "out: " + ", ".join(quantity_label(c) for c in missing) + "."))
        found, _ = run_findings(res)
        cost_found, sust_rows = sustainability(res)
        b += [("h", 2, "Key findings"), ("ul", cost_found)]
        if sust_rows:
            b += [("h", 3, "Cheapest for the customer, and sustainable for the provider?"),
                  ("table", SUSTAINABILITY_HEAD, sust_rows),
                  ("p", "Margin = (customer pays - provider cost) / customer pays, whole run. Owned systems "
                        "(LPU, wafer) cost the provider the same every hour whatever the load; rented GPUs cost "
                        "what the hours cost.")]
        b += [("h", 3, "Latency and SLO"), ("ul", found),
              ("p", f"Method: p99 intervals are percentile-bootstrap intervals ({N_BOOT} resamples of the request "
                    "ids, the same resample for every platform); they show how much the percentile depends on "
                    "which requests arrived in this run, not how much another seed would change it. SLO shares "
                    "use a Wilson score interval. 'At SLO' means at least "
                    f"{SLO_TARGET:.0%} of requests met every SLO of their stream.")]
    b.append(("h", 2, "Charts"))
    for n, df in charts.data.items():
        png = charts.paths(n)
        cap = CHART_CAPTIONS.get(n, n) + (" " + "; ".join(df.attrs.get("notes", [])) + "."
                                          if df.attrs.get("notes") else "")
        b.append(("img", str(png), f"charts/{n}.png", cap))
    if charts.skipped:
        b.append(("ul", [f"chart {n} not drawn: {why}" for n, why in charts.skipped.items()]))
    b.append(("h", 2, "Assumptions and sources"))
    header = scenario_header(res.scenario_file)
    if header:
        b += [("p", f"Stated in the scenario file `{res.scenario_file}`:"), ("quote", header)]
    else:
        b.append(("p", "The scenario file's own comments are not available (its path was not recorded or the "
                       "file moved); the catalog entries below are."))
    entries = catalog_sources(sc, res.scenario_file, notes)
    b += _sources_blocks(entries)
    all_notes = list(dict.fromkeys(notes + charts.notes + res.notes))
    if all_notes:
        b += [("h", 3, "Notes"), ("ul", all_notes)]
    b += [("h", 2, "How the numbers were computed"),
          ("ul", ["Latency, SLO and throughput: requests that arrived in the measurement window [warm-up, "
                  "duration); TTFT = first token - arrival, E2E = finish - arrival; percentiles by linear "
                  "interpolation over finished requests; rejected and unfinished requests count as SLO misses.",
                  "Money: whole run (warm-up and drain included), divided by the input + output tokens of the "
                  "requests that finished in the whole run (infersim.economics).",
                  "Pareto frontier: platforms (or sweep points) that no other is both cheaper and faster than.",
                  "Tornado (sweeps): for each parameter, the metric's mean at its lowest and highest value with "
                  "the other parameters averaged over; parameters with more than 12 sampled values use their "
                  "bottom and top quintile, non-numeric ones their levels with the lowest and highest mean."])]
    return title, b


def write_report(results: str | Path | RunDir | SweepDir, metric: str | None = None,
                 charts: ChartSet | None = None) -> tuple[Path, Path]:
    """Draw the charts (unless ``charts`` from ``write_charts`` on the same directory is given), then write
    ``report.md`` and ``report.html`` into the results directory (each atomically). ``metric``: the sweep
    metric (default as in ``write_charts``). Returns both paths."""
    res = results if isinstance(results, RunDir | SweepDir) else open_results(results)
    if charts is None:
        charts = write_charts(res, metric=metric)
    title, blocks = build_blocks(res, charts, metric)
    md, page = res.path / "report.md", res.path / "report.html"
    html_text = to_html(blocks, title)
    atomic_write_text(md, to_markdown(blocks))
    atomic_write_text(page, html_text)
    return md, page
