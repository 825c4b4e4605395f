"""Capacity pools of a ``gpu_fleet`` platform built from its scenario block (checked against the catalog)."""

from __future__ import annotations

from infersim.catalog import Catalog
from infersim.core.errors import ScenarioError
from infersim.fleet.capacity import CapacityPools
from infersim.scenario.platform import GpuFleet


def build_pools(plat: GpuFleet, catalog: Catalog, path: str | None = None) -> CapacityPools | None:
    """The platform's capacity pools; each deployment naming a pool must run on the pool's hardware.
    ``path``: YAML path of the platform in errors (default ``platforms.<name>``)."""
    if not plat.pools:
        return None
    at = path or f"platforms.{plat.name}"
    hw = {}
    for i, p in enumerate(plat.pools):
        hw[p.name] = catalog.get_hardware(p.hardware, path=f"{at}.pools[{i}].hardware").id
    for di, d in enumerate(plat.deployments):
        if not d.pools:
            continue
        want = catalog.get_hardware(d.hardware, path=f"{at}.deployments[{di}].hardware").id
        for k, name in enumerate(d.pools):
            if hw[name] != want:
                raise ScenarioError(f"pool '{name}' holds {hw[name]}, the deployment runs on {want}",
                                    path=f"{at}.deployments[{di}].pools[{k}]")
    return CapacityPools({p.name: p.limit_gpus for p in plat.pools})
