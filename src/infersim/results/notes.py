"""The lines printed under ``infersim run``'s table: what the windows, quantities and bands mean, and the finding
against the scenario's baseline. Definitions come from ``infersim.core.quantities``."""

from __future__ import annotations

import math

from infersim.core.quantities import QUANTITIES, WINDOWS


def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def baseline_findings(summary, baseline: str | None) -> list[str]:
    """One sentence per platform with a cost and quality against the baseline: cost saved, quality kept, latency."""
    if baseline is None or "baseline_saving_share" not in summary.columns:
        return []
    out = []
    for r in summary.to_dict(orient="records"):
        if r["platform"] == baseline:
            continue
        saved, q = _num(r.get("baseline_saving_share")), _num(r.get("baseline_quality_ratio"))
        de2e = _num(r.get("baseline_e2e_p99_change_s"))
        if math.isnan(saved):
            continue
        word = "saves" if saved >= 0 else "costs"
        text = f"{r['platform']} {word} {abs(saved) * 100:.0f} % of the customer's bill against {baseline}"
        per_month = _num(r.get("customer_usd_per_month"))
        base_row = summary[summary["platform"] == baseline]
        if len(base_row) and not math.isnan(per_month):
            diff = _num(base_row["customer_usd_per_month"].iloc[0]) - per_month
            text += f" ({'-' if diff < 0 else ''}${abs(diff):,.0f} per 30-day month at the simulated load)"
        if not math.isnan(q):
            text += f", keeps {q * 100:.1f} % of its quality"
        else:
            text += ", quality not modelled for this platform"
        if not math.isnan(de2e):
            text += f", E2E p99 {'+' if de2e >= 0 else '-'}{abs(de2e):.2f} s"
        out.append(text + ".")
    return out


def run_notes(res, band_notes: dict[str, str]) -> list[str]:
    sc = res.scenario
    lines = ["", "windows: " + "; ".join(f"{k} = {v}" for k, v in WINDOWS.items() if k != "config")]
    lines.append("counts: arrivals = arrived in warm-up + arrived in window (+ after the window); arrived in "
                 "window = done + rejected + in flight at end (+ lost).")
    lines.append("money: customer pays = of which GPU-minutes + per-token + token-API spill; margin = (customer "
                 "pays - provider cost) / customer pays.")
    lines.append("$/Mtok (all tokens) divides the bill by input + output tokens; $/Mtok (output only) divides the "
                 "same bill by output tokens alone, so it is larger by (input + output) / output (~60x for "
                 "long-prompt, short-answer code completion).")
    lines.append("offered load is the workload (the same for every platform); served is what finished.")
    lines.append(f"quality: {QUANTITIES['quality'].meaning}.")
    lines.append("run rates: the run's bill at the simulated load per hour and per 30-day month (time-billed "
                 "dollars over the billed span, per-token dollars over the arrivals).")
    scale = sc.workload.scale
    if scale is not None:
        lines.append(f"full scale: the simulated load is {scale.fraction * 100:g} % of {scale.of}; the full-scale "
                     f"rows divide by {scale.fraction:g}, a linear extrapolation, not a simulation at that load.")
    lines.append("* token-API latencies include the network round trip; every other platform's are server-side.")
    lines.append("bands: ±N% is the performance model's median absolute error on held-out sources for the "
                 "platform's engine and hardware class; n/v = not validated for this engine/GPU (fewer than 2 "
                 "held-out sources).")
    for plat, note in band_notes.items():
        lines.append(f"  {plat}: {note}")
    findings = baseline_findings(res.summary, sc.baseline)
    if findings:
        lines.append(f"against the baseline {sc.baseline}:")
        lines.extend(f"  {f}" for f in findings)
    return lines
