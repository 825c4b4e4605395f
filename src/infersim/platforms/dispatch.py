"""Applying a router's decisions inside a ``gpu_fleet`` run (mechanism, on the SimPy clock).

``RoutedDispatch.dispatch(rid)`` builds the policy's ``RouteView`` (the request's noisy difficulty estimate,
each candidate's capability for the request's task class and its current load), asks the policy, and hands
the request to the chosen deployment or to the external token API (``TokenApiLeg``).

Cascades reuse the request's row: when the first leg finishes and the judge rejects it (decided at
dispatch by ``cascade_outcome`` from the request's own uniform draw), the row is reset to pending
(first token and finish cleared) and the same request id is submitted to the next deployment after the
judge's delay; the platform's ``on_done`` is called once, when the last leg ends. So one row per request
still holds: TTFT is the time to the *final* answer's first token and E2E covers both legs; the first leg's
deployment is kept in ``first_deployment``. A request rejected on its first leg is not escalated.

Per request the dispatcher keeps ``p_ok`` (expected P(acceptable) of the answer the request ends with),
``first_deployment`` and ``escalated``/``spilled`` flags, for the routing outputs.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

from infersim.build.token_api import target_prices, target_rate_limiter
from infersim.core.errors import ScenarioError
from infersim.core.rng import rng
from infersim.engine.recorder import FINISHED
from infersim.perf.token_api import token_api_preset
from infersim.platforms.token_api_server import TokenApiServer
from infersim.policy.quality import QualityModel
from infersim.policy.routers import (
    ROUTERS,
    Candidate,
    RouteView,
    Spill,
    cascade_outcome,
    estimate_difficulty,
)

TTFT_EWMA = 0.1  # weight of the newest TTFT in a target's moving average (ASSUMPTION: ~ the last 10 requests)
CHUNK = 8192  # requests whose routing numbers (quality predictions, base choices) are computed at once


def quality_model(spec) -> QualityModel:
    """The router's ``quality`` block applied over the defaults."""
    q = spec.quality
    base = QualityModel()
    offsets = {**base.offsets, **q.offsets}
    return QualityModel(c0=base.c0 if q.c0 is None else q.c0,
                        c1_per_decade=q.c1_per_decade or base.c1_per_decade, slope=q.slope or base.slope,
                        offsets=offsets, capability=dict(q.capability))


def beta_moments(a: float, b: float) -> tuple[float, float]:
    """Mean and standard deviation of Beta(a, b)."""
    m = a / (a + b)
    return m, math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


class TokenApiLeg:
    """An external token API as a routing target: the ``token_api`` platform's server
    (``sim.token_api_server``: context and rate limits at admission, latency at the API's current
    concurrency, no queueing), the preset's prices (or the router's), deployment code ``index``."""

    def __init__(self, env, spec, reqs, rec, index: int, on_done, *, seed: int, platform: str):
        self.index = index
        self.preset = token_api_preset(spec.preset)
        self.prices = target_prices(spec)
        limiter = target_rate_limiter(spec)
        self.server = TokenApiServer(env, reqs, rec, self.preset.latency,
                                     rng(seed, "platform", platform, "token_api", spec.preset), on_done,
                                     limiter=limiter, deployment=index)
        self.name = f"api:{spec.preset}"
        self.submitted = 0

    @property
    def active(self) -> set[int]:
        return self.server.active

    def submit(self, rid: int) -> None:
        self.submitted += 1
        self.server.submit(rid)


def _load(d) -> tuple[int, int, int]:
    """(waiting to start, in flight, ready replicas) of a fixed or autoscaled deployment.

    "Waiting" is what a load-aware router can see queueing for a batch slot: the deployment queue plus the
    engines' scheduler queues (vLLM's ``num_requests_waiting``). Requests still in the profile's API-server
    delay (``pending``) are in flight, not waiting: counting them made a deployment look queued at any load
    (about rate x delay requests) and spilled traffic no replica count could keep."""
    return d.router_load()


