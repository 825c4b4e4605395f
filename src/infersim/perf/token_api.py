"""The token API platform's pure parts: prices, latency distributions, rate limits.

A token API (a hyperscaler's model endpoint, a serverless token cloud) is a black box to its customer: it
charges per token, answers with a time to first token (TTFT) and an output speed drawn from distributions
that do not depend on the customer's own load (the provider's fleet is much larger), and rejects requests
beyond its rate limits. The runner draws every request's latencies up front with ``sample_latencies`` and
asks a ``RateLimiter`` at each arrival.

Shipped presets (``catalog/data/token_apis.yaml``) carry medians from ``shared/calibration/
provider_speeds.csv`` and prices from ``provider_prices.csv``, each with its row; spreads are assumptions
because no source publishes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from statistics import NormalDist

import numpy as np
import yaml

from infersim.core.errors import InfersimError, suggest

REJECT_REASON = "rate_limited"
_Z = NormalDist().inv_cdf
#: Spreads (log-space sigma) used when a preset or scenario gives only a median. Assumptions: no public
#: source gives the distribution of TTFT or output speed for these APIs.
DEFAULT_TTFT_SIGMA = 0.5  # p90 = 1.9 x median
DEFAULT_SPEED_SIGMA = 0.2  # p10 = 0.77 x median


@dataclass(frozen=True)
class Lognormal:
    """A lognormal by its ``median`` and log-space ``sigma`` (quantile q = median x exp(sigma x z_q))."""

    median: float
    sigma: float

    def __post_init__(self):
        if not self.median > 0 or self.sigma < 0 or not math.isfinite(self.sigma):
            raise InfersimError(f"lognormal needs median > 0 and sigma >= 0, got {self.median}, {self.sigma}")

    @classmethod
    def from_quantile(cls, median: float, q: float, value: float) -> Lognormal:
        """The lognormal with this ``median`` whose ``q`` quantile (e.g. 0.9, 0.99, 0.1) is ``value``."""
        z = _Z(q)
        sigma = math.log(value / median) / z
        if sigma < 0:
            raise InfersimError(f"the {q:g} quantile {value:g} is on the wrong side of the median {median:g}")
        return cls(median, sigma)

    def quantile(self, q: float) -> float:
        return self.median * math.exp(self.sigma * _Z(q))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.median * np.exp(self.sigma * rng.standard_normal(n))


@dataclass(frozen=True)
class LoadCurve:
    """Medians measured at fixed concurrency levels (a dedicated cluster), interpolated log-log and
    clamped at the ends: ``at(c) -> (ttft_median_s, speed_median_tok_s)``."""

    concurrency: tuple[float, ...]
    ttft_s: tuple[float, ...]
    speed_tok_s: tuple[float, ...]

    def at(self, concurrency: float) -> tuple[float, float]:
        x = np.log(np.asarray(self.concurrency, dtype=float))
        c = math.log(max(float(concurrency), 1e-9))
        ttft = float(np.exp(np.interp(c, x, np.log(self.ttft_s))))
        speed = float(np.exp(np.interp(c, x, np.log(self.speed_tok_s))))
        return ttft, speed


@dataclass(frozen=True)
class TokenApiLatency:
    """TTFT (seconds) and per-user output speed (tokens/s), independent lognormals.

    ``sample_latencies`` returns TTFT and TPOT = 1 / speed per request. With a ``load_curve`` the medians
    follow ``load_curve.at(concurrency)`` (``at_concurrency``); spreads stay as given.
    """

    ttft: Lognormal
    speed: Lognormal
    load_curve: LoadCurve | None = None

    def sample_latencies(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` requests' (ttft_s, tpot_s) arrays, drawn TTFT first then speed from ``rng``."""
        ttft = self.ttft.sample(n, rng)
        speed = self.speed.sample(n, rng)
        return ttft, 1.0 / speed

    def at_concurrency(self, concurrency: float) -> TokenApiLatency:
        if self.load_curve is None:
            return self
        t, s = self.load_curve.at(concurrency)
        return TokenApiLatency(Lognormal(t, self.ttft.sigma), Lognormal(s, self.speed.sigma), self.load_curve)


