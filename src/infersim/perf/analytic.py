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


@dataclass(frozen=True)
class DisaggEstimate:
    """What ``infersim estimate --prefill-replicas P --decode-replicas D`` prints (seconds, tokens per second).

    A lone request's ``ttft_s`` = its prefill on an idle prefill replica + the KV transfer on an idle link +
    the first decode step (the decode replica at ``batch``), or the prefill alone when the prefill side streams
    the first token (``first_token="prefill"``, DistServe's design); ``tpot_s`` is a decode step at ``batch`` sequences
    per decode replica. Capacity per pool in requests/s: the prefill pool's ``P / (prefill seconds per prompt
    of a full token budget)`` (decodes never share its steps), the decode pool's ``D x best decode batch /
    (output tokens x its step)`` over the batches its KV cache holds at ``input + output`` tokens each; the
    deployment saturates at the lesser (``bottleneck``), the mechanism test's "lesser pool capacity"
    (tests/test_disagg.py) in closed form."""

    ttft_s: float
    prefill_s: float
    transfer_s: float
    tpot_s: float
    output_tok_s_per_user: float
    prefill_req_s: float
    decode_req_s: float
    bottleneck: str
    max_output_tok_s: float
    output_tok_s_per_gpu: float
    best_decode_batch: int
    decode_kv_capacity_tokens: int
    gpus: int
    batch: int

    def as_dict(self) -> dict:
        return asdict(self)


def disagg_estimate(prefill: GpuRoofline, prefill_plan: MemoryPlan, decode: GpuRoofline, decode_plan: MemoryPlan,
                    transfer_s: float, input_tokens: int, output_tokens: int, *, prefill_replicas: int,
                    decode_replicas: int, batch: int = 1, max_num_seqs: int = 256,
                    max_batched_tokens: int = 8192, first_token: str = "decode") -> DisaggEstimate:
    """The closed-form view of a ``prefill_replicas`` P ``decode_replicas`` D deployment (``DisaggEstimate``);
    ``transfer_s`` is one prompt's KV transfer on an idle link (``perf.kv_link.KvLink.transfer_s``)."""
    i_tok, o_tok = int(input_tokens), int(max(output_tokens, 1))
    pre_one = prefill_time_s(prefill, 1, i_tok, max_batched_tokens)
    ctx0 = float(batch * i_tok)
    first = float(decode.decode_steps_s(batch, np.array([ctx0]))[0])
    tpot = float(decode.decode_steps_s(batch, np.array([batch * (i_tok + o_tok / 2.0)]))[0])
    # prefill capacity: enough prompts to fill the token budget several times over, served back to back
    n = max(8, 8 * math.ceil(max_batched_tokens / max(i_tok, 1)))
    n = min(n, max(prefill_plan.max_batch(i_tok, max_num_seqs), 1) * 8)
    pre_req_s = prefill_replicas * n / prefill_time_s(prefill, n, i_tok, max_batched_tokens)
    max_b = decode_plan.max_batch(i_tok + o_tok, max_num_seqs)
    if max_b >= 1:
        grid = np.unique(np.round(np.geomspace(1, max_b, num=min(max_b, 256))).astype(int))
        tok_s = np.array([b / float(decode.decode_steps_s(int(b), np.array([b * (i_tok + o_tok / 2.0)]))[0])
                          for b in grid])
        k = int(np.argmax(tok_s))
        dec_req_s, best_b = decode_replicas * float(tok_s[k]) / o_tok, int(grid[k])
    else:
        dec_req_s, best_b = 0.0, 0
    req_s = min(pre_req_s, dec_req_s)
    gpus = prefill_replicas * prefill.cfg.gpus + decode_replicas * decode.cfg.gpus
    return DisaggEstimate(
        ttft_s=pre_one if first_token == "prefill" else pre_one + transfer_s + first, prefill_s=pre_one, transfer_s=transfer_s, tpot_s=tpot,
        output_tok_s_per_user=1.0 / tpot if tpot > 0 else math.inf, prefill_req_s=pre_req_s,
        decode_req_s=dec_req_s, bottleneck="prefill" if pre_req_s < dec_req_s else "decode",
        max_output_tok_s=req_s * o_tok, output_tok_s_per_gpu=req_s * o_tok / gpus, best_decode_batch=best_b,
        decode_kv_capacity_tokens=decode_plan.kv_capacity_tokens, gpus=gpus, batch=batch)
