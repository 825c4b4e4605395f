"""Scenario schema: a disaggregated platform (``kind: disaggregated``), a prefill pool and a decode pool of one
model with the KV transfer between them. Physics in ``perf.kv_link``, mechanism in ``fleet.disaggregated``.

```yaml
- kind: disaggregated
  name: 2P1D-b200
  model: gpt-oss-120b
  prefill: {hardware: b200, precision: fp4, tp: 1, replicas: 2}
  decode: {hardware: b200, precision: fp4, tp: 2, replicas: 1}
  kv_transfer: {placement: rdma}           # same_domain (NVLink) | rdma | ethernet
  decode_wait_timeout: 30s                 # back-pressure: reject after waiting this long for decode KV
```

A decode pool may run on an SRAM-pipeline system instead (``decode: {kind: lpu, chips: 576}``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from infersim.core.errors import FieldError
from infersim.scenario.competitors import OwnedCost, Prices, SramOverrides
from infersim.scenario.platform import Engine, Precision
from infersim.scenario.types import PositiveSeconds, Seconds, StrictModel


class PoolAutoscaling(StrictModel):
    """Per-pool autoscaling. ``kind: slo`` follows the pool's latency (TTFT of the prefill pool, TPOT of the
    decode pool: the windowed ``quantile`` against ``target``, as NVIDIA Dynamo's planner); ``kind: concurrency``
    is Baseten's rule on in-flight requests per replica (docs.baseten.co/deploy/autoscaling)."""

    kind: Literal["slo", "concurrency"] = "slo"
    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(ge=1)
    target: Seconds | None = Field(None, description="slo: the TTFT (prefill) or TPOT (decode) target")
    quantile: float = Field(0.9, gt=0, lt=1)
    scale_down_below: float = Field(0.5, gt=0, lt=1, description="slo: scale down while the quantile is below "
                                                                 "this share of the target")
    concurrency_target: float | None = Field(None, gt=0, description="concurrency: requests per replica")
    target_utilization: float = Field(0.7, gt=0, le=1)
    tick: PositiveSeconds = 10.0
    window: PositiveSeconds = 60.0
    startup: Seconds = Field(60.0, description="seconds from scale-up to serving (ASSUMPTION default: a warm "
                                               "image and cached weights; set it from a measured cold start)")

    @model_validator(mode="after")
    def _check(self):
        if self.max_replicas < self.min_replicas:
            raise FieldError("max_replicas", f"max_replicas ({self.max_replicas}) must be at least min_replicas "
                             f"({self.min_replicas})")
        if self.kind == "slo" and self.target is None:
            raise FieldError("target", "an 'slo' autoscaler needs 'target' (seconds of TTFT or TPOT)")
        if self.kind == "concurrency" and self.concurrency_target is None:
            raise FieldError("concurrency_target", "a 'concurrency' autoscaler needs 'concurrency_target'")
        return self


class GpuPool(StrictModel):
    """A pool of GPU replicas (fields as a ``gpu_fleet`` deployment's)."""

    kind: Literal["gpu"] = "gpu"
    hardware: str
    precision: Precision = "bf16"
    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    dp: int = Field(1, ge=1)
    ep: int = Field(1, ge=1)
    replicas: int = Field(1, ge=1, description="replicas at t=0 (with autoscaling: within its bounds)")
    engine: Engine = Field(default_factory=Engine)
    usd_per_gpu_hour: float | None = Field(None, ge=0, description="provider price per GPU-hour (default: the "
                                                                   "price list's on-demand rate, else the catalog's)")
    autoscaling: PoolAutoscaling | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.ep != 1 and self.ep != self.tp * self.dp:
            raise FieldError("ep", f"ep must be 1 or tp x dp = {self.tp * self.dp}, got {self.ep}")
        a = self.autoscaling
        if a is not None and not a.min_replicas <= self.replicas <= a.max_replicas:
            raise FieldError("replicas", f"initial replicas ({self.replicas}) must lie within [min_replicas, "
                             f"max_replicas] = [{a.min_replicas}, {a.max_replicas}]")
        return self


