"""Scenario schema: platforms and their deployments, engines and load balancers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from infersim.catalog import PRECISIONS
from infersim.core.errors import FieldError, first_repeat, suggest
from infersim.scenario.competitors import LpuPlatform, Speculative, TokenApiPlatform, WaferPlatform
from infersim.scenario.fleet import Autoscaling, Billing, ColdStart, Failures, Pool
from infersim.scenario.routing import Economics, Router
from infersim.scenario.types import MAX_REPLICAS, Seconds, StrictModel

Precision = Literal[PRECISIONS]  # type: ignore[valid-type]


class PerfOverrides(StrictModel):
    """Override individual fitted parameters of the engine profile (see ``infersim.perf.PerfParams``)."""

    compute_eff: float | None = Field(None, gt=0, le=1)
    compute_half_tokens: float | None = Field(None, ge=0)
    moe_half_tokens: float | None = Field(None, ge=0)
    attn_eff: float | None = Field(None, gt=0, le=1)
    memory_eff: float | None = Field(None, gt=0, le=1)
    step_overhead_s: float | None = Field(None, ge=0)
    per_seq_overhead_s: float | None = Field(None, ge=0)
    layer_overhead_s: float | None = Field(None, ge=0)
    low_precision_compute_scale: float | None = Field(None, gt=0, le=1)
    fp4_compute_scale: float | None = Field(None, gt=0, le=1)
    allreduce_latency_s: float | None = Field(None, ge=0)
    alltoall_latency_s: float | None = Field(None, ge=0)
    comm_eff: float | None = Field(None, gt=0, le=1)
    schedule_delay_s: float | None = Field(None, ge=0)
    schedule_delay_per_seq_s: float | None = Field(None, ge=0)
    api_serial_s: float | None = Field(None, ge=0)
    mixed_prefill_tokens: float | None = Field(None, ge=0)
    prefill_priority: float | None = Field(None, ge=0, le=1)


class Engine(StrictModel):
    """A serving engine on one replica. Chunked prefill and prefix caching are on and
    ``gpu_memory_utilization`` is 0.9 (vLLM engine-args docs); the scheduler limits (``max_num_seqs``,
    ``max_batched_tokens``) and the KV block size are the engine's own defaults on the deployment's GPU (its
    profile's ``scheduler_limits`` and ``kv_cache`` blocks, each with its source)."""

    kind: Literal["vllm", "sglang", "trtllm"] = "vllm"
    version: str | None = None
    max_num_seqs: int | None = Field(
        None, ge=1, description="sequences running at once; default: the engine's own on this GPU (vLLM 1024 on a "
                                "GPU of 70 GiB or more other than an A100, else 256; SGLang 1024, an assumption; "
                                "TensorRT-LLM 2048; perf/profiles/<engine>.yaml scheduler_limits)")
    max_batched_tokens: int | None = Field(
        None, ge=16, description="tokens per step (the chunked-prefill budget); default: the engine's own on this "
                                 "GPU (vLLM 8192 on a GPU of 70 GiB or more other than an A100, else 2048; SGLang "
                                 "2048 to 16384 by GPU memory; TensorRT-LLM 8192)")
    block_size: int | None = Field(
        None, ge=1, description="KV-cache block (page) in tokens, also the prefix cache's reuse granularity; "
                                "default: the engine profile's kv_cache.block_tokens (vLLM 16, SGLang 1, "
                                "TensorRT-LLM 32, each with its source in perf/profiles/<engine>.yaml)")
    prefix_caching: bool = True
    capacity_scheduler: Literal["recompute", "guaranteed_no_evict"] | None = Field(
        None, description="KV admission policy: 'recompute' (grow KV step by step, preempt the newest sequence "
                          "by recompute when it runs out: vLLM, SGLang) or 'guaranteed_no_evict' (reserve prompt "
                          "+ maximum output at admission, never preempt: TensorRT-LLM's default); default: the "
                          "engine profile's kv_cache.capacity_scheduler")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    two_batch_overlap: bool = Field(
        False, description="split each step into two micro-batches whose collectives (all-reduce, expert "
                           "all-to-all) run under the other's compute (SGLang --enable-two-batch-overlap); "
                           "modelled as a stage lasting max(compute, communication)")
    kv_precision: Literal["auto", *PRECISIONS] = "auto"  # type: ignore[valid-type]
    profile: str | None = Field(
        None, description="engine profile file (YAML with a 'params' mapping, e.g. written by 'infersim calibrate "
                          "--fit'), relative to the scenario's directory; replaces the shipped profile of 'kind' "
                          "(parameters it omits keep the shipped values); 'perf' overrides still apply on top")
    perf: PerfOverrides = Field(default_factory=PerfOverrides)
    speculative: Speculative | None = Field(None, description="speculative decoding (draft model or n-gram), "
                                                              "see infersim.perf.specdec")


class RoundRobin(StrictModel):
    kind: Literal["round_robin"] = "round_robin"


class LeastOutstanding(StrictModel):
    """Send to the replica with the fewest requests in flight (ties: lowest index)."""

    kind: Literal["least_outstanding"]


class PowerOfTwo(StrictModel):
    """Sample two replicas at random, send to the less loaded (outstanding requests)."""

    kind: Literal["power_of_two"]


class LeastKv(StrictModel):
    """Send to the replica with the lowest KV-cache usage (share of blocks in use)."""

    kind: Literal["least_kv"]


class PrefixAffinity(StrictModel):
    """Consistent hashing on the request's prefix so shared-context requests meet their cache; falls back
    to the least-loaded replica when the preferred one has more than ``max_imbalance`` x the mean load."""

    kind: Literal["prefix_affinity"]
    virtual_nodes: int = Field(64, ge=1)
    max_imbalance: float = Field(2.0, ge=1)


LoadBalancer = Annotated[RoundRobin | LeastOutstanding | PowerOfTwo | LeastKv | PrefixAffinity,
                         Field(discriminator="kind")]


class Deployment(StrictModel):
    """A model served by ``replicas`` identical replicas, each on ``tp`` x ``pp`` x ``dp`` accelerators
    (``dp`` attention data-parallel ranks; ``ep`` expert parallelism of MoE layers: 1 or ``tp`` x ``dp``)."""

    name: str | None = None
    model: str
    hardware: str
    precision: Precision = "bf16"
    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    dp: int = Field(1, ge=1, description="attention data-parallel ranks in one replica (each holds its own "
                                         "sequences and a copy of the dense weights)")
    ep: int = Field(1, ge=1, description="expert-parallel degree of MoE layers: 1 (experts sharded over tp) or "
                                         "tp x dp")
    replicas: int = Field(1, ge=1, le=MAX_REPLICAS)
    engine: Engine = Field(default_factory=Engine)
    load_balancer: LoadBalancer = Field(default_factory=RoundRobin)
    replica_concurrency: int | None = Field(
        None, ge=1, description="most requests a replica holds at once; the rest wait in the deployment's FIFO "
                                "queue (default: no cap, every request goes straight to a replica's own queue)")
    queue_timeout: Seconds | None = Field(None, description="reject requests waiting in the deployment queue longer "
                                                            "than this (reason 'queue_timeout')")
    streams: list[str] | None = Field(None, description="streams this deployment serves (default: all)")
    autoscaling: Autoscaling | None = Field(
        None, description="replicas follow traffic (see infersim.scenario.fleet); 'replicas', if given, is then "
                          "the number warm at t=0 (default: min_replicas)")
    cold_start: ColdStart = Field(default_factory=ColdStart)
    billing: Billing = Field(default_factory=Billing)
    failures: Failures | None = None
    pools: list[str] | None = Field(None, description="capacity pools to take GPUs from, in order of preference")
    usd_per_gpu_hour: float | None = Field(None, ge=0, description="price override (default: the hardware's "
                                                                   "catalog usd_per_hour)")

    @model_validator(mode="after")
    def _fleet(self):
        if self.ep != 1 and self.ep != self.tp * self.dp:
            raise FieldError("ep", f"ep must be 1 or tp x dp = {self.tp * self.dp}, got {self.ep}")
        a = self.autoscaling
        if a is None:
            for f in ("failures", "pools"):
                if getattr(self, f) is not None:
                    raise FieldError(f, f"'{f}' needs 'autoscaling' (a failed replica is replaced by the "
                                     "autoscaler; pools are drawn on when it scales up)")
        elif "replicas" in self.model_fields_set and not a.min_replicas <= self.replicas <= a.max_replicas:
            raise FieldError("replicas", f"initial replicas ({self.replicas}) must lie within "
                             f"[min_replicas, max_replicas] = [{a.min_replicas}, {a.max_replicas}]")
        return self

    @property
    def initial_replicas(self) -> int:
        """Replicas ready at t=0: ``replicas`` without autoscaling; with it, ``replicas`` if given, else the
        autoscaler's ``min_replicas``."""
        if self.autoscaling is None or "replicas" in self.model_fields_set:
            return self.replicas
        return self.autoscaling.min_replicas


class GpuFleet(StrictModel):
    """A Baseten-like platform: deployments of models on GPU replicas."""

    kind: Literal["gpu_fleet"]
    name: str
    deployments: list[Deployment] = Field(min_length=1)
    pools: list[Pool] = Field(default_factory=list, description="GPU capacity per cloud/region")
    router: Router | None = Field(None, description="picks a deployment per request (infersim.policy.routers); "
                                                    "default: the first deployment serving the stream")
    economics: Economics = Field(default_factory=Economics, description="customer pricing and provider cost")

    @model_validator(mode="after")
    def _names(self):
        names = [d.name or d.model for d in self.deployments]
        j = first_repeat(names)
        if j is not None:
            at = f"deployments[{j}]" + (".name" if self.deployments[j].name else "")
            raise FieldError(at, f"duplicate deployment name '{names[j]}' (names must be unique; give "
                             "'name' to tell deployments of the same model apart)")
        pool_names = [p.name for p in self.pools]
        j = first_repeat(pool_names)
        if j is not None:
            raise FieldError(f"pools[{j}].name", f"duplicate pool name '{pool_names[j]}'")
        for di, d in enumerate(self.deployments):
            for k, name in enumerate(d.pools or []):
                if name not in pool_names:
                    raise FieldError(f"deployments[{di}].pools[{k}]", f"unknown pool '{name}' (expected one "
                                     f"of: {', '.join(pool_names) or 'none defined in the platform'})")
        if self.router is not None:
            _check_router(self.router, names)
        return self


def _check_router(r, names: list[str]) -> None:
    """Router names must be deployments of the platform (paths relative to the platform)."""
    for k, name in enumerate(r.deployments or []):
        if name not in names:
            raise FieldError(f"router.deployments[{k}]", f"unknown deployment '{name}'{suggest(name, names)} "
                             f"(expected one of: {', '.join(names)})")
    j = first_repeat(r.deployments or [])
    if j is not None:
        raise FieldError(f"router.deployments[{j}]", f"deployment '{r.deployments[j]}' listed twice")
    if r.kind == "fixed" and r.to not in (r.deployments or names):
        raise FieldError("router.to", f"unknown deployment '{r.to}'{suggest(r.to, names)} (expected one of: "
                         f"{', '.join(r.deployments or names)})")
    n = len(r.deployments or names)
    if r.kind == "cascade" and n < 2:
        raise FieldError("router.deployments", "a cascade needs at least two deployments (cheapest first)")
    if r.token_api is not None and not r.spills:
        raise FieldError("router.token_api", "a token API takes spilled requests only: set 'max_waiting' "
                         "and/or 'max_ttft'")


Platform = Annotated[GpuFleet | LpuPlatform | WaferPlatform | TokenApiPlatform, Field(discriminator="kind")]
