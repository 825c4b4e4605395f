# Cython declarations for load.py (pure-Python mode): used when the optional compiled engine is built.
cimport cython

cdef class LoadIndex

@cython.final
cdef class LoadView:
    cdef public long outstanding, pos
    cdef public LoadIndex index
    cdef object _kv

    cpdef void add(self, long delta)

@cython.final
cdef class LoadIndex:
    cdef public list views, members
    cdef public long n, size
    cdef long[::1] tree

    @cython.locals(v=LoadView, n=long, size=long, i=long, a=long, b=long, tree="long[::1]")
    cpdef void rebuild(self)
    @cython.locals(i=long, a=long, b=long, m=long)
    cpdef void update(self, long pos, long load)
    @cython.locals(i=long)
    cpdef long argmin(self)

cdef class LoadTotals:
    cdef public long waiting, outstanding

    cpdef void attach(self, object engine)
    cpdef void detach(self, object engine)

@cython.locals(best=long, best_load=long, i=long, load=long, v=LoadView, ix=LoadIndex)
cpdef long least_outstanding(list views)
