"""A replica's life in an autoscaled deployment: its states, the cold-start stages it passes through, and the
record of its times (``ReplicaLife``), shared by the deployment (``fleet.autoscaled``) and its failures
(``fleet.failures``)."""

from __future__ import annotations

import math

from infersim.engine.replica import Replica

STARTING, LOADING, READY, DRAINING, STOPPED = range(5)
CHAIN = ("provisioning", "image_pull", "weight_load", "warmup")


class ReplicaLife:
    """One replica's life in an autoscaled deployment, from request to stop (not a batch slot of the engine).
    Times in simulated seconds (nan until reached)."""

    __slots__ = ("id", "state", "stage", "gen", "t_request", "t_capacity", "t_ready", "t_stop", "reason", "pool",
                 "ticket", "flag_t", "flag_tok", "engine", "assigned", "warm", "busy_s", "cached")

    def __init__(self, sid: int, now: float):
        self.id, self.state, self.stage, self.gen = sid, STARTING, "capacity_wait", 0
        self.t_request, self.t_capacity, self.t_ready, self.t_stop = now, math.nan, math.nan, math.nan
        self.reason, self.pool, self.ticket = "", None, 0
        self.flag_t, self.flag_tok = None, 0
        self.engine: Replica | None = None
        self.assigned: set[int] = set()
        self.warm, self.busy_s, self.cached = False, 0.0, False
