# Cython declarations for clock.py (pure-Python mode); ignored by the interpreter.
cimport cython
from libc.stdint cimport int64_t

cdef class OpenLoop

@cython.freelist(256)
cdef class Entry:
    cdef public double t
    cdef public long seq, kind, value
    cdef public object obj

cdef bint _before(Entry a, Entry b)

cdef bint COMPILED

cdef void _push(list heap, Entry e)

@cython.locals(up=Py_ssize_t, parent=Entry)
cdef void _sift_up(list heap, Py_ssize_t pos, Entry e)

@cython.locals(last=Entry, top=Entry, end=Py_ssize_t, pos=Py_ssize_t, child=Py_ssize_t, right=Py_ssize_t)
cdef Entry _pop(list heap)

@cython.locals(e=Entry)
cdef Entry _entry(double t, long seq, long kind, object obj, long value)

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
    cpdef void push(self, double t, long kind, object obj, long value)
    cdef Entry pop(self)
    cpdef void done(self, long rid)
    cpdef OpenLoop open_loop(self, object rids, object times, object dispatch)

cdef class OpenLoop:
    cdef public object clock, dispatch
    cdef const int64_t[::1] rids
    cdef const double[::1] times
    cdef public long i, n
    cdef public double now

    cpdef void fire(self)
    @cython.locals(c=FleetClock, i=long, n=long, now=double, t=double, rid=long)
    cpdef void run(self)
