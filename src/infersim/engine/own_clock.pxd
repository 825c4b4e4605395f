# Cython declarations for own_clock.py (pure-Python mode); ignored by the interpreter.
cimport cython
from libc.stdint cimport int64_t

from infersim.engine.clock cimport Entry, FleetClock, OpenLoop, Timeout
from infersim.engine.recorder cimport Recorder
from infersim.engine.replica cimport Replica

@cython.locals(pend=list, inf=double, n=long, ns=long, i=long, j=long, t=double, t_arr=double,
               t_enq=double, t_wake=double, nxt=double)
cpdef tuple run_alone(Replica r, list rids, list arrival_s, double horizon_s, list sample_s, double dt_s,
                      list rows)

@cython.locals(heap=list, n=long, cols=list, r=Replica, depcol="short[::1]", arr_seq=long, t_arr=double, i=long,
               t=double, top=Entry, t_ev=double, arrival=bint, nxt=double, t_loc=double, rid=long, d=long)
cpdef double run_fleet(FleetClock clock, list deps, const int64_t[::1] rids, const double[::1] arrival_s,
                       const int64_t[::1] dest, Recorder rec,
                       double horizon_s, double dt_s, list replicas, list dep_of, dict rows, object progress)

@cython.locals(col_t=list, col_d=list, col_r=list, col_b=list, col_kv=list, col_run=list, col_w=list, j=long,
               r=Replica, row=tuple)
cdef void _sample(FleetClock clock, list replicas, list dep_of, double t, double dt_s, list cols, object progress)

@cython.locals(top=Entry, t=double)
cpdef void run_until(FleetClock clock)

@cython.locals(kind=long, r=Replica, ev=Timeout, cbs=list, ol=OpenLoop)
cdef void _fire(Entry top, double t)
