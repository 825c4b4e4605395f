"""Draw the workload once: every stream's arrivals, token lengths, prefixes and difficulty, merged by time.

Each stream draws from its own named random streams (``rng(seed, "workload", <stream>, "arrivals" |
"input" | "output" | "prefix" | "difficulty")``), so adding or changing one stream never changes another
stream's requests. Everything is vectorised numpy except conversation bookkeeping, which is also vectorised
with a grouped cumulative sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from infersim.core.errors import ScenarioError
from infersim.core.rng import rng
from infersim.scenario.workload import Stream, Workload
from infersim.workload.traces import TraceData, load_trace, resolve_trace

KEY_STREAM_SHIFT = 32  # prefix_key = (stream index << 32) | group or conversation instance
MAX_STREAMS = 1 << 10  # 1024 streams: prefix keys stay below 2^42, far inside int64 (and a C long)
CLOSED_LOOP_ROWS_PER_CLIENT = 4096
CLOSED_LOOP_MAX_ROWS = 2_000_000
_Z99 = 2.3263478740408408  # standard normal 99th percentile
_I64 = np.int64


@dataclass(frozen=True, eq=False)
class Requests:
    """The workload, drawn once; identical for every platform. Sorted by arrival_s (closed-loop rows, whose
    arrival is decided by the simulation, have arrival_s = NaN and come last).

    Arrays (read-only), one entry per request: ``arrival_s`` float64 seconds; ``input_tokens`` and
    ``output_tokens`` int64 >= 1 (the input includes any shared prefix or conversation context);
    ``stream`` int16 index into ``stream_names``; ``difficulty`` float64 in [0, 1]; ``prefix_key`` int64
    (-1 = no generated prefix chain); ``prefix_tokens`` int64, the prompt's leading tokens shared with the
    chain ``prefix_key`` (a group's shared prefix or a conversation's previous context, in multiples of the
    workload's ``prefix_block_tokens``, 1 by default: plain token counts), which every engine's prefix cache
    rounds down to its own KV block; for trace rows with hash ids, the tokens those ids cover (at most the
    prompt). ``block_offsets``/``block_hashes``: explicit per-request hash ids (trace replay, one per
    ``block_tokens`` tokens, the last block possibly partial) or None; ``block_tokens`` is 0 without them.
    ``closed_loop``: per closed-loop stream (stream index, concurrency, think_time_s).
    """

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    stream: np.ndarray
    difficulty: np.ndarray
    prefix_key: np.ndarray
    prefix_tokens: np.ndarray
    block_offsets: np.ndarray | None
    block_hashes: np.ndarray | None
    block_tokens: int
    stream_names: tuple[str, ...]
    closed_loop: tuple[tuple[int, int, float], ...]
    conversation_streams: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.arrival_s)

    def prefix_ids(self, i: int) -> np.ndarray:
        """Request ``i``'s trace hash ids (int64, in prompt order; empty for a generated or no prefix, whose
        chain is ``prefix_key`` / ``prefix_tokens``)."""
        if self.block_offsets is not None:
            return self.block_hashes[self.block_offsets[i]:self.block_offsets[i + 1]]
        return np.zeros(0, _I64)

    @cached_property
    def has_prefixes(self) -> bool:
        """Whether any request carries prefix block ids (else prefix caching has nothing to match)."""
        return bool((self.prefix_key >= 0).any()) or self.block_offsets is not None

    @cached_property
    def chain_full(self) -> np.ndarray:
        """Per request: its whole context (prompt and output) is the prefix of its chain's next request
        (multi-turn conversations), so finished blocks are worth caching past the shared prefix."""
        return np.isin(self.stream, np.asarray(self.conversation_streams, dtype=self.stream.dtype))

    def to_frame(self) -> pd.DataFrame:
        """One row per request: the per-request columns (not the ragged hash ids) plus ``stream_name``."""
        return pd.DataFrame({
            "arrival_s": self.arrival_s, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "stream": self.stream,
            "stream_name": pd.Categorical.from_codes(self.stream.astype(np.int64), categories=self.stream_names),
            "difficulty": self.difficulty, "prefix_key": self.prefix_key, "prefix_tokens": self.prefix_tokens,
        })


@dataclass
class _Part:
    """One stream's rows before merging."""

    arrival: np.ndarray
    inp: np.ndarray
    out: np.ndarray
    difficulty: np.ndarray
    key: np.ndarray
    prefix_tokens: np.ndarray
    offsets: np.ndarray | None = None
    hashes: np.ndarray | None = None
    hash_block_tokens: int = 0
    generated_prefix: bool = False


