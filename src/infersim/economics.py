"""Platform economics: what the customer pays, what serving costs the platform, and the margin (pure).

Every platform kind reports the same summary fields (``SUMMARY_FIELDS``), so the comparison table lines up a
GPU fleet billed per GPU-minute with a token API billed per token. Conventions:

- Money is in US dollars over the **whole run** (warm-up and drain included), because that is what a bill
  covers; the token counts it is divided by are those of the requests that *finished* in the whole run.
- ``customer_usd`` is the platform's revenue from this workload; ``provider_cost_usd`` is what the platform
  pays to serve it (GPU rental, or owned hardware amortised plus power and hosting).
- ``gross_margin`` = (customer - provider) / customer; ``nan`` when the customer pays nothing.
"""

from __future__ import annotations

import math

#: summary field -> meaning (units in the name). Every simulator fills what applies; a missing one is ``nan``.
SUMMARY_FIELDS: dict[str, str] = {
    "customer_usd": "what the customer pays for the run, USD",
    "customer_usd_per_mtok": "customer_usd per million tokens (input + output) of finished requests",
    "customer_usd_per_mtok_out": "customer_usd per million output tokens of finished requests (all-in)",
    "customer_usd_per_request": "customer_usd per finished request",
    "price_usd_per_mtok_in": "list price per million input tokens (token-priced platforms)",
    "price_usd_per_mtok_out": "list price per million output tokens (token-priced platforms)",
    "provider_cost_usd": "what serving the run costs the platform, USD",
    "provider_usd_per_mtok": "provider_cost_usd per million tokens (input + output) of finished requests",
    "provider_usd_per_request": "provider_cost_usd per finished request",
    "gross_margin": "(customer_usd - provider_cost_usd) / customer_usd",
    "chips": "accelerators (GPUs, LPU chips, wafer systems) at peak",
    "racks": "racks at peak (catalog chips per rack; an assumption where the catalog says so)",
    "power_kw": "power of the peak hardware at TDP, kW",
}


def per_mtok(usd: float, tokens: float) -> float:
    """Dollars per million tokens; ``nan`` for no tokens."""
    return usd / tokens * 1e6 if tokens > 0 else math.nan


def token_charge_usd(input_tokens: float, output_tokens: float, in_usd_per_mtok: float,
                     out_usd_per_mtok: float) -> float:
    """What ``input_tokens`` and ``output_tokens`` cost at per-million-token prices."""
    return (input_tokens * in_usd_per_mtok + output_tokens * out_usd_per_mtok) / 1e6


def margin(customer_usd: float, provider_cost_usd: float) -> float:
    """Gross margin as a fraction of revenue; ``nan`` when there is no revenue or either side is unknown."""
    if not customer_usd or math.isnan(customer_usd) or math.isnan(provider_cost_usd):
        return math.nan
    return (customer_usd - provider_cost_usd) / customer_usd


def economics_fields(*, customer_usd: float, provider_cost_usd: float, input_tokens: float,
                     output_tokens: float, requests: int) -> dict[str, float]:
    """The per-token and per-request summary fields from run totals (finished requests' tokens)."""
    tokens = input_tokens + output_tokens
    return {
        "customer_usd": customer_usd,
        "customer_usd_per_mtok": per_mtok(customer_usd, tokens),
        "customer_usd_per_mtok_out": per_mtok(customer_usd, output_tokens),
        "customer_usd_per_request": customer_usd / requests if requests else math.nan,
        "provider_cost_usd": provider_cost_usd,
        "provider_usd_per_mtok": per_mtok(provider_cost_usd, tokens),
        "provider_usd_per_request": provider_cost_usd / requests if requests else math.nan,
        "gross_margin": margin(customer_usd, provider_cost_usd),
    }
