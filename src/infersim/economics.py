"""Platform economics: what the customer pays, what serving costs the platform, and the margin (pure).

Every platform kind reports the same summary fields (``SUMMARY_FIELDS``), so the comparison table lines up a
GPU fleet billed per GPU-minute with a token API billed per token. Conventions:

- Money is in US dollars over the **whole run** (warm-up and drain included), because that is what a bill
  covers; the token counts it is divided by are those of the requests that *finished* in the whole run.
- ``customer_usd`` is the platform's revenue from this workload; ``provider_cost_usd`` is what the platform
  pays to serve it (GPU rental, or owned hardware amortised plus power and hosting).
- ``gross_margin`` = (customer - provider) / customer; ``nan`` when the customer pays nothing.

GPU-fleet pricing (``price_list``, ``customer_usd_per_gpu_minute``, ``provider_usd_per_gpu_hour``,
``owned_usd_per_hour``, ``billed_usd``, ``commitment_usd``, ``footprint``) reads the shipped price list
``catalog/data/baseten_prices.yaml`` (every figure with its source); ``infersim.platforms.fleet_economics``
applies it to a run. Equations and assumptions: ``docs/economics.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import yaml

from infersim.core.errors import InfersimError

if TYPE_CHECKING:
    from infersim.catalog import Catalog, Hardware

#: summary field -> meaning (units in the name). Every simulator fills what applies; a missing one is ``nan``.
SUMMARY_FIELDS: dict[str, str] = {
    "customer_usd": "what the customer pays for the run, USD",
    "customer_usd_per_mtok": "customer_usd per million tokens (input + output) of finished requests",
    "customer_usd_per_mtok_out": "customer_usd per million output tokens of finished requests (all-in)",
    "customer_usd_per_request": "customer_usd per finished request",
    "price_usd_per_mtok_in": "list price per million input tokens (token-priced platforms)",
    "price_usd_per_mtok_out": "list price per million output tokens (token-priced platforms)",
    "customer_gpu_minutes_usd": "the part of customer_usd billed per GPU-minute of replica time, USD",
    "customer_per_token_usd": "the part of customer_usd billed per token by the platform itself, USD",
    "customer_token_api_usd": "the part of customer_usd for requests a router spilled to a token API, USD",
    "provider_cost_usd": "what serving the run costs the platform, USD",
    "provider_usd_per_mtok": "provider_cost_usd per million tokens (input + output) of finished requests",
    "provider_usd_per_request": "provider_cost_usd per finished request",
    "gross_margin": "(customer_usd - provider_cost_usd) / customer_usd",
    "chips": "accelerators (GPUs, LPU chips, wafer systems) at peak",
    "racks": "racks at peak (catalog chips per rack; an assumption where the catalog says so)",
    "power_kw": "power of the peak hardware at TDP, kW",
}

#: routing and fleet-economics summary fields of ``gpu_fleet`` platforms (``infersim.platforms.fleet_economics``)
ROUTING_FIELDS: dict[str, str] = {
    "quality": "mean expected P(acceptable) of answers (finished and rejected requests; a rejection counts 0)",
    "quality_strongest": "the same requests answered by the platform's strongest model",
    "quality_ratio": "quality / quality_strongest",
    "escalated_share": "share of arrived requests a cascade escalated to a second deployment",
    "spilled_share": "share of arrived requests moved off the router's choice by a load bound",
    "unused_commitment_usd": "reserved or owned pool cost with no replica on the pool during the run, USD",
    "spot_interruptions": "replicas on spot pools interrupted (handled as failures)",
}


def per_mtok(usd: float, tokens: float) -> float:
    """Dollars per million tokens; ``nan`` for no tokens."""
    return usd / tokens * 1e6 if tokens > 0 else math.nan


def deployment_usd_per_gpu_hour(spec, hardware) -> float:
    """The GPU-hour price a deployment is billed at: its ``usd_per_gpu_hour`` override, else the hardware
    catalog's ``usd_per_hour``; ``nan`` when neither is known."""
    price = spec.usd_per_gpu_hour if spec.usd_per_gpu_hour is not None else hardware.usd_per_hour
    return math.nan if price is None else float(price)


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


def customer_parts(*, gpu_minutes_usd: float = 0.0, per_token_usd: float = 0.0,
                   token_api_usd: float = 0.0) -> dict[str, float]:
    """The parts of ``customer_usd``, each recorded where it is charged (the reconciliation test adds them up)."""
    return {"customer_gpu_minutes_usd": float(gpu_minutes_usd), "customer_per_token_usd": float(per_token_usd),
            "customer_token_api_usd": float(token_api_usd)}


