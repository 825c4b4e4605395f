"""Router policies: which deployment (or external token API) serves a request. Pure: no SimPy, no I/O.

A router gets a read-only ``RouteView`` (the router's noisy estimate of the request's difficulty and one
``Candidate`` per routable target, cheapest first, each with its capability for the request's task and its
current load) and returns a frozen ``Route``. The mechanism (``infersim.platforms.gpu_fleet``) applies it.

Kinds (``ROUTERS``): ``fixed`` (always one target), ``threshold`` (RouteLLM-style: the cheapest candidate
whose *predicted* P(acceptable) clears ``threshold``; if none does, the one predicted best), ``cascade``
(the cheapest candidate answers; if a judge rejects the answer the request is escalated to the next
candidate and pays for both), ``spillover`` (the first candidate unless it is over a load bound, then the
next one, finally the external token API). Every kind may carry spillover bounds (``Spill``): the choice of
the base policy is then moved up the candidate list while the chosen target is over a bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from infersim.policy.quality import DEFAULT_QUALITY, QualityModel


@dataclass(frozen=True)
class Candidate:
    """A routable target as the router sees it. ``capability``: for this request's task class (difficulty
    scale); ``waiting``: requests at the target not yet started (deployment queue + replicas' waiting
    lists); ``in_flight``: all requests at the target; ``ready``: ready replicas; ``ttft_s``: moving average
    of the target's recent time to first token (nan before any); ``external``: an external token API."""

    name: str
    capability: float
    waiting: int = 0
    in_flight: int = 0
    ready: int = 1
    ttft_s: float = math.nan
    external: bool = False


@dataclass(frozen=True)
class RouteView:
    """What a router knows about one request: its estimated difficulty in [0, 1] (never the true one) and
    the candidates, cheapest first."""

    difficulty_est: float
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class Route:
    """Decision: ``target`` (candidate index) serves the request; with ``escalate_to`` >= 0 the answer is
    judged and, if rejected, the request is served again by that candidate (cascade). ``spilled``: the
    base policy's choice was over a load bound and was moved."""

    target: int
    escalate_to: int = -1
    spilled: bool = False


@dataclass(frozen=True)
class Spill:
    """Load bounds: a target is *over* when ``waiting >= max_waiting`` or its recent TTFT exceeds
    ``max_ttft_s`` (either bound may be None = unbounded)."""

    max_waiting: int | None = None
    max_ttft_s: float | None = None

    def over(self, c: Candidate) -> bool:
        if c.external:
            return False
        return self.over_load(c.waiting, c.ttft_s)

    def over_load(self, waiting: int, ttft_s: float) -> bool:
        """``over`` for a non-external target with ``waiting`` requests not started and recent TTFT ``ttft_s``."""
        return ((self.max_waiting is not None and waiting >= self.max_waiting)
                or (self.max_ttft_s is not None and not math.isnan(ttft_s) and ttft_s > self.max_ttft_s))


def spill_target(spill: Spill, base: int, n: int, over) -> tuple[int, bool]:
    """``_spill`` on candidate indices: (target, spilled) for the base choice ``base`` among ``n`` candidates,
    with ``over(i)`` telling whether candidate ``i`` is over a bound (asked in order from ``base``, only as
    far as needed, so a caller computes a candidate's load only when the decision reads it)."""
    i = base
    while i < n and over(i):
        i += 1
    if i == n or i == base:
        return base, False
    return i, True


def _spill(route: Route, view: RouteView, spill: Spill | None) -> Route:
    """Move ``route.target`` up the candidate list while it is over a bound; keep it if all are over."""
    if spill is None:
        return route
    cands = view.candidates
    i = route.target
    while i < len(cands) and spill.over(cands[i]):
        i += 1
    if i == len(cands) or i == route.target:
        return route
    return Route(i, route.escalate_to if route.escalate_to > i else -1, True)


class FixedRouter:
    """Always candidate ``to`` (an index)."""

    def __init__(self, to: int = 0, quality: QualityModel = DEFAULT_QUALITY, spill: Spill | None = None):
        self.to, self.quality, self.spill = to, quality, spill

    def decide(self, view: RouteView) -> Route:
        return _spill(Route(self.to), view, self.spill)


