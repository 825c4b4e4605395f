"""Model routing: a quality model (which model answers a request acceptably) and router policies.

``quality`` is a pure function of (model size, task class, difficulty); ``routers`` are pure policies
(``decide(view) -> Route``, no SimPy, no I/O) selected by ``kind`` through ``ROUTERS``; ``build`` turns a
scenario's ``router`` block into a policy and its candidates. The mechanism that applies a ``Route`` lives
in ``infersim.sim.gpu_fleet``.
"""

from infersim.routing.quality import DEFAULT_QUALITY, QUALITY_PARAMS, TASK_CLASSES, QualityModel
from infersim.routing.routers import (
    ROUTERS,
    Candidate,
    Route,
    RouteView,
    Spill,
    cascade_outcome,
    estimate_difficulty,
    sigma_from_accuracy,
)

__all__ = [
    "DEFAULT_QUALITY", "QUALITY_PARAMS", "ROUTERS", "TASK_CLASSES", "Candidate", "QualityModel", "Route",
    "RouteView", "Spill", "cascade_outcome", "estimate_difficulty", "sigma_from_accuracy",
]
