"""How many requests a workload implies, and the memory they need, before anything is drawn.

A scenario asking for ``rate: 1e12/s`` would otherwise die deep inside numpy with a MemoryError (146 TiB); this
is checked up front by ``infersim.validate`` against the memory the machine has available.

The estimate is a floor, not a forecast: the bytes per request are what the columnar records themselves take
(measured on this code base, see the constants), so a scenario refused here cannot fit however the simulation
runs; one allowed may still need a few times more at its peak (the engine's own per-request state). A run
above ``SPILL_MIN_ROWS`` rows (platforms x requests) keeps its requests table on disk
and one platform's records in memory at a time, so its floor counts one platform's: a Cursor-scale hour
(about 17 M requests over five platforms) needs about 3.8 GB by this floor (16 GB if every platform's records
were held) and stays allowed on a machine with that much available.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from infersim.scenario.workload import Workload
from infersim.workload.generate import CLOSED_LOOP_MAX_ROWS, CLOSED_LOOP_ROWS_PER_CLIENT
from infersim.workload.traces import load_trace, resolve_trace

#: ASSUMPTION: a run whose requests table would hold more rows than this (platforms x requests) keeps it on
#: disk instead of in memory. Measured on this code base: the table takes 87 B/row in memory, and building
#: every platform's and concatenating them needs about twice that at once (~0.7 GB at 4 M rows); the whole
#: in-memory run of 6.9 M rows (cursor.yaml at half Cursor Tab's volume, 10 min) peaked at 3.2 GB in the
#: parent, and a Cursor-scale hour (5 x 16.6 M rows) would need tens of GB. Above the threshold each platform's
#: rows go to a Parquet part as soon as it finished (``infersim.results.tables.platform_part``) and
#: ``Results.save`` streams the parts into ``requests.parquet``: no process holds more than one platform's
#: rows (that run peaked at 1.4 GB). Below it the table stays in memory exactly as before (no disk round trip).
SPILL_MIN_ROWS = 4_000_000
#: Bytes per request of the drawn workload (``generate.Requests``: arrival, lengths, stream, difficulty,
#: prefix key and blocks), measured: 50.0 B/request on 60 k requests with and without shared prefixes.
WORKLOAD_BYTES_PER_REQUEST = 50
#: Bytes per request per platform of its results: the requests table measured at 87 B/request/platform
#: (``Results.requests.memory_usage(deep=True)``, 120 k requests), plus the recorder's arrays it is built from
#: (the same columns, held until the table is made): 2 x 87.
RECORD_BYTES_PER_REQUEST = 174


@dataclass(frozen=True)
class Footprint:
    requests: int  # requests the workload implies over the duration (expected value; traces: rows kept)
    platforms: int
    bytes: int  # the floor described in the module doc
    biggest_path: str  # YAML path of the stream that implies the most requests
    biggest_requests: int


def stream_requests(wl: Workload, duration_s: float, base_dir: Path) -> list[tuple[str, float]]:
    """(YAML path, expected requests) per stream over ``duration_s``, without drawing any."""
    share_sum = sum(s.share for s in wl.streams if s.arrival.kind in ("poisson", "gamma", "constant")
                    and s.arrival.rate is None)
    out: list[tuple[str, float]] = []
    for i, s in enumerate(wl.streams):
        a, where = s.arrival, f"workload.streams[{i}].arrival"
        if a.kind in ("poisson", "gamma", "constant"):
            if a.rate is not None:
                out.append((f"{where}.rate", a.rate * duration_s))
            else:
                out.append(("workload.rate", (wl.rate or 0.0) * s.share / (share_sum or 1.0) * duration_s))
        elif a.kind == "stages":
            n, t0 = 0.0, 0.0
            for st in a.stages:
                n += st.rate * max(0.0, min(st.duration, duration_s - t0))
                t0 += st.duration
            out.append((f"{where}.stages", n))
        elif a.kind == "diurnal":  # candidates are drawn at the peak rate, then thinned
            out.append((f"{where}.peak_rate", a.peak_rate * duration_s))
        elif a.kind == "closed_loop":
            out.append((f"{where}.concurrency",
                        float(a.requests or min(a.concurrency * CLOSED_LOOP_ROWS_PER_CLIENT, CLOSED_LOOP_MAX_ROWS))))
        elif a.kind == "trace":
            tr = load_trace(resolve_trace(a.path, base_dir, path=f"{where}.path"))
            out.append((f"{where}.rate_scale", len(tr.arrival_s) * max(1.0, math.ceil(a.rate_scale))))
        else:  # pragma: no cover - the schema's discriminated union forbids it
            out.append((where, 0.0))
    return out


def footprint(wl: Workload, duration_s: float, platforms: int, base_dir: Path = Path(".")) -> Footprint:
    per = stream_requests(wl, duration_s, base_dir)
    n = sum(x for _, x in per)
    path, big = max(per, key=lambda p: p[1]) if per else ("workload.streams", 0.0)
    held = 1 if n * platforms > SPILL_MIN_ROWS else max(1, platforms)  # platforms' records held at once
    need = n * (WORKLOAD_BYTES_PER_REQUEST + held * RECORD_BYTES_PER_REQUEST)
    cap = float(2**62)  # keep the numbers printable when a rate is absurd (1e300/s)
    return Footprint(int(min(n, cap)), platforms, int(min(need, cap)), path, int(min(big, cap)))


def available_memory_bytes() -> int | None:
    """Memory this machine can give a new process now: Linux's ``MemAvailable``, else free physical pages;
    None where neither is known (then only the request count is reported, nothing is refused)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None
