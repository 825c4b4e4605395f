"""Efficiency factors and overheads of a serving engine on a GPU (the fitted part of the model).

A ``PerfParams`` is what an engine profile (``perf/profiles/*.yaml``) provides: kernel multipliers relative
to the hardware's measured ceilings (``perf/kernels.py``), the engine's CPU time per step and per sequence,
its per-request costs outside the GPU (API server, tokenisation, streaming) and its scheduling structure.
Defaults are physical priors (docs/model.md says where each comes from); profiles are fitted by
``benchmarks/loso.py``, which also checks them out of sample (leave one source out).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class PerfParams:
    """Dimensionless efficiencies (share of peak) and overheads in seconds.

    - ``compute_eff``: the engine's large-M GEMM throughput as a share of the hardware's measured matmul
      ceiling (``perf.kernels.matmul_ceiling``; 1 = cuBLAS-class kernels at their best shapes).
    - ``compute_half_tokens``: GEMM M (tokens of one micro-batch) at which GEMM efficiency is half its
      large-M value (tile quantisation and under-filled waves on few tokens); 0 disables the ramp.
    - ``moe_half_tokens``: the same for the grouped expert GEMMs, in tokens per expert.
    - ``fp4_compute_scale``: the engine's FP4 (NVFP4/MXFP4) GEMMs relative to the measured FP4 ceiling.
    - ``alltoall_latency_s``: latency of one expert-parallel all-to-all (dispatch or combine).
    - ``attn_eff``: share of peak reached by attention FLOPs (flash-attention kernels).
    - ``memory_eff``: share of peak memory bandwidth reached when streaming weights and KV cache.
    - ``step_overhead_s``: fixed time per engine step (scheduling, kernel launches, sampling set-up).
    - ``per_seq_overhead_s``: time per sequence in the step (sampling, detokenisation, bookkeeping).
    - ``layer_overhead_s``: fixed GPU time per transformer layer and step of the kernels that are not GEMMs
      (norms, rotary embedding, attention launch, activation, quantisation, MoE routing and permutation),
      paid whatever the batch: it scales with the model's layer count and is not divided by tensor
      parallelism, where ``step_overhead_s`` (the engine's CPU time per step) is the same for every model. How
      much an engine fuses these kernels differs between engines, so it is fitted per engine (0 = none).
    - ``low_precision_compute_scale``: multiplies the datasheet peak of 8- and 4-bit tensor compute (FP8, INT8,
      FP4): FP8 GEMMs and attention reach less of their 2x-BF16 peak than BF16 ones do of theirs (1 = the
      datasheet ratio).
    - ``allreduce_latency_s``: latency of one tensor-parallel all-reduce (two per layer) over 2 GPUs; over more
      it grows as the measured NCCL latency does (``perf.kernels.allreduce_latency_scale``).
    - ``comm_eff``: share of the per-direction interconnect bandwidth an all-reduce reaches.
    - ``schedule_delay_s``: time from a request's arrival at the engine to its first schedulable step
      (tokenisation, API server hop), added once per request by the engine.
    - ``schedule_delay_per_seq_s``: extra delay per request already outstanding on the replica when a request
      arrives (the API server and detokeniser share a CPU with every streaming request), added to
      ``schedule_delay_s``. Applied by the engine.
    - ``api_serial_s``: CPU time per request on the engine's single API-server process (HTTP, tokenisation),
      served first come first served: requests arriving together reach the scheduler ``api_serial_s`` apart.
      Applied by the engine, on top of the delays above.
    - ``mixed_prefill_tokens``: most prompt tokens the engine schedules in a step that also runs decodes
      (prefill/decode interleaving limit; 0 = only ``max_batched_tokens`` limits them). Applied by the engine.
    - ``prefill_priority``: 1 = while prompts wait or are being prefilled, steps run prompt chunks only and
      the running decodes pause (SGLang without mixed chunks); 0 = decodes join every step and prompt chunks
      fill the rest of the token budget (vLLM, TensorRT-LLM in-flight batching). Applied by the engine.
    """

    compute_eff: float = 1.0
    compute_half_tokens: float = 0.0
    moe_half_tokens: float = 16.0
    attn_eff: float = 0.35
    memory_eff: float = 0.80
    step_overhead_s: float = 0.003
    per_seq_overhead_s: float = 0.0
    low_precision_compute_scale: float = 1.0
    fp4_compute_scale: float = 1.0
    allreduce_latency_s: float = 8e-6
    alltoall_latency_s: float = 2e-5
    comm_eff: float = 0.7
    schedule_delay_s: float = 0.0
    schedule_delay_per_seq_s: float = 0.0
    api_serial_s: float = 0.0
    mixed_prefill_tokens: float = 0.0
    prefill_priority: float = 0.0
    layer_overhead_s: float = 0.0

    def with_(self, **changes: float) -> PerfParams:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
