"""The sweep loop: skip finished units, run the rest on an executor, persist each as it finishes, build tables.

Resume: units are keyed by the point's values and the seed (``plan.unit_key``). A unit whose part file says
``ok`` is never run again; a ``failed`` one runs again (its failure may have been a lost worker). Points that
share values (random sampling among listed values can draw a point twice) share their units.
On ``KeyboardInterrupt`` the tables are assembled from what finished and the interrupt propagates.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from infersim.sweep.execute import SerialExecutor, Task, simulate_unit
from infersim.sweep.plan import SweepPlan
from infersim.sweep.results import PartStore, write_tables

__all__ = ["SweepOutcome", "run_sweep"]


@dataclass
class SweepOutcome:
    """Counts are point x replication units: ``skipped`` were finished by an earlier run, ``ran`` in this one."""

    out: Path
    units: int
    skipped: int
    ran: int
    failed: int
    wall_s: float
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)  # the first few failure messages


def run_sweep(plan: SweepPlan, out: str | Path, *, executor=None, fn=simulate_unit,
              progress: bool = False) -> SweepOutcome:
    """Run ``plan`` into ``out`` (see module doc). ``fn(task) -> rows`` is the unit function (default: simulate).

    ``executor`` defaults to running in this process. Writes ``out/parts/*.json`` as units finish and the
    tables at the end; raises InfersimError before running anything when ``out`` holds another sweep.
    """
    t0 = time.perf_counter()
    executor = executor or SerialExecutor()
    store = PartStore(out)
    if hasattr(executor, "start"):  # connect to a cluster before writing anything: a bad address writes nothing
        executor.start()
    try:
        store.claim(plan)
    except BaseException:
        if hasattr(executor, "close"):
            executor.close()
        raise
    records = store.load()
    units = plan.units()
    points = {pt.index: pt for pt in plan.points}
    todo: list[Task] = []
    seen: set[str] = set()
    left: Counter[int] = Counter()  # unfinished units per point
    for u in units:
        if records.get(u.key, {}).get("status") == "ok":
            continue
        left[u.point] += 1
        if u.key not in seen:
            seen.add(u.key)
            todo.append(Task(u.key, u.point, u.replication, u.seed, points[u.point].scenario, plan.base_dir))
    by_key: dict[str, list] = {}
    for u in units:
        by_key.setdefault(u.key, []).append(u)
    skipped = len(units) - sum(left.values())
    errors: list[str] = []
    outcome = SweepOutcome(Path(out), len(units), skipped, 0, 0, 0.0, errors=errors)
    bar = _Bar(progress, len(plan.points), len(units), skipped, len(plan.points) - len(left))
    try:
        for task, rec in executor.map(fn, todo):
            store.write(by_key[task.key][0], points[task.point].raw, rec)
            records[task.key] = rec
            n_same = len(by_key[task.key])
            outcome.ran += n_same
            pts_done = 0
            for u in by_key[task.key]:
                left[u.point] -= 1
                pts_done += left[u.point] == 0
            if rec["status"] != "ok":
                outcome.failed += n_same
                if len(errors) < 5:
                    errors.append(f"point {task.point} seed {task.seed}: {rec['error']}")
            bar.advance(n_same, pts_done, outcome.failed)
    except KeyboardInterrupt:
        outcome.interrupted = True
        raise
    finally:
        bar.stop()
        write_tables(out, plan, records)
        outcome.wall_s = time.perf_counter() - t0
    return outcome


class _Bar:
    """A rich progress bar over units: points done, runs done, failed, elapsed and ETA (off when disabled)."""

    def __init__(self, enabled: bool, points: int, units: int, done_units: int, done_points: int):
        self.p = None
        if not enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.points, self.done_points, self.failed = points, done_points, 0
        self.p = Progress(TextColumn("sweep"), BarColumn(),
                          TextColumn("{task.fields[pts]}/{task.fields[npts]} points"),
                          TextColumn("{task.completed:.0f}/{task.total:.0f} runs"),
                          TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(),
                          TextColumn("ETA"), TimeRemainingColumn(), transient=True)
        self.p.start()
        self.task = self.p.add_task("sweep", total=units, completed=done_units, pts=done_points, npts=points,
                                    failed=0)

    def advance(self, n: int, points_done: int, failed: int) -> None:
        if self.p is not None:
            self.done_points += points_done
            self.p.update(self.task, advance=n, pts=self.done_points, failed=failed)

    def stop(self) -> None:
        if self.p is not None:
            self.p.stop()
