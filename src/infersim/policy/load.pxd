# Cython declarations for load.py (pure-Python mode): used when the optional compiled engine is built.
cimport cython

cdef class LoadView:
    cdef public long outstanding
    cdef object _kv

@cython.locals(best=long, best_load=long, i=long, load=long, v=LoadView)
cpdef long least_outstanding(list views)
