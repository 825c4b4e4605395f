"""Requests served by an external token API (mechanism): admission, per-request latency, completion.

Used by the ``token_api`` platform and by a router's overflow to a token API, so both see the same model:
a request that exceeds the model's context is rejected (``context_length``), one over the rate limits is
rejected at admission (``rate_limited``); otherwise its TTFT and output speed are lognormal draws at the
API's current concurrency (pre-drawn standard normals per request from the caller's random stream, so a
request's draw does not depend on what else was admitted), and it finishes after TTFT + (out - 1) x TPOT.
No queueing: the provider's fleet is assumed much larger than this workload.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from infersim.perf.token_api import TokenApiLatency
from infersim.policy.rate_limit import RateLimiter


class TokenApiServer:
    """A token API on the SimPy clock; ``submit(rid)`` serves or rejects, then calls ``on_done(rid)``.
    ``active`` holds the requests being served; ``deployment`` is the recorder's deployment code."""

    def __init__(self, env, reqs, rec, latency: TokenApiLatency, rng: np.random.Generator, on_done: Callable[[int], None],
                 *, limiter: RateLimiter | None = None, count_output_tokens: bool = True,
                 max_context: int | None = None, deployment: int = 0):
        self.env, self.reqs, self.rec, self.latency, self.on_done = env, reqs, rec, latency, on_done
        self.limiter, self.count_out, self.max_context = limiter, count_output_tokens, max_context
        self.deployment = deployment
        n = len(reqs)
        self.z_ttft, self.z_speed = rng.standard_normal(n), rng.standard_normal(n)
        self.active: set[int] = set()
        # per-request reads and writes through memoryviews of the columns: Python ints and floats, not NumPy
        # scalars (the same values: a draw's arithmetic was float64 either way)
        self._in, self._out = reqs.input_tokens.data, reqs.output_tokens.data
        self._zt, self._zs, self._dep = self.z_ttft.data, self.z_speed.data, rec.deployment.data

    def _admit(self, rid: int, now: float, out: int) -> bool:
        """Admission of ``rid`` (``out`` output tokens) at ``now``: a rejection (context length, then the rate
        limits) is recorded and False returned; else it is recorded under this API's deployment code."""
        t_in = self._in[rid]
        if self.max_context is not None and t_in + out > self.max_context:
            reason = "context_length"
        elif self.limiter is not None and not self.limiter.admit(now, t_in + out if self.count_out else t_in):
            reason = "rate_limited"
        else:
            self._dep[rid] = self.deployment
            return True
        self.rec.reject(rid, reason, now)
        return False

    def _draws(self, lat: TokenApiLatency, rid: int) -> tuple[float, float]:
        """``(TTFT, TPOT)`` of ``rid`` at the latency ``lat``, from its pre-drawn standard normals."""
        return (lat.ttft.median * math.exp(lat.ttft.sigma * self._zt[rid]),
                1.0 / (lat.speed.median * math.exp(lat.speed.sigma * self._zs[rid])))

    def submit(self, rid: int) -> None:
        env = self.env
        now = env.now
        out = self._out[rid]
        if not self._admit(rid, now, out):
            self.on_done(rid)
            return
        lat = self.latency.at_concurrency(len(self.active) + 1)
        # _draws, inline (once per request)
        ttft = lat.ttft.median * math.exp(lat.ttft.sigma * self._zt[rid])
        tpot = 1.0 / (lat.speed.median * math.exp(lat.speed.sigma * self._zs[rid]))
        self.active.add(rid)
        env.timeout(ttft + (out - 1) * tpot).callbacks.append(
            lambda _e: self._finish(rid, now + ttft, tpot, out))

    def _finish(self, rid: int, t_first: float, tpot: float, out: int) -> None:
        self.active.discard(rid)
        self.rec.first_token(rid, t_first)
        self.rec.finish(rid, self.env.now)
        if out > 1:
            self.rec.itl_one(tpot, out - 1)
        self.on_done(rid)

    def serve_open_loop(self, serves, horizon_s: float) -> tuple[float, list[int]]:
        """Serve every open-loop request of the workload without a clock: ``(end of run, ids in flight)``.

        For a platform of its own with no ``load_curve``: then a request's admission depends only on the
        arrivals before it (rate limits) and its latency only on its own draws, so the run is the arrivals in
        order and each finish computed at once. The numbers are the clocked run's, to the last bit: the
        arrival times chained as the arrivals' process chains them (each the previous clock time plus the
        gap), finish = arrival + (TTFT + (out - 1) x TPOT) as the finish timeout computes it, a request
        finishing after ``horizon_s`` in flight (its first token unrecorded, as on the clock), the run's end the
        last departure if every request left, else the horizon. ``serves``: per stream, whether this platform
        serves it."""
        reqs, rec, lat = self.reqs, self.rec, self.latency
        order = np.flatnonzero(~np.isnan(reqs.arrival_s))
        times = reqs.arrival_s[order]
        out_col, stream, served = self._out, reqs.stream.data, [bool(x) for x in serves]
        now, clock = 0.0, 0.0
        last = 0.0  # last departure (a rejection at its arrival, a finish at its end)
        in_flight: list[int] = []
        for lo in range(0, len(order), 4096):
            for rid, t in zip(order[lo:lo + 4096].tolist(), times[lo:lo + 4096].tolist(), strict=True):
                if t > now:
                    clock = clock + (t - now)
                    now = t
                if not served[stream[rid]]:
                    rec.reject(rid, "no_deployment", clock)
                    last = clock if clock > last else last
                    continue
                out = out_col[rid]
                if not self._admit(rid, clock, out):
                    last = clock if clock > last else last
                    continue
                ttft, tpot = self._draws(lat, rid)
                fin = clock + (ttft + (out - 1) * tpot)
                if fin > horizon_s:
                    in_flight.append(rid)
                    continue
                rec.first_token(rid, clock + ttft)
                rec.finish(rid, fin)
                if out > 1:
                    rec.itl_one(tpot, out - 1)
                last = fin if fin > last else last
        return (float(horizon_s) if in_flight else float(last)), sorted(in_flight)
