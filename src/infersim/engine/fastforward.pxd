# Cython declarations for fastforward.py (pure-Python mode); ignored by the interpreter.
cimport cython

@cython.locals(total=long, lo=long, hi=long, mid=long)
cpdef tuple kv_horizon(list xs, long bs, long room, long k)

@cython.locals(kk=long, x=long, s=long)
cdef long _need_sum(list xs, long bs, long kk)

@cython.locals(fixed=double, pp=double, c0=double, c_rate=double, m0=double, m_rate=double, x=long,
               m=double, c=double)
cpdef tuple decode_times(perf, long n_dec, long ctx_sum, long k)
