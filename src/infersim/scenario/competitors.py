"""Scenario schema of the competing platforms: SRAM-only systems (``lpu``, ``wafer``) and token APIs, and the
speculative-decoding knob shared with GPU engines (``Speculative``).

``scenario.platform.Platform`` is the discriminated union of ``GpuFleet`` and these kinds. Describe and
validate only: ``build.sram``, ``build.token_api`` and ``build.specdec`` turn a validated platform into the
runtime models the simulators need; ``infersim.validate`` checks them against the catalog.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from infersim.catalog import PRECISIONS
from infersim.catalog.token_apis import token_api_entries
from infersim.core.errors import FieldError, InfersimError, suggest
from infersim.scenario.types import PositiveSeconds, Seconds, StrictModel

Precision = Literal[PRECISIONS]  # type: ignore[valid-type]


class Speculative(StrictModel):
    """Speculative decoding (``perf.specdec``): ``method`` ``draft_model`` (a smaller model of the catalog runs
    ``num_tokens`` decode steps per round on the same hardware), ``ngram`` (prompt lookup: drafts copied
    from the context, costing ``draft_overhead`` per round) or ``mtp`` (the model's own multi-token-prediction
    module, DeepSeek-V3-style, run ``num_tokens`` times per round; GPU engines); the target verifies ``num_tokens + 1`` positions
    per sequence per round and keeps each draft with i.i.d. probability ``acceptance_rate``."""

    method: Literal["draft_model", "ngram", "mtp"]
    draft_model: str | None = None
    num_tokens: int = Field(ge=1, le=16, description="tokens proposed per round (k)")
    acceptance_rate: float = Field(ge=0, le=1, description="per-token acceptance probability (i.i.d.)")
    draft_overhead: Seconds = Field(0.0, description="fixed seconds per round for drafting (n-gram lookup)")

    @model_validator(mode="after")
    def _draft(self):
        if self.method == "draft_model" and not self.draft_model:
            raise FieldError("draft_model", "method 'draft_model' needs 'draft_model' (a catalog model)")
        if self.method in ("ngram", "mtp") and self.draft_model:
            raise FieldError("draft_model", f"method '{self.method}' takes no 'draft_model'")
        return self

class Prices(StrictModel):
    """Dollars per million tokens charged to the customer: typed as numbers, or a reference to a dated row of
    the market dataset (``{provider: groq, model: gpt-oss-120b, as_of: 2026-06}``, ``catalog.market.price``)
    resolved when the scenario loads. ``source`` is filled with the row's citation (or may be typed to cite
    numbers given by hand). A reference whose ``model`` is not the platform's model is a *proxy*
    (``proxy_for``), labelled as one in the output."""

    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    provider: str | None = Field(None, description="market dataset provider (e.g. groq, cerebras, aws-bedrock)")
    model: str | None = Field(None, description="catalog model whose price row is used")
    as_of: str | None = Field(None, description="latest row dated on or before (YYYY, YYYY-MM or YYYY-MM-DD)")
    source: str | None = Field(None, description="citation of the numbers (filled from the row for a reference)")
    scale: float = Field(1.0, gt=0, description="a reference's prices times this (e.g. a negotiated discount; "
                                                "the knob `infersim solve` varies)")

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data):
        if not isinstance(data, dict) or data.get("provider") is None:
            return data
        if data.get("source") and "input_usd_per_mtok" in data and "output_usd_per_mtok" in data:
            return data  # already resolved (a saved scenario read back)
        given = [k for k in ("input_usd_per_mtok", "output_usd_per_mtok", "source") if k in data]
        if given:
            raise FieldError(given[0], f"give either prices as numbers or a market reference (provider, model, "
                                       f"as_of), not both ('{given[0]}' with 'provider')")
        if not data.get("model"):
            raise FieldError("model", "a market price reference needs 'model' (a catalog model with price rows; "
                                      "see `infersim catalog prices`)")
        from infersim.catalog import market

        as_of = None if data.get("as_of") is None else str(data["as_of"])
        try:
            market._as_of_key(as_of)
        except InfersimError as exc:
            raise FieldError("as_of", str(exc)) from None
        try:
            row = market.price(str(data["provider"]), str(data["model"]), as_of)
        except InfersimError as exc:
            at = "model" if "for model" in str(exc) else ("as_of" if "dated on or before" in str(exc) else "provider")
            raise FieldError(at, str(exc)) from None
        k = data.get("scale", 1.0)
        if not isinstance(k, (int, float)) or isinstance(k, bool) or not k > 0:
            raise FieldError("scale", f"scale must be a positive number, got {k!r}")
        cite = row.cite() + (f"; x {k:g} (scenario scale)" if k != 1 else "")
        return {**data, "as_of": as_of, "input_usd_per_mtok": row.input_usd_per_mtok * k,
                "output_usd_per_mtok": row.output_usd_per_mtok * k, "source": cite}

    def proxy_for(self, served_model: str) -> str | None:
        """The price row's model when it is not ``served_model`` (a proxy price), else None."""
        return self.model if self.model and self.model != served_model else None

    def label(self, served_model: str) -> str:
        """How the output cites these prices: the row, marked PROXY when it is another model's."""
        src = self.source or "typed in the scenario (no source given)"
        proxy = self.proxy_for(served_model)
        return (f"PROXY ({proxy} price for {served_model}): " if proxy else "") + src