@dataclass(frozen=True)
class TokenPrices:
    """Dollars per million input and output tokens."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float

    def cost_usd(self, input_tokens, output_tokens):
        """Charge for requests (scalars or arrays of token counts)."""
        from infersim.economics import token_charge_usd

        return token_charge_usd(np.asarray(input_tokens, dtype=float), np.asarray(output_tokens, dtype=float),
                                self.input_usd_per_mtok, self.output_usd_per_mtok)


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


# -- presets -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenApiPreset:
    """A provider's published figures for one model: latency medians, prices, their sources."""

    id: str
    provider: str
    model: str
    latency: TokenApiLatency
    prices: TokenPrices | None
    source: dict = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()


def _lognormal(raw: dict, default_sigma: float) -> Lognormal:
    med = float(raw["median"])
    for key, q in (("p90", 0.9), ("p99", 0.99), ("p10", 0.1), ("p1", 0.01)):
        if raw.get(key) is not None:
            return Lognormal.from_quantile(med, q, float(raw[key]))
    return Lognormal(med, float(raw.get("sigma", default_sigma)))


def latency_from_spec(ttft: dict, speed: dict, load_curve: dict | None = None) -> TokenApiLatency:
    """Build a latency model from mappings ``{median, p90|p99|p10|p1|sigma}`` (TTFT in s, speed in tok/s);
    a missing spread uses ``DEFAULT_TTFT_SIGMA`` / ``DEFAULT_SPEED_SIGMA``."""
    curve = None
    if load_curve:
        pts = sorted(load_curve["points"], key=lambda p: p["concurrency"])
        curve = LoadCurve(tuple(float(p["concurrency"]) for p in pts), tuple(float(p["ttft_s"]) for p in pts),
                          tuple(float(p["speed_tok_s"]) for p in pts))
    return TokenApiLatency(_lognormal(ttft, DEFAULT_TTFT_SIGMA), _lognormal(speed, DEFAULT_SPEED_SIGMA), curve)


@cache
def token_api_presets() -> dict[str, TokenApiPreset]:
    """Shipped presets by id (``provider/model``)."""
    res = resources.files("infersim.catalog") / "data" / "token_apis.yaml"
    out = {}
    for raw in yaml.safe_load(res.read_text())["token_apis"]:
        pr = raw.get("prices")
        out[raw["id"]] = TokenApiPreset(
            raw["id"], raw["provider"], raw["model"],
            latency_from_spec(raw["ttft_s"], raw["output_speed_tok_s"], raw.get("load_curve")),
            TokenPrices(float(pr["input_usd_per_mtok"]), float(pr["output_usd_per_mtok"])) if pr else None,
            dict(raw.get("source", {})), tuple(raw.get("assumptions", ())))
    return out


def token_api_preset(name: str) -> TokenApiPreset:
    presets = token_api_presets()
    if name not in presets:
        raise InfersimError(f"unknown token API preset '{name}'{suggest(name, presets)} "
                            f"(known: {', '.join(sorted(presets))})")
    return presets[name]


# -- published per-token prices (catalog/data/token_prices.csv) ------------------------------------------------
@dataclass(frozen=True)
class PublishedPrice:
    """One row of ``token_prices.csv``: a provider's price for a catalog model at a date, with its source."""

    prices: TokenPrices
    provider: str
    model: str
    as_of: str
    model_id: str
    source: str


@cache
def _price_rows() -> tuple[dict, ...]:
    import csv
    import io

    text = (resources.files("infersim.catalog") / "data" / "token_prices.csv").read_text()
    return tuple(csv.DictReader(io.StringIO(text)))


def published_price(provider: str, model: str, *, exclude_ids: tuple[str, ...] = ("specdec",)) -> PublishedPrice | None:
    """The latest published price of ``provider`` (e.g. ``Groq``, ``Cerebras``) for catalog ``model``, or None.

    Rows are ``token_prices.csv`` (copied from ``shared/calibration/provider_prices.csv`` with a catalog
    model id and an ISO ``as_of`` date). Among rows of the latest date the lowest output price wins, and model
    ids containing any of ``exclude_ids`` are skipped (Groq's ``-specdec`` tier is a different product)."""
    rows = [r for r in _price_rows() if r["provider"] == provider and r["catalog_model"] == model
            and r["usd_per_1m_input"] and r["usd_per_1m_output"]
            and not any(x in r["model_id"] for x in exclude_ids)]
    if not rows:
        return None
    latest = max(r["as_of"] for r in rows)
    r = min((r for r in rows if r["as_of"] == latest), key=lambda r: float(r["usd_per_1m_output"]))
    return PublishedPrice(TokenPrices(float(r["usd_per_1m_input"]), float(r["usd_per_1m_output"])), provider, model,
                          latest, r["model_id"], r["source"])
