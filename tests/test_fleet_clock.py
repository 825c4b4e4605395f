"""Fixed fleets on their own calendar (``engine.clock.FleetClock``, ``engine.own_clock.run_fleet``) give exactly
what the SimPy clock gives: requests, summary and timeline, bit for bit.

Each case runs as it is (fixed deployments whose replicas look at each other: a load-aware balancer, a
deployment queue with ``replica_concurrency`` and timeouts, the lpu and wafer platforms) and with the SimPy
path forced. The cases are chosen to exercise what differs between the two loops: queue timeouts, the
sampler, a run cut at its horizon, a stream nobody serves, and exact-time ties between arrivals, step ends,
scheduling-delay exits and queue timeouts (where the order of same-instant events decides the result).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import scenario
from infersim.perf.gpu import GpuRoofline
from infersim.platforms import arrivals, gpu_fleet, sram
from infersim.results.simulate import simulate
from infersim.validate import load_scenario


def _both(sc, monkeypatch):
    ours = simulate(sc, timeline_points=50)
    with monkeypatch.context() as m:
        m.setattr(gpu_fleet, "fixed_fleet", lambda plat, reqs: False)
        m.setattr(sram, "fleet_clock_ok", lambda reqs: False)
        simpy_run = simulate(sc, timeline_points=50)
    for table in ("requests", "summary", "timeline"):
        pd.testing.assert_frame_equal(getattr(ours, table), getattr(simpy_run, table), check_exact=True, obj=table)
    return ours


def _with_platforms(sc, platforms):
    data = sc.model_dump(mode="json", exclude_none=True)
    data["platforms"] = platforms
    return load_scenario("test.yaml", data=data)


BURSTY = {"kind": "gamma", "rate": 40, "cv": 3.0}  # bursts fill the slots and the deployment queue


@pytest.mark.parametrize("kind", ["lpu", "wafer"])
def test_sram_platform_with_full_slots_and_queue_timeouts(kind, monkeypatch):
    plat = ({"name": "g", "kind": "lpu", "model": "llama-3.1-8b", "chips": 64, "max_in_flight": 6}
            if kind == "lpu" else {"name": "c", "kind": "wafer", "model": "llama-3.1-8b", "systems": 1,
                                   "max_in_flight": 6})
    sc = scenario(**{"duration": 40, "drain": 30, "workload.streams[0].arrival": BURSTY,
                     "workload.streams[0].output_tokens.value": 1500})
    sc = _with_platforms(sc, [{**plat, "replicas": 3, "queue_timeout": 0.5}])
    res = _both(sc, monkeypatch)
    reasons = res.requests["reason"].value_counts()
    assert reasons.get("queue_timeout", 0) > 0 and (res.requests["outcome"] == "finished").sum() > 0
    assert set(res.requests["replica"].dropna()) >= {0, 1, 2}


def test_sram_stream_filter_and_horizon_cut(monkeypatch):
    sc = scenario(**{"duration": 30, "drain": 2, "workload.streams": [
        {"name": "a", "arrival": {"kind": "poisson", "rate": 20}, "input_tokens": {"kind": "fixed", "value": 800},
         "output_tokens": {"kind": "fixed", "value": 2000}},
        {"name": "b", "arrival": {"kind": "poisson", "rate": 3}, "input_tokens": {"kind": "fixed", "value": 100},
         "output_tokens": {"kind": "fixed", "value": 10}}]})
    sc = _with_platforms(sc, [{"name": "g", "kind": "lpu", "model": "llama-3.1-8b", "chips": 64, "replicas": 2,
                               "streams": ["a"]}])
    res = _both(sc, monkeypatch)
    out = res.requests["outcome"].value_counts()
    assert out["rejected"] > 0 and out["in_flight"] > 0


@pytest.mark.parametrize("balancer", ["least_outstanding", "power_of_two", "least_kv", "prefix_affinity"])
def test_gpu_fleet_balancers_with_a_deployment_queue(balancer, monkeypatch):
    """Two deployments, one per stream: the first queues (and times out) behind its concurrency limit, the
    second sends every request straight to a replica; their requests interleave on one clock."""
    dep = {"name": "queued", "model": "llama-3.1-8b", "hardware": "l40s", "precision": "fp8", "replicas": 3,
           "load_balancer": {"kind": balancer}, "replica_concurrency": 6, "queue_timeout": 2.0,
           "engine": {"kind": "vllm", "max_num_seqs": 8}, "streams": ["s"]}
    sc = scenario(**{"duration": 30, "drain": 60, "workload.streams[0].arrival": BURSTY,
                     "workload.streams[0].prefix": {"kind": "shared", "tokens": 256, "groups": 3},
                     "workload.streams[1]": {"name": "t", "arrival": {"kind": "poisson", "rate": 5},
                                             "input_tokens": {"kind": "fixed", "value": 300},
                                             "output_tokens": {"kind": "fixed", "value": 40}},
                     "platforms[0].deployments": [dep, {**dep, "name": "direct", "replicas": 2, "streams": ["t"],
                                                        "replica_concurrency": None, "queue_timeout": None}]})
    res = _both(sc, monkeypatch)
    assert (res.requests["reason"] == "queue_timeout").sum() > 0


def test_gpu_fleet_without_a_queue(monkeypatch):
    sc = scenario(**{"duration": 30, "workload.rate": 30,
                     "platforms[0].deployments[0].replicas": 4,
                     "platforms[0].deployments[0].load_balancer": {"kind": "prefix_affinity"},
                     "workload.streams[0].prefix": {"kind": "shared", "tokens": 512, "groups": 4}})
    res = _both(sc, monkeypatch)
    assert res.summary.iloc[0]["prefix_hit_rate"] > 0


@pytest.fixture
def grid_steps(monkeypatch):
    """Step times on a 1/8 s grid (as tests/test_clock_ties.py): many events coincide exactly."""
    def step_s(self, n_prefill_tokens, prefill_pairs, n_prefill_seqs, n_decode, decode_ctx_sum, prefill_ctx_sum=0.0):
        return 0.25 if n_prefill_tokens or n_prefill_seqs else 0.125

    monkeypatch.setattr(GpuRoofline, "step_s", step_s)
    monkeypatch.setattr(GpuRoofline, "decode_affine", lambda self, n: (0.125, 1, 0.0, 0.0, 0.0, 0.0))
    monkeypatch.setattr(GpuRoofline, "decode_steps_s", lambda self, n, ctx: np.full(len(np.atleast_1d(ctx)), 0.125))


@pytest.mark.parametrize("delay_s", [0.0, 0.5])
def test_exact_ties_are_ordered_as_simpy_orders_them(tmp_path, monkeypatch, grid_steps, delay_s):
    rows = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for s in range(30):
        for j in range((s * 5) % 4 + 1):  # 1 to 4 requests at each whole second
            rows.append(f"2023-11-16 18:00:{s:02d}.000000,{200 + 150 * j},{3 + (s * 7 + j) % 11}")
    trace = tmp_path / "ties.csv"
    trace.write_text("\n".join(rows) + "\n")
    sc = scenario(**{
        "duration": 30, "drain": 120,
        "workload.streams[0]": {"name": "s", "arrival": {"kind": "trace", "path": str(trace)}},
        "platforms[0].deployments[0].replicas": 2,
        "platforms[0].deployments[0].load_balancer": {"kind": "least_outstanding"},
        "platforms[0].deployments[0].replica_concurrency": 3,
        "platforms[0].deployments[0].queue_timeout": 1.0,  # expiries land on whole seconds too
        "platforms[0].deployments[0].engine": {"kind": "vllm", "max_num_seqs": 4, "max_batched_tokens": 512,
                                               "perf": {"schedule_delay_s": delay_s, "schedule_delay_per_seq_s": 0.0,
                                                        "api_serial_s": 0.0}},
    })
    res = _both(sc, monkeypatch)
    fin = res.requests[res.requests["outcome"] == "finished"]
    assert (fin["finish_s"] % 1.0 == 0).sum() > 5  # the case does tie: finishes on arrival instants


# -- routed, autoscaled and closed-loop fleets: the FleetClock as SimPy (engine.clock run / process / any_of) -----

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
DEP = "platforms[0].deployments[0]"


def _both_general(sc, monkeypatch):
    """The run on a FleetClock (default) and on ``simpy.Environment`` (forced): identical tables."""
    ours = simulate(sc, timeline_points=50)
    with monkeypatch.context() as m:
        m.setattr(arrivals, "SIMPY_CLOCK", True)
        simpy_run = simulate(sc, timeline_points=50)
    for table in ("requests", "summary", "timeline", "fleet", "replica_log"):
        a, b = getattr(ours, table), getattr(simpy_run, table)
        if isinstance(a, pd.DataFrame):
            # SimPy's clock is the integer 0 until its first event, so times stamped during set-up (replicas
            # requested at t = 0) come out int64 there and float64 (0.0) here: equal values, the dtype apart
            pd.testing.assert_frame_equal(a, b, check_exact=True, check_dtype=table != "replica_log", obj=table)
    return ours


@pytest.mark.parametrize("name", ["cursor", "notion", "launch-spike", "platform-economics", "disaggregation",
                                  "frontier-models"])
def test_shipped_routed_and_autoscaled_scenarios_match_simpy(name, monkeypatch):
    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml", {"duration": 45, "drain": 30, "warmup": 5})
    _both_general(sc, monkeypatch)


def test_autoscaled_with_failures_spot_pools_retries_and_queue_timeouts(monkeypatch):
    sc = scenario(**{
        "seed": 5, "duration": 120, "drain": 60,
        "workload.streams[0].arrival": {"kind": "stages", "stages": [{"rate": 2, "duration": 40},
                                                                     {"rate": 9, "duration": 80}]},
        "platforms[0].pools": [{"name": "east", "hardware": "h100-sxm", "limit_gpus": 2},
                               {"name": "west", "hardware": "h100-sxm", "limit_gpus": 2,
                                "pricing": {"kind": "spot", "usd_per_gpu_hour": 2.0,
                                            "interruption_mtbf_gpu_hours": 0.01}}],
        f"{DEP}.pools": ["east", "west"],
        f"{DEP}.autoscaling": {"kind": "baseten", "max_replicas": 4, "autoscaling_window": 10,
                               "scale_down_delay": 20, "concurrency_target": 3},
        f"{DEP}.cold_start": {"provision": 5, "image_pull": 2, "warmup": 3},
        f"{DEP}.failures": {"mtbf_gpu_hours": 0.01, "at": [50.0], "max_retries": 1},
        f"{DEP}.replica_concurrency": 3, f"{DEP}.queue_timeout": 20.0})
    res = _both_general(sc, monkeypatch)
    s = res.summary.iloc[0]
    assert s["finished"] > 0 and res.fleet["ready"].max() >= 2  # the fleet scaled, requests were served
    assert s["replica_failures"] > 0 and s["spot_interruptions"] > 0 and s["requests_retried"] > 0


def test_closed_loop_clients_with_think_time_and_exact_ties(monkeypatch):
    """Closed-loop clients (think 0.25 s) beside a constant-rate stream on a 1/8 s grid, an autoscaler ticking
    on whole seconds: arrivals, ticks, cold-start stages and step ends at the same instants."""
    sc = scenario(**{
        "seed": 2, "duration": 30, "drain": 30,
        "workload.streams": [
            {"name": "c", "arrival": {"kind": "closed_loop", "concurrency": 6, "think_time": 0.25},
             "input_tokens": {"kind": "fixed", "value": 256}, "output_tokens": {"kind": "fixed", "value": 32}},
            {"name": "o", "arrival": {"kind": "constant", "rate": 8},
             "input_tokens": {"kind": "fixed", "value": 128}, "output_tokens": {"kind": "fixed", "value": 16}}],
        f"{DEP}.engine.perf": {"schedule_delay_s": 0.125, "schedule_delay_per_seq_s": 0.0, "api_serial_s": 0.0},
        f"{DEP}.autoscaling": {"kind": "baseten", "max_replicas": 3, "autoscaling_window": 10,
                               "scale_down_delay": 4, "concurrency_target": 2},
        f"{DEP}.cold_start": {"provision": 1, "image_pull": 1, "warmup": 1}})
    _both_general(sc, monkeypatch)


def test_token_api_and_closed_loop_sram_match_simpy(monkeypatch):
    """The token API server (latency draws, rate limits) and lpu / wafer platforms under closed-loop clients
    (which keep SimPy's process-and-callback form) on the FleetClock."""
    sc = scenario(**{"duration": 30, "drain": 30, "workload.streams[0].arrival": {
        "kind": "closed_loop", "concurrency": 12, "think_time": 0.5}})
    sc = _with_platforms(sc, [
        {"name": "api", "kind": "token_api", "model": "llama-3.1-8b", "preset": "fireworks/llama-3.1-8b",
         "rate_limits": {"requests_per_minute": 600}},
        {"name": "g", "kind": "lpu", "model": "llama-3.1-8b", "chips": 64, "max_in_flight": 4, "replicas": 2},
        {"name": "c", "kind": "wafer", "model": "llama-3.1-8b", "systems": 1, "max_in_flight": 4}])
    res = _both_general(sc, monkeypatch)
    assert set(res.summary["platform"]) == {"api", "g", "c"}


def test_open_loop_token_api_without_a_clock_matches_the_clocked_run(monkeypatch):
    """An open-loop token API (no load curve) is served without events (``serve_open_loop``): rate limits
    that reject, a context-length rejection, a stream it does not serve, requests cut at the horizon."""
    sc = scenario(**{"duration": 60, "drain": 2, "workload.streams": [
        {"name": "a", "arrival": {"kind": "gamma", "rate": 30, "cv": 2.0},
         "input_tokens": {"kind": "lognormal", "median": 800, "p99": 200000},
         "output_tokens": {"kind": "lognormal", "median": 300, "p99": 4000}},
        {"name": "b", "arrival": {"kind": "poisson", "rate": 5}, "input_tokens": {"kind": "fixed", "value": 100},
         "output_tokens": {"kind": "fixed", "value": 10}}]})
    sc = _with_platforms(sc, [{"name": "api", "kind": "token_api", "model": "llama-3.1-8b",
                               "preset": "fireworks/llama-3.1-8b", "streams": ["a"],
                               "rate_limits": {"requests_per_minute": 1200, "tokens_per_minute": 1_000_000}}])
    res = _both_general(sc, monkeypatch)
    reasons = set(res.requests["reason"].dropna())
    assert {"rate_limited", "context_length", "no_deployment"} <= reasons
    assert (res.requests["outcome"] == "in_flight").any()  # cut at the horizon


# -- open-loop arrivals as the FleetClock's own heap entries (engine.clock.OpenLoop) ---------------------------

def _arrival_trace(kind: str):
    """Arrivals on a 0.1 s grid with exact ties (two requests per instant, a time reached both as 0.1 + 0.2
    and as 0.3), between two ticker processes started before and after them, each dispatch scheduling a
    callback at a later arrival's instant; ``kind``: the heap entries (``start`` on a FleetClock), the old
    SimPy process on a FleetClock, or that process on ``simpy.Environment``. Returns what happened, in order
    (tag, id, clock time, seq where the clock has one), and the clock's final seq."""
    from types import SimpleNamespace

    import simpy

    from infersim.engine.clock import FleetClock

    clock = simpy.Environment() if kind == "simpy" else FleetClock()
    seq = (lambda: -1) if kind == "simpy" else (lambda: clock.seq)
    log = []
    times = np.array([0.0, 0.0, 0.1, 0.1, 0.2, 0.30000000000000004, 0.3, 0.3, 0.7, 0.7, 1.0, np.nan, 1.25])

    def dispatch(rid):
        log.append(("arrival", rid, clock.now, seq()))
        if rid % 3 == 0:
            clock.timeout(0.1).callbacks.append(lambda _e, rid=rid: log.append(("callback", rid, clock.now, seq())))

    def ticker(tag):
        while True:
            yield clock.timeout(0.1)
            log.append((tag, -1, clock.now, seq()))

    reqs = SimpleNamespace(arrival_s=times, closed_loop=[], stream=np.zeros(len(times), np.int64))
    arr = arrivals.Arrivals(clock, reqs, 10.0, dispatch)
    clock.process(ticker("a"))
    if kind == "heap":
        arr.start()
    else:
        clock.process(arr._open_loop())
    clock.process(ticker("b"))
    clock.run(until=clock.any_of([clock.timeout(1.5)]))
    return log, seq()


def test_open_loop_heap_entries_keep_the_simpy_process_order_on_ties():
    heap, seq_heap = _arrival_trace("heap")
    proc, seq_proc = _arrival_trace("process")
    on_simpy, _ = _arrival_trace("simpy")
    assert [e for e in heap if e[0] == "arrival"][-1][1] == 12  # every request arrived (the NaN one skipped)
    assert sum(1 for e in heap if e[0] == "arrival" and e[2] == 0.30000000000000004) == 3  # the tie happens
    assert heap == proc and seq_heap == seq_proc  # same events, same order, same clock times, same seq
    assert [e[:3] for e in heap] == [e[:3] for e in on_simpy]


def test_calendar_entries_pop_in_simpy_order():
    """``engine.clock.Entry`` orders as the (time, seq) tuples it replaced: time first, then the scheduling
    order, ties in time included (a third of the times are repeated)."""
    import heapq

    from infersim.engine.clock import FleetClock

    rng = np.random.default_rng(3)
    clock = FleetClock()
    times = rng.choice(rng.random(40), size=120).tolist()  # many exact ties
    expected = []
    for i, t in enumerate(times):
        clock.push(t, i % 5, None, i)
        expected.append((t, clock.seq, i % 5, i))
    popped = []
    while clock.heap:
        e = heapq.heappop(clock.heap)
        popped.append((e.t, e.seq, e.kind, e.value))
    assert popped == sorted(expected)
    assert len({t for t, *_ in popped}) < len(popped)  # ties were there to break
