"""Turn a validated ``disaggregated`` platform into its runtime parts: the two pools' replica setups, their
prices, the KV link and the pools' autoscalers. Errors name the scenario path (``ScenarioError``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from infersim.build.gpu import deployment_setup
from infersim.build.sram import owned_usd_per_hour, sram_pipeline, sram_setup
from infersim.catalog import Catalog, Model
from infersim.core.errors import ScenarioError
from infersim.economics import provider_usd_per_gpu_hour
from infersim.perf.kv_link import KvLink, link_for
from infersim.policy.disagg import ConcurrencyScaler, SloScaler
from infersim.scenario.competitors import LpuPlatform, WaferPlatform
from infersim.scenario.disagg import Disaggregated, GpuPool, PoolAutoscaling, SramPool
from infersim.scenario.platform import Deployment


@dataclass(frozen=True)
class PoolBuild:
    """One pool: its replica setup, chips per replica, $/replica-hour, replicas at t=0 and at most, scaler."""

    setup: object
    kind: str  # gpu | lpu | wafer
    units: int
    usd_per_replica_hour: float
    n_init: int
    n_max: int
    scaler: object | None
    autoscaling: PoolAutoscaling | None
    pipeline: object | None = None  # SRAM pools: the pipeline (sizing)

    def pool_kwargs(self) -> dict:
        a = self.autoscaling
        kw = {"n_max": self.n_max, "n_init": self.n_init, "usd_per_replica_hour": self.usd_per_replica_hour,
              "gpus_per_replica": self.units, "scaler": self.scaler}
        if a is not None:
            kw.update(tick_s=a.tick, window_s=a.window, startup_s=a.startup)
        return kw


@dataclass(frozen=True)
class DisaggBuild:
    model: Model
    prefill: PoolBuild
    decode: PoolBuild
    link: KvLink
    kv_bytes_per_token: float
    first_token_at_prefill: bool = False  # the platform's first_token: prefill
    max_concurrent_transfers: int | None = None  # the link's kv_transfer.max_concurrent


def _scaler(a: PoolAutoscaling | None):
    if a is None:
        return None
    if a.kind == "slo":
        return SloScaler(a.target, a.min_replicas, a.max_replicas, a.scale_down_below, quantile=a.quantile)
    return ConcurrencyScaler(a.concurrency_target, a.target_utilization, a.min_replicas, a.max_replicas)


def _bounds(pool) -> tuple[int, int]:
    a = pool.autoscaling
    return (pool.replicas, pool.replicas) if a is None else (pool.replicas, a.max_replicas)


def _gpu_pool(plat: Disaggregated, pool: GpuPool, side: str, catalog: Catalog, path: str, base_dir) -> PoolBuild:
    dep = Deployment(name=f"{plat.name}/{side}", model=plat.model, hardware=pool.hardware, precision=pool.precision,
                     tp=pool.tp, pp=pool.pp, dp=pool.dp, ep=pool.ep, replicas=pool.replicas, engine=pool.engine)
    setup = deployment_setup(dep, catalog, path=path, base_dir=base_dir)
    # the provider's on-demand rental rate, as a gpu_fleet platform pays it (economics.provider_usd_per_gpu_hour:
    # the shipped price list, else the catalog), unless the pool sets its own
    hw = setup.hardware
    price = pool.usd_per_gpu_hour if pool.usd_per_gpu_hour is not None else \
        provider_usd_per_gpu_hour(hw.id, hw.usd_per_hour, "on_demand")
    if price is None or math.isnan(price):
        raise ScenarioError(f"'{setup.hardware.id}' has no catalog price per GPU-hour; set 'usd_per_gpu_hour'",
                            path=f"{path}.usd_per_gpu_hour")
    gpus = setup.config.gpus
    n0, n1 = _bounds(pool)
    return PoolBuild(setup, "gpu", gpus, price * gpus, n0, n1, _scaler(pool.autoscaling), pool.autoscaling)


def _sram_pool(plat: Disaggregated, pool: SramPool, catalog: Catalog, path: str) -> PoolBuild:
    cls = LpuPlatform if pool.kind == "lpu" else WaferPlatform
    units_field = "chips" if pool.kind == "lpu" else "systems"
    fields = {"kind": pool.kind, "name": f"{plat.name}/decode", "model": plat.model, "precision": pool.precision,
              "kv_precision": pool.kv_precision, "replicas": pool.replicas, "kv_tokens": pool.kv_tokens,
              "max_in_flight": pool.max_in_flight, "perf": pool.perf, "cost": pool.cost, units_field: pool.units}
    if pool.hardware is not None:
        fields["hardware"] = pool.hardware
    sp = cls(**fields)
    pipe = sram_pipeline(sp, catalog, path)
    setup = sram_setup(sp, pipe, None)
    n0, n1 = _bounds(pool)
    return PoolBuild(setup, pool.kind, pipe.units, owned_usd_per_hour(pool.cost, pipe.cfg.hardware, pipe.units),
                     n0, n1, _scaler(pool.autoscaling), pool.autoscaling, pipeline=pipe)


def disagg_build(plat: Disaggregated, catalog: Catalog, path: str, base_dir: Path | str | None = None) -> DisaggBuild:
    model = catalog.get_model(plat.model, path=f"{path}.model")
    pre = _gpu_pool(plat, plat.prefill, "prefill", catalog, f"{path}.prefill", base_dir)
    if isinstance(plat.decode, GpuPool):
        dec = _gpu_pool(plat, plat.decode, "decode", catalog, f"{path}.decode", base_dir)
    else:
        dec = _sram_pool(plat, plat.decode, catalog, f"{path}.decode")
    kt = plat.kv_transfer
    link = link_for(pre.setup.hardware, pre.units, dec.setup.hardware, dec.units if dec.kind == "gpu" else 0,
                    kt.placement, bandwidth_gb_per_s=kt.bandwidth_gb_per_s, latency_s=kt.latency_s,
                    path=f"{path}.kv_transfer")
    if kt.ideal:
        link = KvLink(link.kind, float("inf"), 0.0)
    bpt = model.kv_bytes_per_token(pre.setup.config.kv_precision)
    return DisaggBuild(model, pre, dec, link, bpt, first_token_at_prefill=plat.first_token == "prefill",
                       max_concurrent_transfers=plat.kv_transfer.max_concurrent)
