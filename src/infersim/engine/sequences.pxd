# Cython declarations for sequences.py (pure-Python mode): used when the optional compiled engine is built
# (setup.py), ignored by the interpreter. Types only; every line of logic lives in sequences.py.
cimport cython
from libc.stdint cimport int64_t

from infersim.engine.fastforward cimport kv_horizon
from infersim.engine.kvcache cimport KvCache
from infersim.engine.recorder cimport Recorder
from infersim.policy.batching cimport blocks_to_add, first_chunk, preemption_victim, reserve_tokens
from infersim.policy.load cimport LoadTotals, LoadView

cdef class Sequences:
    cdef public Recorder rec
    cdef public object req, chain_full
    cdef const int64_t[::1] in_tok, out_tok, pkey, ptok
    cdef public object waiting, resume
    cdef public KvCache kv
    cdef public LoadView load
    cdef public LoadTotals totals
    cdef public long id, cap, bs, n_active, order
    cdef public bint prefix_on, has_ids, no_evict
    cdef long[::1] dec, ff_room
    cdef long[::1] s_rid, s_comp, s_left, s_gen, s_out, s_shared, s_priv, s_order, s_held
    cdef public list active, free_slots

    @cython.locals(n=long, s=long, s_left="long[::1]", dec="long[::1]")
    cdef long _decoding(self)
    @cython.locals(bs=long, kk=long, s=long, x=long, total=long, kv=KvCache, xs="long[::1]", i=long,
                   dec="long[::1]", s_comp="long[::1]", s_shared="long[::1]", s_priv="long[::1]")
    cdef long _kv_horizon(self, long n_dec, long k)
    @cython.locals(kv=KvCache, ntok=long, gen=long, hit=long, shared=long, comp=long, chunk=long,
                   need=long, slot=long, active=list, key=long, want=long, ids=list, reserve=long)
    cdef object _admit(self, long rid, long budget)
    @cython.locals(slot=long, rid=long)
    cdef void _preempt_newest(self)
    @cython.locals(kv=KvCache, held=long, rid=long, key=long)
    cdef void _release(self, long slot, bint finished=*)
    @cython.locals(held=long, shared=long, old_priv=long, new_priv=long, kv=KvCache, ids=list, key=long,
                   target=long, reserve=long)
    cdef void _register_prefix(self, long slot, long rid)
