"""``infersim sweep FILE --set PATH=VALUES ... --out DIR``: run a scenario over a grid or a sample of its knobs.

Exit status: 0 when every run succeeded, 1 when some runs failed (recorded in the tables' ``error`` column),
2 for bad input (nothing written), 130 when interrupted (finished runs are kept; re-run to resume).
"""

from __future__ import annotations

import signal
import sys
import threading

from infersim.core.errors import InfersimError


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def add_parser(sub) -> None:
    s = sub.add_parser(
        "sweep", help="run a scenario over many parameter values (grid/random/LHS), with replications",
        description="Values: '1,2,4' (list), 'A:B:N' (N linear points), 'log:A:B:N' (N log-spaced points); "
                    "ends may carry units ('1m:15m:5', '5/s:40/s:8'). See docs/sweeps.md.")
    s.add_argument("file", help="scenario file (its optional 'sweep:' block is merged with the options)")
    s.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUES",
                   help="a swept parameter, e.g. platforms[0].deployments[0].replicas=1,2,4 (repeatable)")
    how = s.add_mutually_exclusive_group()
    how.add_argument("--grid", action="store_true", help="every combination (the default)")
    how.add_argument("--random", type=int, metavar="N", help="N points drawn uniformly within the ranges")
    how.add_argument("--lhs", type=int, metavar="N", help="N points by Latin hypercube sampling")
    s.add_argument("--replications", type=int, metavar="R", help="seeds per point (default: the block's, else 1)")
    s.add_argument("--out", required=True, help="output directory; re-running into it resumes")
    s.add_argument("--executor", choices=["local", "dask"], help="local processes (default) or Dask distributed")
    s.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (implies --executor dask); "
                   "without it a local Dask cluster is started")
    s.add_argument("--workers", type=int, help="local processes or LocalCluster workers (default: all cores)")
    s.add_argument("--duration", help="override the scenario's duration for every point, e.g. 60s")
    s.add_argument("--quiet", action="store_true", help="no progress bar and no final message")
    s.set_defaults(fn=_cmd)


def _cmd(args) -> int:
    from infersim.sweep.execute import make_executor
    from infersim.sweep.plan import build_plan
    from infersim.sweep.runner import run_sweep

    for opt in ("random", "lhs", "replications", "workers"):
        v = getattr(args, opt)
        if v is not None and v < 1:
            raise InfersimError(f"--{opt} must be at least 1, got {v}")
    sampling = "random" if args.random else "lhs" if args.lhs else "grid" if args.grid else None
    executor = args.executor or ("dask" if args.scheduler else "local")
    if args.scheduler and executor != "dask":
        raise InfersimError("--scheduler needs --executor dask")
    plan = build_plan(args.file, args.sets, sampling=sampling, samples=args.random or args.lhs,
                      replications=args.replications, duration=args.duration)
    ex = make_executor(executor, workers=args.workers, scheduler=args.scheduler)
    progress = not args.quiet and sys.stderr.isatty()
    # SIGTERM (kill, a batch scheduler, systemd) stops the sweep like Ctrl-C: the tables of what finished are
    # written, then exit status 130
    main_thread = threading.current_thread() is threading.main_thread()  # handlers can only be set there
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        res = run_sweep(plan, args.out, executor=ex, progress=progress)
    except KeyboardInterrupt:
        print(f"sweep interrupted: finished runs are saved in {args.out}/; re-run the same command to resume",
              file=sys.stderr)
        raise
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    if not args.quiet:
        print(f"{len(plan.points)} points x {plan.replications} replications: {res.ran} runs in {res.wall_s:.1f}s"
              f" ({res.skipped} already done, {res.failed} failed); wrote {args.out}/ "
              "(points.parquet/csv, summary.parquet/csv, sweep.json)")
    if res.failed:
        for e in res.errors:
            print(f"  failed: {e}", file=sys.stderr)
        print(f"{res.failed} runs failed: see the 'error' column of {args.out}/points.csv; re-running the "
              "command retries them", file=sys.stderr)
        return 1
    return 0
