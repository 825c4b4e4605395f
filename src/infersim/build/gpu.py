"""Turn a validated GPU deployment into what the engine needs: step model, memory plan, limits, knobs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from infersim.build.specdec import speculative_gpu
from infersim.catalog import Catalog, Hardware, Model
from infersim.core.errors import ScenarioError
from infersim.engine.knobs import ReplicaKnobs
from infersim.perf import GpuConfig, GpuRoofline, MemoryPlan, PerfParams, plan_memory
from infersim.perf.profiles import default_limits, kv_cache_spec, load_profile_file, shipped_profile
from infersim.scenario.platform import Deployment


@dataclass(frozen=True)
class DeploymentSetup:
    """Everything a replica of this deployment needs, computed once (an ``engine.knobs.ReplicaSetup``)."""

    name: str
    hardware: Hardware
    model: Model
    config: GpuConfig
    params: PerfParams
    perf: GpuRoofline
    memory: MemoryPlan
    max_num_seqs: int
    max_batched_tokens: int
    block_size: int
    prefix_caching: bool
    kv_blocks: int  # paged blocks per replica
    knobs: ReplicaKnobs


def kv_precision_for(precision: str, kv_precision: str) -> str:
    """'auto' keeps an 8-bit KV cache for 8-bit weights (TensorRT-LLM's FP8 checkpoints ship FP8 KV
    scales) and bf16 otherwise; an explicit value wins. Assumption documented in docs/model.md."""
    if kv_precision != "auto":
        return kv_precision
    return "fp8" if precision in ("fp8", "fp4", "nvfp4", "mxfp4") else "bf16"


def engine_block_size(dep: Deployment) -> int:
    """The KV block (tokens) of ``dep``'s engine: ``engine.block_size`` or its profile's ``kv_cache`` block
    (vLLM 16 on CUDA, SGLang's page size 1 with a token-level radix cache, TensorRT-LLM's tokens_per_block
    32; the sources are in perf/profiles/<engine>.yaml). A shared prefix is reused in whole blocks."""
    eng = dep.engine
    return eng.block_size if eng.block_size is not None else kv_cache_spec(eng.kind).block_tokens


def engine_limits(dep: Deployment, hw: Hardware) -> tuple[int, int]:
    """``(max_num_seqs, max_batched_tokens)`` of one engine core of ``dep`` on ``hw``: the scenario's values, else
    the engine's own defaults on that GPU (``perf.profiles.scheduler_limits``: vLLM 1024 / 8192 on a GPU of 70 GiB
    or more other than an A100, 256 / 2048 otherwise; SGLang's chunked prefill by GPU memory; TensorRT-LLM's
    2048 / 8192; sources in perf/profiles/<engine>.yaml)."""
    eng = dep.engine
    if eng.max_num_seqs is not None and eng.max_batched_tokens is not None:
        return eng.max_num_seqs, eng.max_batched_tokens
    d = default_limits(eng.kind, hw)
    return (eng.max_num_seqs if eng.max_num_seqs is not None else d.max_num_seqs,
            eng.max_batched_tokens if eng.max_batched_tokens is not None else d.max_batched_tokens)


def engine_knobs(dep: Deployment, params: PerfParams) -> ReplicaKnobs:
    """The replica knobs of ``dep``: its profile's parameters and KV capacity policy (``engine.capacity_scheduler``
    or the profile's ``kv_cache.capacity_scheduler``: TensorRT-LLM guaranteed_no_evict, vLLM/SGLang recompute)."""
    eng = dep.engine
    policy = eng.capacity_scheduler or kv_cache_spec(eng.kind).capacity_scheduler
    return replace(ReplicaKnobs.from_params(params), no_evict=policy == "guaranteed_no_evict")


def engine_params(dep: Deployment, path: str = "deployment", base_dir: Path | str | None = None) -> PerfParams:
    """The engine's performance parameters: its profile file (``engine.profile``, relative to ``base_dir``)
    or the shipped profile of its kind, then the ``engine.perf`` overrides."""
    eng = dep.engine
    params = shipped_profile(eng.kind)
    if eng.profile is not None:
        p = Path(eng.profile)
        if not p.is_absolute():
            p = Path(base_dir if base_dir is not None else ".") / p
        try:
            params = load_profile_file(p, base=params)
        except ScenarioError as exc:
            inner = ": ".join(x for x in (exc.path, exc.message) if x)
            line = f" line {exc.line}" if exc.line and not exc.path else ""
            raise ScenarioError(f"profile '{eng.profile}'{line}: {inner}", path=f"{path}.engine.profile") from None
    overrides = {k: v for k, v in eng.perf.model_dump().items() if v is not None}
    if overrides:
        params = params.with_(**overrides)
    return params


