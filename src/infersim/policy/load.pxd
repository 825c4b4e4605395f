# Cython declarations for load.py (pure-Python mode): used when the optional compiled engine is built.
cimport cython

cdef class LoadView:
    cdef public long outstanding
    cdef object _kv

cdef class LoadTotals:
    cdef public long waiting, outstanding

    cpdef void attach(self, object engine)
    cpdef void detach(self, object engine)

@cython.locals(best=long, best_load=long, i=long, load=long, v=LoadView)
cpdef long least_outstanding(list views)
