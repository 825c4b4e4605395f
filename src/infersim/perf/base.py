"""The performance model's one narrow interface: the time of one engine step.

A step processes a batch: some requests advance their prefill by a chunk of tokens (with some context
already in the KV cache), others decode one token each (with their context in the KV cache). A model
returns seconds with their parts. Implementations are pure (no SimPy, no I/O) and cheap to call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class StepTime:
    """Seconds of one step, with its parts. ``total_s`` = overhead + max(compute, memory) + comm."""

    total_s: float
    compute_s: float
    memory_s: float
    comm_s: float
    overhead_s: float

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"


class StepModel(Protocol):
    """What the engine needs from a performance model."""

    def step(self, prefill_tokens: np.ndarray, prefill_context: np.ndarray,
             decode_context: np.ndarray) -> StepTime:
        """Time of one step. ``prefill_tokens[i]`` tokens of request i are computed on top of
        ``prefill_context[i]`` tokens already cached; each decode request has ``decode_context[j]``
        tokens of context and produces one token."""
        ...

    def step_s(self, n_prefill_tokens: int, prefill_pairs: float, n_prefill_seqs: int,
               n_decode: int, decode_ctx_sum: float) -> float:
        """Same as ``step(...).total_s`` from aggregates (the engine's hot path).

        ``prefill_pairs`` is the number of (query, key) pairs the prefill chunks attend over.
        """
        ...

    def decode_steps_s(self, n_decode: int, ctx_sums: np.ndarray) -> np.ndarray:
        """Vectorised times of consecutive decode-only steps of ``n_decode`` sequences whose total
        context is ``ctx_sums[k]`` at step k (used to fast-forward many steps in one event)."""
        ...


def prefill_pairs(chunk_tokens: np.ndarray | float, context: np.ndarray | float) -> np.ndarray | float:
    """(query, key) pairs a causal prefill chunk of n tokens on top of c cached tokens attends:
    sum_{i=1..n} (c + i) = n*c + n(n+1)/2."""
    n = np.asarray(chunk_tokens, dtype=float)
    c = np.asarray(context, dtype=float)
    return n * c + n * (n + 1) / 2.0


def step_aggregates(prefill_tokens, prefill_context, decode_context) -> tuple[float, float, int, int, float, float]:
    """The arrays of ``StepModel.step`` reduced to ``step_s``'s arguments: (prefill tokens, prefill (query, key)
    pairs, prefill sequences, decode sequences, decode context sum, prefill context sum)."""
    pt = np.asarray(prefill_tokens, dtype=float)
    pc = np.asarray(prefill_context, dtype=float)
    dc = np.asarray(decode_context, dtype=float)
    pairs = float(np.sum(prefill_pairs(pt, pc))) if pt.size else 0.0
    return float(pt.sum()), pairs, int(pt.size), int(dc.size), float(dc.sum()), float(pc.sum())
