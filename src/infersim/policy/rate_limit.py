"""Rate limits of a token API: token buckets that admit or reject a request at its arrival (a pure policy
with its own state; no SimPy)."""

from __future__ import annotations

from infersim.core.errors import InfersimError

REJECT_REASON = "rate_limited"


class TokenBucket:
    """A bucket of ``capacity`` units refilled at ``rate_per_s``, full at the start.

    ``admit(t, amount)`` refills for the time since the last call, then takes ``amount`` if the bucket holds
    it (True) or leaves it untouched (False). Times must not decrease (an earlier time refills nothing).
    """

    def __init__(self, rate_per_s: float, capacity: float, t0: float = 0.0):
        if rate_per_s < 0 or capacity <= 0:
            raise InfersimError(f"token bucket needs rate >= 0 and capacity > 0, got {rate_per_s}, {capacity}")
        self.rate_per_s, self.capacity = float(rate_per_s), float(capacity)
        self.level, self.t = float(capacity), float(t0)

    def _refill(self, t: float) -> None:
        if t > self.t:
            self.level = min(self.capacity, self.level + (t - self.t) * self.rate_per_s)
            self.t = t

    def can_admit(self, t: float, amount: float = 1.0) -> bool:
        self._refill(t)
        return amount <= self.level + 1e-9

    def admit(self, t: float, amount: float = 1.0) -> bool:
        if self.can_admit(t, amount):
            self.level -= amount
            return True
        return False


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits as two token buckets refilled continuously
    (limit / 60 per second) holding at most ``burst_s`` seconds' worth (default 60 s: a minute's allowance;
    assumption, providers do not publish their bucket depth). A request is admitted only if both buckets
    hold enough; otherwise nothing is taken and it counts as rejected with reason ``rate_limited``. Which
    tokens count (input, or input + max output as most APIs do at admission) is the caller's choice."""

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
                 burst_s: float = 60.0):
        self.requests = (TokenBucket(requests_per_minute / 60.0, requests_per_minute * burst_s / 60.0)
                         if requests_per_minute else None)
        self.tokens = (TokenBucket(tokens_per_minute / 60.0, tokens_per_minute * burst_s / 60.0)
                       if tokens_per_minute else None)
        self.admitted = 0
        self.rejected = 0

    def admit(self, t: float, tokens: float) -> bool:
        ok = ((self.requests is None or self.requests.can_admit(t, 1.0))
              and (self.tokens is None or self.tokens.can_admit(t, tokens)))
        if ok:
            if self.requests is not None:
                self.requests.level -= 1.0
            if self.tokens is not None:
                self.tokens.level -= tokens
            self.admitted += 1
        else:
            self.rejected += 1
        return ok

    @property
    def rejections(self) -> dict[str, int]:
        return {REJECT_REASON: self.rejected} if self.rejected else {}
