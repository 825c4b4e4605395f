"""Memory plan of one replica: weights + activation reserve + KV cache on each GPU.

vLLM reserves ``gpu_memory_utilization`` (default 0.9) of each GPU's memory; after weights and the
activation peak of a ``max_batched_tokens`` forward pass, the rest becomes paged KV cache
(vLLM docs, "gpu_memory_utilization"; the profiling run in ``Worker.determine_num_available_blocks``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infersim.core.errors import CapacityError
from infersim.perf.collectives import ACT_BYTES
from infersim.perf.gpu import GpuConfig

#: Memory a runtime keeps outside weights/activations/KV per GPU: CUDA context, NCCL buffers, CUDA
#: graphs. Assumption: ~1.5 GB, typical of what vLLM logs as "non-torch memory" on H100s.
RUNTIME_RESERVE_GB = 1.5


@dataclass(frozen=True)
class MemoryPlan:
    """Per-GPU memory budget (GB) and what it buys: ``kv_capacity_tokens`` per replica."""

    gpu_memory_gb: float
    usable_gb: float
    weights_gb: float
    activations_gb: float
    reserve_gb: float
    kv_gb: float
    kv_bytes_per_token: float  # per GPU
    kv_capacity_tokens: int  # per replica (all GPUs together hold this many tokens of context; dp ranks add up)
    kv_replication: int = 1  # GPUs of a tp group holding a copy of each KV head (tp / kv_heads when tp > kv_heads)

    def max_batch(self, tokens_per_request: int, max_num_seqs: int | None = None) -> int:
        """Most requests of ``tokens_per_request`` (input+output) that fit in the KV cache at once."""
        b = self.kv_capacity_tokens // max(int(tokens_per_request), 1)
        return int(min(b, max_num_seqs) if max_num_seqs else b)


def plan_memory(cfg: GpuConfig, *, max_batched_tokens: int = 8192, max_num_seqs: int = 256,
                gpu_memory_utilization: float = 0.9, kv_bytes_per_token: float | None = None) -> MemoryPlan:
    """Budget one GPU of the replica. Raises ``CapacityError`` with the numbers if weights don't fit."""
    m, hw = cfg.model, cfg.hardware
    gpu_gb = hw.memory_gb if hw.memory_gb > 0 else hw.sram_mb / 1e3
    usable = gpu_gb * gpu_memory_utilization
    from infersim.catalog import BYTES_PER_PARAM

    if cfg.dp == 1 and cfg.ep == 1:
        weights = m.total_params_b * BYTES_PER_PARAM[cfg.precision] / cfg.gpus  # GB (params in billions)
    else:
        weights = cfg.weight_bytes_per_gpu() / 1e9
    # Activation peak of one forward pass over max_batched_tokens (MLP up/gate is the largest
    # intermediate), plus logits for the sampled sequences in fp32.
    inter = max(m.intermediate_size, m.hidden_size) * (m.experts_per_token or 1)
    act = max_batched_tokens * (2 * inter / cfg.tp + 4 * m.hidden_size) * ACT_BYTES / 1e9
    act += max_num_seqs * m.vocab_size * 4 / cfg.tp / 1e9
    reserve = RUNTIME_RESERVE_GB
    kv_gb = usable - weights - act - reserve
    if kv_gb <= 0:
        need = weights + act + reserve
        raise CapacityError(
            f"{m.id} at {cfg.precision} does not fit on {cfg.gpus}x {hw.id} (tp={cfg.tp}, pp={cfg.pp}): "
            f"needs {need:.1f} GB per GPU ({weights:.1f} GB weights + {act:.1f} GB activations + "
            f"{reserve:.1f} GB runtime) but {usable:.1f} GB is usable "
            f"({gpu_gb:.0f} GB x {gpu_memory_utilization:g}); "
            f"try tp={_suggest_tp(weights * cfg.tp * cfg.pp, usable - act - reserve)} or a smaller precision")
    # KV heads split over the tp group; with fewer KV heads than GPUs vLLM replicates each head over
    # tp / kv_heads GPUs (every GPU keeps max(1, kv_heads // tp) heads; build.gpu.tp_problem cites the source),
    # so a token's KV takes tp / kv_heads times its size across the group; MLA's latent sits on every GPU.
    kv_shard = 1 if m.kv_lora_rank else min(cfg.tp, max(m.num_kv_heads, 1))
    replication = cfg.tp if m.kv_lora_rank else max(1, cfg.tp // max(m.num_kv_heads, 1))
    if kv_bytes_per_token is None:
        kv_bytes_per_token = m.kv_bytes_per_token(cfg.kv_precision) / kv_shard / cfg.pp
    tokens = int(kv_gb * 1e9 // kv_bytes_per_token) * cfg.dp  # each attention-dp rank holds its own sequences
    return MemoryPlan(gpu_gb, usable, weights, act, reserve, kv_gb, kv_bytes_per_token, tokens, replication)


def _suggest_tp(total_weights_gb: float, free_per_gpu_gb: float) -> int:
    if free_per_gpu_gb <= 0:
        return 8
    n = math.ceil(total_weights_gb / free_per_gpu_gb)
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))
