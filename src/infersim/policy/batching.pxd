# Cython declarations for batching.py (pure-Python mode): used when the optional compiled engine is built
# (setup.py); the replica calls these as C functions. Types only; every line of logic lives in batching.py.
cimport cython

cdef class BatchPlan:
    cdef readonly list chunks
    cdef readonly long n_dec, k
    cdef readonly bint fast_forward

@cython.locals(p=BatchPlan)
cpdef BatchPlan new_plan(list chunks, long n_dec, long k, bint fast_forward)
cpdef long blocks_to_add(long tokens, long shared_tokens, long private_blocks, long block_size) noexcept
cpdef long reserve_tokens(bint no_evict, long computed_tokens, long max_tokens) noexcept
cpdef bint decodes_held(bint prefill_first, bint mixed, long n_dec, long n_waiting, long n_active) noexcept
cpdef long prompt_budget(long max_batched_tokens, long n_dec, long mixed_prefill_tokens) noexcept
@cython.locals(comp=long)
cpdef tuple first_chunk(long prompt_tokens, long cached_tokens, long budget)
@cython.locals(best=long, s=long)
cpdef long preemption_victim(list active, long[::1] order) except -1
