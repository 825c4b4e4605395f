"""Scenario schema: the workload (traffic classes, arrivals, token lengths, prefixes, SLOs)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from infersim.core.errors import FieldError, first_repeat, suggest
from infersim.scenario.types import PositiveSeconds, RatePerS, Seconds, StrictModel


# ---- token lengths ------------------------------------------------------------------------------
class Fixed(StrictModel):
    kind: Literal["fixed"] = "fixed"
    value: int = Field(ge=1)


class Uniform(StrictModel):
    kind: Literal["uniform"]
    low: int = Field(ge=1)
    high: int = Field(ge=1)

    @model_validator(mode="after")
    def _order(self):
        if self.high < self.low:
            raise FieldError("high", f"high ({self.high}) must be >= low ({self.low})")
        return self


class Normal(StrictModel):
    """Normal, clipped to [min, max] and rounded."""

    kind: Literal["normal"]
    mean: float = Field(gt=0)
    std: float = Field(ge=0)
    min: int = Field(1, ge=1)
    max: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _bounds(self):
        if self.max is not None and self.max < self.min:
            raise FieldError("max", f"max ({self.max}) must be >= min ({self.min})")
        if self.max is not None and self.max < self.mean:  # every request would be capped: a typo, not a shape
            raise FieldError("max", f"max ({self.max}) must be >= mean ({self.mean:g})")
        return self


class LogNormal(StrictModel):
    """Log-normal given by its median and 99th percentile (both in tokens), clipped to [min, max]."""

    kind: Literal["lognormal"]
    median: float = Field(gt=0)
    p99: float = Field(gt=0)
    min: int = Field(1, ge=1)
    max: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _order(self):
        if self.p99 < self.median:
            raise FieldError("p99", f"p99 ({self.p99:g}) must be >= median ({self.median:g})")
        if self.max is not None and self.max < self.min:
            raise FieldError("max", f"max ({self.max}) must be >= min ({self.min})")
        if self.max is not None and self.max < self.median:  # half the requests would be capped silently
            raise FieldError("max", f"max ({self.max}) must be >= median ({self.median:g})")
        return self


class Empirical(StrictModel):
    """Lengths resampled (with replacement) from a trace's column."""

    kind: Literal["empirical"]
    trace: str
    column: Literal["input", "output"]


class Exponential(StrictModel):
    """Geometric (discrete exponential) lengths with the given mean, clipped to [min, max]."""

    kind: Literal["exponential"]
    mean: float = Field(ge=1)
    min: int = Field(1, ge=1)
    max: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _bounds(self):
        if self.max is not None and self.max < self.min:
            raise FieldError("max", f"max ({self.max}) must be >= min ({self.min})")
        if self.max is not None and self.max < self.mean:
            raise FieldError("max", f"max ({self.max}) must be >= mean ({self.mean:g})")
        return self


Lengths = Annotated[Fixed | Uniform | Normal | LogNormal | Exponential | Empirical, Field(discriminator="kind")]


# ---- arrivals ------------------------------------------------------------------------------------
class Poisson(StrictModel):
    kind: Literal["poisson"]
    rate: RatePerS | None = None


class Constant(StrictModel):
    """Requests exactly ``1 / rate`` seconds apart, the first at t = 0: a benchmark client sending on a fixed
    schedule (AIPerf's ``--arrival-pattern constant``, inference-perf's ``constant`` load)."""

    kind: Literal["constant"]
    rate: RatePerS | None = None


class Gamma(StrictModel):
    """Renewal process with gamma inter-arrival times: ``cv`` > 1 is burstier than Poisson. vLLM's benchmark
    client with ``--burstiness b`` draws gamma gaps of shape b, i.e. ``cv`` = 1 / sqrt(b)."""

    kind: Literal["gamma"]
    rate: RatePerS | None = None
    cv: float = Field(gt=0)


class Stage(StrictModel):
    rate: RatePerS
    duration: PositiveSeconds


class Stages(StrictModel):
    """Piecewise-constant Poisson rate: ``[{rate: 5/s, duration: 10m}, ...]``; then traffic stops."""

    kind: Literal["stages"]
    stages: list[Stage] = Field(min_length=1)