# -- GPU-fleet pricing (pure arithmetic; see docs/economics.md) -------------------------------------------------
HOURS_PER_YEAR = 8766.0  # 365.25 x 24 ((as perf.sram.pipeline))
HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0  # 730.5


@dataclass(frozen=True)
class PriceList:
    """``catalog/data/baseten_prices.yaml``: customer USD per GPU-minute and provider on-demand USD per
    GPU-hour by hardware id, the reserved/spot factors on the provider rate, the default spot interruption
    rate and GPUs per rack. Every figure's source is in the file."""

    customer_usd_per_gpu_minute: dict[str, float]
    provider_usd_per_gpu_hour: dict[str, float]
    reserved_factor: float
    spot_factor: float
    spot_interruption_mtbf_gpu_hours: float
    gpus_per_rack: int


@cache
def price_list() -> PriceList:
    """The shipped price list (package data, read once)."""
    raw = yaml.safe_load((resources.files("infersim.catalog") / "data" / "baseten_prices.yaml").read_text())
    return PriceList({k: float(v["usd_per_gpu_minute"]) for k, v in raw["customer_usd_per_gpu_minute"].items()},
                     {k: float(v["usd_per_gpu_hour"]) for k, v in raw["provider_usd_per_gpu_hour"].items()},
                     float(raw["reserved_factor"]), float(raw["spot_factor"]),
                     float(raw["spot_interruption_mtbf_gpu_hours"]), int(raw["gpus_per_rack"]))


def customer_usd_per_gpu_minute(hardware_id: str, fallback_usd_per_gpu_hour: float | None,
                                overrides: dict[str, float] | None = None) -> tuple[float, str]:
    """Customer price per GPU-minute and where it came from (``override``, ``price_list`` or ``fallback``:
    the deployment's / catalog's USD per GPU-hour / 60; ``nan`` with ``none`` when nothing is known)."""
    if overrides and hardware_id in overrides:
        return float(overrides[hardware_id]), "override"
    pl = price_list().customer_usd_per_gpu_minute
    if hardware_id in pl:
        return pl[hardware_id], "price_list"
    if fallback_usd_per_gpu_hour is None or math.isnan(fallback_usd_per_gpu_hour):
        return math.nan, "none"
    return fallback_usd_per_gpu_hour / 60.0, "fallback"


def provider_usd_per_gpu_hour(hardware_id: str, catalog_usd_per_hour: float | None, kind: str = "on_demand",
                              overrides: dict[str, float] | None = None) -> float:
    """Provider rental rate per GPU-hour: override, else the price list's on-demand rate, else the
    catalog's; times ``reserved_factor``/``spot_factor`` for ``kind`` reserved/spot. ``nan`` if unknown."""
    pl = price_list()
    if overrides and hardware_id in overrides:
        rate = float(overrides[hardware_id])
    elif hardware_id in pl.provider_usd_per_gpu_hour:
        rate = pl.provider_usd_per_gpu_hour[hardware_id]
    else:
        rate = math.nan if catalog_usd_per_hour is None else float(catalog_usd_per_hour)
    return rate * {"reserved": pl.reserved_factor, "spot": pl.spot_factor}.get(kind, 1.0)


def owned_usd_per_hour(list_price_usd: float, tdp_w: float, units: float = 1, *, amortization_years: float = 4.0,
                       pue: float = 1.3, usd_per_kwh: float = 0.08,
                       hosting_usd_per_kw_month: float = 150.0) -> dict[str, float]:
    """USD per hour of owning ``units`` chips running all hours, by part (``capex``, ``power``, ``hosting``,
    ``total``): list price straight-line over ``amortization_years`` (no residual value, no cost of capital);
    electricity at ``tdp_w`` x ``pue`` x ``usd_per_kwh``; colocation ``hosting_usd_per_kw_month`` per kW of
    IT load (730.5 h a month). ASSUMPTIONS (the same as ``economics.owned_cost_breakdown``): 4 years, PUE 1.3,
    $0.08/kWh, $150/kW-month; host servers, networking and staff excluded."""
    if amortization_years <= 0 or units < 0:
        raise ValueError("amortization_years must be > 0 and units >= 0")
    kw = units * tdp_w / 1e3
    parts = {"capex": units * list_price_usd / (amortization_years * HOURS_PER_YEAR),
             "power": kw * pue * usd_per_kwh, "hosting": kw * hosting_usd_per_kw_month / HOURS_PER_MONTH}
    parts["total"] = parts["capex"] + parts["power"] + parts["hosting"]
    return parts


