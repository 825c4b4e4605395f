# Cython declarations for clock.py (pure-Python mode); ignored by the interpreter.
cimport cython

cdef class Timeout:
    cdef public list callbacks
    cdef public object value

cdef class FleetClock:
    cdef public double now
    cdef public list heap
    cdef public long seq, events, left

    cpdef Timeout timeout(self, double delay, object value=*)
    cpdef void wake(self, object r, double t, long gen)
    cpdef void enqueue(self, object r, double t, long rid)
    cpdef void done(self, long rid)
