"""Simulate a ``token_api`` platform: a black-box API with per-request latencies, rate limits and prices.

The provider's fleet is much larger than one customer's traffic, so latencies do not depend on this
workload's load (unless the preset has a ``load_curve``, measured on a dedicated cluster: then the medians
follow the number of this platform's requests in flight at admission). Per request, in arrival order:

1. a stream the platform does not serve is rejected (``no_deployment``); a prompt + output longer than the
   model's context is rejected (``context_length``);
2. the rate limiter (requests and tokens per minute, token buckets) admits it or rejects it
   (``rate_limited``);
3. TTFT = median x exp(sigma x z1) and per-user speed = median x exp(sigma x z2), with z1, z2 standard
   normals drawn once per request id from the platform's seeded stream ``rng(seed, "platform", name,
   "latency")`` (the same request gets the same draws in every run); first token at arrival + TTFT, finish at
   first token + (output - 1) / speed. One event per admitted request; with open-loop arrivals and no
   ``load_curve`` no event at all: the requests are served in arrival order and each finish computed at once
   (``TokenApiServer.serve_open_loop``, the clocked run's numbers to the last bit).

Economics: revenue = per-token prices x tokens of finished requests. What serving costs the provider is
not known from outside (``provider_cost_usd`` is nan), and there is no hardware footprint to report.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from infersim.build.token_api import api_latency, api_price_source, api_prices, api_rate_limiter
from infersim.core.rng import rng
from infersim.economics import customer_parts, economics_fields
from infersim.engine.recorder import FINISHED, Recorder
from infersim.platforms import arrivals as _arrivals
from infersim.platforms.arrivals import Arrivals, finish_run, new_clock, served_dispatch, served_streams
from infersim.platforms.platform_run import PlatformRun
from infersim.platforms.token_api_server import TokenApiServer
from infersim.scenario.schema import Scenario
from infersim.workload.generate import Requests


def simulate_token_api(sc: Scenario, plat, reqs: Requests, catalog, *, seed: int, horizon_s: float,
                       timeline_dt: float, progress: Callable[[float], None] | None) -> PlatformRun:
    latency = api_latency(plat)
    prices = api_prices(plat)
    limiter = api_rate_limiter(plat)
    count_out = plat.rate_limits.count_output_tokens if plat.rate_limits is not None else True
    max_context = catalog.get_model(plat.model, path=f"platforms.{plat.name}.model").max_context
    n = len(reqs)
    env = new_clock()
    rec = Recorder(n)
    serves = served_streams(reqs.stream_names, plat.streams)
    t_in, t_out = reqs.input_tokens, reqs.output_tokens
    server = TokenApiServer(env, reqs, rec, latency, rng(seed, "platform", plat.name, "latency"),
                            lambda rid: arrivals.done(rid), limiter=limiter, count_output_tokens=count_out,
                            max_context=max_context)

    dispatch = served_dispatch(env, reqs, rec, serves, server.submit, lambda rid: arrivals.done(rid), deployment=None)
    if not reqs.closed_loop and latency.load_curve is None and not _arrivals.SIMPY_CLOCK:  # no clock needed
        end_s, in_flight = server.serve_open_loop(serves, horizon_s)
        finish_run(rec, reqs.arrival_s, in_flight, end_s)
        if progress is not None:
            progress(end_s)
    else:
        arrivals = Arrivals(env, reqs, sc.duration, dispatch)
        arrivals.start()
        if progress is not None:
            def ticks():
                while True:
                    yield env.timeout(timeline_dt)
                    progress(env.now)
            env.process(ticks())
        end_s = arrivals.run(horizon_s)
        arrivals.finish(rec, sorted(server.active), end_s)
    fin = rec.outcome == FINISHED
    tok_in, tok_out = float(t_in[fin].sum()), float(t_out[fin].sum())
    charge = prices.cost_usd(tok_in, tok_out).item()
    extra = economics_fields(customer_usd=charge, provider_cost_usd=math.nan,
                             input_tokens=tok_in, output_tokens=tok_out, requests=int(fin.sum()))
    extra.update(customer_parts(per_token_usd=charge))
    extra.update({"price_usd_per_mtok_in": prices.input_usd_per_mtok,
                  "price_usd_per_mtok_out": prices.output_usd_per_mtok,
                  "rate_limited_total": int(limiter.rejected) if limiter is not None else 0,
                  "price_source": api_price_source(plat)})
    return PlatformRun(name=plat.name, kind=plat.kind, recorder=rec, end_s=end_s, deployments=[plat.name],
                       summary_extra=extra, deployment_rows=[{"deployment": plat.name, "model": plat.model, **extra}])

