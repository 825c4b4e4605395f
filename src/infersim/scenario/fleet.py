"""Scenario schema of a deployment's fleet: autoscaling, cold starts, billing, failures, capacity pools.

Defaults and their sources (rows of ``shared/calibration/baseten.csv`` and ``cold_start.csv``):

- autoscaling (``kind: baseten``): ``min_replicas`` 0, ``max_replicas`` 1, ``autoscaling_window`` 60 s
  (range 10-3600 s), ``scale_down_delay`` 900 s (range 0-3600 s), ``concurrency_target`` 1,
  ``target_utilization`` 70 % — baseten.csv rows ``autoscaling,* (default)`` (docs.baseten.co/deploy/autoscaling).
- ``tick`` 2 s: ASSUMPTION. Baseten does not publish its evaluation interval; 2 s is Knative's KPA default
  ``tick-interval``. The autoscaler also evaluates at once when a request arrives at a deployment with no
  replica at all (scale from zero), as Knative's activator does.
- cold start: ``provision`` 75 s = midpoint of cold_start.csv row 'Karpenter vs Cluster Autoscaler GPU node
  provisioning' (60-90 s; vendor claim, low confidence). ``image_pull`` 60 s: ASSUMPTION (a ~10 GB engine
  image at ~170 MB/s; cold_start.csv row '10 GB container image pull can idle GPU node' gives ~10 min as an
  anecdotal worst case; baseten.csv row 'large-model cold start (docs)' says Baseten streams the image in the
  background, i.e. ~0 s). ``weights_gbps`` 5 GB/s = cold_start.csv row 'Checkpoint download example' (130 GB
  in ~26 s at 5 GB/s, ServerlessLLM). ``cache_gbps`` off by default; cold_start.csv row 'Llama-2-70B
  download+init on AWS p4de (Anyscale)' (140 GB in 20 s, i.e. ~7 GB/s) and row 'Baseten BDN' (2-3x faster
  cold starts) size a cache tier. ``warmup`` 30 s: ASSUMPTION (CUDA-graph capture, torch.compile, KV
  profiling; baseten.csv row 'large-model cold start (docs)' names them, without a figure).
- billing: per minute, billing weight load, warm-up, serving and the scale-down delay, not node provisioning
  or image pull — baseten.csv row 'billing,metering granularity'.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from infersim.core.errors import FieldError
from infersim.scenario.routing import PoolPricing
from infersim.scenario.types import MAX_REPLICAS, PositiveSeconds, Seconds, StrictModel

Window = Annotated[Seconds, Field(ge=10, le=3600)]
Delay = Annotated[Seconds, Field(le=3600)]
STAGES = ("capacity_wait", "provisioning", "image_pull", "weight_load", "warmup", "ready", "draining")
Stage = Literal[STAGES]  # type: ignore[valid-type]


class _Scale(StrictModel):
    min_replicas: int = Field(0, ge=0, le=MAX_REPLICAS, description="0 = scale to zero (baseten.csv 'min_replica (default)')")
    max_replicas: int = Field(1, ge=1, le=MAX_REPLICAS, description="baseten.csv 'max_replica (default)'")
    autoscaling_window: Window = 60.0
    scale_down_delay: Delay = 900.0
    tick: PositiveSeconds = 2.0

    @model_validator(mode="after")
    def _bounds(self):
        if self.min_replicas > self.max_replicas:
            raise FieldError("min_replicas", f"min_replicas ({self.min_replicas}) must be <= max_replicas "
                             f"({self.max_replicas})")
        return self


class BasetenAutoscaling(_Scale):
    """Baseten's documented autoscaler: scale up when the windowed average of in-flight requests per replica
    exceeds ``concurrency_target`` x ``target_utilization``; scale down after ``scale_down_delay``."""

    kind: Literal["baseten"]
    concurrency_target: int = Field(1, ge=1)
    target_utilization: float = Field(0.70, gt=0, le=1, description="fraction (Baseten's 70 %)")


class KvLoadAutoscaling(_Scale):
    """Scale on KV-cache load: want enough replicas that the windowed mean KV usage of ready replicas is
    ``target_kv_usage`` (ASSUMPTION 0.7, mirroring Baseten's utilization target)."""

    kind: Literal["kv_load"]
    target_kv_usage: float = Field(0.7, gt=0, le=1)


class ScheduleEntry(StrictModel):
    at: Seconds
    replicas: int = Field(ge=0, le=MAX_REPLICAS)


class ScheduledAutoscaling(_Scale):
    """Replicas by time of day: from ``at`` (seconds into the ``period``) on, keep ``replicas``; the last
    entry holds until the first one of the next period. No scale-down delay unless set."""

    kind: Literal["scheduled"]
    schedule: list[ScheduleEntry] = Field(min_length=1)
    period: PositiveSeconds = 86400.0
    scale_down_delay: Delay = 0.0

    @model_validator(mode="after")
    def _entries(self):
        for i, e in enumerate(self.schedule):
            if i and e.at <= self.schedule[i - 1].at:
                raise FieldError(f"schedule[{i}].at", "entries must be in increasing order of 'at'")
            if e.at >= self.period:
                raise FieldError(f"schedule[{i}].at", f"at ({e.at:g}s) must be < period ({self.period:g}s)")
            if e.replicas > self.max_replicas:
                raise FieldError(f"schedule[{i}].replicas", f"{e.replicas} replicas exceeds max_replicas "
                                 f"({self.max_replicas})")
        return self


Autoscaling = Annotated[BasetenAutoscaling | KvLoadAutoscaling | ScheduledAutoscaling, Field(discriminator="kind")]


class ColdStart(StrictModel):
    """Stages of a replica's start; see the module docstring for each default's source."""

    provision: Seconds = 75.0
    image_pull: Seconds = 60.0
    weights_gbps: float = Field(5.0, gt=0, description="GB/s from storage to GPU memory")
    weights_gb: float | None = Field(None, gt=0, description="override of the catalog's weight bytes")
    cache_gbps: float | None = Field(None, gt=0, description="GB/s of the cache tier that later loads use "
                                                             "once the deployment's weights were loaded once")
    warmup: Seconds = 30.0


class Billing(StrictModel):
    """Per-replica billing clock: each contiguous billed segment of a replica's life is rounded up to
    ``unit``; ``stages`` lists the billed stages (baseten.csv 'billing,metering granularity')."""

    unit: PositiveSeconds = 60.0
    stages: list[Stage] = Field(default_factory=lambda: ["weight_load", "warmup", "ready", "draining"])


class Failures(StrictModel):
    """Replica failures: random with ``mtbf_gpu_hours`` per GPU, and/or one ready replica at each ``at``.
    A failed replica's requests are retried on other replicas up to ``max_retries`` times each."""

    mtbf_gpu_hours: float | None = Field(None, gt=0)
    at: list[Seconds] = Field(default_factory=list)
    max_retries: int = Field(1, ge=0)


class Pool(StrictModel):
    """GPUs of one hardware kind in one cloud/region; ``limit_gpus`` caps what all deployments hold."""

    name: str
    hardware: str
    limit_gpus: int = Field(ge=0)
    pricing: PoolPricing = Field(default_factory=PoolPricing, description="on_demand, reserved, spot or owned "
                                                                          "(infersim.scenario.routing)")

    @model_validator(mode="after")
    def _market_rate(self):
        try:
            priced = self.pricing.resolved(self.hardware)
        except FieldError as exc:
            raise FieldError(f"pricing.{exc.at}", str(exc)) from None
        if priced is not self.pricing:
            object.__setattr__(self, "pricing", priced)  # frozen model: set once, while validating
        return self