class _Spread(StrictModel):
    """A lognormal by its median and at most one of ``p90``, ``p99``, ``p10``, ``p1`` or log-space ``sigma``
    (none: the default spread, an assumption)."""

    sigma: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_spread(self):
        given = [k for k in ("p90", "p99", "p10", "p1", "sigma") if getattr(self, k, None) is not None]
        if len(given) > 1:
            raise FieldError(given[1], f"give one of p90, p99, p10, p1 or sigma, not {' and '.join(given)}")
        for k, up in (("p90", True), ("p99", True), ("p10", False), ("p1", False)):
            v = getattr(self, k, None)
            if v is not None and (v < self.median if up else v > self.median):
                raise FieldError(k, f"{k} {v:g} is on the wrong side of the median {self.median:g}")
        return self

    def as_spec(self) -> dict:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class TtftDistribution(_Spread):
    """Time to first token (seconds, or '200ms')."""

    median: PositiveSeconds
    p90: Seconds | None = None
    p99: Seconds | None = None
    p10: Seconds | None = None
    p1: Seconds | None = None


class SpeedDistribution(_Spread):
    """Per-user output speed in tokens/s (``p90`` is the fast tail, ``p10`` the slow one)."""

    median: float = Field(gt=0)
    p90: float | None = Field(None, gt=0)
    p99: float | None = Field(None, gt=0)
    p10: float | None = Field(None, gt=0)
    p1: float | None = Field(None, gt=0)


class RateLimits(StrictModel):
    """Per-account limits, enforced as token buckets refilled continuously (rejections: ``rate_limited``)."""

    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    count_output_tokens: bool = Field(True, description="tokens counted at admission: input + output when true "
                                                        "(as APIs count max_tokens), input only when false")
    burst: PositiveSeconds = Field(60.0, description="bucket depth as seconds of allowance (assumption: a minute)")

class TokenApiPlatform(StrictModel):
    """A token-priced API (hyperscaler endpoint or serverless token cloud): latencies drawn per request,
    prices per token, rate limits. ``preset`` (e.g. ``fireworks/llama-3.1-70b``, see
    ``catalog/data/token_apis.yaml``) fills ``prices``, ``ttft`` and ``output_speed`` left unset."""

    kind: Literal["token_api"]
    name: str
    model: str
    preset: str | None = None
    prices: Prices | None = None
    ttft: TtftDistribution | None = None
    output_speed: SpeedDistribution | None = None
    rate_limits: RateLimits | None = None
    streams: list[str] | None = Field(None, description="streams this platform serves (default: all)")

    @model_validator(mode="after")
    def _complete(self):
        if self.preset is not None:
            names = token_api_entries()
            if self.preset not in names:
                hint = suggest(self.preset, names) or f" (known: {', '.join(sorted(names))})"
                raise FieldError("preset", f"unknown token API preset '{self.preset}'{hint}")
            if self.prices is None and not names[self.preset].get("prices"):
                raise FieldError("prices", f"preset '{self.preset}' has no per-token prices; set 'prices'")
            return self
        for f in ("prices", "ttft", "output_speed"):
            if getattr(self, f) is None:
                raise FieldError(f, f"'{f}' is required when no 'preset' is given")
        return self

