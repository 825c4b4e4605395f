"""Columnar record of one platform's run: per-request arrays, an ITL histogram, a sampled timeline.

Nothing per request is kept as a Python object: a request is a row in preallocated arrays
(30 bytes of results per request on top of the workload's 50: about 90 bytes of state per request).
"""

from __future__ import annotations

import math

import numpy as np

# "lost": arrived but no outcome was ever written (a bug in a platform model); ``Arrivals.finish`` labels them
OUTCOMES = ("pending", "finished", "rejected", "in_flight", "lost")
FINISHED, REJECTED, IN_FLIGHT, LOST = 1, 2, 3, 4
REASONS = ("", "context_length", "kv_capacity", "queue_timeout", "no_replica", "rate_limited",
           "replica_failed", "no_deployment", "decode_kv_full")
_REASON_CODE = {r: i for i, r in enumerate(REASONS)}

# ITL histogram: log-spaced bins from 1 us to 1000 s, 0.25% wide (compiled: C numbers, read per step)
_ITL_LO, _ITL_HI, _ITL_BINS = -6.0, 3.0, 8301
_ITL_SCALE = (_ITL_BINS - 1) / (_ITL_HI - _ITL_LO)
_log10 = math.log10  # compiled: a C global, called without a module and an attribute lookup per step


def itl_bin_edges() -> np.ndarray:
    return np.logspace(_ITL_LO, _ITL_HI, _ITL_BINS)


_STATE = ("replica", "deployment", "first_token_s", "finish_s", "preemptions", "cached_tokens", "outcome", "reason",
          "itl_hist", "arrival_s")


def _rebuild(state: dict):
    rec = Recorder(0)
    rec._adopt(state)
    return rec


class Recorder:
    """Per-request outcome columns for ``n`` requests, plus the token-weighted ITL histogram."""

    def __init__(self, n: int):
        self.replica = np.full(n, -1, np.int32)
        self.deployment = np.full(n, -1, np.int16)
        self.first_token_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)
        self.preemptions = np.zeros(n, np.int16)
        self.cached_tokens = np.zeros(n, np.int32)
        self.outcome = np.zeros(n, np.int8)
        self.reason = np.zeros(n, np.int8)
        self.itl_hist = np.zeros(_ITL_BINS, np.float64)
        self.arrival_s = None  # set at the end of the run (the arrival times actually used)
        # the columns the engine writes per request, as C arrays when compiled (same objects in Python)
        self._replica, self._cached, self._first = self.replica, self.cached_tokens, self.first_token_s
        self._finish, self._outcome, self._preempt = self.finish_s, self.outcome, self.preemptions
        self._hist = self.itl_hist

    def __reduce__(self):
        """Pickled by its columns (a platform run returns from a worker process: ``infersim run --executor``)."""
        return _rebuild, ({k: getattr(self, k) for k in _STATE},)

    def _adopt(self, state: dict) -> None:
        for k in _STATE:
            setattr(self, k, state[k])
        self._replica, self._cached, self._first = self.replica, self.cached_tokens, self.first_token_s
        self._finish, self._outcome, self._preempt = self.finish_s, self.outcome, self.preemptions
        self._hist = self.itl_hist

    def assign(self, rid: int, replica: int) -> None:
        self._replica[rid] = replica

    def start(self, rid: int, cached_tokens: int) -> None:
        self._cached[rid] = cached_tokens

    def first_token(self, rid: int, t: float) -> None:
        self._first[rid] = t

    def finish(self, rid: int, t: float) -> None:
        self._finish[rid] = t
        self._outcome[rid] = FINISHED

    def finished_first_token(self, rid: int) -> float:
        """``rid``'s first-token time if it finished, else NaN (what a router's TTFT average reads when a
        request leaves: one call instead of NumPy scalar reads of two columns)."""
        if self._outcome[rid] == FINISHED:
            return float(self._first[rid])
        return math.nan

    def reject(self, rid: int, reason: str, t: float, replica: int = -1) -> None:
        self.outcome[rid] = REJECTED
        self.reason[rid] = _REASON_CODE[reason]
        self.finish_s[rid] = t
        if replica >= 0:
            self.replica[rid] = replica

    def preempt(self, rid: int) -> None:
        self._preempt[rid] += 1

    def itl_one(self, dt: float, weight: int) -> None:
        if dt > 0:
            x = _log10(dt)
            i = int((x - _ITL_LO) * _ITL_SCALE + 0.5)
            self._hist[min(max(i, 0), _ITL_BINS - 1)] += weight

    def itl_many(self, dts, k: int, weight: int) -> None:
        """Add ``weight`` tokens at each of the step times ``dts[:k]`` (seconds; any indexable buffer)."""
        if weight <= 0:
            return
        lo = hi = dts[0]
        for i in range(1, k):
            d = dts[i]
            if d < lo:
                lo = d
            elif d > hi:
                hi = d
        if hi <= lo * 1.0025:  # the whole fast-forward falls in one bin (the common case)
            self.itl_one(lo, weight * k)
            return
        steps = np.asarray(dts)[:k]
        idx = np.rint((np.log10(np.maximum(steps, 1e-12)) - _ITL_LO) * _ITL_SCALE).astype(np.int64)
        np.clip(idx, 0, _ITL_BINS - 1, out=idx)
        np.add.at(self.itl_hist, idx, float(weight))

    def mark_in_flight(self, rids) -> None:
        for r in rids:
            if self.outcome[r] == 0:
                self.outcome[r] = IN_FLIGHT
