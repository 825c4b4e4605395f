"""Parameters of the SRAM-pipeline model and the shipped profiles that hold them (``perf/profiles/groq.yaml``,
``cerebras.yaml``: fitted values with the rows they come from; equations in ``perf.sram.pipeline``)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cache
from importlib import resources

import yaml

from infersim.catalog import Hardware
from infersim.core.errors import InfersimError, ScenarioError

#: Which shipped profile an SRAM hardware kind uses by default.
PROFILE_FOR_KIND = {"lpu": "groq", "wafer": "cerebras"}


@dataclass(frozen=True)
class SramParams:
    """Parameters of the SRAM-pipeline model (seconds, shares of peak, counts).

    - ``layer_latency_s``: fixed time a token spends per layer beyond streaming weights and computing
      (synchronisation, on-chip/fabric traversal, chip-to-chip hops on an LPU). Fitted.
    - ``sram_bw_eff``: share of the published SRAM bandwidth reached streaming weights and KV.
    - ``compute_eff``: share of the published peak FLOP/s reached (prefill and the micro-batch knee).
    - ``sram_usable_frac``: share of SRAM available for weights and KV (the rest: activations, code).
    - ``unit_granularity``: units are allocated in multiples of this (8 LPUs per GroqNode).
    - ``stages_per_unit``: most pipeline stages one unit holds (1 for an LPU; 0 = no limit: a stage per layer).
    - ``max_microbatch``: decode sequences per stage micro-batch (0 = the weight-streaming knee).
    - ``hop_latency_s``: latency of one unit-to-unit hop not already in ``layer_latency_s``.
    """

    layer_latency_s: float
    sram_bw_eff: float = 0.8
    compute_eff: float = 0.5
    sram_usable_frac: float = 0.9
    unit_granularity: int = 1
    stages_per_unit: int = 0
    max_microbatch: int = 0
    hop_latency_s: float = 0.0

    def with_(self, **changes) -> SramParams:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_INT_PARAMS = {"unit_granularity", "stages_per_unit", "max_microbatch"}
_PARAM_NAMES = {f.name for f in fields(SramParams)}


@dataclass(frozen=True)
class SramProfile:
    """A shipped profile: parameters, the default weight precision, and the whole document (sources)."""

    name: str
    hardware: str
    default_precision: str
    params: SramParams
    doc: dict


def parse_sram_params(raw: dict, file: str) -> SramParams:
    if not isinstance(raw, dict):
        raise ScenarioError("expected a 'params' mapping", file=file)
    unknown = set(raw) - _PARAM_NAMES
    if unknown:
        bad = sorted(unknown)[0]
        raise ScenarioError(f"unknown parameter '{bad}' (expected: {', '.join(sorted(_PARAM_NAMES))})",
                            file=file, path=f"params.{bad}")
    return SramParams(**{k: (int(v) if k in _INT_PARAMS else float(v)) for k, v in raw.items()})


@cache
def sram_profile(name: str) -> SramProfile:
    """The shipped profile ``groq`` or ``cerebras`` (``perf/profiles/<name>.yaml``)."""
    if name not in PROFILE_FOR_KIND.values():
        raise InfersimError(f"unknown SRAM profile '{name}' (expected one of: {', '.join(PROFILE_FOR_KIND.values())})")
    res = resources.files("infersim.perf") / "profiles" / f"{name}.yaml"
    doc = yaml.safe_load(res.read_text())
    return SramProfile(name, doc["hardware"], doc["default_precision"],
                       parse_sram_params(doc["params"], f"profiles/{name}.yaml"), doc)


def profile_for(hw: Hardware) -> SramProfile:
    """The shipped profile for an ``lpu`` or ``wafer`` accelerator."""
    if hw.kind not in PROFILE_FOR_KIND:
        raise InfersimError(f"{hw.id} is a {hw.kind}, not an SRAM-only accelerator (lpu or wafer)")
    return sram_profile(PROFILE_FOR_KIND[hw.kind])
