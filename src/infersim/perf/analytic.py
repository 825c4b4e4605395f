"""Closed-form answers from the step model, for ``infersim estimate`` and throughput calibration.

Saturation throughput uses a fluid steady state of continuous batching with chunked prefill: with ``B``
sequences in flight, every request spends ``O`` decode steps; while B requests finish, B new ones are
prefilled in the token budget left over by the decodes (vLLM/TRT-LLM put decodes first, then fill the
``max_batched_tokens`` budget with prefill chunks). Over one such cycle the engine runs
``S = max(O, ceil(B*I / (max_batched_tokens - B)))`` steps, each with ``B*I/S`` prefill tokens and
``B*O/S`` decodes at mean context ``I + O/2``. Throughput is ``B*O / (S * step time)``, maximised over
the batch sizes that fit the KV cache and ``max_num_seqs``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from infersim.perf.gpu import GpuRoofline
from infersim.perf.memory import MemoryPlan


@dataclass(frozen=True)
class Estimate:
    """What ``infersim estimate`` prints; times in seconds, throughputs in tokens per second."""

    ttft_s: float
    tpot_s: float
    output_tok_s_per_user: float
    kv_capacity_tokens: int
    max_batch: int
    max_output_tok_s: float
    best_batch: int
    batch: int
    chips: int | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        if d["chips"] is None:
            d.pop("chips")
        return d


def prefill_time_s(model: GpuRoofline, n_requests: int, input_tokens: int, max_batched_tokens: int) -> float:
    """Time to prefill ``n_requests`` prompts of ``input_tokens`` arriving together (chunked)."""
    remaining = [input_tokens] * n_requests
    done = [0] * n_requests
    t = 0.0
    # requests are prefilled in order, each step filling the token budget (vLLM's FCFS chunking)
    i = 0
    while i < n_requests:
        budget, n_tok, pairs, ctx, seqs = max_batched_tokens, 0, 0.0, 0.0, 0
        j = i
        while j < n_requests and budget > 0:
            chunk = min(remaining[j], budget)
            c = done[j]
            pairs += chunk * c + chunk * (chunk + 1) / 2
            ctx += c
            n_tok += chunk
            seqs += 1
            budget -= chunk
            remaining[j] -= chunk
            done[j] += chunk
            if remaining[j] == 0:
                j += 1
            else:
                break
        t += model.step_s(n_tok, pairs, seqs, 0, 0.0, ctx)
        i = j
    return t


def steady_state_output_tok_s(model: GpuRoofline, batch: np.ndarray, input_tokens: int,
                              output_tokens: int, max_batched_tokens: int) -> np.ndarray:
    """Output tokens/s of the fluid steady state at each batch size in ``batch`` (see module doc)."""
    b = np.asarray(batch, dtype=float)
    i_tok, o_tok = float(input_tokens), float(max(output_tokens, 1))
    room = np.maximum(max_batched_tokens - b, 1.0)
    steps = np.maximum(o_tok, np.ceil(b * i_tok / room))
    pre_tok = b * i_tok / steps
    n_dec = b * o_tok / steps
    ctx = n_dec * (i_tok + o_tok / 2.0)
    pairs = b * i_tok * (i_tok + 1) / 2.0 / steps
    starts = b / steps
    total = np.array([model.step_s(float(pt), float(pr), float(st), float(nd), float(cx))
                      for pt, pr, st, nd, cx in zip(pre_tok, pairs, starts, n_dec, ctx, strict=True)])
    return b * o_tok / (steps * total)


def estimate(model: GpuRoofline, plan: MemoryPlan, input_tokens: int, output_tokens: int, *,
             batch: int = 1, max_num_seqs: int = 256, max_batched_tokens: int = 8192) -> Estimate:
    """TTFT/TPOT at ``batch`` concurrent requests and the saturation throughput at the best batch."""
    per_req = input_tokens + output_tokens
    max_batch = plan.max_batch(per_req, max_num_seqs)
    if max_batch < 1:
        max_batch = 0
    ttft = prefill_time_s(model, max(batch, 1), input_tokens, max_batched_tokens)
    ctx_sum = batch * (input_tokens + output_tokens / 2.0)
    tpot = float(model.decode_steps_s(batch, np.array([ctx_sum]))[0])
    if max_batch >= 1:
        grid = np.unique(np.round(np.geomspace(1, max_batch, num=min(max_batch, 256))).astype(int))
        tput = steady_state_output_tok_s(model, grid, input_tokens, output_tokens, max_batched_tokens)
        k = int(np.argmax(tput))
        best, best_b = float(tput[k]), int(grid[k])
    else:
        best, best_b = 0.0, 0
    return Estimate(ttft_s=ttft, tpot_s=tpot, output_tok_s_per_user=1.0 / tpot if tpot > 0 else math.inf,
                    kv_capacity_tokens=plan.kv_capacity_tokens, max_batch=max_batch,
                    max_output_tok_s=best, best_batch=best_b, batch=batch)
