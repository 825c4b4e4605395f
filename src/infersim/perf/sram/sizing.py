"""Sizing SRAM pipelines (pure): units per replica to hold the weights and KV (``chips_needed``), and how many
chip sizing only; how many replicas hold a load within the SLO is ``perf.sram.load``
(it needs the pipeline, which needs this module).
"""

from __future__ import annotations

import math

from infersim.catalog import Catalog, Hardware, Model, default_catalog
from infersim.perf.sram.params import SramParams, profile_for


def resolve(model: Model | str, hardware: Hardware | str, catalog: Catalog | None) -> tuple[Model, Hardware]:
    """Catalog entries for ids (entries pass through)."""
    cat = catalog or default_catalog()
    m = cat.get_model(model) if isinstance(model, str) else model
    hw = cat.get_hardware(hardware) if isinstance(hardware, str) else hardware
    return m, hw


def unit_sram_bytes(hw: Hardware) -> float:
    """SRAM bytes of one unit (one LPU chip, one wafer)."""
    return hw.sram_mb * 1e6


def chips_needed(model: Model | str, precision: str, kv_tokens: float = 0.0, *,
                 hardware: Hardware | str = "groq-lpu", kv_precision: str = "bf16",
                 params: SramParams | None = None, catalog: Catalog | None = None) -> int:
    """Fewest units (chips or systems) whose usable SRAM holds the weights at ``precision`` plus
    ``kv_tokens`` tokens of KV cache at ``kv_precision``, rounded up to ``unit_granularity``."""
    m, hw = resolve(model, hardware, catalog)
    p = params or profile_for(hw).params
    need = m.weight_bytes(precision) + max(kv_tokens, 0.0) * m.kv_bytes_per_token(kv_precision)
    n = max(1, math.ceil(need / (unit_sram_bytes(hw) * p.sram_usable_frac) - 1e-9))
    g = max(1, p.unit_granularity)
    return int(math.ceil(n / g) * g)
