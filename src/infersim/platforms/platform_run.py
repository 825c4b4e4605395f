"""``PlatformRun``: the raw record one platform simulator hands to ``Results.build``.

Every platform kind (``gpu_fleet``, ``lpu``, ``wafer``, ``token_api``) returns one. The request-level record
is the ``Recorder``'s columnar arrays (the same columns for every kind); ``summary_extra`` carries
platform-level figures only the simulator knows (economics, hardware footprint), merged into the platform's
summary row under the names of ``infersim.economics.SUMMARY_FIELDS``; ``deployment_rows`` holds one dict per
deployment (or per model served) with the same kind of figures, for the per-deployment table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from infersim.engine.recorder import Recorder

if TYPE_CHECKING:
    from infersim.build.gpu import DeploymentSetup


@dataclass
class PlatformRun:
    """The raw record of one platform: columnar arrays, the ITL histogram and the timeline."""

    name: str
    kind: str
    recorder: Recorder
    end_s: float
    deployments: list[str] = field(default_factory=list)  # deployment code -> name (recorder.deployment)
    setups: list[DeploymentSetup] = field(default_factory=list)  # GPU deployments only
    replicas_per_deployment: list[int] = field(default_factory=list)  # peak replicas (GPU deployments)
    timeline: pd.DataFrame = field(default_factory=pd.DataFrame)  # sampled per replica
    prefix_hit_tokens: int = 0
    prefix_lookup_tokens: int = 0
    fleet: pd.DataFrame = field(default_factory=pd.DataFrame)  # autoscaled deployments over time
    replica_log: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per autoscaled replica
    fleet_stats: list = field(default_factory=list)  # per deployment: cost, GPU-hours, cold starts
    summary_extra: dict = field(default_factory=dict)  # platform-level summary figures (economics, footprint)
    deployment_rows: list[dict] = field(default_factory=list)  # per deployment: summary figures
    request_columns: dict = field(default_factory=dict)  # extra per-request arrays (len n), e.g. p_acceptable
