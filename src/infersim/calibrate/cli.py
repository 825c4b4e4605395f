"""``infersim calibrate``: predicted vs measured for a CSV of measured runs (see the issue on fidelity)."""

from __future__ import annotations


def add_parser(sub) -> None:
    c = sub.add_parser("calibrate", help="compare the simulator with measured runs (and fit a profile)")
    c.add_argument("measured", help="CSV of measured runs")
    c.add_argument("--fit", action="store_true", help="also fit an engine profile and write it")
    c.add_argument("--json", action="store_true")
    c.add_argument("--out", help="directory for the comparison table and chart")
    c.set_defaults(fn=_cmd)


def _cmd(args) -> int:
    from infersim.errors import InfersimError

    raise InfersimError("calibrate: not available yet")
