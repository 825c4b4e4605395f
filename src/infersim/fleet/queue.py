"""A deployment's FIFO queue of requests waiting for a replica, with an optional timeout (mechanism).

Expired entries are deleted lazily: a request that times out is handed to ``on_expire`` at once and its
queue entry is skipped when it reaches the head. A request may wait more than once (a retry after a replica
failure); each wait is its own ticket, so an old timer never expires a newer wait.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class TimedQueue:
    """Request ids in arrival order; ``len`` counts those still waiting."""

    def __init__(self, env, timeout_s: float | None, on_expire: Callable[[int], None]):
        self.env, self.timeout_s, self.on_expire = env, timeout_s, on_expire
        self._q: deque[tuple[int, int]] = deque()  # (rid, ticket), expired ones included until popped
        self.live: dict[int, int] = {}  # rid -> ticket of its current wait (``len`` of it: ``len`` of the queue)
        self._seq = 0

    def __len__(self) -> int:
        return len(self.live)

    def push(self, rid: int) -> None:
        """``rid`` joins the tail; ``timeout_s`` later it is expired if it is still waiting."""
        self._seq += 1
        t = self._seq
        self._q.append((rid, t))
        self.live[rid] = t
        if self.timeout_s is not None:
            self.env.timeout(self.timeout_s).callbacks.append(lambda _e: self._expire(rid, t))

    def _expire(self, rid: int, ticket: int) -> None:
        if self.live.get(rid) == ticket:
            del self.live[rid]
            self.on_expire(rid)

    def pop(self) -> int:
        """The oldest request still waiting (the queue must not be empty)."""
        while True:
            rid, t = self._q.popleft()
            if self.live.get(rid) == t:
                del self.live[rid]
                return rid

    def ids(self) -> list[int]:
        """Requests still waiting, oldest first."""
        return [rid for rid, t in self._q if self.live.get(rid) == t]
