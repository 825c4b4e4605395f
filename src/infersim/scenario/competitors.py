"""Scenario schema of the competing platforms: SRAM-only systems (``lpu``, ``wafer``) and token APIs, and the
speculative-decoding knob shared with GPU engines (``Speculative``).

``scenario.platform.Platform`` is the discriminated union of ``GpuFleet`` and these kinds;
``scenario.loader.check_scenario`` calls ``check_competitor`` on them. The ``build_*`` methods turn a
validated platform into the pure models the simulators need (``perf.sram.SramPipeline``,
``tokenapi.TokenApiLatency``, ``tokenapi.RateLimiter``, ``tokenapi.TokenPrices``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from infersim.catalog import PRECISIONS
from infersim.core.errors import CapacityError, FieldError, InfersimError, ScenarioError, suggest
from infersim.scenario.types import STRICT, PositiveSeconds, Seconds

if TYPE_CHECKING:
    from infersim.catalog import Catalog
    from infersim.perf.sram import SramPipeline
    from infersim.perf.token_api import RateLimiter, TokenApiLatency, TokenPrices

Precision = Literal[PRECISIONS]  # type: ignore[valid-type]


class _M(BaseModel):
    model_config = STRICT


class Speculative(_M):
    """Speculative decoding (``perf.specdec``): ``method`` ``draft_model`` (a smaller model of the catalog runs
    ``num_tokens`` decode steps per round on the same hardware) or ``ngram`` (prompt lookup: drafts copied
    from the context, costing ``draft_overhead`` per round); the target verifies ``num_tokens + 1`` positions
    per sequence per round and keeps each draft with i.i.d. probability ``acceptance_rate``."""

    method: Literal["draft_model", "ngram"]
    draft_model: str | None = None
    num_tokens: int = Field(ge=1, le=16, description="tokens proposed per round (k)")
    acceptance_rate: float = Field(ge=0, le=1, description="per-token acceptance probability (i.i.d.)")
    draft_overhead: Seconds = Field(0.0, description="fixed seconds per round for drafting (n-gram lookup)")

    @model_validator(mode="after")
    def _draft(self):
        if self.method == "draft_model" and not self.draft_model:
            raise FieldError("draft_model", "method 'draft_model' needs 'draft_model' (a catalog model)")
        if self.method == "ngram" and self.draft_model:
            raise FieldError("draft_model", "method 'ngram' takes no 'draft_model'")
        return self

    def wrap_gpu(self, perf, catalog: Catalog, path: str = "engine.speculative"):
        """``perf`` (a ``GpuRoofline``) wrapped for speculation; a draft model runs on the same GPUs at the
        same precision and parallelism, with the target's engine parameters."""
        from infersim.perf.gpu import GpuConfig, GpuRoofline
        from infersim.perf.specdec import SpeculativeStep

        draft = None
        if self.draft_model:
            cfg = perf.cfg
            m = catalog.get_model(self.draft_model, path=f"{path}.draft_model")
            draft = GpuRoofline(GpuConfig(cfg.hardware, m, cfg.precision, cfg.kv_precision, cfg.tp, cfg.pp), perf.p)
        return SpeculativeStep(perf, self.build(draft))

    def build(self, draft_step_model=None):
        """The ``perf.specdec.SpecConfig`` (``draft_step_model``: the draft model's step model, if any)."""
        from infersim.perf.specdec import SpecConfig

        return SpecConfig(self.num_tokens, self.acceptance_rate, draft_step_model, self.draft_overhead)


class Prices(_M):
    """Dollars per million tokens charged to the customer."""

    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)

    def build(self) -> TokenPrices:
        from infersim.perf.token_api import TokenPrices

        return TokenPrices(self.input_usd_per_mtok, self.output_usd_per_mtok)


class _Spread(_M):
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


class RateLimits(_M):
    """Per-account limits, enforced as token buckets refilled continuously (rejections: ``rate_limited``)."""

    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    count_output_tokens: bool = Field(True, description="tokens counted at admission: input + output when true "
                                                        "(as APIs count max_tokens), input only when false")
    burst: PositiveSeconds = Field(60.0, description="bucket depth as seconds of allowance (assumption: a minute)")

    def build(self) -> RateLimiter:
        from infersim.perf.token_api import RateLimiter

        return RateLimiter(self.requests_per_minute, self.tokens_per_minute, burst_s=self.burst)


