"""The platforms of one run in parallel: each platform on a worker of a sweep executor (local processes, Dask).

A scenario's platforms share nothing but the workload, which is a pure function of the scenario's
workload block, seed and duration. So a platform can run anywhere: the worker draws the same workload,
simulates its one platform and returns the ``PlatformRun``; ``simulate`` then builds the results exactly
as after a serial run (``tests/test_parallel_platforms.py`` checks the tables are identical).

``platforms_runner(kind, ...)`` makes the callable ``results.simulate`` takes (``platforms_runner=``):

- ``local``: the sweeps' ``LocalExecutor`` (one process per platform, at most the machine's cores), used
  only when it pays: more than one platform, more than one core and at least ``LOCAL_MIN_REQUESTS``
  requests (below that, starting the processes and drawing the workload again in each costs more than the
  platforms take);
- ``dask``: the sweeps' ``DaskExecutor`` (a scheduler address, or a local cluster), always;
- ``serial``: this process, one platform after the other.

In a run above ``infersim.workload.footprint.SPILL_MIN_ROWS`` rows ``simulate`` passes ``staging`` (a directory)
and ``consume``: a local worker then makes its platform's results itself and writes its requests rows to a
Parquet part in ``staging`` (the same file system), returning only the small ``PlatformPart``; a Dask worker
(maybe on another machine) returns its ``PlatformRun``, which ``consume`` turns into a part here as soon as it
arrives, so the parent never holds more than one platform's rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from infersim.core.errors import InfersimError
from infersim.scenario.schema import Scenario
from infersim.sweep.execute import make_executor

#: below this many requests a run's platforms stay in this process (ASSUMPTION: measured on a 2-core machine,
#: a worker process's start and its own draw of the workload cost ~1-2 s, what ~50,000 requests take)
LOCAL_MIN_REQUESTS = 50_000


@dataclass(frozen=True)
class PlatformTask:
    """Platform ``index`` of ``scenario`` (seed and duration applied), as a unit for an executor."""

    key: str
    index: int
    scenario: Scenario
    base_dir: str
    timeline_points: int
    staging: str | None = None  # write the platform's requests rows here and return its PlatformPart


def simulate_platform(task: PlatformTask):
    """In a worker: draw the scenario's workload and simulate its platform ``task.index``; its ``PlatformRun``."""
    from infersim.results.simulate import simulate_platforms
    from infersim.scenario.loader import scenario_catalog
    from infersim.workload.generate import generate

    sc = task.scenario
    base = Path(task.base_dir)
    one = sc.model_copy(update={"platforms": [sc.platforms[task.index]]})
    catalog = scenario_catalog(one, base)
    reqs = generate(sc.workload, seed=sc.seed, duration_s=sc.duration, base_dir=base)
    run = simulate_platforms(one, reqs, catalog, timeline_points=task.timeline_points)[0]
    if task.staging is None:
        return run
    import gc

    from infersim.results.simulate import part_name
    from infersim.results.tables import platform_part

    gc.collect()  # the engine is garbage in reference cycles: gone before the table is built
    part = platform_part(sc, reqs, run, spill_to=Path(task.staging) / part_name(task.index))
    del run, reqs
    gc.collect()  # a pool worker may run the next platform in this process
    return part


def platforms_runner(kind: str = "local", *, workers: int | None = None, scheduler: str | None = None):
    """A ``platforms_runner`` for ``results.simulate`` on the executor ``kind`` (``local``, ``dask``, ``serial``)."""
    if kind == "serial":
        return None

    def run(sc: Scenario, base_dir: str, timeline_points: int, n_requests: int, *, staging: str | None = None,
            consume=None):
        n = len(sc.platforms)
        if kind == "local":
            cores = os.cpu_count() or 1
            if n < 2 or cores < 2 or n_requests < LOCAL_MIN_REQUESTS:
                return None
            executor = make_executor("local", workers=min(n, workers or cores))
        else:
            executor = make_executor(kind, workers=workers, scheduler=scheduler)
        if hasattr(executor, "start"):
            executor.start()
        local_parts = staging if kind == "local" else None  # a Dask worker may not see this file system
        tasks = [PlatformTask(p.name, i, sc, base_dir, timeline_points, local_parts)
                 for i, p in enumerate(sc.platforms)]
        runs: list = [None] * n
        try:
            for task, rec in executor.map(simulate_platform, tasks):
                if rec["status"] != "ok":
                    raise InfersimError(f"platform '{task.key}' failed on a {kind} worker: {rec['error']}")
                runs[task.index] = rec["rows"] if consume is None else consume(task.index, rec["rows"])
                del rec
        finally:
            if hasattr(executor, "close"):
                executor.close()
        return runs

    return run
