# Cython declarations for recorder.py (pure-Python mode); ignored by the interpreter. The numpy columns
# stay public Python objects; the engine writes them through typed views of the same memory.
cimport cython

cdef double _ITL_LO, _ITL_HI, _ITL_SCALE
cdef long _ITL_BINS
cdef object _log10

cdef class Recorder:
    cdef public object replica, deployment, first_token_s, finish_s, preemptions, cached_tokens, outcome
    cdef public object reason, itl_hist, arrival_s
    cdef int[::1] _replica, _cached
    cdef double[::1] _first, _finish, _hist
    cdef signed char[::1] _outcome
    cdef short[::1] _preempt

    cpdef void assign(self, long rid, long replica)
    cpdef void start(self, long rid, long cached_tokens)
    cpdef void first_token(self, long rid, double t)
    cpdef void finish(self, long rid, double t)
    cpdef double finished_first_token(self, long rid)
    cpdef void preempt(self, long rid)
    @cython.locals(i=long, x=double)
    cpdef void itl_one(self, double dt, double weight)
    @cython.locals(lo=double, hi=double, d=double, i=long)
    cpdef void itl_many(self, double[::1] dts, long k, long weight)
