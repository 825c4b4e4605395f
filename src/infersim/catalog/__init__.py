"""Hardware and model catalog: data files with sources, never one class per SKU.

The shipped entries live in ``catalog/data/hardware.yaml`` and ``catalog/data/models.yaml``; every
number carries a ``source`` (a row of the project's calibration tables or another public source) or is
listed under ``assumptions``. A scenario may name extra catalog files (``catalog: [my_gpus.yaml]``)
whose entries are added to (or replace) the shipped ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from infersim.core.errors import ScenarioError, suggest

#: Bytes per stored element for each precision name used in scenarios.
BYTES_PER_PARAM: dict[str, float] = {
    "fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5, "int4": 0.5,
    # Block-scaled FP4 with its scales: NVFP4 = E2M1 values + one FP8 (E4M3) scale per 16 values = 4.5 bits;
    # MXFP4 (OCP Microscaling v1.0) = E2M1 values + one 8-bit E8M0 scale per 32 values = 4.25 bits.
    # Sources: NVIDIA blog "Introducing NVFP4 for efficient and accurate low-precision inference"
    # (developer.nvidia.com/blog, 2025-06); OCP Microscaling Formats (MX) Specification v1.0 (2023-09).
    "nvfp4": 4.5 / 8, "mxfp4": 4.25 / 8,
}
#: Which tensor-core throughput a precision computes at (weight-only int4 computes in bf16).
COMPUTE_PRECISION: dict[str, str] = {
    "fp32": "bf16", "bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "int8": "int8", "fp4": "fp4", "int4": "bf16",
    "nvfp4": "fp4", "mxfp4": "fp4",
}
PRECISIONS = tuple(BYTES_PER_PARAM)


@dataclass(frozen=True)
class Hardware:
    """One accelerator (per chip; a GB200 entry is one Blackwell GPU, a WSE-3 entry one wafer/CS-3).

    Units: ``tflops`` dense peak per precision (no sparsity); ``memory_gb`` off-chip memory per chip
    (0 for SRAM-only parts); ``memory_bw_tbps`` bandwidth of the memory the weights stream from (HBM for
    GPUs; on-chip SRAM for LPU/wafer); ``sram_mb`` on-chip SRAM; ``interconnect_gbps`` chip-to-chip
    bandwidth per chip in GB/s as published; ``tdp_w`` watts per chip (per system for a wafer);
    ``nvlink_domain_gpus`` chips in one scale-up domain (NVLink / Infinity Fabric / ICI: 8 on an HGX board, 72
    in a GB200 NVL72 rack, 1 for a PCIe-only card), inside which collectives run at ``interconnect_gbps``;
    ``scaleout_gbps`` per-chip scale-out bandwidth in GB/s per direction (a 400 Gb/s ConnectX-7 NIC per GPU =
    50), used by collectives that span more than one domain (for PCIe-only cards: the PCIe link, which every
    peer is reached over).
    """

    id: str
    name: str
    vendor: str
    kind: str  # gpu | tpu | asic | lpu | wafer
    tflops: dict[str, float]
    memory_gb: float
    memory_bw_tbps: float
    sram_mb: float = 0.0
    interconnect_gbps: float = 0.0
    tdp_w: float = 0.0
    nvlink_domain_gpus: int = 1
    scaleout_gbps: float = 0.0
    usd_per_hour: float | None = None
    list_price_usd: float | None = None
    aliases: tuple[str, ...] = ()
    source: dict[str, str] = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()
    notes: str = ""

    def peak_flops(self, precision: str) -> float:
        """Dense peak FLOP/s for the precision's compute path, falling back to bf16."""
        comp = COMPUTE_PRECISION.get(precision, "bf16")
        tf = self.tflops.get(comp) or self.tflops.get("bf16")
        if not tf:
            raise ScenarioError(f"accelerator '{self.id}' has no TFLOPS figure for {comp} or bf16")
        return tf * 1e12

    def compute_path(self, precision: str) -> str | None:
        """The tensor-core path GEMMs on weights of ``precision`` take here: the precision's own (FP8, FP4 on
        chips with those tensor cores), else BF16 for weight-only formats (INT4 always; FP4 (MXFP4/NVFP4)
        weights on chips without FP4 tensor cores, dequantised into BF16 GEMMs, as vLLM's Marlin and Triton
        MXFP4 kernels serve gpt-oss on Hopper and Ampere); None where neither runs (FP8/INT8 without their
        tensor cores)."""
        comp = COMPUTE_PRECISION.get(precision, "bf16")
        if comp == "bf16" or comp in self.tflops:
            return comp
        if comp == "fp4" and "bf16" in self.tflops:
            return "bf16"
        return None

    def supports(self, precision: str) -> bool:
        return self.compute_path(precision) is not None


