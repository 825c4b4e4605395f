"""``infersim solve``: the value of one scenario knob at which a platform's metric meets a target, found by root
finding (``scipy.optimize.brentq``) over full simulations, not read off a grid.

The residual at a value ``x`` of the knob (a dotted YAML path, applied as a ``load_scenario`` override) is

    f(x) = metric(platform) - target           with ``target`` a number, or
    f(x) = metric(platform) - metric(match)    with ``match`` another platform of the same run,

each evaluation one simulation with the scenario's seed (common random numbers: f is deterministic in x).
The bracket ``[lo, hi]`` must have f of opposite signs at its ends; the answer carries the bracket, the
residuals there, every evaluation, and both platforms' SLO attainment at the root (so "at the same SLO" can
be checked, not assumed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from scipy.optimize import brentq

from infersim.core.errors import InfersimError
from infersim.results.simulate import simulate
from infersim.validate import load_scenario


@dataclass
class Solution:
    path: str
    metric: str
    platform: str
    match: str | None
    target: float | None
    bracket: tuple[float, float]
    f_bracket: tuple[float, float]
    root: float
    f_root: float
    iterations: int
    evaluations: list[tuple[float, float]] = field(default_factory=list)
    at_root: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"path": self.path, "metric": self.metric, "platform": self.platform, "match": self.match,
                "target": self.target, "bracket": list(self.bracket), "f_bracket": list(self.f_bracket),
                "root": self.root, "f_root": self.f_root, "iterations": self.iterations,
                "evaluations": [list(e) for e in self.evaluations], "at_root": self.at_root}


def _row(res, name: str | None, metric: str) -> dict:
    s = res.summary.set_index("platform")
    if name not in s.index:
        raise InfersimError(f"no platform '{name}' in the run (platforms: {', '.join(s.index)})")
    if metric not in s.columns:
        raise InfersimError(f"metric '{metric}' is not a summary column (e.g. gross_margin, "
                            "customer_usd_per_mtok, provider_usd_per_mtok, slo_attainment)")
    return s.loc[name].to_dict()


def solve(file: str | Path, path: str, lo: float, hi: float, *, platform: str, metric: str,
          target: float | None = None, match: str | None = None, duration_s: float | None = None,
          xtol: float = 1e-4, rtol: float = 1e-6, maxiter: int = 50) -> Solution:
    """The root of ``f`` (module docstring) in ``[lo, hi]``. Raises ``InfersimError`` when the bracket does
    not change sign or an evaluation gives no value."""
    if (target is None) == (match is None):
        raise InfersimError("solve: give exactly one of --target (a number) or --match (another platform)")
    if not lo < hi:
        raise InfersimError(f"solve: the bracket needs lo < hi, got [{lo:g}, {hi:g}]")
    load_scenario(file)  # the scenario as written must be valid
    evals: list[tuple[float, float]] = []
    last: dict = {}

    def f(x: float) -> float:
        sc = load_scenario(file, overrides={path: float(x)})
        res = simulate(sc, duration_s=duration_s, base_dir=Path(file).parent)
        mine = _row(res, platform, metric)
        ref = target if target is not None else _row(res, match, metric)[metric]
        v = float(mine[metric]) - float(ref)
        if math.isnan(v):
            raise InfersimError(f"solve: {platform}.{metric} is not a number at {path} = {x:g}")
        evals.append((float(x), v))
        last[float(x)] = {platform: {"metric": float(mine[metric]), "slo_attainment": float(mine["slo_attainment"])}}
        if match is not None:
            other = _row(res, match, metric)
            last[float(x)][match] = {"metric": float(other[metric]), "slo_attainment": float(other["slo_attainment"])}
        return v

    f_lo, f_hi = f(lo), f(hi)
    if f_lo == 0.0 or f_hi == 0.0:
        root = lo if f_lo == 0.0 else hi
        return Solution(path, metric, platform, match, target, (lo, hi), (f_lo, f_hi), root, 0.0, 0, evals,
                        last[root])
    if (f_lo > 0) == (f_hi > 0):
        raise InfersimError(f"solve: f does not change sign over [{lo:g}, {hi:g}] (f(lo) = {f_lo:.6g}, "
                            f"f(hi) = {f_hi:.6g}); widen the bracket")
    root, info = brentq(f, lo, hi, xtol=xtol, rtol=rtol, maxiter=maxiter, full_output=True, disp=False)
    if not info.converged:
        raise InfersimError(f"solve: brentq did not converge in {maxiter} iterations ({info.flag})")
    f_root = f(root) if float(root) not in last else dict(evals)[float(root)]
    return Solution(path, metric, platform, match, target, (lo, hi), (f_lo, f_hi), float(root), float(f_root),
                    int(info.iterations), evals, last[float(root)])


def add_parser(sub) -> None:
    s = sub.add_parser("solve", help="find the knob value at which a platform's metric meets a target "
                                     "(root finding over simulations)")
    s.add_argument("file")
    s.add_argument("--set", dest="path", required=True, help="dotted YAML path of the knob, e.g. "
                                                             "platforms[1].prices.output_usd_per_mtok")
    s.add_argument("--bracket", nargs=2, type=float, required=True, metavar=("LO", "HI"))
    s.add_argument("--platform", required=True, help="the platform whose metric is solved for")
    s.add_argument("--metric", default="gross_margin", help="a summary column (default: gross_margin)")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--target", type=float, help="the metric value to reach")
    g.add_argument("--match", help="another platform whose metric (same run) is the target")
    s.add_argument("--duration", default=None, help="simulated span of each evaluation (default: the scenario's)")
    s.add_argument("--xtol", type=float, default=1e-4)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_cmd)


def _cmd(args) -> int:
    import json

    from infersim.core.units import duration_option_s

    dur = duration_option_s(args.duration)
    sol = solve(args.file, args.path, args.bracket[0], args.bracket[1], platform=args.platform, metric=args.metric,
                target=args.target, match=args.match, duration_s=dur, xtol=args.xtol)
    if args.json:
        print(json.dumps(sol.as_dict(), indent=2))
        return 0
    what = f"{args.match}.{args.metric}" if args.match else f"{args.target:g}"
    print(f"{args.platform}.{args.metric} = {what} at {args.path} = {sol.root:.6g} "
          f"(brentq, bracket [{sol.bracket[0]:g}, {sol.bracket[1]:g}], f = {sol.f_bracket[0]:.4g} / "
          f"{sol.f_bracket[1]:.4g} at its ends; {sol.iterations} iterations, {len(sol.evaluations)} simulations; "
          f"residual {sol.f_root:.3g})")
    for name, v in sol.at_root.items():
        print(f"  at the root: {name} {args.metric} {v['metric']:.6g}, SLO attainment {v['slo_attainment']:.1%}")
    return 0
