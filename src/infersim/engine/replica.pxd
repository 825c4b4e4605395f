# Cython declarations for replica.py (pure-Python mode): used when the optional compiled engine is built
# (setup.py), ignored by the interpreter. Types only; every line of logic lives in replica.py.
cimport cython

from infersim.engine.clock cimport FleetClock
from infersim.engine.fastforward cimport decode_times, steps_done
from infersim.engine.kvcache cimport KvCache
from infersim.engine.sequences cimport Sequences
from infersim.policy.batching cimport BatchPlan, blocks_to_add, decodes_held, new_plan, prompt_budget
from infersim.policy.load cimport LoadView

cdef class Replica(Sequences):
    cdef public object env, setup, on_done, perf, step_s
    cdef public BatchPlan plan
    cdef public long mbt, mixed_cap, gen
    cdef public long steps, tokens_out, kv_tokens_max, pending, events
    cdef public bint prefill_first, busy, failed
    cdef double[::1] ff_dt, ff_cum
    cdef public double plan_start, plan_end, busy_s, delay, delay_per_seq, api_serial, api_free, last_busy
    cdef public list alone
    cdef public FleetClock clock

    cpdef double busy_until(self, double now)
    cpdef void submit(self, long rid)
    @cython.locals(need=long, delay=double, load=LoadView)
    cdef void _submit(self, long rid, double now)
    cdef void _enqueue(self, long rid, double now)
    cpdef void kick(self, double now)
    cpdef void fail(self, double now)
    @cython.locals(preempted=bint, held=bint, n_active=long, s=long, nd=long, total=long, n_dec=long,
                   budget=long, slot=long, c=long, chunk=long, need=long, n_tok=long, pairs=double,
                   pre_ctx=double, dec_ctx_i=long, dec_ctx=double, k=long, dt=double, i=long, size=long,
                   s_left="long[::1]", s_comp="long[::1]", s_priv="long[::1]", s_shared="long[::1]",
                   s_out="long[::1]", s_gen="long[::1]", dec="long[::1]",
                   chunks=list, pre_slots=list, kv=KvCache, bs=long)
    cdef void _plan(self, double now, bint mix=*)
    cdef void _wake(self, double dt)
    @cython.locals(i=long, end=double, g=long, plan=BatchPlan)
    cdef void _cut(self, double now)
    @cython.locals(b=double, busy=double)
    cpdef tuple sample(self, double now, double dt_s)
    @cython.locals(k=long, n_dec=long, busy=double, s=long, g=long, slot=long, chunk=long, left=long,
                   rid=long, t1=double, i=long, s_comp="long[::1]", s_gen="long[::1]", s_left="long[::1]",
                   s_out="long[::1]", s_rid="long[::1]", dec="long[::1]", finished=list, plan=BatchPlan)
    cdef void _commit(self, double now)
