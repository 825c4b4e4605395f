"""Runtime models of an ``lpu`` or ``wafer`` platform built from its scenario block: the replica's SRAM
pipeline (``perf.sram.pipeline.SramPipeline``), a draft pipeline for speculative decoding, the step model the engine
runs, the customer's prices and the owned cost. Errors name the scenario path (``ScenarioError``)."""

from __future__ import annotations

from dataclasses import dataclass

from infersim.build.specdec import spec_config
from infersim.build.token_api import token_prices
from infersim.catalog import Catalog, Hardware, Model, default_catalog
from infersim.core.errors import CapacityError, InfersimError, ScenarioError
from infersim.economics import TokenPrices, owned_cost_usd_per_hour
from infersim.engine.knobs import ReplicaKnobs
from infersim.perf.specdec import SpeculativeStep
from infersim.perf.sram.params import profile_for
from infersim.perf.sram.pipeline import SramConfig, SramPipeline, pipeline_for
from infersim.perf.sram.sizing import chips_needed
from infersim.perf.token_api import published_price
from infersim.scenario.competitors import OwnedCost, SramPlatform

BLOCK_TOKENS = 16  # KV bookkeeping granularity in SRAM (assumption: vLLM's block size; SRAM has no pages)

#: A pipeline's engine knobs: no API hop, no mixed-step limit, decodes join every round (a pipeline
#: interleaves prompt and decode micro-batches).
PIPELINE_KNOBS = ReplicaKnobs()


@dataclass(frozen=True)
class SramSetup:
    """What ``engine.replica.Replica`` needs for one SRAM-pipeline replica (the ``engine.knobs.ReplicaSetup``
    fields)."""

    name: str
    hardware: Hardware
    model: Model
    perf: object
    max_num_seqs: int
    max_batched_tokens: int
    block_size: int
    prefix_caching: bool
    kv_blocks: int
    knobs: ReplicaKnobs = PIPELINE_KNOBS


def sram_pipeline(plat: SramPlatform, catalog: Catalog | None = None, path: str = "platform") -> SramPipeline:
    """The replica's pipeline: ``chips``/``systems`` units of the platform's hardware (default: the fewest
    that hold the weights plus ``kv_tokens`` of KV), the shipped profile with ``perf`` overrides."""
    cat = catalog or default_catalog()
    hw = cat.get_hardware(plat.hardware, path=f"{path}.hardware")
    m = cat.get_model(plat.model, path=f"{path}.model")
    if hw.kind != plat.kind:
        raise ScenarioError(f"{hw.id} is of kind '{hw.kind}' but this platform is of kind '{plat.kind}'", path=f"{path}.hardware")
    try:
        prof = profile_for(hw)
    except InfersimError as exc:
        raise ScenarioError(str(exc), path=f"{path}.hardware") from None
    prec = plat.precision or prof.default_precision
    if not hw.supports(prec):
        raise ScenarioError(f"{hw.id} has no {prec} compute (it has: {', '.join(sorted(hw.tflops))})",
                            path=f"{path}.precision")
    over = {k: v for k, v in plat.perf.model_dump().items() if v is not None}
    params = prof.params.with_(**over) if over else prof.params
    units = plat.units
    if units is None:
        kv = plat.kv_tokens if plat.kv_tokens is not None else m.max_context
        units = chips_needed(m, prec, kv, hardware=hw, kv_precision=plat.kv_precision, params=params)
    try:
        return SramPipeline(SramConfig(hw, m, units, prec, plat.kv_precision), params)
    except CapacityError as exc:
        raise ScenarioError(str(exc), path=f"{path}.{plat.units_field}") from None


def draft_pipeline(plat: SramPlatform, pipe: SramPipeline, catalog: Catalog | None = None,
                   path: str = "platform") -> SramPipeline | None:
    """The draft model's own pipeline for ``speculative.method`` ``draft_model`` (None otherwise): its own
    units, the fewest that hold its weights plus KV for as many tokens as the target's KV cache holds.
    ``method: mtp`` is modelled on GPU engines only (no SRAM system publishes MTP serving)."""
    if plat.speculative is not None and plat.speculative.method == "mtp":
        raise ScenarioError("method 'mtp' is modelled on GPU engines only (expected 'draft_model' or 'ngram' on "
                            f"a {plat.kind} platform)", path=f"{path}.speculative.method")
    if plat.speculative is None or plat.speculative.method != "draft_model":
        return None
    cat = catalog or default_catalog()
    m = cat.get_model(plat.speculative.draft_model, path=f"{path}.speculative.draft_model")
    return pipeline_for(m, pipe.cfg.hardware, precision=pipe.cfg.precision, kv_precision=pipe.cfg.kv_precision,
                        kv_tokens=pipe.kv_capacity_tokens, params=pipe.p, catalog=cat)


def sram_step_model(plat: SramPlatform, pipe: SramPipeline, draft: SramPipeline | None = None):
    """The step model the engine runs: the pipeline, wrapped for speculative decoding if set."""
    if plat.speculative is None:
        return pipe
    return SpeculativeStep(pipe, spec_config(plat.speculative, draft))


def sram_prices(plat: SramPlatform, model_id: str, path: str = "platform") -> TokenPrices:
    """``prices`` if set, else the provider's latest published price for the model (token_prices.csv)."""
    if plat.prices is not None:
        return token_prices(plat.prices)
    pub = published_price(plat.provider, model_id)
    if pub is None:
        raise ScenarioError(f"no published {plat.provider} price for '{model_id}' in token_prices.csv; set "
                            "'prices' (input_usd_per_mtok, output_usd_per_mtok)", path=f"{path}.prices")
    return pub.prices


def sram_price_source(plat: SramPlatform, model_id: str) -> str:
    """Where the platform's token prices come from: the scenario's (a market row, PROXY when another model's),
    else the provider's default market row for the model."""
    if plat.prices is not None:
        return plat.prices.label(model_id)
    from infersim.catalog.market import price

    return "default: " + price(plat.provider, model_id).cite()


def max_seqs(plat: SramPlatform, pipe: SramPipeline) -> int:
    """Sequences a replica holds at once (the engine's sequence cap)."""
    return min(pipe.concurrency, plat.max_in_flight or pipe.concurrency)


def owned_usd_per_hour(cost: OwnedCost, hardware: Hardware | str, units: int) -> float:
    """Owned cost per hour of ``units`` systems under the ``cost`` assumptions (``economics.owned_cost_breakdown``)."""
    return owned_cost_usd_per_hour(hardware, units, **cost.model_dump())


def sram_setup(plat: SramPlatform, pipe: SramPipeline, draft: SramPipeline | None) -> SramSetup:
    """One replica's setup: the pipeline's slots as the sequence cap, a prompt enters whole (the model's
    context as the step's token budget), no prefix caching (see ``platforms.sram``)."""
    model = pipe.cfg.model
    seqs = max_seqs(plat, pipe)
    return SramSetup(plat.name, pipe.cfg.hardware, model, sram_step_model(plat, pipe, draft), seqs,
                     model.max_context + seqs, BLOCK_TOKENS, False, max(pipe.kv_capacity_tokens // BLOCK_TOKENS, 1))
