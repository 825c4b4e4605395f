"""A deployment's load as counters, kept up to date where the state changes (mechanism).

A load-aware router asks a deployment, per request, how many requests wait to start and how many are in
flight (``router_load``); a prefix-affinity balancer compares one replica's outstanding requests with the
mean over the replicas. Summing those over the replicas on every request made routing cost grow with the
fleet (issue 19). Instead, ``LoadTotals`` holds the sums over the replicas that take requests (all of a
fixed deployment's, the ready ones of an autoscaled deployment):

- ``waiting``: requests in the replicas' scheduler queues. An attached replica holds the totals
  (``totals``) and adds and subtracts as requests join and leave its ``waiting`` queue (admission, arrival
  after the scheduling delay, preemption back to the queue), in the compiled engine;
- ``outstanding``: requests submitted to those replicas and not yet left (each replica's
  ``load.outstanding`` summed): the deployment adds one per submit and subtracts one per done.

A replica that stops taking requests (draining, failed) is detached: its counts leave the totals at once,
and its later changes no longer touch them. The class lives with ``LoadView`` in ``policy.load`` (compiled
with the engine, which updates it).
"""

from __future__ import annotations

from infersim.policy.load import LoadTotals

__all__ = ["LoadTotals"]
