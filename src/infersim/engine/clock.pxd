# Cython declarations for clock.py (pure-Python mode); ignored by the interpreter.
cimport cython

cdef class Timeout:
    cdef public object callbacks
    cdef public object value
    cdef public bint triggered
    cdef public object clock

cdef class Process:
    cdef public object clock, gen

cdef class AnyOf:
    cdef public object clock
    cdef public Timeout ev

cdef class FleetClock:
    cdef public double now
    cdef public list heap
    cdef public object urgent, stop
    cdef public long seq, events, left

    cpdef Timeout timeout(self, double delay, object value=*)
    cpdef void wake(self, object r, double t, long gen)
    cpdef void enqueue(self, object r, double t, long rid)
    cpdef void done(self, long rid)
