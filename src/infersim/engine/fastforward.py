"""Fast-forward of decode-only steps (pure functions; the replica applies them).

When a replica runs only decodes and nothing can change for ``k`` steps, it schedules them as one event:
``kv_horizon`` says how many of those steps the KV cache can hold, ``decode_times`` what they take, and
``steps_done`` how many have completed when something interrupts the run. Sequences and step times live in
the replica's preallocated ``array`` buffers (C arrays when the engine is compiled), filled in place.
"""

from __future__ import annotations

import numpy as np

try:
    import cython
except ImportError:  # the Python source runs without Cython installed
    COMPILED = False
else:
    COMPILED = cython.compiled  # True only inside the compiled module

K_MAX = 4096  # longest fast-forward in one event (bounds array sizes)
PY_STEPS = 48  # uncompiled, fast-forwards up to this many steps are timed in a scalar loop (numpy beyond)
_STEPS = np.arange(K_MAX, dtype=float)  # 0, 1, ..., K_MAX - 1: step offsets of a fast-forward


def kv_horizon(xs, n: int, bs: int, room: int, k: int) -> tuple[int, int]:
    """``(k', blocks)``: the largest ``k' <= k`` decode steps whose extra KV blocks fit in ``room`` blocks,
    and how many blocks they need. ``xs[i]`` (i < n) is sequence i's free tokens after its next one
    (``x >= 0`` once the first step's blocks are allocated); ``kk`` steps need ``ceil((kk - 1 - x) / bs)``
    more blocks when positive. ``k' >= 1`` always (the first step's blocks are already allocated)."""
    total = _need_sum(xs, n, bs, k)
    if total > room:
        lo, hi = 1, k  # need(lo) fits (already allocated), need(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _need_sum(xs, n, bs, mid) <= room:
                lo = mid
            else:
                hi = mid
        k = lo
        total = _need_sum(xs, n, bs, k)
    return k, total


def _need_sum(xs, n: int, bs: int, kk: int) -> int:
    """Extra blocks for ``kk`` decode steps (see ``kv_horizon``)."""
    kk -= 1
    total = 0
    for i in range(n):
        x = xs[i]
        if x < kk:
            total += -(-(kk - x) // bs)
    return total


def decode_times(perf, n_dec: int, ctx_sum: int, k: int, dts, cum) -> None:
    """Write into ``dts[:k]`` and ``cum[:k]`` the step times and cumulative times (seconds) of ``k``
    decode-only steps of ``n_dec`` sequences whose contexts total ``ctx_sum`` tokens at the first step
    (``+ n_dec`` per step). With the model's affine coefficients, a scalar loop (the same float operations as
    ``decode_steps_s`` and ``np.cumsum``: contexts are integers, exact as floats) for any length when
    compiled, up to ``PY_STEPS`` steps in Python; otherwise numpy."""
    aff = (perf.decode_affine(n_dec) if (COMPILED or k <= PY_STEPS) and getattr(perf, "decode_affine", None)
           else None)
    if aff is not None:
        fixed, pp, c0, c_rate, m0, m_rate = aff
        t = 0.0
        x = ctx_sum
        for i in range(k):
            m = m0 + m_rate * x
            c = c0 + c_rate * x
            d = fixed + pp * (m if m > c else c)
            dts[i] = d
            t += d
            cum[i] = t
            x += n_dec
        return
    steps = perf.decode_steps_s(n_dec, float(ctx_sum) + n_dec * _STEPS[:k])
    np.asarray(dts)[:k] = steps
    np.cumsum(steps, out=np.asarray(cum)[:k])


def steps_done(cum, k: int, elapsed: float) -> int:
    """How many of the ``k`` steps ending at ``cum[:k]`` (increasing) have ended ``elapsed`` seconds in:
    the number of ``cum[i] <= elapsed`` (``bisect_right``)."""
    lo, hi = 0, k
    while lo < hi:
        mid = (lo + hi) // 2
        if elapsed < cum[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo
