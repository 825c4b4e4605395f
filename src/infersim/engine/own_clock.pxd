# Cython declarations for own_clock.py (pure-Python mode); ignored by the interpreter.
cimport cython

from infersim.engine.replica cimport Replica

@cython.locals(pend=list, inf=double, n=long, ns=long, i=long, j=long, t=double, t_arr=double,
               t_enq=double, t_wake=double, nxt=double)
cpdef tuple run_alone(Replica r, list rids, list arrival_s, double horizon_s, list sample_s, double dt_s,
                      list rows)