class SramPool(StrictModel):
    """A pool of SRAM-pipeline replicas (an ``lpu`` or ``wafer`` platform's fields): ``units`` chips or
    systems per replica (default: the fewest that hold the weights plus ``kv_tokens`` of KV)."""

    kind: Literal["lpu", "wafer"]
    hardware: str | None = Field(None, description="default: groq-lpu for lpu, cerebras-wse3 for wafer")
    units: int | None = Field(None, ge=1, description="chips (lpu) or systems (wafer) per replica")
    precision: Precision | None = None
    kv_precision: Precision = "bf16"
    replicas: int = Field(1, ge=1)
    kv_tokens: int | None = Field(None, ge=0)
    max_in_flight: int | None = Field(None, ge=1)
    perf: SramOverrides = Field(default_factory=SramOverrides)
    cost: OwnedCost = Field(default_factory=OwnedCost)
    autoscaling: PoolAutoscaling | None = None


def _pool_kind(v) -> str:
    if isinstance(v, dict):
        return v.get("kind", "gpu")
    return getattr(v, "kind", "gpu")


AnyPool = Annotated[Annotated[GpuPool, Tag("gpu")] | Annotated[SramPool, Tag("lpu")] | Annotated[SramPool, Tag("wafer")],
                    Discriminator(_pool_kind)]


class KvTransfer(StrictModel):
    """Where the pools are, which sets the KV link (``perf.kv_link``): ``same_domain`` (NVLink, both pools
    in one NVLink domain), ``rdma`` (GPUDirect RDMA over each GPU's scale-out NIC), ``ethernet`` (host-staged,
    needs ``bandwidth_gb_per_s``). ``bandwidth_gb_per_s`` and ``latency_s`` override the catalog and the
    assumed latency; ``ideal: true`` is an infinite-bandwidth, zero-latency link (what-if and theory checks)."""

    placement: Literal["same_domain", "rdma", "ethernet"] = "rdma"
    bandwidth_gb_per_s: float | None = Field(None, gt=0)
    latency_s: Seconds | None = None
    max_concurrent: int | None = Field(None, ge=1, description="transfers flowing at once per prefill replica "
                                                               "(the rest queue; default: no cap, all share)")
    ideal: bool = False

    @model_validator(mode="after")
    def _ideal(self):
        if self.ideal and (self.bandwidth_gb_per_s is not None or self.latency_s is not None):
            raise FieldError("ideal", "an ideal link has no bandwidth or latency to set")
        return self


class Disaggregated(StrictModel):
    """One model served by a prefill pool and a decode pool (xPyD: x prefill replicas, y decode replicas)."""

    kind: Literal["disaggregated"]
    name: str
    model: str
    prefill: GpuPool
    decode: AnyPool
    kv_transfer: KvTransfer = Field(default_factory=KvTransfer)
    first_token: Literal["decode", "prefill"] = Field(
        "decode", description="which pool streams the first output token: 'decode' (the decode engine streams the "
                              "whole response, as vLLM's disaggregated-prefill proxy and NVIDIA Dynamo do: TTFT = "
                              "prefill + KV transfer + first decode step) or 'prefill' (the prefill instance returns "
                              "the token its prefill sampled, as DistServe does: TTFT ends with the prefill, the "
                              "transfer and the decode wait fall in TPOT, and a one-token answer never moves its KV)")
    decode_wait_timeout: Seconds | None = Field(
        None, description="reject a prefilled request that waits longer than this for decode KV room "
                          "(reason 'decode_kv_full'; default: it waits)")
    prices: Prices | None = Field(None, description="what customers are charged per token (default: nothing, "
                                                    "revenue 0)")
    streams: list[str] | None = Field(None, description="streams this platform serves (default: all)")
