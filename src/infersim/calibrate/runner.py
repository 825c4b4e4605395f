"""Simulate one measured run: a scenario with one replica and the row's load, then the row's metrics.

A closed-loop row (``concurrency`` N) becomes a ``closed_loop`` stream of N clients with fixed input and
output lengths and ``num_requests`` requests in all (the first N arrive together at t=0, as when a benchmark
client starts); a ``rate_per_s`` row becomes an open-loop stream lasting ``num_requests / rate`` seconds with
the row's arrival process (Poisson, constant, or gamma gaps of shape ``burstiness``: vLLM's benchmark
client). The deployment is one replica of the row's model on ``tp`` x ``pp`` x ``dp`` GPUs of its hardware
(expert parallelism ``ep``, two-batch overlap as the row says) with the row's engine; a disaggregated row
(``prefill_replicas`` and ``decode_replicas``) is instead a ``kind: disaggregated`` platform with a prefill pool
of that many replicas of the row's layout, a decode pool of ``decode_tp`` x ``pp`` x ``decode_dp`` GPU replicas
(``decode_ep``), the same engine block on both (with the fit's ``perf`` or ``profile``) and the KV link of
``kv_placement``; the benchmark client then drives the two pools (``fleet.disaggregated``) as it drives one
replica, and the user's first token is the decode pool's. A ``prefix_tokens`` row shares that prefix within
``prefix_groups`` groups; engine limits the CSV does not give follow the engine's defaults
(:data:`ENGINE_DEFAULTS`, assumptions stated there); each dp rank has the engine's limits.

Metric definitions (over finished requests): TTFT = first token - arrival (includes the profile's
``schedule_delay_s``); ITL = the mean over requests of (finish - first token) / (output - 1), i.e. the
per-request mean inter-token latency that genai-perf/AIPerf report as "inter token latency" (the
simulator's token-weighted step durations are not used); E2E = finish - arrival; output_tok_s = output
tokens / (last finish - first arrival).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from infersim.calibrate.measured import METRICS, MeasuredRow
from infersim.perf.params import PerfParams

#: Engine settings when the CSV does not give them (assumptions): the scheduler limits are the engine's own
#: defaults on the row's GPU (``perf.profiles.scheduler_limits``, the scenario defaults too: vLLM 1024 sequences
#: and 8192 tokens on an 80 GB-class GPU, SGLang's chunked prefill by GPU memory, TensorRT-LLM's 2048 and 8192),
#: with max_num_seqs raised to the concurrency when that is larger; vLLM: gpu_memory_utilization 0.9 and the KV
#: cache in the model's 16-bit dtype (``kv_cache_dtype auto``) even for FP8 weights; SGLang: mem_fraction_static
#: ~0.88 on H100 and a 16-bit KV cache; TensorRT-LLM: KV cache 0.9 of the memory (approximated as 0.9 of the GPU)
#: and an FP8 KV cache with FP8 checkpoints (infersim's ``kv_precision: auto``).
ENGINE_DEFAULTS: dict[str, dict] = {
    "vllm": {"gpu_memory_utilization": 0.9, "kv_precision": "bf16"},
    "sglang": {"gpu_memory_utilization": 0.88, "kv_precision": "bf16"},
    "trtllm": {"gpu_memory_utilization": 0.9, "kv_precision": "auto"},
}


def row_limits(row: MeasuredRow) -> tuple[int, int]:
    """``(max_num_seqs, max_batched_tokens)`` of ``row``'s engine: the row's, else the engine's defaults on its GPU
    (max_num_seqs at least the row's concurrency)."""
    from infersim.catalog import default_catalog
    from infersim.perf.profiles import default_limits

    hw = default_catalog().get_hardware(row.hardware)
    d = default_limits(row.engine, hw)
    return (row.max_num_seqs or max(d.max_num_seqs, row.concurrency or 0),
            row.max_batched_tokens or d.max_batched_tokens)
DRAIN_S = 24 * 3600.0
CLOSED_DURATION_S = 1e7  # closed loop: clients send until num_requests are sent; the run ends when all finish


def scenario_data(row: MeasuredRow, params: PerfParams | None = None, *, seed: int = 0,
                  profile: str | None = None) -> dict:
    """The scenario (as a dict for ``load_scenario(data=...)``) that replays ``row``.

    ``params`` sets every performance parameter (the engine's shipped profile otherwise); ``profile`` names a
    profile file instead (``params``, if also given, override it).
    """
    d = ENGINE_DEFAULTS[row.engine]
    max_num_seqs, max_batched_tokens = row_limits(row)
    engine: dict = {
        "kind": row.engine,
        "max_num_seqs": max_num_seqs,
        "max_batched_tokens": max_batched_tokens,
        "gpu_memory_utilization": row.gpu_memory_utilization or d["gpu_memory_utilization"],
        "prefix_caching": bool(row.prefix_tokens),
        "kv_precision": row.kv_precision or d["kv_precision"],
    }
    if row.engine_version:
        engine["version"] = str(row.engine_version)
    if params is not None:
        engine["perf"] = {k: float(v) for k, v in params.as_dict().items()}
    if profile is not None:
        engine["profile"] = str(profile)
    if row.two_batch_overlap:
        engine["two_batch_overlap"] = True
    stream: dict = {"name": "bench",
                    "input_tokens": {"kind": "fixed", "value": row.input_tokens},
                    "output_tokens": {"kind": "fixed", "value": row.output_tokens}}
    if row.concurrency is not None:
        stream["arrival"] = {"kind": "closed_loop", "concurrency": row.concurrency,
                             "think_time": row.think_time_s, "requests": row.num_requests}
        duration = CLOSED_DURATION_S
    else:
        stream["arrival"] = open_loop_arrival(row)
        duration = row.num_requests / row.rate_per_s
    if row.prefix_tokens:
        stream["prefix"] = {"kind": "shared", "tokens": row.prefix_tokens, "groups": row.prefix_groups,
                            "share": row.prefix_share}
    if row.disaggregated:
        platform = disaggregated_platform(row, engine)
    else:
        platform = {"name": "measured", "kind": "gpu_fleet", "deployments": [{
            "model": row.model, "hardware": row.hardware, "precision": row.precision, "tp": row.tp,
            "pp": row.pp, **_dp_ep(row.dp, row.ep), "replicas": 1, "engine": engine}]}
    return {
        "name": f"row-{row.row}", "seed": seed, "duration": duration, "drain": DRAIN_S,
        "workload": {"streams": [stream]},
        "platforms": [platform],
    }


def _dp_ep(dp: int, ep: int) -> dict:
    """The dp and ep keys of a deployment or pool, left out at their defaults (the scenario of a plain row is
    the one it always was)."""
    return {**({"dp": dp} if dp != 1 else {}), **({"ep": ep} if ep != 1 else {})}


def disaggregated_platform(row: MeasuredRow, engine: dict) -> dict:
    """The ``kind: disaggregated`` platform of a disaggregated row: ``prefill_replicas`` replicas of the row's
    layout, ``decode_replicas`` of the decode layout, one engine block (a copy each), the row's KV link."""
    pool = {"hardware": row.hardware, "precision": row.precision, "pp": row.pp}
    kv: dict = {"placement": row.kv_placement or "rdma"}
    if row.kv_bandwidth_gb_per_s is not None:
        kv["bandwidth_gb_per_s"] = float(row.kv_bandwidth_gb_per_s)
    return {
        "name": "measured", "kind": "disaggregated", "model": row.model,
        "prefill": {**pool, "tp": row.tp, **_dp_ep(row.dp, row.ep), "replicas": row.prefill_replicas,
                    "engine": copy.deepcopy(engine)},
        "decode": {**pool, "tp": row.decode_tp or row.tp, **_dp_ep(row.decode_dp or 1, row.decode_ep or 1),
                   "replicas": row.decode_replicas, "engine": copy.deepcopy(engine)},
        "kv_transfer": kv,
        **({"first_token": row.first_token} if row.first_token and row.first_token != "decode" else {}),
    }


def open_loop_arrival(row: MeasuredRow) -> dict:
    """The scenario arrival of a ``rate_per_s`` row. vLLM's ``--burstiness b`` draws gamma gaps of shape b and
    scale 1 / (rate x b) (``vllm bench serve``), whose coefficient of variation is 1 / sqrt(b)."""
    kind = row.arrival or "poisson"
    if kind == "gamma":
        return {"kind": "gamma", "rate": row.rate_per_s, "cv": 1.0 / math.sqrt(row.burstiness)}
    return {"kind": kind, "rate": row.rate_per_s}


@dataclass(frozen=True)
class Simulated:
    """Simulated metrics of one row, in the CSV's units (ms, tokens/s); ``error`` if it could not run."""

    row: MeasuredRow
    predicted: dict[str, float]
    error: str | None = None
    finished: int = 0
    preemptions: int = 0
    rejected: int = 0


def metrics_from_arrays(arrival: np.ndarray, first: np.ndarray, finish: np.ndarray, output_tokens: np.ndarray,
                        finished: np.ndarray) -> dict[str, float]:
    """The CSV metrics (in CSV units) from per-request times in seconds; ``finished`` is a boolean mask."""
    if not finished.any():
        return {m: math.nan for m in METRICS}
    a, f1, fin, out = arrival[finished], first[finished], finish[finished], output_tokens[finished]
    ttft = f1 - a
    e2e = fin - a
    res: dict[str, float] = {"ttft_mean_ms": 1e3 * float(ttft.mean()), "e2e_mean_ms": 1e3 * float(e2e.mean())}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        res[f"ttft_{name}_ms"] = 1e3 * float(np.quantile(ttft, q))
        res[f"e2e_{name}_ms"] = 1e3 * float(np.quantile(e2e, q))
    multi = out > 1
    res["itl_mean_ms"] = (1e3 * float(((fin - f1)[multi] / (out[multi] - 1)).mean()) if multi.any() else math.nan)
    started = arrival[~np.isnan(arrival)]
    span = float(fin.max() - started.min())
    res["output_tok_s"] = float(out.sum()) / span if span > 0 else math.nan
    return res


def simulated_metrics(requests) -> dict[str, float]:
    """The CSV metrics from a results ``requests`` table (one platform), in CSV units."""
    return metrics_from_arrays(requests["arrival_s"].to_numpy(float), requests["first_token_s"].to_numpy(float),
                               requests["finish_s"].to_numpy(float), requests["output_tokens"].to_numpy(float),
                               (requests["outcome"] == "finished").to_numpy())


def simulate_row(row: MeasuredRow, params: PerfParams | None = None, *, seed: int = 0,
                 profile: str | None = None, base_dir: str | Path = ".") -> Simulated:
    """Simulate ``row`` and return its metrics; a row that cannot be simulated gets ``error`` set.

    The scenario of :func:`scenario_data` is validated as any scenario (catalog names, memory fit, profile
    file); then its one replica is driven directly by :func:`drive` (the benchmark client), without the
    fleet layer or result tables: this is the inner loop of a fit."""
    from infersim.build.gpu import deployment_setup
    from infersim.core.errors import InfersimError
    from infersim.scenario.loader import scenario_catalog
    from infersim.validate import load_scenario
    from infersim.workload.generate import generate

    base = Path(base_dir)
    try:
        sc = load_scenario(base / f"row-{row.row}.yaml",
                           data=scenario_data(row, params, seed=seed, profile=profile))
        cat = scenario_catalog(sc, base)
        reqs = generate(sc.workload, seed=sc.seed, duration_s=sc.duration, base_dir=base)
        plat = sc.platforms[0]
        if row.disaggregated:
            from infersim.build.disagg import disagg_build

            build = disagg_build(plat, cat, "platform", base_dir=base)
            return drive(row, build.prefill.setup, reqs, disagg=build)
        setup = deployment_setup(plat.deployments[0], cat, base_dir=base)
    except InfersimError as exc:
        return Simulated(row, {}, error=str(exc))
    return drive(row, setup, reqs)


def single_request_latency_s(setup, row: MeasuredRow, disagg=None) -> float:
    """Latency of one request alone at the row's batch: its prefill plus its decode steps among
    ``concurrency`` sequences (the spread of a staggered client start); with ``disagg`` (a disaggregated
    build) the prefill on the prefill pool, the KV transfer, then the decode steps on the decode pool."""
    i, o, c = row.input_tokens, row.output_tokens, max(row.concurrency or 1, 1)
    prefill = setup.perf.step_s(i, i * (i + 1) / 2.0, 1, 0, 0.0)
    decode, transfer = setup.perf, 0.0
    if disagg is not None:
        decode = disagg.decode.setup.perf
        transfer = disagg.link.transfer_s(disagg.kv_bytes_per_token * i)
    return float(prefill + transfer + max(o - 1, 0) * decode.step_s(0, 0.0, 0, c, c * (i + o / 2.0)))


@cache
def default_client_start(engine: str) -> str:
    """How the clients of a row without ``client_start`` start: the assumption the engine's shipped profile was
    fitted with (``client_start_default`` in its YAML), else ``burst``."""
    from infersim.perf.profiles import shipped_profile_doc

    try:
        return str(shipped_profile_doc(engine).get("client_start_default", "burst"))
    except (FileNotFoundError, OSError):
        return "burst"


def drive(row: MeasuredRow, setup, reqs, disagg=None) -> Simulated:
    """Run the benchmark client against one replica (or, with ``disagg``, a disaggregated build: against its
    prefill and decode pools, ``setup`` being the prefill pool's): a closed loop of ``concurrency`` clients
    (each sends its next request ``think_time_s`` after its previous one finished, ``num_requests`` in all) or
    the arrival times of ``reqs`` (Poisson, constant or gamma: :func:`open_loop_arrival`).

    ``row.client_start`` says when the clients send their first requests: ``burst`` = all at t=0 (a benchmark
    client starting its workers together); ``staggered`` = evenly over one request's latency (the steady state
    of clients that have drifted apart); unset = :func:`default_client_start`. With fixed lengths and no noise, a burst stays clustered: requests
    prefilled in one step also finish together and come back together."""
    import simpy

    from infersim.engine.recorder import FINISHED, REJECTED, Recorder
    from infersim.engine.replica import Replica

    def serve(on_done):
        """What the client sends to: one replica, or the two pools of a disaggregated build."""
        if disagg is None:
            return Replica(env, setup, reqs, rec, 0, on_done=on_done)
        from infersim.fleet.disaggregated import DisaggDeployment

        b = disagg
        return DisaggDeployment(env, reqs, rec, b.prefill.setup, b.decode.setup, [b.link] * b.prefill.n_max,
                                on_done or (lambda _rid: None), kv_bytes_per_token=b.kv_bytes_per_token,
                                prefill_pool=b.prefill.pool_kwargs(), decode_pool=b.decode.pool_kwargs(),
                                decode_wait_s=None, max_concurrent_transfers=b.max_concurrent_transfers,
                                first_token_at_prefill=b.first_token_at_prefill)

    env = simpy.Environment()
    n = len(reqs)
    rec = Recorder(n)
    arrival = np.full(n, np.nan)
    think = float(row.think_time_s)

    def send(rid: int) -> None:
        arrival[rid] = env.now
        rep.submit(rid)

    if row.concurrency is not None:
        queue = list(range(n - 1, -1, -1))

        def next_request(delay: float) -> None:
            if not queue:
                return
            rid = queue.pop()
            if delay > 0:
                env.timeout(delay).callbacks.append(lambda _e, rid=rid: send(rid))
            else:
                send(rid)

        rep = serve(lambda _rid: next_request(think))
        c = row.concurrency
        mode = row.client_start or default_client_start(row.engine)
        spread = single_request_latency_s(setup, row, disagg) if mode == "staggered" else 0.0
        for k in range(min(c, n)):
            next_request(spread * k / c)
    else:
        rep = serve(None)
        order = np.argsort(reqs.arrival_s, kind="stable")

        def arrivals():
            now = 0.0
            for rid, t in zip(order.tolist(), reqs.arrival_s[order].tolist(), strict=True):
                if t > now:
                    yield env.timeout(t - now)
                    now = t
                send(rid)

        env.process(arrivals())
    env.run()
    if disagg is not None:
        rep.finish(env.now)  # folds the prefill side's preemptions into the record
    fin = rec.outcome == FINISHED
    pred = metrics_from_arrays(arrival, rec.first_token_s, rec.finish_s, reqs.output_tokens.astype(float), fin)
    n_rej = int((rec.outcome == REJECTED).sum())
    err = None
    if not fin.any():
        err = (f"no request finished ({n_rej} rejected: the request does not fit the KV cache left after the "
               "weights, or is longer than the model's context)" if n_rej else "no request finished")
    return Simulated(row, pred, error=err, finished=int(fin.sum()), preemptions=int(rec.preemptions.sum()),
                     rejected=n_rej)
