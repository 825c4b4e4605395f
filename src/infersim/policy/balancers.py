"""Load-balancer policies: pick a replica for a request from read-only views of the views.

Each policy is a small object with ``choose(views, rid, total=-1) -> index`` and no SimPy or I/O; ``views``
are the candidate views' ``policy.load.LoadView`` (``outstanding``: requests queued or running; ``kv_usage``:
share of KV blocks in use); ``total``, where the caller keeps it (>= 0), is the sum of ``outstanding`` over
``views``, so a policy that needs the mean load reads it in O(1) instead of summing the views. Ties go to the
lowest index, so results are deterministic.
"""

from __future__ import annotations

import bisect
import zlib
from array import array
from collections.abc import Sequence

import numpy as np

from infersim.core.rng import rng
from infersim.policy.load import least_outstanding


class RoundRobin:
    def __init__(self, spec=None, rng=None):
        self.i = -1

    def choose(self, views: Sequence, rid: int, total: int = -1) -> int:
        self.i = (self.i + 1) % len(views)
        return self.i


class LeastOutstanding:
    def __init__(self, spec=None, rng=None):
        pass

    def choose(self, views: Sequence, rid: int, total: int = -1) -> int:
        return least_outstanding(views if type(views) is list else list(views))


class PowerOfTwo:
    def __init__(self, spec=None, rng: np.random.Generator | None = None):
        self.rng = rng or np.random.default_rng(0)
        self._buf = np.empty(0, np.int64)
        self._pos = 0
        self._n = 0

    def choose(self, views: Sequence, rid: int, total: int = -1) -> int:
        n = len(views)
        if n == 1:
            return 0
        if self._pos + 2 > self._buf.size or self._n != n:
            self._buf = self.rng.integers(0, n, size=8192)
            self._pos, self._n = 0, n
        a, b = int(self._buf[self._pos]), int(self._buf[self._pos + 1])
        self._pos += 2
        if a == b:
            b = (b + 1) % n
        ra, rb = views[a].outstanding, views[b].outstanding
        return a if (ra, a) <= (rb, b) else b


class LeastKv:
    def __init__(self, spec=None, rng=None):
        pass

    def choose(self, views: Sequence, rid: int, total: int = -1) -> int:
        return min(range(len(views)), key=lambda i: (views[i].kv_usage, views[i].outstanding, i))


class PrefixAffinity:
    """Consistent hashing of the request's first prefix block onto a ring of virtual nodes."""

    def __init__(self, spec, rng=None, prefix_key=None, keys=None):
        self.vnodes = spec.virtual_nodes
        self.max_imbalance = spec.max_imbalance
        self.prefix_key = prefix_key  # callable rid -> int key or -1
        self.keys = keys  # or the keys themselves, indexed by rid (read per request without a call)
        self._ring: list[int] = []
        self._owner: list[int] = []
        self._n = -1
        self._home: dict[int, int] = {}  # prefix key -> its replica on the current ring (keys repeat: sessions)

    def _build(self, n: int) -> None:
        pts = sorted((zlib.crc32(f"{i}:{v}".encode()), i) for i in range(n) for v in range(self.vnodes))
        self._ring = [p for p, _ in pts]
        self._owner = [o for _, o in pts]
        self._n = n
        self._home = {}

    def choose(self, views: Sequence, rid: int, total: int = -1) -> int:
        n = len(views)
        keys = self.keys
        key = keys[rid] if keys is not None else self.prefix_key(rid) if self.prefix_key else -1
        if key < 0 or n == 1:
            return least_outstanding(views if type(views) is list else list(views))
        if n != self._n:
            self._build(n)
        pick = self._home.get(key, -1)
        if pick < 0:
            h = zlib.crc32(int(key).to_bytes(8, "little", signed=True))
            pick = self._home[key] = self._owner[bisect.bisect(self._ring, h) % len(self._ring)]
        mean = (total if total >= 0 else sum(r.outstanding for r in views)) / n
        if views[pick].outstanding > self.max_imbalance * (1.0 if 1.0 > mean else mean):  # max(mean, 1.0); else least outstanding
            return least_outstanding(views if type(views) is list else list(views))
        return pick


BALANCERS = {
    "round_robin": RoundRobin,
    "least_outstanding": LeastOutstanding,
    "power_of_two": PowerOfTwo,
    "least_kv": LeastKv,
    "prefix_affinity": PrefixAffinity,
}


def make_balancer(spec, reqs, *, seed: int, platform: str, deployment: str):
    """The load balancer of a deployment ``spec`` (its ``load_balancer`` block), with its own random stream
    ``platform/<platform>/balancer/<deployment>``; prefix affinity hashes each request's ``prefix_key``."""
    cls = BALANCERS[spec.load_balancer.kind]
    lb_rng = rng(seed, "platform", platform, "balancer", deployment)
    if cls is PrefixAffinity:
        keys = array("q", np.ascontiguousarray(reqs.prefix_key, np.int64).tobytes())  # Python ints, no NumPy scalars
        return cls(spec.load_balancer, lb_rng, prefix_key=keys.__getitem__, keys=keys)
    return cls(spec.load_balancer, lb_rng)
