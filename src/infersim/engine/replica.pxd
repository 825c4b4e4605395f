# Cython declarations for replica.py (pure-Python mode): used when the optional compiled engine is built
# (setup.py), ignored by the interpreter. Types only; every line of logic lives in replica.py.
cimport cython
from libc.stdint cimport int64_t

from infersim.engine.fastforward cimport decode_times, kv_horizon, steps_done
from infersim.engine.kvcache cimport KvCache
from infersim.engine.recorder cimport Recorder

cdef class Replica:
    cdef public Recorder rec
    cdef public object env, setup, req, on_done, perf, step_s, chain_full
    cdef const int64_t[::1] in_tok, out_tok
    cdef public object waiting, resume, plan_pre
    cdef public KvCache kv
    cdef public long id, cap, bs, mbt, mixed_cap, n_active, order, gen, plan_k, plan_ndec
    cdef public long steps, tokens_out, kv_tokens_max, pending, outstanding, events
    cdef public bint prefill_first, prefix_on, busy, failed, plan_ff
    cdef long[::1] dec, ff_room
    cdef double[::1] ff_dt, ff_cum
    cdef long[::1] s_rid, s_comp, s_left, s_gen, s_out, s_shared, s_priv, s_order, s_held
    cdef public list active, free_slots
    cdef public double plan_start, plan_end, busy_s, delay, delay_per_seq, api_serial, api_free, last_busy
    cdef public list alone

    cpdef double busy_until(self, double now)
    cpdef void submit(self, long rid)
    @cython.locals(need=long, delay=double)
    cdef void _submit(self, long rid, double now)
    cdef void _enqueue(self, long rid, double now)
    cpdef void fail(self, double now)
    @cython.locals(preempted=bint, held=bint, n_active=long, s=long, nd=long, total=long, n_dec=long,
                   budget=long, slot=long, c=long, chunk=long, need=long, n_tok=long, pairs=double,
                   pre_ctx=double, dec_ctx_i=long, dec_ctx=double, k=long, dt=double, i=long, size=long,
                   s_left="long[::1]", s_comp="long[::1]", s_priv="long[::1]", s_shared="long[::1]",
                   s_out="long[::1]", s_gen="long[::1]", dec="long[::1]",
                   chunks=list, pre_slots=list, kv=KvCache, bs=long)
    cdef void _plan(self, double now, bint mix=*)
    @cython.locals(n=long, s=long, s_left="long[::1]", dec="long[::1]")
    cdef long _decoding(self)
    @cython.locals(bs=long, kk=long, s=long, x=long, total=long, kv=KvCache, xs="long[::1]", i=long,
                   dec="long[::1]", s_comp="long[::1]", s_shared="long[::1]", s_priv="long[::1]")
    cdef long _kv_horizon(self, long n_dec, long k)
    @cython.locals(kv=KvCache, ntok=long, gen=long, hit=long, shared=long, comp=long, chunk=long,
                   need=long, slot=long, active=list)
    cdef object _admit(self, long rid, long budget)
    @cython.locals(slot=long, rid=long)
    cdef void _preempt_newest(self)
    @cython.locals(kv=KvCache, held=long, rid=long, ctx=long)
    cdef void _release(self, long slot, bint finished=*)
    cdef void _wake(self, double dt)
    @cython.locals(i=long, end=double, g=long)
    cdef void _cut(self, double now)
    @cython.locals(b=double, busy=double)
    cpdef tuple sample(self, double now, double dt_s)
    @cython.locals(k=long, n_dec=long, busy=double, s=long, g=long, slot=long, chunk=long, left=long,
                   rid=long, t1=double, i=long, s_comp="long[::1]", s_gen="long[::1]", s_left="long[::1]",
                   s_out="long[::1]", s_rid="long[::1]", dec="long[::1]", finished=list)
    cdef void _commit(self, double now)
    @cython.locals(held=long, shared=long, old_priv=long, new_priv=long, kv=KvCache, ids=list)
    cdef void _register_prefix(self, long slot, long rid)


@cython.locals(best=long, best_load=long, i=long, load=long, r=Replica)
cpdef long least_outstanding(list replicas)