class SramOverrides(StrictModel):
    """Override parameters of the shipped SRAM profile (see ``infersim.perf.sram.params.SramParams``)."""

    layer_latency_s: float | None = Field(None, ge=0)
    sram_bw_eff: float | None = Field(None, gt=0, le=1)
    compute_eff: float | None = Field(None, gt=0, le=1)
    sram_usable_frac: float | None = Field(None, gt=0, le=1)
    unit_granularity: int | None = Field(None, ge=1)
    stages_per_unit: int | None = Field(None, ge=0)
    max_microbatch: int | None = Field(None, ge=0)
    hop_latency_s: float | None = Field(None, ge=0)


class OwnedCost(StrictModel):
    """Assumptions of the owned-system cost (``economics.owned_cost_breakdown``); per-unit price and power
    default to the catalog's ``list_price_usd`` and ``tdp_w``."""

    amortization_years: float = Field(4.0, gt=0)
    pue: float = Field(1.3, ge=1)
    usd_per_kwh: float = Field(0.08, ge=0)
    hosting_usd_per_kw_month: float = Field(150.0, ge=0)
    list_price_usd: float | None = Field(None, ge=0)
    tdp_w: float | None = Field(None, ge=0)

class SramPlatform(StrictModel):
    """Replicas of one model on SRAM-only hardware, each a fixed pipeline of units (chips or systems)."""

    name: str
    model: str
    precision: Precision | None = Field(None, description="weight precision (default: the profile's)")
    kv_precision: Precision = "bf16"
    replicas: int = Field(1, ge=1)
    kv_tokens: int | None = Field(None, ge=0, description="KV tokens the default unit count must hold besides "
                                                          "the weights (default: the model's max context)")
    max_in_flight: int | None = Field(None, ge=1, description="cap on sequences per replica (default: the "
                                                              "pipeline's slots, stages x micro-batch)")
    perf: SramOverrides = Field(default_factory=SramOverrides)
    prices: Prices | None = Field(None, description="what customers are charged (revenue side; default: the "
                                                    "provider's latest published price for the model)")
    cost: OwnedCost = Field(default_factory=OwnedCost)
    queue_timeout: Seconds | None = Field(None, description="reject requests waiting longer than this for a "
                                                            "pipeline slot (reason 'queue_timeout')")
    speculative: Speculative | None = None
    streams: list[str] | None = Field(None, description="streams this platform serves (default: all)")

    units_field: ClassVar[str] = "chips"
    provider: ClassVar[str] = "Groq"  # whose published token prices are the default (token_prices.csv)

    @property
    def units(self) -> int | None:
        return getattr(self, self.units_field)

class LpuPlatform(SramPlatform):
    """A Groq-like deployment: replicas of ``chips`` LPUs each (default: the fewest that hold the model)."""

    kind: Literal["lpu"]
    hardware: str = "groq-lpu"
    chips: int | None = Field(None, ge=1, description="chips per replica (default: as many as needed)")


class WaferPlatform(SramPlatform):
    """A Cerebras-like deployment: replicas of ``systems`` wafer-scale systems each (default: as needed)."""

    kind: Literal["wafer"]
    hardware: str = "cerebras-wse3"
    systems: int | None = Field(None, ge=1, description="systems per replica (default: as many as needed)")

    units_field: ClassVar[str] = "systems"
    provider: ClassVar[str] = "Cerebras"


Competitor = LpuPlatform | WaferPlatform | TokenApiPlatform
