"""One name per quantity: the label, unit and time window of every figure ``infersim run`` and the report print.

A reader who checks a memo against the run output must find the same quantity under the same name, with the
span of time it was measured over stated. ``QUANTITIES`` maps a summary column (the name in summary.json /
summary.csv) to its ``Quantity``; the text table, the report and the charts take their labels from here.

Windows (``WINDOWS``):

- ``window``: requests that *arrived* in the measurement window ``[warmup, duration)``; latencies, SLO,
  throughput and the request counts are over these. Utilization is over the timeline samples after warm-up.
- ``run``: the whole run, warm-up and drain included, as a bill covers it: every dollar figure, and the
  token counts the $/Mtok figures divide by (requests that finished in the whole run).
- ``billed``: all billed replica time (every replica-second the platform pays for, starting and loading
  included, rounded up to the billing unit); idle share is over this, so it is not ``1 - utilization``.
- ``config``: a property of the platform as configured or sized (replicas, chips, list prices), not measured.

This module imports nothing of infersim: it is the ground floor, readable by every layer above.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOWS: dict[str, str] = {
    "window": "measurement window (requests arrived after warm-up, before the end of arrivals)",
    "run": "whole run (warm-up and drain included)",
    "billed": "all billed replica time (starting and loading included)",
    "config": "as configured or sized (not measured)",
}

#: short form of each window for section titles
WINDOW_SHORT: dict[str, str] = {"window": "measurement window", "run": "whole run", "billed": "billed time",
                                "config": "configuration"}


@dataclass(frozen=True)
class Quantity:
    key: str  # the summary column
    label: str  # the one name it is printed under, everywhere
    unit: str  # "s", "USD", "USD/Mtok", "req/s", "tok/s", "share", "count", "GPU-h", "kW", ...
    window: str  # a key of WINDOWS
    meaning: str  # one sentence a memo reader can quote

    def __post_init__(self) -> None:
        if self.window not in WINDOWS:
            raise ValueError(f"quantity {self.key}: unknown window {self.window!r}")


_Q = Quantity
_ALL = [
    # --- requests: counts reconcile as done + rejected + in flight + lost + warm-up = arrivals ---
    _Q("arrivals", "arrivals", "count", "run", "requests that arrived during the whole run (warm-up included)"),
    _Q("warmup_excluded", "arrived in warm-up (excluded)", "count", "run",
       "requests that arrived before the warm-up ended; excluded from every window statistic"),
    _Q("requests", "arrived in window", "count", "window", "requests that arrived in the measurement window"),
    _Q("finished", "done", "count", "window", "window requests that finished (by the end of the drain)"),
    _Q("rejected", "rejected", "count", "window", "window requests refused (all reasons, rate limits included)"),
    _Q("rejected_rate_limited", "of which rate-limited", "count", "window",
       "window requests a token API refused for its request or token rate limit"),
    _Q("rejected_queue_timeout", "of which queue timeout", "count", "window",
       "window requests that waited longer than the platform's queue timeout"),
    _Q("rejected_other", "of which other reasons", "count", "window",
       "window requests refused for any other reason (admission, KV capacity, no replica)"),
    _Q("in_flight", "in flight at end", "count", "window", "window requests still unfinished when the run ended"),
    _Q("lost", "lost (no outcome)", "count", "window", "window requests the simulator recorded no outcome for"),
    # --- latency (server-side for simulated platforms; token APIs include the network) ---
    *[_Q(f"{m}_{p}_s", f"{lab} {p}", "s", "window", f"{what}, {p} over finished window requests")
      for m, lab, what in (("ttft", "TTFT", "time to first token (arrival to first output token)"),
                           ("tpot", "TPOT", "time per output token after the first"),
                           ("itl", "ITL", "inter-token latency (decode step time, token-weighted)"),
                           ("e2e", "E2E", "end-to-end latency (arrival to last token)"))
      for p in ("p50", "p90", "p99")],
    _Q("output_tok_s_per_user", "tok/s per user", "tok/s", "window",
       "median output speed a single user sees (1 / TPOT)"),
    # --- load and service ---
    _Q("offered_req_s", "offered load req/s", "req/s", "window",
       "requests arrived per second of window: the workload, the same for every platform"),
    _Q("offered_output_tok_s", "offered load out tok/s", "tok/s", "window",
       "output tokens asked for per second of window: the workload, the same for every platform"),
    _Q("throughput_req_s", "served req/s", "req/s", "window", "finished window requests per second of window"),
    _Q("output_tok_s", "served out tok/s", "tok/s", "window",
       "output tokens of finished window requests per second of window"),
    _Q("input_tok_s", "served in tok/s", "tok/s", "window",
       "input tokens of finished window requests per second of window"),
    _Q("slo_attainment", "SLO met", "share", "window",
       "share of window requests that finished meeting every target of their stream (rejections miss)"),
    _Q("goodput_req_s", "goodput req/s", "req/s", "window", "window requests per second that met their SLO"),
    _Q("quality", "quality", "share", "run",
       "mean expected probability that an answer is acceptable (routing quality model; a rejection counts 0)"),
    _Q("quality_ratio", "quality vs strongest model", "share", "run",
       "quality divided by that of the same requests all answered by the platform's strongest model"),
    _Q("prefix_hit_rate", "prefix cache hit", "share", "window", "share of input tokens served from the prefix cache"),
    _Q("utilization", "utilization", "share", "window",
       "share of timeline samples after warm-up in which a replica was running an engine step"),
    _Q("kv_usage_max", "KV cache max", "share", "window", "peak share of KV-cache blocks in use"),
    _Q("preemptions", "preemptions", "count", "window", "sequences preempted for KV-cache space"),
    # --- money (whole run) ---
    _Q("customer_usd", "customer pays", "USD", "run",
       "what the customer is billed for the run: GPU-minutes plus token-API spill"),
    _Q("customer_gpu_minutes_usd", "of which GPU-minutes", "USD", "run",
       "the part of customer pays billed per GPU-minute of replica time"),
    _Q("customer_token_api_usd", "of which token-API spill", "USD", "run",
       "the part of customer pays for requests the router sent on to a token API, billed per token"),
    _Q("provider_cost_usd", "provider cost", "USD", "run",
       "what serving the run costs the platform (GPU rental, or owned hardware amortised plus power)"),
    _Q("gross_margin", "margin", "share", "run", "(customer pays - provider cost) / customer pays"),
    _Q("customer_usd_per_mtok", "customer $/Mtok (all tokens)", "USD/Mtok", "run",
       "customer pays per million input + output tokens of finished requests; low where prompts are long"),
    _Q("customer_usd_per_mtok_out", "customer $/Mtok (output only)", "USD/Mtok", "run",
       "customer pays per million output tokens of finished requests, all-in (input cost carried by output); "
       "larger than the all-token figure by (input + output) / output, ~60x for long-prompt code completion"),
    _Q("customer_usd_per_request", "customer $/request", "USD", "run", "customer pays per finished request"),
    _Q("provider_usd_per_mtok", "provider $/Mtok (all tokens)", "USD/Mtok", "run",
       "provider cost per million input + output tokens of finished requests"),
    _Q("price_usd_per_mtok_in", "list $/Mtok in", "USD/Mtok", "config", "list price per million input tokens"),
    _Q("price_usd_per_mtok_out", "list $/Mtok out", "USD/Mtok", "config", "list price per million output tokens"),
    _Q("idle_share", "idle", "share", "billed",
       "share of billed replica time not spent running engine steps (starting, loading and waiting included)"),
    _Q("gpu_hours", "GPU-hours", "GPU-h", "billed", "billed GPU-hours, segments rounded up to the billing unit"),
    _Q("cost_usd", "GPU-minutes billed", "USD", "billed",
       "replica time billed at the customer's GPU price (the same dollars as 'of which GPU-minutes')"),
    # --- fleet and capacity ---
    _Q("peak_replicas", "peak replicas", "count", "run", "most replicas alive at once"),
    _Q("mean_replicas", "mean replicas", "count", "run", "replicas alive, averaged over the timeline"),
    _Q("cold_starts", "cold starts", "count", "run", "replicas started during the run"),
    _Q("cold_start_p50_s", "cold start p50", "s", "run", "replica start time (ready - asked for), median"),
    _Q("cold_start_p99_s", "cold start p99", "s", "run", "replica start time (ready - asked for), p99"),
    _Q("requests_waited_cold_start", "waited for a cold start", "count", "run",
       "requests that arrived when no replica of their deployment was ready"),
    _Q("capacity_wait_s", "capacity wait", "s", "run", "total time replicas waited for GPU capacity"),
    _Q("replica_failures", "replica failures", "count", "run", "replicas that failed during the run"),
    _Q("requests_retried", "retried", "count", "run", "requests retried after their replica failed"),
    _Q("racks", "racks", "count", "config", "racks at peak (catalog chips per rack)"),
    _Q("chips", "chips", "count", "config", "accelerators (GPUs, LPU chips, wafer systems) at peak"),
    _Q("power_kw", "power", "kW", "config", "power of the peak hardware at TDP"),
    _Q("rate_limited_total", "rate-limited (whole run)", "count", "run",
       "requests a token API refused for its rate limits over the whole run (warm-up and drain included)"),
    # --- run rates and scale (at the simulated load) ---
    _Q("customer_usd_per_hour", "customer pays per hour", "USD/h", "run",
       "customer pays over the run's arrival span, as an hourly rate at the simulated load"),
    _Q("customer_usd_per_month", "customer pays per 30-day month", "USD/month", "run",
       "customer pays per hour x 720: a run rate at the simulated load"),
    _Q("provider_cost_usd_per_month", "provider cost per 30-day month", "USD/month", "run",
       "provider cost per hour x 720: a run rate at the simulated load"),
    _Q("customer_usd_per_month_full_scale", "customer pays per month at full scale", "USD/month", "run",
       "per-month run rate divided by the scenario's workload.scale.fraction: a linear extrapolation"),
    _Q("provider_cost_usd_per_month_full_scale", "provider cost per month at full scale", "USD/month", "run",
       "provider per-month run rate divided by workload.scale.fraction: a linear extrapolation"),
    # --- against the scenario's baseline platform ---
    _Q("baseline_saving_share", "cost saved vs baseline", "share", "run",
       "1 - customer pays / the baseline platform's customer pays, same workload"),
    _Q("baseline_quality_ratio", "quality vs baseline", "share", "run", "quality / the baseline platform's quality"),
    _Q("baseline_e2e_p99_change_s", "E2E p99 change vs baseline", "s", "window",
       "E2E p99 minus the baseline platform's E2E p99 (negative: faster)"),
]

QUANTITIES: dict[str, Quantity] = {q.key: q for q in _ALL}
assert len(QUANTITIES) == len(_ALL), "a quantity key is listed twice"


def label(key: str) -> str:
    """The one name ``key`` is printed under (the key itself for a column not in the registry)."""
    q = QUANTITIES.get(key)
    return q.label if q is not None else key


def window_of(key: str) -> str | None:
    q = QUANTITIES.get(key)
    return q.window if q is not None else None