class RoutedDispatch:
    """Routes every request of a platform with its ``router`` block. ``models``: per deployment the catalog
    model; ``tasks``: per stream index its task class (None = general); ``streams``: the scenario's streams
    (for their difficulty distributions). A deployment with ``streams`` is a candidate only for those
    streams; a request with no candidate at all is rejected with ``no_deployment``."""

    def __init__(self, env, spec, plat, deps, models, reqs, rec, on_done, *, tasks, streams, catalog, seed: int):
        self.env, self.spec, self.deps, self.reqs, self.rec = env, spec, deps, reqs, rec
        self.on_done_final = on_done
        names = [d.name or d.model for d in plat.deployments]
        order = spec.deployments or names
        self.cand_dep = [names.index(n) for n in order]
        self.quality = quality_model(spec)
        n = len(reqs)
        self.api = None
        if spec.token_api is not None:
            self.api = TokenApiLeg(env, spec.token_api, reqs, rec, len(deps), self.leg_done, seed=seed,
                                   platform=plat.name)
        # capability per (stream, candidate); the API last
        task_list = [tasks[i] for i in range(len(reqs.stream_names))]
        caps = []
        for t in task_list:
            row = [self.quality.model_capability(models[di].id, models[di].total_params_b, t) for di in self.cand_dep]
            if self.api is not None:
                row.append(self._api_capability(spec.token_api, catalog, t))
            caps.append(row)
        self.caps = np.asarray(caps, float).reshape(len(task_list), -1)
        # per stream: the candidate indices (into cand_dep; the API is len(cand_dep)) that serve it
        n_c = len(self.cand_dep)
        self.allowed = []
        for sname in reqs.stream_names:
            ok = [ci for ci, di in enumerate(self.cand_dep)
                  if plat.deployments[di].streams is None or sname in plat.deployments[di].streams]
            self.allowed.append(ok + ([n_c] if self.api is not None and ok else []))
        # the router's difficulty estimates, per stream from its own Beta moments
        est = np.empty(n)
        r = rng(seed, "platform", plat.name, "router", "difficulty")
        for si in range(len(reqs.stream_names)):
            idx = np.flatnonzero(reqs.stream == si)
            m, sd = beta_moments(*streams[si].difficulty)
            est[idx] = estimate_difficulty(reqs.difficulty[idx], spec.accuracy, sd, m, r)
        self.est = est
        self.u = rng(seed, "platform", plat.name, "router", "judge").random(n)
        spill = Spill(spec.max_waiting, spec.max_ttft) if spec.spills else None
        cls = ROUTERS[spec.kind]
        if spec.kind == "threshold":
            policy = cls(spec.threshold, self.quality, spill)
        elif spec.kind == "cascade":
            policy = cls(self.quality, spill)
        elif spec.kind == "spillover":
            policy = cls(0, self.quality, spill)
        self.policies = []  # per stream (a fixed router's target index depends on the stream's candidates)
        for ok in self.allowed:
            if spec.kind != "fixed":
                self.policies.append(policy)
                continue
            to = order.index(spec.to)
            self.policies.append(cls(ok.index(to), self.quality, spill) if to in ok else None)
        self.spills = spill is not None
        self.spill = spill
        # routers without a cascade decide from numbers fixed per request (the base choice and the quality of
        # each candidate's answer) plus the candidates' load: the numbers are computed per chunk of requests
        # (``_fill``), the load only for the candidates the spill bounds read
        self.bulk = spec.kind in ("threshold", "fixed", "spillover")
        self._lo = self._hi = 0
        self._base = np.zeros(0, np.int64)
        self._base_l: list[int] = []
        self._q_true = np.zeros((0, self.caps.shape[1]))
        self._q_l: list[list[float]] = []
        self.stream_l = reqs.stream.tolist()  # read once per request: a list item, not a NumPy scalar
        self.n_c = len(self.cand_dep)
        self._mw = spill.max_waiting if spill is not None else None
        self._mt = spill.max_ttft_s if spill is not None else None
        if self.spills:
            for d in deps:
                d.track_load()
        # per-request writes and reads go through an ``array`` or a memoryview of the same memory (a Python float
        # or int in and out, not NumPy's item path with its scalar objects); the NumPy arrays are what the
        # outputs read
        self._p_ok_w = array("d", [math.nan]) * n
        self.p_ok = np.frombuffer(self._p_ok_w, np.float64) if n else np.full(0, np.nan)
        self.first_dep = np.full(n, -1, np.int16)
        self._first_w, self._dep_w = self.first_dep.data, rec.deployment.data
        self.escalated = np.zeros(n, bool)
        self.spilled = np.zeros(n, bool)
        self.pending: dict[int, int] = {}  # rid -> candidate index of its second leg
        self.leg_start = array("d", bytes(8 * n))  # read and written once per leg: Python floats, not NumPy scalars
        self.ttft = [math.nan] * len(deps)
        self.n_deps = len(deps)
        # the deployments' TTFT averages are read by a TTFT spill bound and by the candidates' views of a router
        # that decides per request (``_candidates``); a bulk router without a TTFT bound reads none: not kept then
        self._track_ttft = not (self.bulk and self._mt is None)
        # per candidate (into ``cand_dep``), looked up once here rather than per request: its deployment code, its
        # ``submit`` and, where a waiting bound is read, its ``router_waiting`` (the API: ``None``, never over)
        self._cand_d = list(self.cand_dep)
        self._cand_submit = [deps[d].submit for d in self.cand_dep]
        self._cand_waiting = [deps[d].router_waiting for d in self.cand_dep] if self._mw is not None else None

    def _api_capability(self, t_spec, catalog, task) -> float:
        if t_spec.capability is not None:
            return t_spec.capability + self.quality.offsets.get(task or "general", 0.0)
        try:
            m = catalog.get_model(token_api_preset(t_spec.preset).model)
        except ScenarioError:  # an API model missing from the catalog has no size: no quality figure
            return math.nan
        return self.quality.model_capability(m.id, m.total_params_b, task)

    # -- routing -------------------------------------------------------------------------------------
    def _candidates(self, s: int) -> tuple[Candidate, ...]:
        caps = self.caps[s]
        out = []
        n_c = len(self.cand_dep)
        for ci in self.allowed[s]:
            if ci == n_c:
                out.append(Candidate(self.api.name, float(caps[-1]), 0, len(self.api.active), 1, math.nan, True))
            elif self.spills:
                di = self.cand_dep[ci]
                w, f, ready = _load(self.deps[di])
                out.append(Candidate(str(di), float(caps[ci]), w, f, ready, self.ttft[di]))
            else:
                out.append(Candidate(str(self.cand_dep[ci]), float(caps[ci])))
        return tuple(out)

    def _fill(self, rid: int) -> None:
        """Routing numbers of requests ``rid`` to ``rid + CHUNK``: each candidate's P(acceptable) at the true
        difficulty (for ``p_ok``) and the policy's base choice (the threshold router's from its predictions
        at the estimated difficulty; a fixed router's index)."""
        lo, hi = rid, min(len(self.reqs), rid + CHUNK)
        streams = self.reqs.stream[lo:hi]
        q = self.quality.p_acceptable
        self._q_true = q(self.caps[streams], self.reqs.difficulty[lo:hi, None])
        base = np.zeros(hi - lo, np.int64)
        n_c = len(self.cand_dep)
        for si, ok in enumerate(self.allowed):
            policy = self.policies[si]
            if policy is None or not ok:
                continue
            rows = np.flatnonzero(streams == si)
            if not rows.size:
                continue
            if self.spec.kind == "threshold":
                pred = q(self.caps[si, ok][None, :], self.est[lo + rows, None])
                base[rows] = policy.choose_many(pred, [ci == n_c for ci in ok])
            else:
                base[rows] = policy.to
        self._base, self._lo, self._hi = base, lo, hi
        self._base_l = base.tolist()  # read once per request: a list item, not a NumPy scalar
        self._q_l = self._q_true.tolist()

    def _over(self, ci: int) -> bool:
        """Whether candidate ``ci`` (into ``cand_dep``; the API is never over) is over a spill bound now
        (``Spill.over_load`` inline: a NaN TTFT, none measured yet, is never over)."""
        if ci == self.n_c:
            return False
        di = self.cand_dep[ci]
        mw, mt = self._mw, self._mt
        return (mw is not None and self.deps[di].router_waiting() >= mw) or (mt is not None and self.ttft[di] > mt)

    def dispatch(self, rid: int) -> None:
        s = self.stream_l[rid]
        policy = self.policies[s]
        ok = self.allowed[s]
        if policy is None or not ok:
            self.rec.reject(rid, "no_deployment", self.env.now)
            self.on_done_final(rid)
            return
        if self.bulk:
            if not self._lo <= rid < self._hi:
                self._fill(rid)
            j = rid - self._lo
            base = self._base_l[j]
            i = base
            if self.spills:  # spill_target with _over, inline: walk up from the base choice while over a bound
                n_ok, n_c, mw, mt = len(ok), self.n_c, self._mw, self._mt
                waiting, cand_d, ttft = self._cand_waiting, self._cand_d, self.ttft
                while i < n_ok:
                    ci = ok[i]
                    if ci == n_c or not ((mw is not None and waiting[ci]() >= mw)
                                         or (mt is not None and ttft[cand_d[ci]] > mt)):
                        break
                    i += 1
                if i == n_ok or i == base:
                    i = base
                else:
                    self.spilled[rid] = True
            target = ok[i]
            self._p_ok_w[rid] = self._q_l[j][target]
            # _submit, inline
            if self._track_ttft:
                self.leg_start[rid] = self.env.now
            if target >= self.n_c:  # TokenApiLeg.submit, inline
                api = self.api
                code = api.index
                self._dep_w[rid] = code
                api.submitted += 1
                api.server.submit(rid)
            else:
                code = self._cand_d[target]
                self._dep_w[rid] = code
                self._cand_submit[target](rid)
            self._first_w[rid] = code
            return
        route = policy.decide(RouteView(float(self.est[rid]), self._candidates(s)))
        ok = self.allowed[s]
        target = ok[route.target]
        d_true = float(self.reqs.difficulty[rid])
        q = self.quality.p_acceptable
        self.spilled[rid] = route.spilled
        if route.escalate_to >= 0:
            second = ok[route.escalate_to]
            esc, p = cascade_outcome(float(q(self.caps[s, target], d_true)), float(q(self.caps[s, second], d_true)),
                                     self.spec.recall, self.spec.false_escalation, float(self.u[rid]))
            if esc:
                self.pending[rid] = second
            self.p_ok[rid] = p
        else:
            c = self.caps[s, target]
            self.p_ok[rid] = float(q(c, d_true)) if not math.isnan(c) else math.nan
        self._submit(rid, target)
        self.first_dep[rid] = self.rec.deployment[rid]

    def _submit(self, rid: int, cand: int) -> int:
        """Hand ``rid`` to candidate ``cand``; returns its deployment code (as recorded)."""
        self.leg_start[rid] = self.env.now
        if cand >= self.n_c:
            code = self.api.index
            self._dep_w[rid] = code
            self.api.submit(rid)
            return code
        d = self.cand_dep[cand]
        self._dep_w[rid] = d
        self.deps[d].submit(rid)
        return d

    def leg_done(self, rid: int) -> None:
        """Deployments (and the token API) call this when a request leaves them (finished or rejected)."""
        rec = self.rec
        if self._track_ttft:
            d = self._dep_w[rid]
            if d < self.n_deps:
                t1 = rec.finished_first_token(rid)  # NaN unless it finished with a first token
                if t1 == t1:
                    t = t1 - self.leg_start[rid]
                    old = self.ttft[d]
                    self.ttft[d] = t if old != old else (1 - TTFT_EWMA) * old + TTFT_EWMA * t
        if not self.pending:
            self.on_done_final(rid)
            return
        nxt = self.pending.pop(rid, None)
        if nxt is not None and rec.outcome[rid] == FINISHED:
            self.escalated[rid] = True
            rec.outcome[rid] = 0
            rec.first_token_s[rid] = np.nan
            rec.finish_s[rid] = np.nan
            self.env.timeout(self.spec.judge).callbacks.append(lambda _e: self._submit(rid, nxt))
            return
        if nxt is not None:  # the first leg was rejected: the request ends there
            self.p_ok[rid] = 0.0
        self.on_done_final(rid)

    def in_flight(self) -> list[int]:
        """Requests at the token API or waiting for the judge at the end of the run."""
        api = list(self.api.active) if self.api is not None else []
        return api + [r for r in np.flatnonzero(self.escalated).tolist() if self.rec.outcome[r] == 0]
