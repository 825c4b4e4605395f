"""Charts and the memo report from a results directory (a run or a sweep).

``write_charts(dir)`` writes ``dir/charts/<name>.png`` and ``.svg``; ``write_report(dir)`` writes
``report.md`` and a self-contained ``report.html``. Both read only the results tables (see ``load``);
matplotlib is imported lazily, on the Agg backend. The names below are imported on first use, so the CLI
can register its subcommands without loading pandas, scipy and matplotlib.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "chart_names": "infersim.report.api", "write_charts": "infersim.report.api",
    "write_default_charts": "infersim.report.api", "RunDir": "infersim.report.load",
    "SweepDir": "infersim.report.load", "open_results": "infersim.report.load",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'infersim.report' has no attribute {name!r}")