class TokenApiPlatform(_M):
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
            from infersim.perf.token_api import token_api_presets

            names = token_api_presets()
            if self.preset not in names:
                hint = suggest(self.preset, names) or f" (known: {', '.join(sorted(names))})"
                raise FieldError("preset", f"unknown token API preset '{self.preset}'{hint}")
            if self.prices is None and names[self.preset].prices is None:
                raise FieldError("prices", f"preset '{self.preset}' has no per-token prices; set 'prices'")
            return self
        for f in ("prices", "ttft", "output_speed"):
            if getattr(self, f) is None:
                raise FieldError(f, f"'{f}' is required when no 'preset' is given")
        return self

    def build_latency(self) -> TokenApiLatency:
        from infersim.perf.token_api import Lognormal, TokenApiLatency, latency_from_spec, token_api_preset

        base = token_api_preset(self.preset).latency if self.preset else None
        ttft = latency_from_spec(self.ttft.as_spec(), {"median": 1.0}).ttft if self.ttft else base.ttft
        speed = (latency_from_spec({"median": 1.0}, self.output_speed.as_spec()).speed if self.output_speed
                 else base.speed)
        curve = base.load_curve if base is not None and self.ttft is None and self.output_speed is None else None
        return TokenApiLatency(Lognormal(ttft.median, ttft.sigma), Lognormal(speed.median, speed.sigma), curve)

    def build_prices(self) -> TokenPrices:
        from infersim.perf.token_api import token_api_preset

        return self.prices.build() if self.prices else token_api_preset(self.preset).prices

    def build_rate_limiter(self) -> RateLimiter | None:
        return self.rate_limits.build() if self.rate_limits else None


class SramOverrides(_M):
    """Override parameters of the shipped SRAM profile (see ``infersim.perf.sram.SramParams``)."""

    layer_latency_s: float | None = Field(None, ge=0)
    sram_bw_eff: float | None = Field(None, gt=0, le=1)
    compute_eff: float | None = Field(None, gt=0, le=1)
    sram_usable_frac: float | None = Field(None, gt=0, le=1)
    unit_granularity: int | None = Field(None, ge=1)
    stages_per_unit: int | None = Field(None, ge=0)
    max_microbatch: int | None = Field(None, ge=0)
    hop_latency_s: float | None = Field(None, ge=0)


class OwnedCost(_M):
    """Assumptions of the owned-system cost (``economics.owned_cost_breakdown``); per-unit price and power
    default to the catalog's ``list_price_usd`` and ``tdp_w``."""

    amortization_years: float = Field(4.0, gt=0)
    pue: float = Field(1.3, ge=1)
    usd_per_kwh: float = Field(0.08, ge=0)
    hosting_usd_per_kw_month: float = Field(150.0, ge=0)
    list_price_usd: float | None = Field(None, ge=0)
    tdp_w: float | None = Field(None, ge=0)

    def usd_per_hour(self, hardware, units: int) -> float:
        from infersim.economics import owned_cost_usd_per_hour

        return owned_cost_usd_per_hour(hardware, units, **self.model_dump())