def generate(workload: Workload, *, seed: int, duration_s: float, base_dir: Path = Path(".")) -> Requests:
    """Draw every stream's requests over [0, ``duration_s``) seconds and merge them by arrival time.

    ``base_dir`` resolves relative trace paths (the scenario file's directory). Raises ``ScenarioError``
    with the workload path for trace problems or inconsistent prefix block sizes.
    """
    if not duration_s > 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration_s must be positive and finite, got {duration_s}")
    streams = workload.streams
    if len(streams) > MAX_STREAMS:
        raise ScenarioError(f"at most {MAX_STREAMS} streams are supported, got {len(streams)}", path="workload.streams")
    share_sum = sum(s.share for s in streams if _uses_share(s))
    closed: list[tuple[int, int, float]] = []
    parts = [_stream(workload, si, s, seed, float(duration_s), Path(base_dir), share_sum, closed)
             for si, s in enumerate(streams)]

    block_tokens = 0  # tokens per trace hash id (generated prefixes are token counts, independent of it)
    traced = [si for si, p in enumerate(parts) if p.hashes is not None]
    if traced:
        t_blocks = {parts[si].hash_block_tokens for si in traced}
        if len(t_blocks) > 1:
            raise ScenarioError(f"trace streams hash prefixes in different block sizes {sorted(t_blocks)}",
                                path=f"workload.streams[{traced[-1]}].arrival.path")
        (block_tokens,) = t_blocks
    conv = tuple(i for i, st in enumerate(streams) if st.prefix is not None and st.prefix.kind == "conversation")
    return _merge(parts, block_tokens, tuple(s.name for s in streams), tuple(closed), conv)


def _scaled_arrival(a, k: float):
    """The arrival spec with every rate multiplied by ``k`` (a customer's ``rate_scale``)."""
    if k == 0.0 or a.kind == "closed_loop":
        return a
    if a.kind in ("poisson", "gamma", "constant"):
        return a if a.rate is None else a.model_copy(update={"rate": a.rate * k})
    if a.kind == "stages":
        return a.model_copy(update={"stages": [st.model_copy(update={"rate": st.rate * k}) for st in a.stages]})
    if a.kind == "diurnal":
        return a.model_copy(update={"peak_rate": a.peak_rate * k, "trough_rate": a.trough_rate * k})
    return a.model_copy(update={"rate_scale": a.rate_scale * k})  # trace


def _uses_share(s: Stream) -> bool:
    return s.arrival.kind in ("poisson", "gamma", "constant") and s.arrival.rate is None


