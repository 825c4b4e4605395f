# Cython declarations for round.py (pure-Python mode): used when the optional compiled engine is built.
cimport cython

cdef class PipelineRound:
    cdef public long stages, microbatch, hops
    cdef public double a_s, w_s, kv_s, c_s, attn_s, hop_s, act_s, q_den, mb_f
    cdef public dict cache

    cpdef object decode_affine(self, object n_decode)
    @cython.locals(b=long, m=long, n_mb=long, hop=double, fixed=double, k=double, share=double)
    cdef object _coeffs(self, object n_decode)
    @cython.locals(chain=double, busy=double, prefill=bint, a_s=double, fixed=double, k=double, c0=double,
                   c_rate=double, m0=double, m_rate=double, x=double, mm=double, cc=double, b=long, m=long,
                   mem=double, comp=double, t=double, n_seqs=long, n_bar=double, q=double, mb=double, n_per=long,
                   n_pmb=long, c=double)
    cpdef double step_s(self, object n_prefill_tokens, object prefill_pairs, object n_prefill_seqs,
                        object n_decode, object decode_ctx_sum, object prefill_ctx_sum=*)
