# Cython declarations for kvcache.py (pure-Python mode): compiled when the optional extension is built,
# ignored otherwise. Types only; the logic lives in kvcache.py.
cimport cython

cdef class KvCache:
    cdef public long total_blocks, block_size, entry_tokens, entry_blocks, used_blocks
    cdef public long hit_blocks, lookup_blocks, evicted_entries, peak_blocks
    cdef public dict refs
    cdef public object lru

    @cython.locals(short=long)
    cpdef bint allocate(self, long n)
    cpdef void free(self, long n)
    @cython.locals(n=long)
    cpdef long match(self, list ids)
    @cython.locals(r=long)
    cpdef void acquire(self, list ids)
    @cython.locals(r=long, net=long)
    cpdef bint register(self, list ids, long freed_private)
    @cython.locals(n=long)
    cpdef long insert_unreferenced(self, ids)
    @cython.locals(r=long)
    cpdef void release(self, list ids)