def _stream(wl: Workload, si: int, s: Stream, seed: int, duration_s: float, base_dir: Path,
            share_sum: float, closed: list) -> _Part:
    a, where = s.arrival, f"workload.streams[{si}]"
    g_arr = rng(seed, "workload", s.name, "arrivals")
    src = trace = None
    k = wl.customer_scale(s)  # the stream's customer's rate multiplier (0: customer removed)
    if k != 1.0:
        a = _scaled_arrival(a, k)
    if k == 0.0:
        arrival = np.zeros(0)
    elif a.kind in ("poisson", "gamma", "constant"):
        rate = a.rate if a.rate is not None else (wl.rate or 0.0) * s.share / share_sum
        rate *= k if a.rate is None else 1.0
        if a.kind == "poisson":
            arrival = _renewal(g_arr, rate, duration_s, lambda n: g_arr.exponential(1.0 / rate, n))
        elif a.kind == "constant":
            arrival = np.arange(math.ceil(duration_s * rate)) / rate if rate > 0 else np.zeros(0)
            arrival = arrival[arrival < duration_s]
        else:
            k = 1.0 / a.cv**2
            arrival = _renewal(g_arr, rate, duration_s, lambda n: g_arr.gamma(k, 1.0 / (rate * k), n))
    elif a.kind == "stages":
        out, t0 = [], 0.0
        for st in a.stages:
            if t0 >= duration_s:
                break
            out.append(t0 + _poisson(g_arr, st.rate, min(t0 + st.duration, duration_s) - t0))
            t0 += st.duration
        arrival = np.concatenate(out)
    elif a.kind == "diurnal":
        cand = _poisson(g_arr, a.peak_rate, duration_s)
        lam = a.trough_rate + (a.peak_rate - a.trough_rate) * (1 + np.cos(2 * np.pi * (cand - a.peak_at) / a.period)) / 2
        arrival = cand[g_arr.random(len(cand)) * a.peak_rate < lam]
    elif a.kind == "closed_loop":
        n = a.requests or min(a.concurrency * CLOSED_LOOP_ROWS_PER_CLIENT, CLOSED_LOOP_MAX_ROWS)
        arrival = np.full(n, np.nan)
        closed.append((si, a.concurrency, float(a.think_time)))
    elif a.kind == "trace":
        trace = _load(a.path, base_dir, f"{where}.arrival.path")
        arrival, src = _replay(g_arr, trace, a, duration_s)
    else:  # pragma: no cover - the schema's discriminated union forbids it
        raise ScenarioError(f"unknown arrival kind '{a.kind}'", path=f"{where}.arrival")
    n = len(arrival)

    use_trace_len = trace is not None and a.use_lengths
    inp = trace.input_tokens[src] if use_trace_len else _lengths(s, "input_tokens", n, seed, base_dir, where)
    out = trace.output_tokens[src] if use_trace_len else _lengths(s, "output_tokens", n, seed, base_dir, where)
    difficulty = rng(seed, "workload", s.name, "difficulty").beta(*s.difficulty, n)
    part = _Part(arrival, inp, out, difficulty, np.full(n, -1, _I64), np.zeros(n, _I64))

    if trace is not None and a.use_prefixes and trace.block_offsets is not None:
        cap = None if a.use_lengths else -(-inp // trace.hash_block_tokens)  # ceil: blocks the prompt covers
        part.offsets, part.hashes = _gather(trace.block_offsets, trace.block_hashes, src, cap)
        part.prefix_tokens = np.minimum(np.diff(part.offsets) * trace.hash_block_tokens, inp)
        part.hash_block_tokens = trace.hash_block_tokens
    elif s.prefix is not None and n:
        part.generated_prefix = True
        _prefix(part, s, si, rng(seed, "workload", s.name, "prefix"), wl.prefix_block_tokens)
    return part


def _renewal(g: np.random.Generator, rate: float, span: float, draw) -> np.ndarray:
    """Arrival times in [0, span) of a renewal process with mean gap 1/rate (gaps from ``draw(n)``)."""
    if rate <= 0 or span <= 0:
        return np.zeros(0)
    mean = rate * span
    chunk = int(mean + 5 * math.sqrt(mean)) + 16
    out, t0 = [], 0.0
    while True:
        t = t0 + np.cumsum(draw(chunk))
        out.append(t)
        if t[-1] >= span:
            break
        t0 = float(t[-1])
    t = np.concatenate(out) if len(out) > 1 else out[0]
    return t[t < span]


def _poisson(g: np.random.Generator, rate: float, span: float) -> np.ndarray:
    return _renewal(g, rate, span, lambda n: g.exponential(1.0 / rate, n))


def _load(name: str, base_dir: Path, path: str) -> TraceData:
    p = resolve_trace(name, base_dir, path=path)
    try:
        return load_trace(p)
    except ScenarioError as exc:  # keep the trace file's row in the message, add the YAML path
        raise ScenarioError(str(exc), path=path) from None


def _replay(g: np.random.Generator, tr: TraceData, a, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Arrival times and source rows of a replayed trace.

    Order: drop rows before ``start`` (trace seconds) and shift; spread each arrival uniformly within
    [t, t + spread_ticks) (trace seconds); multiply by ``time_scale``; apply ``rate_scale`` (thin below 1;
    above 1, floor(r) copies plus one more with probability r - floor(r), every extra copy jittered by
    Uniform(0, mean gap)); sort; cut at ``duration_s``. A trace shorter than the duration is not looped.
    """
    t = tr.arrival_s
    keep = t >= a.start
    t, src = t[keep] - a.start, np.flatnonzero(keep)
    if a.spread_ticks > 0:
        t = t + g.uniform(0.0, a.spread_ticks, len(t))
    t = t * a.time_scale
    r = a.rate_scale
    if r < 1:
        m = g.random(len(t)) < r
        t, src = t[m], src[m]
    elif r > 1 and len(t):
        gap = (t.max() - t.min()) / (len(t) - 1) if len(t) > 1 else 0.0
        whole = math.floor(r)
        extra = (whole - 1) + (g.random(len(t)) < r - whole)
        rep = np.repeat(np.arange(len(t)), extra)
        t = np.concatenate([t, t[rep] + g.uniform(0.0, gap, len(rep))])
        src = np.concatenate([src, src[rep]])
    order = np.argsort(t, kind="stable")
    t, src = t[order], src[order]
    cut = t < duration_s
    return t[cut], src[cut]


def _lengths(s: Stream, field: str, n: int, seed: int, base_dir: Path, where: str) -> np.ndarray:
    """``n`` token counts (int64 >= 1) from the stream's ``input_tokens``/``output_tokens`` distribution."""
    d = getattr(s, field)
    if d is None:
        raise ScenarioError(f"needs {field} (the trace's lengths are not used: use_lengths is false)",
                            path=f"{where}.{field}")
    g = rng(seed, "workload", s.name, "input" if field == "input_tokens" else "output")
    if d.kind == "fixed":
        return np.full(n, d.value, _I64)
    if d.kind == "uniform":
        return g.integers(d.low, d.high + 1, n, dtype=_I64)
    if d.kind == "normal":
        return _round_clip(g.normal(d.mean, d.std, n), d.min, d.max)
    if d.kind == "lognormal":
        sigma = math.log(d.p99 / d.median) / _Z99
        return _round_clip(np.exp(g.normal(math.log(d.median), sigma, n)), d.min, d.max)
    if d.kind == "exponential":
        return _round_clip(g.geometric(1.0 / d.mean, n).astype(float), d.min, d.max)
    if d.kind == "empirical":
        tr = _load(d.trace, base_dir, f"{where}.{field}.trace")
        col = tr.input_tokens if d.column == "input" else tr.output_tokens
        return col[g.integers(0, len(col), n)]
    raise ScenarioError(f"unknown length kind '{d.kind}'", path=f"{where}.{field}")  # pragma: no cover


def _round_clip(x: np.ndarray, lo: int, hi: int | None) -> np.ndarray:
    return np.clip(np.rint(x), max(lo, 1), 1e15 if hi is None else hi).astype(_I64)


def _prefix(p: _Part, s: Stream, si: int, g: np.random.Generator, B: int) -> None:
    """Generated prefixes, in place on ``p``: chain keys and shared tokens (in multiples of ``B``).

    shared: with probability ``share`` a request joins group g (Zipf weights 1/(g+1)^zipf_s); the first
    ``tokens`` tokens of its prompt are the group's prefix, so the prompt must be longer than the prefix:
    a drawn input <= tokens becomes tokens + drawn (the prefix is part of the prompt, not added to it
    otherwise). prefix_tokens = tokens rounded down to a multiple of B.

    conversation: requests are dealt round robin (in arrival order) to ``sessions`` sessions; a session's
    conversation restarts with a fresh key after ``turns`` turns. A turn's input = the previous turn's input
    + its output + the newly drawn input; prefix_tokens = previous input + previous output, rounded down to B.
    """
    pre, n = s.prefix, len(p.arrival)
    base = si << KEY_STREAM_SHIFT
    if pre.kind == "shared":
        has = g.random(n) < pre.share
        w = 1.0 / np.arange(1, pre.groups + 1, dtype=np.float64) ** pre.zipf_s
        grp = g.choice(pre.groups, size=n, p=w / w.sum())
        p.inp = np.where(has & (p.inp <= pre.tokens), pre.tokens + p.inp, p.inp)
        p.key = np.where(has, base | grp, -1).astype(_I64)
        p.prefix_tokens = np.where(has, np.minimum(pre.tokens, p.inp - 1) // B * B, 0).astype(_I64)
    else:
        j = np.arange(n, dtype=_I64)
        sess, m = j % pre.sessions, j // pre.sessions
        inst = (m // pre.turns) * pre.sessions + sess
        order = np.argsort(inst, kind="stable")  # each instance's turns, in arrival order
        inst_s = inst[order]
        x = (p.inp + p.out)[order]
        before = np.concatenate([[0], np.cumsum(x)[:-1]])  # tokens of all earlier rows (sorted order)
        first = np.flatnonzero(np.concatenate([[True], inst_s[1:] != inst_s[:-1]]))
        start = np.repeat(first, np.diff(np.append(first, n)))
        ctx = np.empty(n, _I64)
        ctx[order] = before - before[start]
        p.inp = p.inp + ctx
        p.key = (base | inst).astype(_I64)
        p.prefix_tokens = ctx // B * B


def _gather(offsets: np.ndarray, hashes: np.ndarray, rows: np.ndarray,
            cap: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ragged rows ``rows`` of (offsets, hashes) → new (offsets, hashes); at most ``cap[i]`` ids per row."""
    lo = offsets[rows]
    ln = offsets[rows + 1] - lo
    if cap is not None:
        ln = np.minimum(ln, cap)
    off = np.zeros(len(rows) + 1, _I64)
    np.cumsum(ln, out=off[1:])
    pos = np.repeat(lo - off[:-1], ln) + np.arange(off[-1], dtype=_I64)
    return off, hashes[pos]


def _merge(parts: list[_Part], block_tokens: int, names: tuple[str, ...], closed: tuple,
           conversation_streams: tuple[int, ...] = ()) -> Requests:
    def cat(field: str, dtype) -> np.ndarray:
        arrays = [getattr(p, field) for p in parts]
        return (np.concatenate(arrays) if len(arrays) > 1 else arrays[0]).astype(dtype, copy=False)

    arrival = cat("arrival", np.float64)
    stream = np.concatenate([np.full(len(p.arrival), si, np.int16) for si, p in enumerate(parts)])
    cols = [arrival, cat("inp", _I64), cat("out", _I64), stream, cat("difficulty", np.float64),
            cat("key", _I64), cat("prefix_tokens", _I64)]
    order = None
    if not (arrival[1:] >= arrival[:-1]).all():  # already sorted (one open-loop stream): no gather needed
        order = np.argsort(arrival, kind="stable")  # NaN (closed loop) sorts last
        cols = [c[order] for c in cols]
    offsets = hashes = None
    if any(p.hashes is not None for p in parts):
        lens = np.concatenate([np.diff(p.offsets) if p.hashes is not None else np.zeros(len(p.arrival), _I64)
                               for p in parts])
        all_off = np.zeros(len(lens) + 1, _I64)
        np.cumsum(lens, out=all_off[1:])
        all_hash = np.concatenate([p.hashes for p in parts if p.hashes is not None]).astype(_I64)
        offsets, hashes = (all_off, all_hash) if order is None else _gather(all_off, all_hash, order)
    for c in (*cols, offsets, hashes):
        if c is not None:
            c.setflags(write=False)
    return Requests(*cols, offsets, hashes, block_tokens, names, closed, conversation_streams)
