# Cython declarations for gpu_step.py (pure-Python mode): used when the optional compiled engine is built.
cimport cython

cdef class GpuStep:
    cdef public object roof
    cdef public long pp, dp, tp, ep
    cdef public bint moe, full
    cdef public double full_frac, window, step_overhead_s, per_seq_overhead_s, compute_half_tokens
    cdef public double moe_half_tokens, allreduce_latency_s, alltoall_latency_s, dense_flops_tok, head_flops_seq
    cdef public double gemm_flops, expert_gemm_flops, dense_bytes, bw, kernel_fixed_s, ar_count, ar_bytes_tok
    cdef public double ar_bw, a2a_count, a2a_bytes_tok, a2a_bw, hop_bytes_tok, hop_bw, attn_flops_pair
    cdef public double attn_flops, kv_bytes_per_token, k, n_exp, expert_flops_assign, expert_bytes
    cdef public double local_experts, ln_ep, ar_latency_s, expert_bw

    @cython.locals(toks=double, frac=double, mean=double, busiest=double, per_expert=double, flops=double,
                   half=double, eff=double, a=double, b=double)
    cdef double _experts_s(self, double t, double t_all)
    @cython.locals(f=double, w=double)
    cdef double _windowed(self, double pairs, double queries)
    @cython.locals(n_pre=double, n_pre_seqs=double, n_dec=double, dec_ctx=double, pairs=double, pre_ctx=double,
                   fixed=double, pp_i=double, c0=double, c_rate=double, m0=double, m_rate=double, m=double,
                   c=double, n_seqs=double, n=double, pp=long, mb=double, dp=long, g=double, tokens=double,
                   t=double, tm=double, half=double, dense=double, floor=double, experts=double, comm=double,
                   stage=double, full=bint, pre_pairs=double, a=double, b=double, dec_pairs=double,
                   dec_read=double, hop=double, rank=double)
    cpdef double step_s(self, object n_prefill_tokens, object prefill_pairs, object n_prefill_seqs,
                        object n_decode, object decode_ctx_sum, object prefill_ctx_sum=*)
