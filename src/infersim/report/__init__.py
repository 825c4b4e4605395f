"""Charts and the memo report from a results directory (a run or a sweep).

``write_charts(dir)`` writes ``dir/charts/<name>.png`` and ``.svg``; ``write_report(dir)`` writes
``report.md`` and a self-contained ``report.html``. Both read only the results tables (see ``load``);
matplotlib is imported lazily, on the Agg backend.
"""

from infersim.report.api import chart_names, write_charts, write_default_charts
from infersim.report.load import RunDir, SweepDir, open_results

__all__ = ["RunDir", "SweepDir", "chart_names", "open_results", "write_charts", "write_default_charts"]