@dataclass(frozen=True)
class Model:
    """A transformer's published architecture (from its ``config.json``).

    ``total_params_b``/``active_params_b`` in billions; for MoE, ``expert_params_b`` is the parameter count
    in routed experts (all of them), so the always-active part is ``total - expert``. ``kv_lora_rank`` and
    ``rope_head_dim`` are set for multi-head latent attention (DeepSeek), which caches one compressed vector
    per layer instead of K and V per head. ``sliding_window`` applies to ``sliding_window_layers`` layers.
    ``mtp_layers``: multi-token-prediction modules (DeepSeek-V3's ``num_nextn_predict_layers``), each one more
    transformer block sharing the embedding and output head; speculative ``method: mtp`` drafts with them.
    """

    id: str
    name: str
    hf_id: str
    layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    total_params_b: float
    active_params_b: float
    max_context: int
    num_experts: int = 0
    experts_per_token: int = 0
    expert_params_b: float = 0.0
    moe_layers: int = 0
    kv_lora_rank: int = 0
    rope_head_dim: int = 0
    sliding_window: int = 0
    sliding_window_layers: int = 0
    active_includes_embedding: bool = True
    mtp_layers: int = 0  # multi-token-prediction modules shipped with the weights (num_nextn_predict_layers)
    topk_group: int = 0  # group-limited routing: a token's experts lie in at most this many groups (0: no limit)
    aliases: tuple[str, ...] = ()
    source: dict[str, str] = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()
    notes: str = ""

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    def weight_bytes(self, precision: str) -> float:
        """Bytes of all weights at ``precision`` (embeddings included)."""
        return self.total_params_b * 1e9 * BYTES_PER_PARAM[precision]

    def kv_elements_per_token(self) -> float:
        """KV-cache elements stored per token, all layers (full-attention layers only for sliding ones)."""
        if self.kv_lora_rank:
            return float(self.layers * (self.kv_lora_rank + self.rope_head_dim))
        return float(2 * self.layers * self.num_kv_heads * self.head_dim)

    def kv_bytes_per_token(self, kv_precision: str) -> float:
        """Bytes of KV cache one token of context occupies (upper bound for sliding-window models)."""
        return self.kv_elements_per_token() * BYTES_PER_PARAM[kv_precision]

    def attention_flops_per_context_token(self) -> float:
        """FLOPs one new token spends attending to one token of context (QK^T and AV, all layers)."""
        qk_dim = self.head_dim + (self.rope_head_dim if self.kv_lora_rank else 0)
        return 2.0 * self.layers * self.num_heads * (qk_dim + self.head_dim)

    def expected_active_expert_fraction(self, tokens: float) -> float:
        """Expected share of routed experts a batch of ``tokens`` touches (uniform routing)."""
        if not self.is_moe or tokens <= 0:
            return 0.0
        p_untouched = (1.0 - self.experts_per_token / self.num_experts) ** tokens
        return 1.0 - p_untouched


