"""Run a scenario: draw the workload once, then simulate every platform against it.

Each platform gets its own SimPy environment and the identical request stream (common random numbers);
a platform added to a scenario changes no other platform's results. ``SIMULATORS`` maps a platform's
``kind`` to the function that simulates it; each returns a ``PlatformRun``.

Because platforms share nothing but the workload, ``simulate(..., platforms_runner=f)`` may hand them to
other processes: ``f(scenario, base_dir, timeline_points, n_requests)`` returns the ``PlatformRun`` of every
platform in order (each worker draws the same workload from the scenario's seed), or None to run them
here. ``infersim.sweep.platforms`` provides such runners on local processes and Dask.

A run whose requests table would exceed ``infersim.workload.footprint.SPILL_MIN_ROWS`` rows (platforms x
requests) never holds it whole: each platform's results are made as soon as it finished (in this process
after each platform, or in the worker) and its requests rows written to a Parquet part in a staging
directory (under ``spill_dir``, default the system's temporary directory), which ``Results.save`` streams
into ``requests.parquet``. The runner is then called with ``staging=`` (the directory) and ``consume=`` (a
function ``(index, PlatformRun) -> PlatformPart`` for runs that come back whole), and may return parts.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
from pathlib import Path

from infersim.core.errors import InfersimError
from infersim.platforms.disaggregated import simulate_disaggregated
from infersim.platforms.gpu_fleet import simulate_gpu_fleet
from infersim.platforms.platform_run import PlatformRun
from infersim.platforms.sram import simulate_sram
from infersim.platforms.token_api import simulate_token_api
from infersim.scenario.loader import scenario_catalog
from infersim.scenario.schema import Scenario
from infersim.workload.generate import generate

__all__ = ["SIMULATORS", "PlatformRun", "simulate", "simulate_platforms"]

COLLECT_MIN_REQUESTS = 100_000  # workloads from this size collect garbage before building the results

SIMULATORS = {"gpu_fleet": simulate_gpu_fleet, "lpu": simulate_sram, "wafer": simulate_sram,
              "token_api": simulate_token_api, "disaggregated": simulate_disaggregated}


def simulate(scenario: Scenario, *, seed: int | None = None, duration_s: float | None = None,
             base_dir: Path | str | None = None, progress: bool = False, timeline_points: int = 600,
             platforms_runner=None, spill_dir: Path | str | None = None):
    """Simulate every platform of ``scenario`` against one workload. Returns ``Results``.

    ``spill_dir``: where a large run stages its requests rows (see the module doc); a directory on the
    file system of the output keeps ``Results.save`` to a rename-free stream of the parts."""
    from infersim.results.tables import RequestColumns, Results
    from infersim.workload import footprint

    sc = scenario
    base = Path(base_dir if base_dir is not None else scenario.base_dir)
    if duration_s is not None and not sc.warmup < duration_s:
        raise InfersimError(f"--duration: {duration_s:g}s must be longer than the scenario's warm-up "
                            f"({sc.warmup:g}s), which is excluded from the statistics")
    if seed is not None and seed < 0:
        raise InfersimError(f"--seed: expected a non-negative integer, got {seed}")
    if seed is not None or duration_s is not None:
        sc = sc.model_copy(update={k: v for k, v in (("seed", seed), ("duration", duration_s)) if v is not None})
    catalog = scenario_catalog(sc, base)
    reqs = generate(sc.workload, seed=sc.seed, duration_s=sc.duration, base_dir=base)
    if len(reqs) * len(sc.platforms) > footprint.SPILL_MIN_ROWS:
        return _simulate_spilled(sc, reqs, catalog, base, timeline_points, progress, platforms_runner, spill_dir)
    runs = None
    if platforms_runner is not None and len(sc.platforms) > 1:
        runs = platforms_runner(sc, str(base), timeline_points, len(reqs))
    if runs is None:
        runs = simulate_platforms(sc, reqs, catalog, timeline_points=timeline_points, progress=progress)
    # Free what the requests table does not need before building it: the workload's other columns
    # (difficulty, prefix keys, int64 token counts) and the platforms' engines, which are garbage in
    # reference cycles (SimPy processes) until a collection. A full collection costs ~0.07 s in a process
    # with pandas and matplotlib loaded, more than a small run (a sweep's point) takes: only large runs,
    # where the memory is, pay for it.
    reqs = RequestColumns.of(reqs)
    if len(reqs) >= COLLECT_MIN_REQUESTS:
        gc.collect()
    return Results.build(sc, reqs, runs)


def _simulate_spilled(sc, reqs, catalog, base: Path, timeline_points: int, progress: bool, platforms_runner,
                      spill_dir):
    """``simulate`` for a run above ``SPILL_MIN_ROWS`` (its ``Results``): one platform's requests rows in
    memory at a time."""
    from infersim.results.tables import RequestColumns, Results, platform_part

    if spill_dir is not None:
        Path(spill_dir).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".infersim-requests-", dir=spill_dir))
    try:
        cols = RequestColumns.of(reqs)

        def consume(i: int, run):
            if not isinstance(run, PlatformRun):  # made in the worker already
                return run
            gc.collect()  # the platform's engine is garbage in reference cycles: gone before its table
            return platform_part(sc, cols, run, spill_to=staging / part_name(i))

        parts = None
        if platforms_runner is not None and len(sc.platforms) > 1:
            parts = platforms_runner(sc, str(base), timeline_points, len(reqs), staging=str(staging),
                                     consume=consume)
            if parts is not None:
                parts = [consume(i, p) for i, p in enumerate(parts)]
        if parts is None:
            parts = simulate_platforms(sc, reqs, catalog, timeline_points=timeline_points, progress=progress,
                                       consume=consume)
        n = len(reqs)
        del reqs
        return Results.assemble(sc, n, parts, staging=staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def part_name(i: int) -> str:
    """The file name of platform ``i``'s requests part in a staging directory."""
    return f"requests-{i:04d}.parquet"


def simulate_platforms(sc: Scenario, reqs, catalog, *, timeline_points: int = 600, progress: bool = False,
                       consume=None) -> list:
    """The ``PlatformRun`` of every platform of ``sc`` (seed and duration already applied) on ``reqs``.

    ``consume(index, run)``: called on each run as soon as it finished, its result kept instead of the run
    (then garbage is collected, so that one platform's engine is gone before the next starts)."""
    horizon = sc.duration + sc.drain
    dt = max(sc.duration / timeline_points, 0.05)
    runs = []
    bar = _progress_bar(progress, len(sc.platforms), horizon)
    for plat in sc.platforms:
        cb = None
        if bar is not None:
            task = bar.add_task(plat.name, total=horizon)
            def cb(t, task=task):
                bar.update(task, completed=min(t, horizon))
        run = SIMULATORS[plat.kind](sc, plat, reqs, catalog, seed=sc.seed, horizon_s=horizon, timeline_dt=dt,
                                    progress=cb)
        if consume is not None:
            run = consume(len(runs), run)
            gc.collect()
        runs.append(run)
        del run
        if bar is not None:
            bar.update(task, completed=horizon)
    if bar is not None:
        bar.stop()
    return runs


def _progress_bar(enabled: bool, n: int, horizon: float):
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.completed:.0f}/{task.total:.0f} simulated s"), TimeElapsedColumn(),
                   transient=True)
    bar.start()
    return bar
