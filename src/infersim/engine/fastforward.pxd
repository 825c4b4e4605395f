# Cython declarations for fastforward.py (pure-Python mode); ignored by the interpreter.
cimport cython

@cython.locals(total=long, lo=long, hi=long, mid=long)
cpdef tuple kv_horizon(long[::1] xs, long n, long bs, long room, long k)

@cython.locals(total=long, i=long, x=long)
cdef long _need_sum(long[::1] xs, long n, long bs, long kk)

@cython.locals(fixed=double, pp=double, c0=double, c_rate=double, m0=double, m_rate=double, x=long,
               m=double, c=double, d=double, t=double, i=long)
cpdef void decode_times(perf, long n_dec, long ctx_sum, long k, double[::1] dts, double[::1] cum)

@cython.locals(lo=long, hi=long, mid=long)
cpdef long steps_done(double[::1] cum, long k, double elapsed)