def tp_problem(model, tp: int) -> str | None:
    """Why tensor parallelism ``tp`` cannot shard ``model``'s attention, or None when it can.

    vLLM's rules (vllm/config.py ``ModelConfig.verify_with_parallel_config``: "Total number of attention
    heads ... must be divisible by tensor parallel size"; vllm/model_executor/models/llama.py
    ``LlamaAttention.__init__``: with at least as many KV heads as GPUs, ``total_num_kv_heads % tp_size == 0``
    partitions them; with fewer, ``tp_size % total_num_kv_heads == 0`` replicates each KV head over
    ``tp / kv_heads`` GPUs, each holding ``max(1, kv_heads // tp)`` heads; https://github.com/vllm-project/vllm).
    The replicated KV memory is in the memory plan (``perf.memory``: a GPU holds ``1 / min(tp, kv_heads)`` of a
    token's KV). Latent attention (``kv_lora_rank``, DeepSeek's MLA) keeps one latent per token on every GPU,
    so only the attention heads must divide."""
    if tp <= 1:
        return None
    heads, kv = model.num_heads, model.num_kv_heads
    if tp > heads:
        return f"tp={tp} exceeds the model's {heads} attention heads"
    if heads % tp:
        ok = [d for d in range(1, heads + 1) if heads % d == 0 and (model.kv_lora_rank or not kv or
                                                                   (kv % d == 0 if d <= kv else d % kv == 0))]
        return (f"tp={tp} does not divide the model's {heads} attention heads; expected a tp that divides them "
                f"(one of: {', '.join(map(str, ok))})")
    if kv and not model.kv_lora_rank:
        if tp <= kv and kv % tp:
            return (f"tp={tp} does not divide the model's {kv} KV heads; expected a divisor of {kv}, or a "
                    f"multiple of {kv} (then each KV head is replicated)")
        if tp > kv and tp % kv:
            return (f"tp={tp} is above the model's {kv} KV heads but not a multiple of them; expected a multiple "
                    f"of {kv} (each KV head replicated over tp/{kv} GPUs) or a divisor of {kv}")
    return None


def parallelism_problem(model, tp: int, ep: int = 1) -> tuple[str, str] | None:
    """``(field, why)`` when tensor parallelism ``tp`` with expert parallelism ``ep`` cannot serve ``model``,
    or None when it can. ``tp`` must shard the attention heads (``tp_problem``); ``ep`` > 1 needs a
    mixture of experts, and spreads its routed experts over ``ep = tp x dp`` GPUs of a stage (the schema checks
    that product), so it cannot exceed the expert count (vLLM's ``determine_expert_map`` gives each EP rank
    ``num_experts // ep`` experts and the remainder to the first ranks; with more ranks than experts some
    would hold none: https://github.com/vllm-project/vllm, vllm/model_executor/layers/fused_moe/layer.py).
    Attention data parallelism (``dp``) and pipeline stages (``pp``) need no divisibility here."""
    problem = tp_problem(model, tp)
    if problem:
        return "tp", problem
    if ep > 1:
        if not model.num_experts:
            return "ep", (f"ep={ep} needs a mixture-of-experts model; {model.id} is dense "
                          "(expected ep: 1, or a MoE model)")
        if ep > model.num_experts:
            return "ep", (f"ep={ep} exceeds {model.id}'s {model.num_experts} routed experts (expected at most "
                          f"{model.num_experts} expert-parallel ranks)")
    return None


def deployment_setup(dep: Deployment, catalog: Catalog, path: str = "deployment",
                     base_dir: Path | str | None = None) -> DeploymentSetup:
    """The setup of ``dep``; problems raise ``ScenarioError`` naming ``path`` (``CapacityError`` when the
    model does not fit the GPUs)."""
    hw = catalog.get_hardware(dep.hardware, path=f"{path}.hardware")
    model = catalog.get_model(dep.model, path=f"{path}.model")
    if not hw.supports(dep.precision):
        have = ", ".join(sorted(hw.tflops))
        raise ScenarioError(f"{hw.id} has no {dep.precision} tensor cores (it has: {have})",
                            path=f"{path}.precision")
    if hw.kind in ("lpu", "wafer"):
        raise ScenarioError(f"{hw.id} is a {hw.kind}; use a platform of kind '{hw.kind}' for it",
                            path=f"{path}.hardware")
    eng = dep.engine
    problem = parallelism_problem(model, dep.tp, dep.ep)
    if problem:
        raise ScenarioError(problem[1], path=f"{path}.{problem[0]}")
    params = engine_params(dep, path, base_dir)
    cfg = GpuConfig(hw, model, dep.precision, kv_precision_for(dep.precision, eng.kv_precision), dep.tp, dep.pp,
                    dep.dp, dep.ep)
    max_num_seqs, max_batched_tokens = engine_limits(dep, hw)
    mem = plan_memory(cfg, max_batched_tokens=max_batched_tokens, max_num_seqs=max_num_seqs,
                      gpu_memory_utilization=eng.gpu_memory_utilization)
    block_size = engine_block_size(dep)
    blocks = mem.kv_capacity_tokens // block_size
    if blocks < 1:
        raise ScenarioError("no room for a single KV-cache block", path=path)
    perf = GpuRoofline(cfg, params, overlap=eng.two_batch_overlap, engine=eng.kind)
    if eng.speculative is not None:  # speculative decoding: a step-model variant (perf/specdec.py)
        perf = speculative_gpu(eng.speculative, perf, catalog, f"{path}.engine.speculative")
    # one scheduler stands for the replica's dp attention ranks, each its own engine core with the engine's
    # max_num_seqs and max_batched_tokens (vLLM data parallelism: one EngineCore per DP rank; SGLang DP
    # attention likewise), so the replica's limits are dp times a rank's; the step model splits the batch
    # evenly over the ranks (perf.gpu, ASSUMPTION: a balanced scheduler)
    return DeploymentSetup(dep.name or dep.model, hw, model, cfg, params, perf, mem,
                           max_num_seqs * dep.dp, max_batched_tokens * dep.dp, block_size,
                           eng.prefix_caching, blocks, engine_knobs(dep, params))
