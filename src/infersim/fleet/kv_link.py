"""A KV-transfer link shared by concurrent transfers (mechanism, on the SimPy clock).

Each transfer first pays the link's fixed ``latency_s`` (``perf.kv_link``), then its bytes flow; the
transfers flowing at once share the bandwidth equally (processor sharing, as concurrent RDMA writes share a
NIC), and at most ``max_concurrent`` flow at once: the rest queue in FIFO order. Exact event arithmetic: the
remaining bytes of every flowing transfer are advanced at each join or departure, and one timer waits for
the next completion, so an idle link moves ``n`` bytes in exactly ``latency_s + n / bandwidth``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from infersim.perf.kv_link import KvLink

_EPS_BYTES = 1e-6


class SharedLink:
    """``start(nbytes, done)`` moves ``nbytes`` and calls ``done()`` when they have arrived."""

    def __init__(self, env, link: KvLink, max_concurrent: int | None = None):
        self.env, self.link = env, link
        self.rate = link.bandwidth_gb_per_s * 1e9  # bytes/s, shared by the flowing transfers
        self.max_concurrent = max_concurrent
        self.flowing: dict[int, list] = {}  # id -> [bytes left, done]
        self.waiting: deque[tuple[int, float, Callable[[], None]]] = deque()
        self.last_t = 0.0
        self.gen = 0
        self.next_id = 0
        self.bytes_started = 0.0
        self.bytes_done = 0.0
        self.transfers_done = 0
        self.busy_s = 0.0  # seconds with at least one transfer flowing
        self.peak_flowing = 0

    def start(self, nbytes: float, done: Callable[[], None]) -> None:
        tid = self.next_id
        self.next_id += 1
        self.bytes_started += nbytes
        lat = self.link.latency_s
        if lat > 0:
            self.env.timeout(lat).callbacks.append(lambda _e: self._arrive(tid, nbytes, done))
        else:
            self._arrive(tid, nbytes, done)

    @property
    def in_use(self) -> int:
        """Transfers flowing or queued on the link (latency phase excluded)."""
        return len(self.flowing) + len(self.waiting)

    def _arrive(self, tid: int, nbytes: float, done) -> None:
        if math.isinf(self.rate) or nbytes <= _EPS_BYTES:
            self._finish(nbytes, done)
            return
        if self.max_concurrent is not None and len(self.flowing) >= self.max_concurrent:
            self.waiting.append((tid, nbytes, done))
            return
        self._advance()
        self.flowing[tid] = [nbytes, done]
        self.peak_flowing = max(self.peak_flowing, len(self.flowing))
        self._schedule()

    def _advance(self) -> None:
        now = self.env.now
        dt = now - self.last_t
        if self.flowing and dt > 0:
            each = dt * self.rate / len(self.flowing)
            for entry in self.flowing.values():
                entry[0] -= each
            self.busy_s += dt
        self.last_t = now

    def _schedule(self) -> None:
        self.gen += 1
        if not self.flowing:
            return
        gen = self.gen
        left = min(e[0] for e in self.flowing.values())
        dt = max(left, 0.0) * len(self.flowing) / self.rate
        self.env.timeout(dt).callbacks.append(lambda _e: self._tick(gen))

    def _tick(self, gen: int) -> None:
        if gen != self.gen:
            return  # superseded by a join or departure
        self._advance()
        smallest = min(e[0] for e in self.flowing.values())
        finished = [tid for tid, e in self.flowing.items() if e[0] <= max(_EPS_BYTES, smallest + _EPS_BYTES)]
        dones = []
        for tid in finished:
            _, done = self.flowing.pop(tid)
            dones.append(done)
        while self.waiting and (self.max_concurrent is None or len(self.flowing) < self.max_concurrent):
            tid, nbytes, done = self.waiting.popleft()
            self.flowing[tid] = [nbytes, done]
        self._schedule()
        for done in dones:
            self._finish(None, done)

    def _finish(self, nbytes, done) -> None:
        self.transfers_done += 1
        done()

    def account(self, nbytes: float) -> None:
        """Count ``nbytes`` as delivered (called by the owner for each finished transfer)."""
        self.bytes_done += nbytes