class _SramPlatform(_M):
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

    def build_pipeline(self, catalog: Catalog | None = None, path: str = "platform") -> SramPipeline:
        """The replica's pipeline; errors name the scenario path (``ScenarioError``)."""
        from infersim.catalog import default_catalog
        from infersim.perf.sram import SramConfig, SramPipeline, chips_needed, profile_for

        cat = catalog or default_catalog()
        hw = cat.get_hardware(self.hardware, path=f"{path}.hardware")
        m = cat.get_model(self.model, path=f"{path}.model")
        if hw.kind != self.kind:
            raise ScenarioError(f"{hw.id} is of kind '{hw.kind}' but this platform is of kind '{self.kind}'", path=f"{path}.hardware")
        try:
            prof = profile_for(hw)
        except InfersimError as exc:
            raise ScenarioError(str(exc), path=f"{path}.hardware") from None
        prec = self.precision or prof.default_precision
        if not hw.supports(prec):
            raise ScenarioError(f"{hw.id} has no {prec} compute (it has: {', '.join(sorted(hw.tflops))})",
                                path=f"{path}.precision")
        over = {k: v for k, v in self.perf.model_dump().items() if v is not None}
        params = prof.params.with_(**over) if over else prof.params
        units = self.units
        if units is None:
            kv = self.kv_tokens if self.kv_tokens is not None else m.max_context
            units = chips_needed(m, prec, kv, hardware=hw, kv_precision=self.kv_precision, params=params)
        try:
            return SramPipeline(SramConfig(hw, m, units, prec, self.kv_precision), params)
        except CapacityError as exc:
            raise ScenarioError(str(exc), path=f"{path}.{self.units_field}") from None

    def build_draft(self, pipe: SramPipeline, catalog: Catalog | None = None,
                    path: str = "platform") -> SramPipeline | None:
        """The draft model's own pipeline for ``speculative.method`` ``draft_model`` (None otherwise): its own
        units, the fewest that hold its weights plus KV for as many tokens as the target's KV cache holds."""
        if self.speculative is None or self.speculative.method != "draft_model":
            return None
        from infersim.catalog import default_catalog
        from infersim.perf.sram import pipeline_for

        cat = catalog or default_catalog()
        m = cat.get_model(self.speculative.draft_model, path=f"{path}.speculative.draft_model")
        return pipeline_for(m, pipe.cfg.hardware, precision=pipe.cfg.precision, kv_precision=pipe.cfg.kv_precision,
                            kv_tokens=pipe.kv_capacity_tokens, params=pipe.p, catalog=cat)

    def build_step_model(self, pipe: SramPipeline, draft: SramPipeline | None = None):
        """The step model the engine runs: the pipeline, wrapped for speculative decoding if set."""
        if self.speculative is None:
            return pipe
        from infersim.perf.specdec import SpeculativeStep

        return SpeculativeStep(pipe, self.speculative.build(draft))

    def build_prices(self, model_id: str, path: str = "platform") -> TokenPrices:
        """``prices`` if set, else the provider's latest published price for the model (token_prices.csv)."""
        if self.prices is not None:
            return self.prices.build()
        from infersim.perf.token_api import published_price

        pub = published_price(self.provider, model_id)
        if pub is None:
            raise ScenarioError(f"no published {self.provider} price for '{model_id}' in token_prices.csv; set "
                                "'prices' (input_usd_per_mtok, output_usd_per_mtok)", path=f"{path}.prices")
        return pub.prices

    def max_seqs(self, pipe: SramPipeline) -> int:
        """Sequences a replica holds at once (the engine's sequence cap)."""
        return min(pipe.concurrency, self.max_in_flight or pipe.concurrency)

    def owned_usd_per_hour(self, pipe: SramPipeline) -> float:
        """Owned cost of all replicas per hour (assumptions in ``cost``)."""
        return self.replicas * self.cost.usd_per_hour(pipe.cfg.hardware, pipe.units)


class LpuPlatform(_SramPlatform):
    """A Groq-like deployment: replicas of ``chips`` LPUs each (default: the fewest that hold the model)."""

    kind: Literal["lpu"]
    hardware: str = "groq-lpu"
    chips: int | None = Field(None, ge=1, description="chips per replica (default: as many as needed)")


class WaferPlatform(_SramPlatform):
    """A Cerebras-like deployment: replicas of ``systems`` wafer-scale systems each (default: as needed)."""

    kind: Literal["wafer"]
    hardware: str = "cerebras-wse3"
    systems: int | None = Field(None, ge=1, description="systems per replica (default: as many as needed)")

    units_field: ClassVar[str] = "systems"
    provider: ClassVar[str] = "Cerebras"


Competitor = LpuPlatform | WaferPlatform | TokenApiPlatform


def check_competitor(plat: Competitor, catalog: Catalog, path: str) -> list[ScenarioError]:
    """Catalog-dependent checks of one competitor platform (names, kind, precision, fit); returns the
    problems found (empty when fine). Its ``streams`` are checked with every platform's by the loader."""
    problems: list[ScenarioError] = []
    try:
        if isinstance(plat, TokenApiPlatform):
            catalog.get_model(plat.model, path=f"{path}.model")
        else:
            pipe = plat.build_pipeline(catalog, path)
            plat.build_draft(pipe, catalog, path)
            plat.build_prices(pipe.cfg.model.id, path)
    except ScenarioError as exc:
        problems.extend(exc.problems or [exc])
    return problems
