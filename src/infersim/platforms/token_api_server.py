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

    def submit(self, rid: int) -> None:
        env, rec = self.env, self.rec
        now = env.now
        t_in, out = int(self.reqs.input_tokens[rid]), int(self.reqs.output_tokens[rid])
        if self.max_context is not None and t_in + out > self.max_context:
            reason = "context_length"
        elif self.limiter is not None and not self.limiter.admit(now, t_in + out if self.count_out else t_in):
            reason = "rate_limited"
        else:
            reason = ""
        if reason:
            rec.reject(rid, reason, now)
            self.on_done(rid)
            return
        rec.deployment[rid] = self.deployment
        lat = self.latency.at_concurrency(len(self.active) + 1)
        ttft = lat.ttft.median * math.exp(lat.ttft.sigma * self.z_ttft[rid])
        tpot = 1.0 / (lat.speed.median * math.exp(lat.speed.sigma * self.z_speed[rid]))
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
