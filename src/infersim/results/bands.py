"""The validated error band beside each latency and capacity figure of a run (reads ``infersim.catalog.bands``).

Per platform: the engine and hardware class its figures come from (a GPU fleet's deployments; an SRAM
platform's chip family), and for each band metric the cell suffix the run table prints: ``±17%`` (the
median absolute error over held-out sources) or ``n/v`` (not validated: fewer than two held-out sources).
A token API's latencies are the scenario's inputs (a published speed and an assumed spread), not the
performance model's output: no band applies, and the note says so.
"""

from __future__ import annotations

NOT_VALIDATED = "not validated for this engine/GPU"
METRICS = ("ttft", "itl", "tpot", "e2e", "throughput")


def _bands_module():
    try:
        from infersim.catalog import bands
    except ImportError:  # a checkout without the validation bands: every figure reads "not validated"
        return None
    return bands


def _sources(plat) -> list[tuple[str, str]]:
    """(engine, hardware) pairs the platform's figures come from, in deployment order, without repeats."""
    if plat.kind == "gpu_fleet":
        pairs = [(d.engine.kind, d.hardware) for d in plat.deployments]
    elif plat.kind in ("lpu", "wafer"):
        pairs = [(plat.kind, plat.kind)]
    else:
        pairs = []
    return list(dict.fromkeys(pairs))


def platform_bands(sc) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """``(cells, notes)``: platform -> metric -> cell suffix, and platform -> one line naming the bands used.

    A platform with several (engine, hardware) pairs takes, per metric, the widest band among them, and
    ``n/v`` if any pair is not validated (its figures mix what each pair contributes).
    """
    mod = _bands_module()
    cells: dict[str, dict[str, str]] = {}
    notes: dict[str, str] = {}
    for plat in sc.platforms:
        pairs = _sources(plat)
        if not pairs:
            cells[plat.name] = {m: "n/v" for m in METRICS}
            notes[plat.name] = "token API: latencies are the scenario's inputs (network included), not modelled"
            continue
        per: dict[str, str] = {}
        parts = []
        for m in METRICS:
            found = [mod.band_for(e, h, m) if mod is not None else None for e, h in pairs]
            if any(b is None for b in found):
                per[m] = "n/v"
            else:
                per[m] = f"±{max(b.median_abs_error_pct for b in found):.0f}%"
            labels = [b.label() if b is not None else NOT_VALIDATED for b in found]
            parts.append(f"{m.upper()}: " + "; ".join(dict.fromkeys(labels)))
        cells[plat.name] = per
        head = ", ".join(f"{e} on {h}" for e, h in pairs)
        texts = {p.split(": ", 1)[1] for p in parts}
        notes[plat.name] = f"{head}: {texts.pop()}" if len(texts) == 1 else f"{head}: " + " | ".join(parts)
    return cells, notes
