"""Entry points: which charts a directory gets, and writing them into ``<dir>/charts/``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from infersim.core.errors import InfersimError, suggest
from infersim.report.charts import RUN_CHARTS, ChartSkipped
from infersim.report.load import RunDir, SweepDir, open_results
from infersim.report.sweep_charts import SWEEP_CHARTS

CHARTS_DIR = "charts"


@dataclass
class ChartSet:
    """What ``write_charts`` produced: ``data[name]`` is the DataFrame each chart plotted; ``skipped[name]``
    the one-line reason a chart was not drawn; ``notes`` remarks about the inputs."""

    out_dir: Path
    data: dict[str, pd.DataFrame] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def paths(self, name: str, ext: str = "png") -> Path:
        return self.out_dir / f"{name}.{ext}"


def chart_names(res: RunDir | SweepDir) -> list[str]:
    """The chart names available for this kind of directory, in report order."""
    return list(SWEEP_CHARTS if isinstance(res, SweepDir) else RUN_CHARTS)


def write_charts(results: str | Path | RunDir | SweepDir, charts: list[str] | None = None,
                 metric: str | None = None) -> ChartSet:
    """Draw ``charts`` (default: all for the directory's kind) into ``<dir>/charts/``.

    ``metric``: the summary metric of sweep charts (default: the first of customer_usd_per_mtok,
    ttft_p99_s that the sweep has). A chart the tables cannot support is skipped with its reason in
    ``skipped``; naming an unknown chart or metric raises ``InfersimError``. Each file is written atomically.
    """
    res = results if isinstance(results, RunDir | SweepDir) else open_results(results)
    table = SWEEP_CHARTS if isinstance(res, SweepDir) else RUN_CHARTS
    names = list(table) if not charts else charts
    for n in names:
        if n not in table:
            raise InfersimError(f"unknown chart '{n}' for a {res.kind} directory{suggest(n, table)} "
                                f"(expected one of: {', '.join(table)})")
    out = ChartSet(res.path / CHARTS_DIR)
    kw = {}
    if isinstance(res, SweepDir):
        kw["metric"] = res.check_metric(metric) if metric else default_metric(res)
    elif metric:
        raise InfersimError("--metric applies to sweep directories only (a run's charts show fixed metrics)")
    for n in names:
        try:
            out.data[n] = table[n](res, out.out_dir, **kw)
        except ChartSkipped as exc:
            out.skipped[n] = str(exc)
    out.notes.extend(res.notes)
    return out


def default_metric(res: SweepDir) -> str:
    """The sweep metric charts use unless told: customer $/Mtok, else p99 TTFT, else the first one."""
    have = res.metrics
    for m in ("customer_usd_per_mtok", "ttft_p99_s"):
        if m in have:
            return m
    if not have:
        raise InfersimError(f"{res.path}: the sweep summary has no '<metric>_mean' columns")
    return have[0]


def write_default_charts(run_dir: str | Path) -> ChartSet:
    """The charts ``infersim run`` writes after its tables (all run charts; skipped ones noted)."""
    return write_charts(run_dir)
