"""Validated error bands of the performance model, per engine, hardware class and metric.

The bands come from the leave-one-source-out check (``benchmarks/loso.py`` writes
``catalog/data/validation_bands.csv``; docs/validation.md has the table): for every calibration source, the
engine's profile is refitted without it and the source is predicted. A band's ``median_abs_error_pct`` is the
median over those held-out sources of each source's median |predicted - measured| / measured.

A band is quoted only where it rests on at least ``MIN_HELDOUT_SOURCES`` held-out sources. Where the requested
hardware class has none, the nearest stated class (``NEAREST_CLASSES``) may stand in; such a band says so
(``fallback_from``). Where neither has enough sources, ``band_for`` returns None and :func:`describe` says
"not validated for this engine/GPU".

This module is also the one place that maps catalog hardware to a class (``hardware_class``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

#: A band needs this many held-out sources (issue 13: "a band rests on at least two held-out sources").
MIN_HELDOUT_SOURCES = 2
METRICS = ("ttft", "itl", "tpot", "e2e", "throughput")
ENGINES = ("vllm", "sglang", "trtllm")

#: Catalog hardware id -> class (GPU architecture generation; one class per non-GPU family).
HARDWARE_CLASSES: dict[str, str] = {
    "a100-80g": "ampere",
    "h100-sxm": "hopper", "h200": "hopper", "h200-nvl": "hopper", "h100-pcie": "hopper", "h100-nvl": "hopper",
    "b200": "blackwell", "gb200": "blackwell", "b300": "blackwell", "gb300": "blackwell",
    "mi300x": "cdna3", "mi325x": "cdna3", "mi355x": "cdna4", "mi350x": "cdna4",
    "l40s": "ada", "l4": "ada", "rtx-4090": "ada", "rtx-pro-6000": "blackwell",
    "tpu-v5e": "tpu", "tpu-v6e": "tpu",
    "inferentia2": "aws-neuron", "trainium2": "aws-neuron",
    "groq-lpu": "lpu", "cerebras-wse3": "wafer",
}
#: Id prefixes for entries a scenario's own catalog file (or a later catalog row) adds, tried longest first
#: after the exact table: a GB300 NVL72 variant id is still Blackwell.
_PREFIX_CLASSES: tuple[tuple[str, str], ...] = (
    ("gb3", "blackwell"), ("gb2", "blackwell"), ("b3", "blackwell"), ("b2", "blackwell"), ("h200", "hopper"),
    ("h100", "hopper"), ("h20", "hopper"), ("a100", "ampere"), ("a10", "ampere"), ("l40", "ada"), ("l4", "ada"),
    ("mi35", "cdna4"), ("mi32", "cdna3"), ("mi30", "cdna3"), ("tpu", "tpu"),
)
#: Which measured class stands in for an unmeasured one, nearest first: the same vendor's previous or next
#: generation (memory-bound decode and the engines' CPU paths carry over; tensor-core generations differ, so a
#: stand-in band is labelled as one).
NEAREST_CLASSES: dict[str, tuple[str, ...]] = {
    "blackwell": ("hopper",), "hopper": ("blackwell", "ampere"), "ampere": ("hopper",), "ada": ("ampere", "hopper"),
    "cdna4": ("cdna3",), "cdna3": ("cdna4",),
}


def hardware_class(hardware: str) -> str | None:
    """The class of a catalog hardware id (or alias), None for hardware this module cannot place."""
    key = hardware.strip().lower()
    if key in HARDWARE_CLASSES:
        return HARDWARE_CLASSES[key]
    try:
        from infersim.catalog import default_catalog

        hid = default_catalog().get_hardware(hardware).id
        if hid in HARDWARE_CLASSES:
            return HARDWARE_CLASSES[hid]
        key = hid
    except Exception:  # noqa: BLE001 - not a catalog name: try the id prefixes on the raw name
        pass
    for prefix, cls in _PREFIX_CLASSES:
        if key.startswith(prefix):
            return cls
    return None


@dataclass(frozen=True)
class Band:
    """One validated error band. ``fallback_from``: the class that was asked for when a nearest stated class
    stands in for it (None for an exact match); ``metric_from``: the metric a band was measured on when it
    stands in for another (TPOT from ITL)."""

    engine: str
    hardware_class: str
    metric: str
    median_abs_error_pct: float
    p90_abs_error_pct: float
    n_heldout_sources: int
    n_rows: int
    sources: tuple[str, ...]
    generated_by: str
    fallback_from: str | None = None
    metric_from: str | None = None

    @property
    def validated(self) -> bool:
        return self.n_heldout_sources >= MIN_HELDOUT_SOURCES

    def label(self) -> str:
        """E.g. ``model error ±18 % (6 held-out sources)``; a stand-in names the class it comes from."""
        text = f"model error ±{self.median_abs_error_pct:.0f} % ({self.n_heldout_sources} held-out sources"
        if self.fallback_from:
            text += f"; {self.hardware_class} standing in for {self.fallback_from}"
        if self.metric_from:
            text += f"; {self.metric_from.upper()} band"
        return text + ")"


@cache
def load_bands() -> tuple[Band, ...]:
    """Every row of the shipped ``validation_bands.csv``."""
    text = resources.files("infersim.catalog").joinpath("data/validation_bands.csv").read_text()
    out = []
    for r in csv.DictReader(text.splitlines()):
        out.append(Band(engine=r["engine"], hardware_class=r["hardware_class"], metric=r["metric"],
                        median_abs_error_pct=float(r["median_abs_error_pct"]),
                        p90_abs_error_pct=float(r["p90_abs_error_pct"]),
                        n_heldout_sources=int(r["n_heldout_sources"]), n_rows=int(r["n_rows"]),
                        sources=tuple(s for s in r["sources"].split(";") if s), generated_by=r["generated_by"]))
    return tuple(out)


def _lookup(engine: str, cls: str, metric: str) -> Band | None:
    for b in load_bands():
        if b.engine == engine and b.hardware_class == cls and b.metric == metric:
            return b
    return None


def band_for(engine: str, hardware: str, metric: str) -> Band | None:
    """The validated band for an engine (``vllm``, ``sglang``, ``trtllm``) on a hardware id or class and a
    metric (``ttft``, ``itl``, ``tpot``, ``e2e``, ``throughput``); the nearest stated class where the asked
    class has fewer than two held-out sources (labelled); None where no class has enough."""
    metric = metric.lower()
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    cls = hardware if hardware in set(HARDWARE_CLASSES.values()) else hardware_class(hardware)
    if cls is None:
        return None
    metrics = (metric, "itl") if metric == "tpot" else (metric,)
    for i, c in enumerate((cls, *NEAREST_CLASSES.get(cls, ()))):
        for m in metrics:
            b = _lookup(engine.lower(), c, m)
            if b is not None and b.validated:
                return Band(**{**b.__dict__, "fallback_from": cls if i else None,
                               "metric_from": m if m != metric else None})
    return None


def describe(engine: str, hardware: str, metric: str) -> str:
    """The band's label, or ``not validated for this engine/GPU``."""
    b = band_for(engine, hardware, metric)
    return b.label() if b else "not validated for this engine/GPU"
