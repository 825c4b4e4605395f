"""The pure models of a ``token_api`` platform built from its scenario block: latency, prices, rate limits."""

from __future__ import annotations

import math

from infersim.economics import TokenPrices
from infersim.perf.token_api import Lognormal, TokenApiLatency, latency_from_spec, token_api_preset
from infersim.policy.rate_limit import RateLimiter
from infersim.scenario.competitors import Prices, RateLimits, TokenApiPlatform
from infersim.scenario.routing import TokenApiTarget


def token_prices(prices: Prices) -> TokenPrices:
    """Per-token prices charged to the customer (dollars per million input / output tokens)."""
    return TokenPrices(prices.input_usd_per_mtok, prices.output_usd_per_mtok)


def rate_limiter(limits: RateLimits) -> RateLimiter:
    """Token buckets for the per-account limits (bucket depth: ``burst_s`` of allowance)."""
    return RateLimiter(limits.requests_per_minute, limits.tokens_per_minute, burst_s=limits.burst)


def api_latency(plat: TokenApiPlatform) -> TokenApiLatency:
    """The platform's latency model: its ``ttft`` / ``output_speed`` where given, else its preset's (with the
    preset's load curve only when neither is overridden)."""
    base = token_api_preset(plat.preset).latency if plat.preset else None
    ttft = latency_from_spec(plat.ttft.as_spec(), {"median": 1.0}).ttft if plat.ttft else base.ttft
    speed = (latency_from_spec({"median": 1.0}, plat.output_speed.as_spec()).speed if plat.output_speed
             else base.speed)
    curve = base.load_curve if base is not None and plat.ttft is None and plat.output_speed is None else None
    return TokenApiLatency(Lognormal(ttft.median, ttft.sigma), Lognormal(speed.median, speed.sigma), curve)


def api_prices(plat: TokenApiPlatform) -> TokenPrices:
    """``prices`` if set, else the preset's."""
    return token_prices(plat.prices) if plat.prices else token_api_preset(plat.preset).prices


def api_price_source(plat: TokenApiPlatform) -> str:
    """Where the API's token prices come from: the scenario's (a market row, PROXY when another model's), else
    the preset's cited source."""
    if plat.prices is not None:
        return plat.prices.label(plat.model)
    src = token_api_preset(plat.preset).source.get("prices", "no source given")
    return f"preset {plat.preset}: {src}"


def api_rate_limiter(plat: TokenApiPlatform) -> RateLimiter | None:
    return rate_limiter(plat.rate_limits) if plat.rate_limits else None


def target_prices(spec: TokenApiTarget) -> TokenPrices:
    """A router's token-API target: its own prices where set, else the preset's (``nan`` when neither has one)."""
    pp = token_api_preset(spec.preset).prices
    return TokenPrices(
        spec.input_usd_per_mtok if spec.input_usd_per_mtok is not None else (pp.input_usd_per_mtok if pp else math.nan),
        spec.output_usd_per_mtok if spec.output_usd_per_mtok is not None else (pp.output_usd_per_mtok if pp else
                                                                                math.nan))


def target_rate_limiter(spec: TokenApiTarget) -> RateLimiter | None:
    """A router's token-API target's rate limits (default bucket depth), None when it sets none."""
    return (RateLimiter(spec.requests_per_minute, spec.tokens_per_minute)
            if spec.requests_per_minute or spec.tokens_per_minute else None)
