"""One round of the SRAM pipeline (``SramPipeline.step_s``): the scalar constants and the round's equations.

The engine evaluates a round at every prefill step of an lpu / wafer replica, so this class is compiled with
Cython when the build can (pure-Python mode: the C types are in ``round.pxd``; the same source runs as Python
otherwise, with identical results). ``SramPipeline`` (``perf.sram.pipeline``) derives the constants and keeps
the vectorised and reporting forms of the same equations; see its module docstring for what they mean.
"""

from __future__ import annotations

import math


class PipelineRound:
    """The round time of a pipeline of ``stages`` stages from its per-stage constants (seconds): ``a_s`` fixed
    latency, ``w_s`` weight streaming, ``kv_s`` per context token read, ``c_s`` per token computed, ``attn_s``
    per attention pair; ``hops`` unit-to-unit hops of ``hop_s`` + ``act_s`` per token; decode micro-batches of
    at most ``microbatch`` sequences."""

    def __init__(self, stages: int, microbatch: int, a_s: float, w_s: float, kv_s: float, c_s: float,
                 attn_s: float, hops: int, hop_s: float, act_s: float):
        self.stages, self.microbatch, self.hops = int(stages), int(microbatch), int(hops)
        self.a_s, self.w_s, self.kv_s, self.c_s = float(a_s), float(w_s), float(kv_s), float(c_s)
        self.attn_s, self.hop_s, self.act_s = float(attn_s), float(hop_s), float(act_s)
        # the prefill micro-batch's denominator ((P - 1) c_s; 0 when one stage or no compute, where a
        # micro-batch is the whole prompt) and the decode micro-batch as a float
        self.q_den = (self.stages - 1) * self.c_s if self.stages > 1 and self.c_s > 0 else 0.0
        self.mb_f = float(self.microbatch)
        self.cache = {}  # decode_affine coefficients per batch size (None: not affine)

    def __reduce__(self):
        return PipelineRound, (self.stages, self.microbatch, self.a_s, self.w_s, self.kv_s, self.c_s, self.attn_s,
                               self.hops, self.hop_s, self.act_s)

    def decode_affine(self, n_decode: int):
        """``(fixed, k, compute0, compute_rate, memory0, memory_rate)`` of a decode round of ``n_decode``
        sequences, or None where the round is not affine in the context (``SramPipeline.decode_affine``)."""
        c = self.cache.get(n_decode)
        if c is None and n_decode not in self.cache:
            c = self.cache[n_decode] = self._coeffs(n_decode)
        return c

    def _coeffs(self, n_decode: int):
        b = int(n_decode)
        m = -(-b // self.stages)
        if self.microbatch < m:
            m = self.microbatch
        n_mb = -(-b // m)
        hop = self.hops * (self.hop_s + m * self.act_s)
        if n_mb <= self.stages:
            fixed, k = self.stages * self.a_s + hop, float(self.stages)
        elif hop == 0.0:
            fixed, k = n_mb * self.a_s, float(n_mb)
        else:
            return None
        share = m / b  # a micro-batch's share of the round's total context
        return (fixed, k, self.c_s * m + self.attn_s * m, self.attn_s * share,
                self.w_s + self.kv_s * m, self.kv_s * share)

    def step_s(self, n_prefill_tokens, prefill_pairs, n_prefill_seqs, n_decode, decode_ctx_sum,
               prefill_ctx_sum=0.0) -> float:
        """Seconds of one round (``a if a >= b else b`` is ``max(a, b)``, without the call)."""
        chain = busy = 0.0
        prefill = n_prefill_seqs > 0 and n_prefill_tokens > 0
        a_s = self.a_s
        if n_decode > 0:
            if not prefill:
                aff = self.decode_affine(n_decode)
                if aff is not None:  # a decode-only round: exactly the fast-forward's arithmetic
                    fixed, k, c0, c_rate, m0, m_rate = aff
                    x = float(decode_ctx_sum)
                    mm, cc = m0 + m_rate * x, c0 + c_rate * x
                    return fixed + k * (mm if mm > cc else cc)
            b = int(n_decode)
            m = -(-b // self.stages)
            if self.microbatch < m:
                m = self.microbatch
            x = float(decode_ctx_sum) / b * m + m
            mem, comp = self.w_s + self.kv_s * x, self.c_s * m + self.attn_s * x
            t = a_s + (mem if mem >= comp else comp)
            chain = self.stages * t + self.hops * (self.hop_s + m * self.act_s)
            busy = -(-b // m) * t
        if prefill:
            n_seqs = int(n_prefill_seqs)
            n_bar = float(n_prefill_tokens) / n_seqs
            q = math.sqrt(n_bar * a_s / self.q_den) if self.q_den > 0.0 else n_bar
            mb = self.mb_f
            if mb > q:
                q = mb
            if n_bar < q:
                q = n_bar
            n_per = math.ceil(n_bar / q - 1e-9)
            n_pmb = n_seqs * n_per
            x = float(prefill_ctx_sum) / n_seqs + n_bar / 2.0
            mem, comp = self.w_s + self.kv_s * x, self.c_s * q + self.attn_s * float(prefill_pairs) / n_pmb
            t = a_s + (mem if mem >= comp else comp)
            c = (self.stages - 1 + n_per) * t + self.hops * (self.hop_s + q * self.act_s)
            if c > chain:
                chain = c
            busy += n_pmb * t
        return chain if chain >= busy else busy