@dataclass(frozen=True)
class Catalog:
    hardware: dict[str, Hardware]
    models: dict[str, Model]

    def _lookup(self, table: dict[str, Any], name: str, what: str, path: str | None):
        if name in table:
            return table[name]
        key = _norm(name)
        for entry in table.values():
            if key == _norm(entry.id) or key in {_norm(a) for a in entry.aliases}:
                return entry
        raise ScenarioError(f"unknown {what} '{name}'{_suggest_entry(name, table)}", path=path)

    def get_hardware(self, name: str, path: str | None = None) -> Hardware:
        """Look up an accelerator by id or alias; unknown names raise with a suggestion."""
        return self._lookup(self.hardware, name, "accelerator", path)

    def get_model(self, name: str, path: str | None = None) -> Model:
        """Look up a model by id, alias or Hugging Face id; unknown names raise with a suggestion."""
        return self._lookup(self.models, name, "model", path)

    def extended(self, extra: Catalog) -> Catalog:
        return Catalog({**self.hardware, **extra.hardware}, {**self.models, **extra.models})


def _suggest_entry(name: str, table: dict[str, Any]) -> str:
    """Suggest the id of the entry whose id or alias is closest to ``name``."""
    import difflib

    names: dict[str, str] = {}
    for entry in table.values():
        for n in (entry.id, *entry.aliases):
            names.setdefault(n.lower(), entry.id)
    close = difflib.get_close_matches(str(name).lower(), list(names), n=3, cutoff=0.5)
    if not close:
        return ""
    return f" (did you mean '{names[close[0]]}'?)"


def _norm(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


_HW_FIELDS = {f for f in Hardware.__dataclass_fields__}
_MODEL_FIELDS = {f for f in Model.__dataclass_fields__}


def _entries(data: Any, section: str, file: str) -> list[dict]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise ScenarioError(f"expected a list of entries, got {type(data).__name__}", file=file, path=section)
    return data


def _build(cls, fields: set[str], raw: dict, file: str, path: str):
    if not isinstance(raw, dict):
        raise ScenarioError("expected a mapping", file=file, path=path)
    unknown = set(raw) - fields
    if unknown:
        bad = sorted(unknown)[0]
        raise ScenarioError(f"unknown field '{bad}'{suggest(bad, fields)}", file=file, path=f"{path}.{bad}")
    kwargs = dict(raw)
    for tup in ("aliases", "assumptions"):
        if tup in kwargs:
            v = kwargs[tup] or ()
            kwargs[tup] = (v,) if isinstance(v, str) else tuple(v)
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # missing required fields
        msg = str(exc).split("__init__() ")[-1]
        raise ScenarioError(msg.replace("positional ", ""), file=file, path=path) from None
    for name in ("memory_bw_tbps", "layers", "hidden_size"):
        v = getattr(obj, name, None)
        if v is not None and (not isinstance(v, int | float) or v <= 0 or math.isnan(v)):
            raise ScenarioError(f"expected a positive number, got {v!r}", file=file, path=f"{path}.{name}")
    return obj


def load_catalog_file(path: str | Path, *, text: str | None = None) -> Catalog:
    """Read a catalog file with optional top-level ``hardware:`` and ``models:`` lists."""
    file = str(path)
    try:
        data = yaml.safe_load(text if text is not None else Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ScenarioError(f"malformed YAML: {getattr(exc, 'problem', exc)}", file=file,
                            line=None if line is None else line + 1) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read catalog file: {exc.strerror}", file=file) from None
    if not isinstance(data, dict):
        raise ScenarioError("expected a mapping with 'hardware' and/or 'models' lists", file=file)
    unknown = set(data) - {"hardware", "models"}
    if unknown:
        raise ScenarioError("unknown section (expected 'hardware' or 'models')", file=file, path=sorted(unknown)[0])
    hw = {}
    for i, raw in enumerate(_entries(data.get("hardware"), "hardware", file)):
        h = _build(Hardware, _HW_FIELDS, raw, file, f"hardware[{i}]")
        hw[h.id] = h
    models = {}
    for i, raw in enumerate(_entries(data.get("models"), "models", file)):
        m = _build(Model, _MODEL_FIELDS, raw, file, f"models[{i}]")
        models[m.id] = m
    return Catalog(hw, models)


@cache
def default_catalog() -> Catalog:
    """The shipped catalog (hardware + models), loaded once."""
    base = resources.files("infersim.catalog") / "data"
    hw = load_catalog_file("hardware.yaml", text=(base / "hardware.yaml").read_text())
    md = load_catalog_file("models.yaml", text=(base / "models.yaml").read_text())
    return hw.extended(md)
