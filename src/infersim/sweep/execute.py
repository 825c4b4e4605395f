"""Running sweep units: one simulation per point x replication, on this process, local processes or Dask.

An executor's ``map(fn, tasks)`` yields ``(task, record)`` pairs as units finish (in any order). ``record`` is
the dict made by ``run_guarded``: ``status`` ``ok`` with the platform rows, or ``failed`` with the error message
(an exception in the unit, or a lost worker). Interrupts (``KeyboardInterrupt``) are never recorded: they
propagate, and the executor cancels what has not started and shuts its workers down.

Results do not depend on the executor: a unit is a pure function of its scenario and seed.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from infersim.scenario.schema import Scenario

__all__ = ["DaskExecutor", "LocalExecutor", "SerialExecutor", "Task", "make_executor", "run_guarded",
           "simulate_unit", "summary_rows"]

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Task:
    """One unit to run: the point's validated ``scenario`` with ``seed``; ``key`` as in ``plan.Unit``."""

    key: str
    point: int
    replication: int
    seed: int
    scenario: Scenario
    base_dir: str


def summary_rows(summary: pd.DataFrame) -> list[dict[str, Any]]:
    """``Results.summary`` as ``[{"platform": name, <numeric column>: float|int, ...}]`` (booleans and text dropped)."""
    cols = [c for c in summary.columns if c != "platform" and pd.api.types.is_numeric_dtype(summary[c])
            and not pd.api.types.is_bool_dtype(summary[c])]
    rows = []
    for rec in summary[["platform", *cols]].to_dict(orient="records"):
        row: dict[str, Any] = {"platform": str(rec.pop("platform"))}
        for c, v in rec.items():
            row[c] = int(v) if isinstance(v, int | np.integer) else float(v)
        rows.append(row)
    return rows


def simulate_unit(task: Task) -> list[dict[str, Any]]:
    """Simulate ``task.scenario`` with ``task.seed``; the summary's numeric columns, a dict per platform."""
    from infersim.results.simulate import simulate

    res = simulate(task.scenario, seed=task.seed, base_dir=task.base_dir)
    return summary_rows(res.summary)


