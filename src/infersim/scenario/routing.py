"""Scenario schema of a ``gpu_fleet`` platform's model router and economics (what the customer pays, what
serving costs the platform, how capacity pools are priced).

Defaults and sources (see ``docs/economics.md``):

- ``accuracy`` 0.8: ASSUMPTION. Correlation between the router's difficulty estimate and the truth; learned
  routers are far from perfect (routing.csv RouterBench row: predictive routers often do not beat a
  non-predictive one; LLMRank reaches 89 % of oracle utility).
- ``threshold`` 0.75: calibrated so that the default quality model and difficulty mix give ~95 % of the
  strongest model's quality (routing.csv RouteLLM row); see ``infersim.policy.quality``.
- cascade judge: ``recall`` 0.9, ``false_escalation`` 0.1: ASSUMPTION (routing.csv RouterBench row: cascade
  gains depend on judge accuracy; no figure published for a typical judge).
- customer price ``per_gpu_minute``: Baseten's instance price list (``catalog/data/baseten_prices.yaml``,
  from shared/calibration/baseten.csv ``instance_price`` rows).
- pool prices: see ``infersim.economics`` and ``baseten_prices.yaml`` (provider rental section).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from infersim.catalog.token_apis import token_api_entries
from infersim.scenario.competitors import Prices
from infersim.core.errors import FieldError, suggest
from infersim.scenario.types import PositiveSeconds, Seconds, StrictModel


class QualitySpec(StrictModel):
    """Overrides of the quality model (``infersim.policy.quality``); omitted fields keep the defaults."""

    c0: float | None = None
    c1_per_decade: float | None = Field(None, gt=0)
    slope: float | None = Field(None, gt=0)
    offsets: dict[str, float] = Field(default_factory=dict, description="task class -> capability offset")
    capability: dict[str, float] = Field(default_factory=dict, description="model id -> capability (replaces "
                                                                           "the size law for that model)")


class TokenApiTarget(StrictModel):
    """An external token API that takes overflow. Latency and prices from a shipped preset
    (``catalog/data/token_apis.yaml``); prices may be overridden; rate limits are optional."""

    preset: str
    input_usd_per_mtok: float | None = Field(None, ge=0)
    output_usd_per_mtok: float | None = Field(None, ge=0)
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    capability: float | None = Field(None, description="capability of the API's model for the quality model "
                                                       "(default: from the preset's model size)")

    @model_validator(mode="after")
    def _preset(self):
        presets = token_api_entries()
        if self.preset not in presets:
            raise FieldError("preset", f"unknown token API preset '{self.preset}'{suggest(self.preset, presets)} "
                             f"(known: {', '.join(sorted(presets))})")
        return self


class _Router(StrictModel):
    deployments: list[str] | None = Field(
        None, description="routable deployments, CHEAPEST FIRST (default: all, in the platform's order)")
    accuracy: float = Field(0.8, ge=0, le=1, description="corr(difficulty estimate, difficulty); 1 = exact, "
                                                         "0 = the router knows nothing")
    quality: QualitySpec = Field(default_factory=QualitySpec)
    max_waiting: int | None = Field(None, ge=1, description="spill when a target has this many requests "
                                                            "waiting to start")
    max_ttft: Seconds | None = Field(None, description="spill when a target's recent mean TTFT exceeds this")
    token_api: TokenApiTarget | None = Field(None, description="last resort for spilled requests")

    @property
    def spills(self) -> bool:
        return self.max_waiting is not None or self.max_ttft is not None


class FixedRouterSpec(_Router):
    """Every request to deployment ``to``."""

    kind: Literal["fixed"]
    to: str


class ThresholdRouterSpec(_Router):
    """RouteLLM-style: the cheapest deployment whose predicted P(acceptable) >= ``threshold``."""

    kind: Literal["threshold"]
    threshold: float = Field(0.75, gt=0, lt=1)


class CascadeRouterSpec(_Router):
    """The cheapest deployment answers; a judge rejects unacceptable answers with ``recall`` (and acceptable
    ones with ``false_escalation``); a rejected request is served again by the next deployment after
    ``judge`` seconds, its E2E covering both."""

    kind: Literal["cascade"]
    recall: float = Field(0.9, ge=0, le=1)
    false_escalation: float = Field(0.1, ge=0, le=1)
    judge: Seconds = 0.0


class SpilloverRouterSpec(_Router):
    """The first deployment while under its bounds, then the next, then ``token_api``."""

    kind: Literal["spillover"]

    @model_validator(mode="after")
    def _bound(self):
        if not self.spills:
            raise FieldError("max_waiting", "a spillover router needs a bound: 'max_waiting' and/or 'max_ttft'")
        return self


Router = Annotated[FixedRouterSpec | ThresholdRouterSpec | CascadeRouterSpec | SpilloverRouterSpec,
                   Field(discriminator="kind")]


class PerGpuMinute(StrictModel):
    """Customer pays per GPU-minute of billed replica time (dedicated deployments). Price per hardware:
    ``usd_per_gpu_minute`` override, else Baseten's price list (``baseten_prices.yaml``), else the
    deployment's ``usd_per_gpu_hour`` / the catalog's ``usd_per_hour`` divided by 60."""

    kind: Literal["per_gpu_minute"] = "per_gpu_minute"
    usd_per_gpu_minute: dict[str, float] = Field(default_factory=dict, description="hardware id -> USD/GPU-min")


class PerToken(Prices):
    """Customer pays per million input and output tokens of finished requests: numbers, or a market
    reference (``{kind: per_token, provider: baseten, model: gpt-oss-120b, as_of: 2026-06}``) as ``Prices``."""

    kind: Literal["per_token"]


CustomerPricing = Annotated[PerGpuMinute | PerToken, Field(discriminator="kind")]


class OwnedHardware(StrictModel):
    """Owned GPUs: list price amortised straight-line + power x PUE x $/kWh + hosting per kW (defaults as in
    ``infersim.economics.owned_usd_per_hour``; ASSUMPTIONS stated there)."""

    amortization_years: float = Field(4.0, gt=0)
    pue: float = Field(1.3, ge=1)
    usd_per_kwh: float = Field(0.08, ge=0)
    hosting_usd_per_kw_month: float = Field(150.0, ge=0)
    list_price_usd: float | None = Field(None, gt=0, description="per GPU (default: the catalog's)")


class Economics(StrictModel):
    """How the platform's run is priced. ``provider_usd_per_gpu_hour`` overrides the on-demand rental rate
    per hardware id for replicas not drawn from a priced pool (default: ``baseten_prices.yaml`` provider
    section, else the catalog's ``usd_per_hour``); ``provider_billing_unit`` is the cloud's billing unit."""

    customer: CustomerPricing = Field(default_factory=PerGpuMinute)
    provider_usd_per_gpu_hour: dict[str, float] = Field(default_factory=dict)
    provider_billing_unit: PositiveSeconds = Field(60.0, description="per minute: Hyperstack's billing "
                                                   "granularity (its public rate card, 2026-08-26)")
    owned: OwnedHardware | None = Field(None, description="all GPUs not drawn from a priced pool are owned")


class PoolPricing(StrictModel):
    """How a capacity pool's GPUs are paid for. ``on_demand``: billed replica time; ``reserved``: the whole
    pool (``limit_gpus``) for the whole run, used or idle; ``spot``: billed replica time at the spot price,
    and replicas on it are interrupted at random (mean ``interruption_mtbf_gpu_hours``), which the fleet
    handles as failures; ``owned``: the whole pool at owned-hardware cost. ``usd_per_gpu_hour`` defaults to
    the on-demand provider rate x ``baseten_prices.yaml`` ``reserved_factor``/``spot_factor``."""

    kind: Literal["on_demand", "reserved", "spot", "owned"] = "on_demand"
    usd_per_gpu_hour: float | None = Field(None, ge=0)
    interruption_mtbf_gpu_hours: float | None = Field(None, gt=0)
    owned: OwnedHardware = Field(default_factory=OwnedHardware)
    provider: str | None = Field(None, description="rent from this market provider (catalog/data/gpu_rental.csv, "
                                                   "e.g. aws, nebius, hyperstack): its row for the pool's "
                                                   "hardware and this kind sets usd_per_gpu_hour")
    provider_class: Literal["hyperscaler", "specialist", "marketplace"] | None = Field(
        None, description="rent at the cheapest row of this class instead of one named provider")
    quarter: str | None = Field(None, description="latest market row in or before this quarter (e.g. 2026Q3)")
    commitment_months: float | None = Field(None, gt=0, description="term of a reserved commitment (reported; "
                                                                    "the run pays the commitment for its span)")
    source: str | None = Field(None, description="citation of usd_per_gpu_hour (filled from the market row)")

    def resolved(self, hardware: str) -> PoolPricing:
        """This pricing with ``usd_per_gpu_hour`` and ``source`` from the market row named by ``provider`` /
        ``provider_class`` / ``quarter`` for ``hardware`` (unchanged when none is named)."""
        if self.provider is None and self.provider_class is None:
            return self
        if self.kind == "owned":
            raise FieldError("provider", "an owned pool is not rented: drop 'provider'/'provider_class'")
        if self.usd_per_gpu_hour is not None:
            raise FieldError("usd_per_gpu_hour", "give either usd_per_gpu_hour or a market provider, not both")
        from infersim.catalog import market
        from infersim.core.errors import InfersimError

        try:
            row = market.gpu_rental(hardware, self.provider, self.provider_class, self.kind, self.quarter)
        except InfersimError as exc:
            raise FieldError("provider" if self.provider else "provider_class", str(exc)) from None
        return self.model_copy(update={"usd_per_gpu_hour": row.usd_per_gpu_hour, "source": row.cite()})
