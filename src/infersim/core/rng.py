"""Seeded random streams: one root seed, named child streams derived stably.

``rng(seed, "workload", "arrivals", "tab")`` always yields the same generator for the same names, and
different names give independent streams (``numpy.random.SeedSequence`` spawn keys). Never touches the
global ``random``/``np.random`` state.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream_key(*names: str | int) -> tuple[int, ...]:
    return tuple(n if isinstance(n, int) else zlib.crc32(str(n).encode()) for n in names)


def rng(seed: int, *names: str | int) -> np.random.Generator:
    """A generator for the named child stream of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=stream_key(*names)))
