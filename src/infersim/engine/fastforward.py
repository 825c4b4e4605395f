"""Fast-forward of decode-only steps (pure functions; the replica applies them).

When a replica runs only decodes and nothing can change for ``k`` steps, it schedules them as one event:
``kv_horizon`` says how many of those steps the KV cache can hold, ``decode_times`` what they take.
"""

from __future__ import annotations

from itertools import accumulate

import numpy as np

K_MAX = 4096  # longest fast-forward in one event (bounds array sizes)
PY_STEPS = 48  # fast-forwards up to this many steps are timed in plain Python (numpy is faster beyond)
_STEPS = np.arange(K_MAX, dtype=float)  # 0, 1, ..., K_MAX - 1: step offsets of a fast-forward


def kv_horizon(xs: list[int], bs: int, room: int, k: int) -> tuple[int, int]:
    """``(k', blocks)``: the largest ``k' <= k`` decode steps whose extra KV blocks fit in ``room`` blocks,
    and how many blocks they need. ``xs[i]`` is sequence i's free tokens after its next one (``x >= 0``
    once the first step's blocks are allocated); ``kk`` steps need ``ceil((kk - 1 - x) / bs)`` more blocks
    when positive. ``k' >= 1`` always (the first step's blocks are already allocated)."""

    total = _need_sum(xs, bs, k)
    if total > room:
        lo, hi = 1, k  # need(lo) fits (already allocated), need(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _need_sum(xs, bs, mid) <= room:
                lo = mid
            else:
                hi = mid
        k = lo
        total = _need_sum(xs, bs, k)
    return k, total


def _need_sum(xs: list[int], bs: int, kk: int) -> int:
    """Extra blocks for ``kk`` decode steps (see ``kv_horizon``)."""
    kk -= 1
    return sum([-(-(kk - x) // bs) for x in xs if x < kk])


def decode_times(perf, n_dec: int, ctx_sum: int, k: int):
    """``(step times, cumulative times)`` in seconds of ``k`` decode-only steps of ``n_dec`` sequences
    whose contexts total ``ctx_sum`` tokens at the first step (``+ n_dec`` per step). Short runs use the
    model's affine coefficients in plain Python (lists; the same float operations as ``decode_steps_s``
    and ``np.cumsum``: contexts are integers, exact as floats); longer ones numpy arrays."""
    aff = perf.decode_affine(n_dec) if k <= PY_STEPS and getattr(perf, "decode_affine", None) else None
    if aff is not None:
        fixed, pp, c0, c_rate, m0, m_rate = aff
        dts = [fixed + pp * (m if (m := m0 + m_rate * x) > (c := c0 + c_rate * x) else c)
               for x in range(ctx_sum, ctx_sum + n_dec * k, n_dec)]
        return dts, list(accumulate(dts))
    dts = perf.decode_steps_s(n_dec, float(ctx_sum) + n_dec * _STEPS[:k])
    return dts, np.cumsum(dts)
