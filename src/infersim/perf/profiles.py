"""Serving-engine profiles: the fitted ``PerfParams`` of vLLM, SGLang and TensorRT-LLM.

Profiles are data files (``perf/profiles/<engine>.yaml``) holding the parameters and the calibration rows
they were fitted on, with the residual error per (model, TP) group. Users add their own with
``infersim calibrate --fit`` and name them in a scenario (``engine: {kind: vllm, profile: my_fit.yaml}``);
parameters a user profile omits keep the values of the shipped profile of the engine's kind.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from infersim.core.errors import ScenarioError
from infersim.perf.params import PerfParams

_PARAM_NAMES = set(PerfParams.__dataclass_fields__)
ENGINES = ("vllm", "sglang", "trtllm")
#: KV admission / preemption policies an engine profile may name (``KvCacheSpec.capacity_scheduler``)
CAPACITY_SCHEDULERS = ("recompute", "guaranteed_no_evict")


def parse_profile(data: dict, file: str, base: PerfParams | None = None) -> PerfParams:
    """The ``params`` mapping of a profile document; omitted parameters come from ``base`` (defaults)."""
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        raise ScenarioError("expected a mapping with a 'params' mapping", file=file)
    params = data["params"]
    unknown = sorted(set(params) - _PARAM_NAMES)
    if unknown:
        raise ScenarioError(f"unknown parameter '{unknown[0]}' (expected: {', '.join(sorted(_PARAM_NAMES))})",
                            file=file, path=f"params.{unknown[0]}")
    values: dict[str, float] = {}
    for k, v in params.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ScenarioError(f"expected a number, got {v!r}", file=file, path=f"params.{k}") from None
        if not math.isfinite(f) or f < 0:
            raise ScenarioError(f"expected a finite number >= 0, got {v!r}", file=file, path=f"params.{k}")
        if k.endswith("_eff") and not 0 < f <= 1:
            raise ScenarioError(f"an efficiency is a share of peak in (0, 1], got {v!r}", file=file,
                                path=f"params.{k}")
        values[k] = f
    return (base or PerfParams()).with_(**values)


@cache
def shipped_profile(engine: str) -> PerfParams:
    """The fitted parameters shipped for ``engine`` (vllm, sglang or trtllm)."""
    return parse_profile(_shipped_doc(engine), f"profiles/{engine}.yaml")


@dataclass(frozen=True)
class KvCacheSpec:
    """An engine's paged KV cache (the ``kv_cache`` mapping of its shipped profile, with its source):
    ``block_tokens`` tokens per paging block, which is also the granularity at which its prefix cache
    reuses a cached prefix (a prefix is shared in whole blocks); ``partial_block_reuse``: the shared tokens
    of a partially matching block are reused too, as a private copy of that block (TensorRT-LLM);
    ``capacity_scheduler``: how the engine admits against KV memory, ``recompute`` (admit on the tokens known
    now, preempt the newest sequence by recompute when KV runs out: vLLM, SGLang) or ``guaranteed_no_evict``
    (reserve a request's prompt + maximum output at admission, never preempt: TensorRT-LLM's default)."""

    block_tokens: int
    partial_block_reuse: bool
    source: str
    capacity_scheduler: str = "recompute"


@cache
def kv_cache_spec(engine: str) -> KvCacheSpec:
    """The shipped KV-cache facts of ``engine`` (vllm, sglang or trtllm)."""
    file = f"profiles/{engine}.yaml"
    kv = _shipped_doc(engine).get("kv_cache")
    if not isinstance(kv, dict) or not isinstance(kv.get("block_tokens"), int) or kv["block_tokens"] < 1:
        raise ScenarioError("expected a kv_cache mapping with block_tokens (an integer >= 1)", file=file,
                            path="kv_cache")
    policy = kv.get("capacity_scheduler", "recompute")
    if policy not in CAPACITY_SCHEDULERS:
        raise ScenarioError(f"expected one of {', '.join(CAPACITY_SCHEDULERS)}, got {policy!r}", file=file,
                            path="kv_cache.capacity_scheduler")
    return KvCacheSpec(kv["block_tokens"], bool(kv.get("partial_block_reuse", False)), str(kv.get("source", "")),
                       policy)


@dataclass(frozen=True)
class SchedulerLimits:
    """An engine's own default scheduler limits on one GPU (the ``scheduler_limits`` mapping of its shipped
    profile, with its source): ``max_num_seqs`` sequences running at once and ``max_batched_tokens`` tokens
    per step (the chunked-prefill budget), the values the engine picks when its server is started without
    them, which depend on the GPU's memory (vLLM, SGLang)."""

    max_num_seqs: int
    max_batched_tokens: int
    source: str


def default_limits(engine: str, hw) -> SchedulerLimits:
    """``scheduler_limits`` of ``engine`` on the catalog part ``hw`` (its memory in GiB, as the engines measure it)."""
    return scheduler_limits(engine, hw.id, hw.memory_gb * 1e9 / 2 ** 30)


@cache
def scheduler_limits(engine: str, hardware_id: str, memory_gib: float) -> SchedulerLimits:
    """The default limits of ``engine`` on a GPU ``hardware_id`` with ``memory_gib`` GiB: the first tier of the
    profile's ``scheduler_limits.tiers`` that names the hardware or whose ``below_gib`` the memory is under; a
    tier with neither takes every GPU."""
    file = f"profiles/{engine}.yaml"
    spec = _shipped_doc(engine).get("scheduler_limits")
    tiers = spec.get("tiers") if isinstance(spec, dict) else None
    if not isinstance(tiers, list) or not tiers:
        raise ScenarioError("expected a scheduler_limits mapping with a list of tiers", file=file,
                            path="scheduler_limits")
    for i, t in enumerate(tiers):
        if not (isinstance(t, dict) and isinstance(t.get("max_num_seqs"), int) and t["max_num_seqs"] >= 1
                and isinstance(t.get("max_batched_tokens"), int) and t["max_batched_tokens"] >= 16):
            raise ScenarioError("expected max_num_seqs (an integer >= 1) and max_batched_tokens (an integer >= 16)",
                                file=file, path=f"scheduler_limits.tiers[{i}]")
        named, below = t.get("hardware") or [], t.get("below_gib")
        if hardware_id in named or (below is not None and memory_gib < float(below)) or (not named and below is None):
            return SchedulerLimits(t["max_num_seqs"], t["max_batched_tokens"], str(spec.get("source", "")))
    raise ScenarioError(f"no tier for hardware {hardware_id!r} ({memory_gib:g} GiB); expected a last tier without "
                        "hardware or below_gib", file=file, path="scheduler_limits.tiers")


@cache
def _shipped_doc(engine: str) -> dict:
    # a shipped profile holds one line per calibration row (about a thousand): parsed once per process, with
    # libyaml's parser where PyYAML has it (the pure-Python one takes most of a second per file)
    res = resources.files("infersim.perf") / "profiles" / f"{engine}.yaml"
    return yaml.load(res.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 (safe)


def shipped_profile_doc(engine: str) -> dict:
    """The parsed shipped profile of ``engine`` (a copy: callers may change it)."""
    return copy.deepcopy(_shipped_doc(engine))


def load_profile_file(path: str | Path, base: PerfParams | None = None) -> PerfParams:
    """Read a profile file (``params`` mapping); parameters it omits come from ``base``."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ScenarioError(f"cannot read profile: {exc.strerror or exc}", file=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioError(f"malformed YAML: {getattr(exc, 'problem', None) or exc}", file=str(path),
                            line=mark.line + 1 if mark is not None else None) from None
    return parse_profile(data, str(path), base)
