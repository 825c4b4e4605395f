"""The token API platform's latency model (lognormal TTFT and output speed, optional load curve) and presets.

A token API (a hyperscaler's model endpoint, a serverless token cloud) is a black box to its customer: it
charges per token, answers with a time to first token (TTFT) and an output speed drawn from distributions
that do not depend on the customer's own load (the provider's fleet is much larger), and rejects requests
beyond its rate limits. The runner draws every request's latencies up front with ``sample_latencies`` and
asks a ``policy.rate_limit.RateLimiter`` at each arrival; prices are ``economics.TokenPrices``.

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

from infersim.catalog.token_apis import token_api_entries
from infersim.core.errors import InfersimError, suggest
from infersim.economics import TokenPrices

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
    out = {}
    for raw in token_api_entries().values():
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