def run_guarded(fn: Callable[[Task], list[dict]], task: Task) -> dict[str, Any]:
    """``fn(task)`` as a record; an ``Exception`` becomes ``status: failed`` with its message (not an interrupt).

    ``wall_s``/``cpu_s``: the unit's wall-clock and CPU seconds in its worker (kept in the part file only).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        rows = fn(task)
    except Exception as exc:  # a failing point is recorded and the sweep goes on
        return failed_record(task, exc, time.perf_counter() - t0)
    return {"key": task.key, "status": "ok", "error": "", "rows": rows, "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0}


def failed_record(task: Task, exc: BaseException, wall_s: float = math.nan) -> dict[str, Any]:
    msg = f"{type(exc).__name__}: {exc}".strip()
    if len(msg) > MAX_ERROR_CHARS:
        msg = msg[:MAX_ERROR_CHARS] + "..."
    return {"key": task.key, "status": "failed", "error": msg, "rows": [], "wall_s": wall_s}


class SerialExecutor:
    """Runs units one after another in this process (tests, debugging, profiling)."""

    workers = 1

    def map(self, fn, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict]]:
        for t in tasks:
            yield t, run_guarded(fn, t)


def watch_lifeline(lifeline) -> None:
    """Worker initializer: exit as soon as the sweep's own process is gone, however it died.

    ``lifeline`` is the read end of a pipe whose only write end the sweep process holds and never writes
    to; reading it blocks until that end closes, which the kernel does when the process exits, SIGKILL
    included. Workers of a forkserver pool are the fork server's children, not the sweep's, so without this
    they would live on as orphans, each finishing (or hanging in) its unit."""
    import threading

    def watch() -> None:
        try:
            lifeline.recv_bytes()
        except (EOFError, OSError):
            pass
        os._exit(1)  # no cleanup to do: parts are written by the sweep process, atomically

    threading.Thread(target=watch, name="infersim-lifeline", daemon=True).start()


class LocalExecutor:
    """A pool of ``workers`` local processes (default: every core), started from a fork server.

    At most ``4 x workers`` units are queued at a time, so a sweep of a million points does not hold a
    million futures. A worker that dies (out of memory, killed) breaks the pool: the units that were in
    flight are recorded as failed and the sweep stops with an InfersimError; re-running resumes (failed
    units run again).
    """

    def __init__(self, workers: int | None = None):
        self.workers = int(workers or os.cpu_count() or 1)

    def map(self, fn, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict]]:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["infersim.results.simulate", "infersim.sweep.execute"])
        lifeline_r, lifeline_w = ctx.Pipe(duplex=False)  # workers exit when this process dies (watch_lifeline)
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=watch_lifeline,
                                   initargs=(lifeline_r,))
        it, pending = iter(tasks), {}
        window = 4 * self.workers

        broken: BaseException | None = None

        def submit(t: Task) -> None:
            nonlocal broken
            try:
                pending[pool.submit(run_guarded, fn, t)] = t
            except BrokenProcessPool as exc:
                broken = exc

        try:
            for t in it:
                submit(t)
                if len(pending) >= window or broken:
                    break
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    t = pending.pop(fut)
                    try:
                        rec = fut.result()
                    except BrokenProcessPool as exc:  # a worker died: record what was in flight, then stop
                        broken, rec = exc, failed_record(t, exc)
                    except Exception as exc:  # e.g. the task or its result could not be pickled
                        rec = failed_record(t, exc)
                    yield t, rec
                    nxt = None if broken else next(it, None)
                    if nxt is not None:
                        submit(nxt)
            if broken is not None:
                from infersim.core.errors import InfersimError

                raise InfersimError(f"the local worker processes stopped ({broken}); finished runs are saved: "
                                    "re-run the same command to resume")
        finally:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            lifeline_w.close()
            lifeline_r.close()


class DaskExecutor:
    """Units as tasks on a Dask distributed cluster: the scheduler at ``address``, or a ``LocalCluster`` of
    ``workers`` single-threaded workers (processes, or threads when ``processes=False``) started and stopped here.

    Workers need the same infersim installed (``pip install 'infersim[dask]'``).
    """

    def __init__(self, address: str | None = None, workers: int | None = None, processes: bool = True):
        self.address, self.processes = address, processes
        self.workers = int(workers or os.cpu_count() or 1)
        self.client: Any = None
        self.cluster: Any = None

    def start(self) -> None:
        """Connect to the scheduler (or start the LocalCluster); raises InfersimError when it cannot."""
        from infersim.core.errors import InfersimError

        if self.client is not None:
            return
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise InfersimError("--executor dask needs dask.distributed: pip install 'infersim[dask]'") from None
        if self.address:
            try:
                self.client = Client(self.address, timeout="20s")
            except OSError as exc:
                raise InfersimError(f"--scheduler {self.address}: cannot connect ({exc})") from None
        else:
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=self.processes,
                                        dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def map(self, fn, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict]]:
        from distributed import as_completed

        self.start()
        client = self.client
        it, pending = iter(tasks), {}
        window = max(16, 4 * sum(client.nthreads().values()))
        queue = as_completed()

        def submit(t: Task) -> None:
            fut = client.submit(run_guarded, fn, t, pure=False)
            pending[fut.key] = (fut, t)
            queue.add(fut)

        try:
            for t in it:
                submit(t)
                if len(pending) >= window:
                    break
            for fut in queue:
                _, t = pending.pop(fut.key)
                try:
                    rec = fut.result()
                except Exception as exc:  # KilledWorker, lost connection, unpicklable result
                    rec = failed_record(t, exc)
                yield t, rec
                nxt = next(it, None)
                if nxt is not None:
                    submit(nxt)
        finally:
            if pending:
                client.cancel([f for f, _ in pending.values()])
            self.close()


def make_executor(kind: str = "local", *, workers: int | None = None, scheduler: str | None = None):
    """``local`` (processes; one worker runs in a pool too), ``dask`` (``scheduler`` address or a LocalCluster),
    or ``serial`` (this process)."""
    if kind == "serial":
        return SerialExecutor()
    if kind == "dask":
        return DaskExecutor(scheduler, workers)
    return LocalExecutor(workers)