class ThresholdRouter:
    """The cheapest candidate whose predicted P(acceptable) at the estimated difficulty is >= ``threshold``;
    if none clears it, the candidate with the highest prediction (the last one among ties). External
    candidates are never chosen by the threshold (they are overflow only)."""

    def __init__(self, threshold: float, quality: QualityModel = DEFAULT_QUALITY, spill: Spill | None = None):
        self.threshold, self.quality, self.spill = threshold, quality, spill

    def choose(self, view: RouteView) -> int:
        best, best_q = 0, -1.0
        for i, c in enumerate(view.candidates):
            if c.external:
                continue
            q = float(self.quality.p_acceptable(c.capability, view.difficulty_est))
            if q >= self.threshold:
                return i
            if q >= best_q:
                best, best_q = i, q
        return best

    def decide(self, view: RouteView) -> Route:
        return _spill(Route(self.choose(view)), view, self.spill)

    def choose_many(self, q: np.ndarray, external: Sequence[bool]) -> np.ndarray:
        """``choose`` for many requests at once: ``q`` (requests x candidates) holds each candidate's
        predicted P(acceptable) at each request's estimated difficulty (``quality.p_acceptable``, the same
        numbers ``choose`` computes one by one). Returns the chosen candidate index per request."""
        n = q.shape[0]
        out = np.zeros(n, np.int64)
        found = np.zeros(n, bool)
        best = np.zeros(n, np.int64)
        best_q = np.full(n, -1.0)
        for i, ext in enumerate(external):
            if ext:
                continue
            qi = q[:, i]
            hit = ~found & (qi >= self.threshold)
            out[hit] = i
            found |= hit
            better = ~found & (qi >= best_q)
            best[better] = i
            best_q[better] = qi[better]
        rest = ~found
        out[rest] = best[rest]
        return out


class CascadeRouter:
    """The cheapest (non-external) candidate answers first; a rejected answer escalates to the next one."""

    def __init__(self, quality: QualityModel = DEFAULT_QUALITY, spill: Spill | None = None):
        self.quality, self.spill = quality, spill

    def decide(self, view: RouteView) -> Route:
        internal = [i for i, c in enumerate(view.candidates) if not c.external]
        nxt = internal[1] if len(internal) > 1 else -1
        return _spill(Route(internal[0], nxt), view, self.spill)


class SpilloverRouter(FixedRouter):
    """The first candidate while it is under its load bounds, else the next, else the external API."""


ROUTERS = {"fixed": FixedRouter, "threshold": ThresholdRouter, "cascade": CascadeRouter,
           "spillover": SpilloverRouter}


def sigma_from_accuracy(accuracy: float, difficulty_sd: float) -> float:
    """Noise sd of the router's difficulty estimate so that corr(estimate, difficulty) = ``accuracy``
    (before clipping to [0, 1]): sd x sqrt(1 / accuracy^2 - 1). ``accuracy`` in (0, 1]; 1 = exact."""
    if not 0 < accuracy <= 1:
        raise ValueError(f"accuracy must be in (0, 1], got {accuracy}")
    return difficulty_sd * math.sqrt(1.0 / accuracy**2 - 1.0)


def estimate_difficulty(difficulty: np.ndarray, accuracy: float, difficulty_sd: float, mean: float,
                        rng: np.random.Generator) -> np.ndarray:
    """The router's estimates of ``difficulty`` (array in [0, 1]): the truth plus Gaussian noise of
    ``sigma_from_accuracy``, clipped to [0, 1]; with ``accuracy`` 0 the router knows nothing and estimates
    every request at ``mean``. One normal draw per request from ``rng`` (none for accuracy 0 or 1)."""
    d = np.asarray(difficulty, float)
    if accuracy <= 0:
        return np.full(d.shape, float(mean))
    sigma = sigma_from_accuracy(accuracy, difficulty_sd)
    if sigma == 0:
        return d.copy()
    return np.clip(d + sigma * rng.standard_normal(d.shape), 0.0, 1.0)


def cascade_outcome(p_first: float, p_second: float, recall: float, false_escalation: float,
                    u: float) -> tuple[bool, float]:
    """Whether a cascade escalates and the request's resulting P(acceptable).

    The first answer is acceptable with ``p_first``; a judge rejects an unacceptable answer with
    probability ``recall`` and an acceptable one with ``false_escalation``. So P(escalate) =
    (1 - p_first) x recall + p_first x false_escalation; ``u`` (uniform in [0, 1)) < P(escalate) escalates.
    An escalated request ends with the second answer (P = ``p_second``, ASSUMPTION: independent of the first
    answer's failure); a kept one is acceptable with P(ok | kept) = p_first (1 - false_escalation) /
    (1 - P(escalate)). In expectation over ``u`` the result equals the cascade's acceptable rate."""
    p_esc = (1.0 - p_first) * recall + p_first * false_escalation
    if u < p_esc:
        return True, p_second
    keep = 1.0 - p_esc
    return False, (p_first * (1.0 - false_escalation) / keep) if keep > 0 else 0.0