def billed_seconds(duration_s: float, unit_s: float) -> float:
    """``duration_s`` rounded up to whole ``unit_s`` (a zero-length segment costs nothing).

    A float error of a nanosecond does not buy another unit: 60.0000000001 s per minute is one minute."""
    if duration_s <= 0:
        return 0.0
    return math.ceil(duration_s / unit_s - 1e-9) * unit_s


def billed_usd(segments_s, unit_s: float, usd_per_gpu_hour: float, gpus: int) -> float:
    """Cost of replica time billed per ``unit_s``: each segment (seconds, one replica's contiguous billed
    stretch) rounded up to whole units, times ``gpus`` x ``usd_per_gpu_hour``. One replica billed per
    minute for 61 s costs 2 minutes."""
    return sum(billed_seconds(d, unit_s) for d in segments_s) * gpus * usd_per_gpu_hour / 3600.0


def commitment_usd(gpus: int, usd_per_gpu_hour: float, duration_s: float) -> float:
    """A reserved (or owned) block of ``gpus`` paid for ``duration_s`` whether used or idle."""
    return gpus * usd_per_gpu_hour * max(duration_s, 0.0) / 3600.0


def footprint(gpus: int, tdp_w: float, gpus_per_rack: int | None = None) -> dict[str, float]:
    """``chips``, ``racks`` (gpus / gpus per rack, fractional) and ``power_kw`` (chips at TDP)."""
    per_rack = gpus_per_rack or price_list().gpus_per_rack
    return {"chips": gpus, "racks": gpus / per_rack, "power_kw": gpus * tdp_w / 1e3}


# -- owned hardware by catalog entry ----------------------------------------------------------------------
@dataclass(frozen=True)
class OwnedCost:
    """Dollars per hour of owning one replica, by part."""

    capex_usd_per_hour: float
    power_usd_per_hour: float
    hosting_usd_per_hour: float

    @property
    def total_usd_per_hour(self) -> float:
        return self.capex_usd_per_hour + self.power_usd_per_hour + self.hosting_usd_per_hour


def owned_cost_breakdown(hardware: Hardware | str, units: int, *, amortization_years: float = 4.0,
                         pue: float = 1.3, usd_per_kwh: float = 0.08, hosting_usd_per_kw_month: float = 150.0,
                         list_price_usd: float | None = None, tdp_w: float | None = None,
                         catalog: Catalog | None = None) -> OwnedCost:
    """Per-hour cost of owning ``units`` chips/systems, running flat out all hours
    (``economics.owned_usd_per_hour`` with the catalog's ``list_price_usd`` and ``tdp_w`` per unit).

    Assumptions (each a parameter): straight-line over ``amortization_years`` (default 4) with no residual
    value or cost of capital; electricity at TDP x ``pue`` (default 1.3) x ``usd_per_kwh`` (default $0.08);
    colocation at ``hosting_usd_per_kw_month`` (default $150) per kW of IT load, space and cooling, power
    billed apart. Host servers, networking and staff are not included.
    """
    from infersim.catalog import default_catalog

    hw = (catalog or default_catalog()).get_hardware(hardware) if isinstance(hardware, str) else hardware
    price = list_price_usd if list_price_usd is not None else hw.list_price_usd
    watts = tdp_w if tdp_w is not None else hw.tdp_w
    if price is None:
        raise InfersimError(f"{hw.id} has no list price in the catalog; pass list_price_usd")
    try:
        parts = owned_usd_per_hour(price, watts, units, amortization_years=amortization_years, pue=pue,
                                   usd_per_kwh=usd_per_kwh, hosting_usd_per_kw_month=hosting_usd_per_kw_month)
    except ValueError as exc:
        raise InfersimError(str(exc)) from None
    return OwnedCost(parts["capex"], parts["power"], parts["hosting"])


def owned_cost_usd_per_hour(hardware: Hardware | str, units: int, **assumptions) -> float:
    """Total of ``owned_cost_breakdown`` (same parameters and assumptions)."""
    return owned_cost_breakdown(hardware, units, **assumptions).total_usd_per_hour


@dataclass(frozen=True)
class TokenPrices:
    """Dollars per million input and output tokens."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float

    def cost_usd(self, input_tokens, output_tokens):
        """Charge for requests (scalars or arrays of token counts)."""
        return token_charge_usd(np.asarray(input_tokens, dtype=float), np.asarray(output_tokens, dtype=float),
                                self.input_usd_per_mtok, self.output_usd_per_mtok)
