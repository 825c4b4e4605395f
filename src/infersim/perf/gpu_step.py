"""One GPU engine step from its aggregates (``GpuRoofline.step_s``): the roofline's scalar constants and the
step's written-out operators.

The engine evaluates a step at every prefill (or short decode) step of a GPU replica, about once per request,
so this class is compiled with Cython when the build can (pure-Python mode: the C types are in
``gpu_step.pxd``; the same source runs as Python otherwise, with identical results). ``GpuRoofline``
(``perf.gpu``) derives the constants and keeps the operator methods, the vectorised and reporting forms of the
same equations; see its module docstring for what they mean. The operators of ``GpuRoofline._split``,
``_stage_fixed``, ``_experts_s`` and ``_windowed`` are written out here with the same float operations in the
same order (bit-identical results, ``tests/test_perf_step_speed.py``).
"""

from __future__ import annotations

import math


class GpuStep:
    """The step time of a ``GpuRoofline`` without two-batch overlap (``roof``: its constants are copied;
    decode-only steps use its ``decode_affine`` coefficients or its sliding-window form)."""

    def __init__(self, roof):
        p = roof.p
        self.roof = roof
        self.pp, self.dp, self.tp, self.ep = int(roof.pp), int(roof.dp), int(roof.tp), int(roof.ep)
        self.moe = bool(roof.moe)
        self.full = roof.full_frac >= 1.0
        self.full_frac, self.window = float(roof.full_frac), float(roof.window)
        self.step_overhead_s, self.per_seq_overhead_s = float(p.step_overhead_s), float(p.per_seq_overhead_s)
        self.compute_half_tokens, self.moe_half_tokens = float(p.compute_half_tokens), float(roof.moe_half)
        self.allreduce_latency_s, self.alltoall_latency_s = float(p.allreduce_latency_s), float(p.alltoall_latency_s)
        self.dense_flops_tok, self.head_flops_seq = float(roof.dense_flops_tok), float(roof.head_flops_seq)
        self.gemm_flops, self.expert_gemm_flops = float(roof.gemm_flops), float(roof.expert_gemm_flops)
        self.dense_bytes, self.bw, self.expert_bw = float(roof.dense_bytes), float(roof.bw), float(roof.expert_bw)
        self.kernel_fixed_s = float(roof.kernel_fixed_s)
        self.ar_count, self.ar_bytes_tok, self.ar_bw = float(roof.ar_count), float(roof.ar_bytes_tok), float(roof.ar_bw)
        self.ar_latency_s = float(roof.ar_latency_s)
        self.a2a_count, self.a2a_bytes_tok = float(roof.a2a_count), float(roof.a2a_bytes_tok)
        self.a2a_bw = float(roof.a2a_bw)
        self.hop_bytes_tok, self.hop_bw = float(roof.hop_bytes_tok), float(roof.hop_bw)
        self.attn_flops_pair, self.attn_flops = float(roof.attn_flops_pair), float(roof.attn_flops)
        self.kv_bytes_per_token = float(roof.kv_bytes_per_token)
        self.k, self.n_exp = float(roof.k), float(roof.n_exp)
        self.expert_flops_assign, self.expert_bytes = float(roof.expert_flops_assign), float(roof.expert_bytes)
        self.local_experts, self.ln_ep = float(roof.local_experts), float(roof.ln_ep)

    def _experts_s(self, t: float, t_all: float) -> float:
        """``GpuRoofline._experts_s``: routed-expert GEMMs of a stage."""
        toks = t_all if self.ep > 1 else t
        # math.pow: the C pow of a float ** (Cython's ** on doubles would go through complex pow)
        frac = 1.0 - math.pow(1.0 - self.k / self.n_exp, toks if toks >= 1.0 else 1.0)
        mean = toks * self.k / (self.ep if self.ep > 1 else 1)
        if self.ep > 1:
            busiest = mean + math.sqrt(2.0 * mean * self.ln_ep * (1.0 - 1.0 / self.ep))
            if toks * self.k <= busiest:
                busiest = toks * self.k
        else:
            busiest = mean
        per_expert = busiest / (self.local_experts * frac)
        if per_expert < 1.0:
            per_expert = 1.0
        flops = self.expert_flops_assign * busiest / (self.tp if self.ep == 1 else 1)
        half = self.moe_half_tokens
        eff = self.expert_gemm_flops * (per_expert / (per_expert + half) if half > 0 else 1.0)
        a = flops / eff
        b = self.expert_bytes * frac / self.expert_bw
        return a if a >= b else b

    def _windowed(self, pairs: float, queries: float) -> float:
        f = self.full_frac
        w = queries * self.window
        return f * pairs + (1.0 - f) * (pairs if pairs <= w else w)

    def step_s(self, n_prefill_tokens, prefill_pairs, n_prefill_seqs, n_decode, decode_ctx_sum,
               prefill_ctx_sum=0.0) -> float:
        """Seconds of one step from aggregates (``GpuRoofline.step_s``)."""
        n_pre = n_prefill_tokens
        n_pre_seqs = n_prefill_seqs
        n_dec = n_decode
        dec_ctx = decode_ctx_sum
        if n_pre == 0 and n_pre_seqs == 0 and n_dec > 0:
            if self.full:
                fixed, pp_i, c0, c_rate, m0, m_rate = self.roof.decode_affine(n_decode)
                m = m0 + m_rate * dec_ctx
                c = c0 + c_rate * dec_ctx
                return fixed + pp_i * (m if m > c else c)
            return self.roof._window_decode_s(n_decode, float(decode_ctx_sum))
        pairs = prefill_pairs
        pre_ctx = prefill_ctx_sum
        n_seqs = n_dec + n_pre_seqs
        # _split
        n = n_seqs if n_seqs > 1 else 1
        pp = self.pp
        mb = float(pp if pp <= n else n)
        dp = self.dp
        g = 1.0 / ((dp if dp <= n else n) * mb)
        tokens = float(n_pre + n_dec)
        t = tokens * g
        # _stage_fixed(t, n_seqs * g, tokens / mb)
        tm = t if t >= 1.0 else 1.0
        half = self.compute_half_tokens
        dense = (self.dense_flops_tok * t + self.head_flops_seq * (n_seqs * g)) / (
            self.gemm_flops * (tm / (tm + half) if half > 0 else 1.0))
        floor = self.dense_bytes / self.bw
        if floor > dense:
            dense = floor
        experts = self._experts_s(t, tokens / mb) if self.moe else 0.0
        comm = 0.0
        if self.ar_count:
            comm += self.ar_count * (self.ar_latency_s + self.ar_bytes_tok * t / self.ar_bw)
        if self.a2a_count:
            comm += self.a2a_count * (self.alltoall_latency_s + self.a2a_bytes_tok * (tokens / mb) / self.a2a_bw)
        stage = dense + experts + comm + self.kernel_fixed_s
        full = self.full
        if n_pre:
            pre_pairs = (float(pairs) if full else self._windowed(float(pairs), float(n_pre))) * g
            a = self.attn_flops_pair * pre_pairs / self.attn_flops
            b = self.kv_bytes_per_token * (pre_ctx + n_pre) * g / self.bw
            stage += b if b > a else a
        if n_dec:
            if full:
                dec_pairs = dec_read = (dec_ctx + n_dec) * g
            else:
                dec_pairs = self._windowed(dec_ctx + n_dec, float(n_dec)) * g
                dec_read = (self._windowed(float(dec_ctx), float(n_dec)) + n_dec) * g
            a = self.attn_flops_pair * dec_pairs / self.attn_flops
            b = self.kv_bytes_per_token * dec_read / self.bw
            stage += b if b > a else a
        hop = (pp - 1) * (self.allreduce_latency_s + self.hop_bytes_tok * t / self.hop_bw) if pp > 1 else 0.0
        # _rank_seqs
        if dp == 1 or n_seqs <= 1:
            rank = n_seqs
        else:
            rank = n_seqs / (dp if dp <= n_seqs else n_seqs)
        return self.step_overhead_s + self.per_seq_overhead_s * rank + pp * stage + hop