class Diurnal(StrictModel):
    """Non-homogeneous Poisson with a sinusoidal daily profile between ``trough_rate`` and ``peak_rate``
    (``period`` defaults to 24h; shorten it to compress a day). ``peak_at`` is the time of the peak."""

    kind: Literal["diurnal"]
    peak_rate: RatePerS
    trough_rate: RatePerS = 0.0
    period: PositiveSeconds = 86400.0
    peak_at: Seconds = 50400.0  # 14:00

    @model_validator(mode="after")
    def _order(self):
        if self.trough_rate > self.peak_rate:
            raise FieldError("trough_rate", f"trough_rate ({self.trough_rate:g}/s) must be <= peak_rate "
                             f"({self.peak_rate:g}/s)")
        return self


class ClosedLoop(StrictModel):
    """``concurrency`` clients each send their next request when the previous one finishes."""

    kind: Literal["closed_loop"]
    concurrency: int = Field(ge=1)
    think_time: Seconds = 0.0
    requests: int | None = Field(None, ge=1, description="stop after this many requests in total")


class Trace(StrictModel):
    """Replay a trace: a shipped name (azure-code-2023, azure-conv-2023, mooncake-conversation,
    mooncake-synthetic) or a file (Azure CSV or Mooncake JSONL). ``time_scale`` multiplies the gaps
    (0.5 = twice as fast); ``rate_scale`` multiplies the rate while keeping the span (thinning below 1,
    jittered copies above 1)."""

    kind: Literal["trace"]
    path: str
    time_scale: float = Field(1.0, gt=0)
    rate_scale: float = Field(1.0, gt=0)
    start: Seconds = 0.0
    use_lengths: bool = True
    use_prefixes: bool = True
    spread_ticks: Seconds = Field(0.0, description="spread quantized arrivals uniformly within this tick")


Arrival = Annotated[Poisson | Constant | Gamma | Stages | Diurnal | ClosedLoop | Trace, Field(discriminator="kind")]


# ---- prefixes and SLOs -----------------------------------------------------------------------------
class SharedPrefix(StrictModel):
    """Requests whose first ``tokens`` tokens are shared within a group (a system prompt, a repository's
    code context, a user's open file). Groups are picked with Zipf popularity ``zipf_s`` (0 = uniform).
    ``share`` is the fraction of requests that carry a shared prefix at all."""

    kind: Literal["shared"] = "shared"
    tokens: int = Field(ge=1)
    groups: int = Field(1, ge=1)
    zipf_s: float = Field(0.0, ge=0)
    share: float = Field(1.0, ge=0, le=1)


class Conversation(StrictModel):
    """Multi-turn sessions: each turn's prompt is the whole previous context (previous prompt + previous
    answer) plus a new message whose length is drawn from the stream's ``input_tokens``, so all but the new
    part can hit the prefix cache. Requests are dealt round robin to ``sessions`` concurrent sessions; a
    session starts a fresh conversation after ``turns`` turns."""

    kind: Literal["conversation"]
    turns: int = Field(ge=1)
    sessions: int = Field(ge=1)


Prefix = Annotated[SharedPrefix | Conversation, Field(discriminator="kind")]


class Slo(StrictModel):
    """Per-stream latency targets; a request meets the SLO when it meets every one that is set."""

    ttft: Seconds | None = None
    tpot: Seconds | None = None
    e2e: Seconds | None = None


class Stream(StrictModel):
    """A traffic class. Its rate is its own ``arrival.rate`` or ``share`` x the workload's ``rate``."""

    name: str
    share: float | None = Field(None, gt=0)
    arrival: Arrival = Field(default_factory=lambda: Poisson(kind="poisson"))
    input_tokens: Lengths | None = None
    output_tokens: Lengths | None = None
    prefix: Prefix | None = None
    slo: Slo = Field(default_factory=Slo)
    task: str | None = Field(None, description="task class for the quality model (routing)")
    difficulty: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] = Field(
        (2.0, 2.0), description="Beta(a, b) of request difficulty (a, b > 0)")
    customer: str | None = Field(None, description="the workload customer this stream belongs to")


