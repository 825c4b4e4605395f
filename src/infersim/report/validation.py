"""How far to trust a platform's latency figures: the validated error band for its engine and hardware
(``infersim.catalog.bands``, from the leave-one-source-out check in docs/validation.md), in words for the
report. A band rests on at least two held-out sources; otherwise the report says "not validated for this
engine/GPU". Platforms that no engine model predicts (SRAM systems, token APIs) say what their numbers are.
"""

from __future__ import annotations

from infersim.catalog.bands import describe

NOT_VALIDATED = "not validated for this engine/GPU"


def _gpu_pairs(p: dict) -> list[tuple[str, str]]:
    pairs = []
    for d in p.get("deployments", []) or []:
        eng = (d.get("engine") or {}).get("kind")
        if eng and d.get("hardware"):
            pairs.append((str(eng), str(d["hardware"])))
    return list(dict.fromkeys(pairs))


def platform_band(p: dict, metric: str) -> str:
    """The band of ``metric`` (``ttft``, ``tpot``, ``itl``, ``e2e``, ``throughput``) for a saved scenario
    platform entry, e.g. ``vllm on h100-sxm: model error ±26 % (3 held-out sources)``."""
    kind = p.get("kind")
    if kind == "token_api":
        return "the provider's published medians, replayed (not a model prediction; includes the network)"
    if kind in ("lpu", "wafer"):
        return (f"{NOT_VALIDATED} (SRAM-pipeline model set to published provider speeds; no held-out "
                "measurements)")
    pairs = _gpu_pairs(p)
    if not pairs:
        return NOT_VALIDATED
    return "; ".join(f"{e} on {h}: {describe(e, h, metric)}" for e, h in pairs)


def bands_by_platform(sc: dict, metric: str) -> dict[str, str]:
    """``{platform name: band text}`` for every platform of the saved scenario."""
    return {str(p.get("name")): platform_band(p, metric) for p in sc.get("platforms", []) or []}
