# Cython declarations for kvcache.py (pure-Python mode): compiled when the optional extension is built,
# ignored otherwise. Types only; the logic lives in kvcache.py.
cimport cython

cdef class KvCache:
    cdef public long total_blocks, block_size, entry_tokens, entry_blocks, used_blocks, evictable
    cdef public long hit_tokens, lookup_tokens, evicted_blocks, peak_blocks
    cdef public dict refs, chain_n, chain_top, chain_holds
    cdef public object lru

    @cython.locals(short=long, take=long, n_c=long, top=long, key=long, h=long)
    cpdef bint allocate(self, long n)
    cpdef void free(self, long n)
    @cython.locals(n=long)
    cpdef long match(self, list ids)
    @cython.locals(r=long)
    cpdef void acquire(self, list ids)
    @cython.locals(net=long)
    cpdef bint register(self, list ids, long freed_private)
    @cython.locals(n=long)
    cpdef long insert_unreferenced(self, ids)
    @cython.locals(r=long)
    cpdef void release(self, list ids)
    @cython.locals(hit=long)
    cpdef long chain_match(self, long key, long want)
    @cython.locals(top=long, new_top=long, n_c=long, c=long, holds=dict)
    cpdef void chain_hold(self, long key, long old, long new)
    @cython.locals(n_c=long, mid=long, create=long, net=long, c=long, holds=dict)
    cpdef bint chain_register(self, long key, long held, long target, long freed_private)
    @cython.locals(n_c=long, add=long)
    cpdef long chain_extend(self, long key, long n)