class Customer(StrictModel):
    """A named customer owning some of the workload's streams (``stream.customer``). ``enabled: false`` or
    ``rate_scale: 0`` removes its streams' requests (the platforms' capacity stays as configured, so
    committed capacity stays as bought); ``rate_scale`` multiplies its streams' arrival rates otherwise.
    Results get a row per platform x customer (``customers.csv``): revenue, cost share, margin, SLO."""

    name: str
    enabled: bool = True
    rate_scale: float = Field(1.0, ge=0, description="multiplies the arrival rates of this customer's streams")

    @property
    def scale(self) -> float:
        return self.rate_scale if self.enabled else 0.0


class Scale(StrictModel):
    """What share of a named real workload this one simulates: ``infersim run`` then prints the cost at full
    scale as a linear extrapolation (the simulated run rate divided by ``fraction``)."""

    fraction: float = Field(gt=0, le=1, description="simulated share of the full workload, e.g. 0.01 for 1 %")
    of: str = Field(min_length=1, description="the full workload, e.g. 'Cursor Tab (400M requests/day)'")


class Workload(StrictModel):
    rate: RatePerS | None = Field(None, description="total rate split by the streams' shares")
    streams: list[Stream] = Field(min_length=1)
    scale: Scale | None = Field(None, description="the share of a real workload simulated (full-scale cost)")
    prefix_block_tokens: int = Field(
        1, ge=1, description="granularity (tokens) of generated prefixes: a shared prefix or a conversation's "
                             "context is reusable in multiples of it; 1 (default) keeps token counts, and each "
                             "engine's prefix cache rounds them down to its own KV block (engine.block_size)")
    customers: list[Customer] | None = Field(None, description="named customers; every stream then names one")

    def customer_scale(self, stream: Stream) -> float:
        """The arrival-rate multiplier of ``stream``'s customer (1 without customers)."""
        if not self.customers or stream.customer is None:
            return 1.0
        return next(c.scale for c in self.customers if c.name == stream.customer)

    @model_validator(mode="after")
    def _rates(self):
        j = first_repeat([s.name for s in self.streams])
        if j is not None:
            raise FieldError(f"streams[{j}].name", f"duplicate stream name '{self.streams[j].name}' "
                             "(stream names must be unique)")
        for i, s in enumerate(self.streams):
            a = s.arrival
            own = getattr(a, "rate", None) is not None or a.kind in {"stages", "diurnal", "closed_loop", "trace"}
            if not own and (self.rate is None or s.share is None):
                raise FieldError(f"streams[{i}].arrival.rate", f"stream '{s.name}' has no rate: give "
                                 "arrival.rate, or a workload rate and a share")
            trace_lengths = a.kind == "trace" and a.use_lengths
            if not trace_lengths and (s.input_tokens is None or s.output_tokens is None):
                missing = "input_tokens" if s.input_tokens is None else "output_tokens"
                raise FieldError(f"streams[{i}].{missing}", f"stream '{s.name}' needs {missing} "
                                 "(only trace streams with use_lengths may omit it)")
        names = [c.name for c in self.customers or ()]
        j = first_repeat(names)
        if j is not None:
            raise FieldError(f"customers[{j}].name", f"duplicate customer name '{names[j]}'")
        for i, s in enumerate(self.streams):
            if s.customer is not None and s.customer not in names:
                raise FieldError(f"streams[{i}].customer", f"unknown customer '{s.customer}'"
                                 + (suggest(s.customer, names) or (f" (customers: {', '.join(names)})" if names
                                                                   else "; define workload.customers")))
            if names and s.customer is None:
                raise FieldError(f"streams[{i}].customer", f"stream '{s.name}' names no customer; with "
                                 f"workload.customers every stream belongs to one ({', '.join(names)})")
            if s.arrival.kind == "closed_loop" and self.customer_scale(s) not in (0.0, 1.0):
                raise FieldError(f"streams[{i}].customer", f"closed-loop stream '{s.name}' has a fixed client "
                                 "count: its customer's rate_scale can only be 0 or 1")
        return self
