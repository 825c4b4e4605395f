"""Whole-scenario checks that need to build runtime objects, and ``load_scenario`` (read + every check).

``scenario`` describes and validates a file on its own (schema, units, paths); the checks here need the
catalog, the file system and the builders of ``build/`` (a deployment must fit its GPUs' memory, an SRAM
platform its chips, a trace must exist), so they sit above ``build/``. ``load_scenario`` is what the CLI,
sweeps and the Python API call: nothing is simulated before the whole file is known to be valid.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from infersim.build.disagg import disagg_build
from infersim.build.gpu import deployment_setup
from infersim.build.pools import build_pools
from infersim.build.sram import draft_pipeline, sram_pipeline, sram_prices
from infersim.catalog import Catalog
from infersim.core.errors import CapacityError, ScenarioError, suggest
from infersim.policy.quality import TASK_CLASSES
from infersim.scenario.competitors import Competitor, TokenApiPlatform
from infersim.scenario.loader import read_scenario, scenario_catalog
from infersim.scenario.schema import Scenario
from infersim.workload.footprint import available_memory_bytes, footprint
from infersim.workload.traces import load_trace, resolve_trace


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None, *, data: Any = None) -> Scenario:
    """Read, validate and check a scenario file. ``overrides`` maps dotted YAML paths to values; ``data``
    replaces the file's content. Every problem raises ``ScenarioError`` naming the file, path and line."""
    return read_scenario(path, overrides, data=data, checks=(check_scenario,))


def check_competitor(plat: Competitor, catalog: Catalog, path: str) -> list[ScenarioError]:
    """Catalog-dependent checks of one competitor platform (names, kind, precision, fit); returns the
    problems found (empty when fine). Its ``streams`` are checked with every platform's by ``check_scenario``."""
    problems: list[ScenarioError] = []
    try:
        if isinstance(plat, TokenApiPlatform):
            catalog.get_model(plat.model, path=f"{path}.model")
        else:
            pipe = sram_pipeline(plat, catalog, path)
            draft_pipeline(plat, pipe, catalog, path)
            sram_prices(plat, pipe.cfg.model.id, path)
    except ScenarioError as exc:
        problems.extend(exc.problems or [exc])
    return problems


def _unknown_streams(names: list[str] | None, stream_names: list[str], where: str) -> list[ScenarioError]:
    """A problem per name in a platform's or deployment's ``streams`` filter that is not a workload stream."""
    out = []
    for si, name in enumerate(names or []):
        if name not in stream_names:
            hint = suggest(name, stream_names) or f" (expected one of: {', '.join(stream_names)})"
            out.append(ScenarioError(f"unknown stream '{name}'{hint}", path=f"{where}.streams[{si}]"))
    return out


def check_trace(name: str, base_dir: Path, path: str) -> None:
    """The trace exists and reads whole (a corrupt .gz, a bad row): the YAML ``path`` that names it, and the
    trace file's own problem. Loading is cached, so ``run`` does not read it twice."""
    p = resolve_trace(name, base_dir, path=path)
    try:
        load_trace(p)
    except ScenarioError as exc:
        raise ScenarioError(f"trace {exc}", path=path) from None


def check_footprint(sc: Scenario, base_dir: Path = Path("."), duration_s: float | None = None) -> None:
    """Refuse a workload whose request records alone would not fit in the memory available now
    (``infersim.workload.footprint``), naming the stream that implies the most requests."""
    duration = float(sc.duration if duration_s is None else duration_s)
    fp = footprint(sc.workload, duration, len(sc.platforms), base_dir)
    avail = available_memory_bytes()
    if avail is None or fp.bytes <= avail:
        return
    raise ScenarioError(
        f"the workload implies about {fp.requests:,} requests over {duration:g}s ({fp.biggest_requests:,} from "
        f"this stream) for {fp.platforms} platform(s); their records alone need {fp.bytes / 1e9:,.1f} GB and "
        f"this machine has {avail / 1e9:,.1f} GB available: expected a lower rate or a shorter duration",
        path=fp.biggest_path)


class PrefixCacheWarning(UserWarning):
    """A shared prefix an engine's prefix cache can never reuse (shorter than its KV block)."""


def _short_prefix_warnings(sc: Scenario, dep, block_size: int, where: str, seen: set[str]) -> set[str]:
    """Warn, once per stream and deployment, about a shared prefix shorter than the deployment's KV block
    (the engine reuses prefixes in whole blocks, so such a prefix never hits). Returns the messages warned."""
    out: set[str] = set()
    for i, s in enumerate(sc.workload.streams):
        pre = s.prefix
        if pre is None or pre.kind != "shared" or (dep.streams is not None and s.name not in dep.streams):
            continue
        usable = pre.tokens // sc.workload.prefix_block_tokens * sc.workload.prefix_block_tokens
        if usable < block_size:
            msg = (f"workload.streams[{i}].prefix.tokens: a {pre.tokens}-token shared prefix"
                   + (f" ({usable} at workload.prefix_block_tokens {sc.workload.prefix_block_tokens})"
                      if usable != pre.tokens else "")
                   + f" is shorter than the {block_size}-token KV block of {where} ({dep.engine.kind}, "
                   f"{where}.engine.block_size): its prefix cache can never reuse it")
            if msg not in seen:
                warnings.warn(msg, PrefixCacheWarning, stacklevel=2)
                out.add(msg)
    return out


def check_scenario(sc: Scenario, base_dir: Path = Path(".")) -> None:
    """Checks that need the catalog, the file system or the builders: names, precisions, memory fit, traces,
    SRAM pipelines, capacity pools.

    Every failing stream and deployment is reported (one ``ScenarioError`` with ``problems`` when several).
    """
    cat = scenario_catalog(sc, base_dir)
    problems: list[ScenarioError] = []

    def check(fn, *args, **kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except ScenarioError as exc:
            problems.extend(exc.problems or [exc])

    stream_names = [s.name for s in sc.workload.streams]
    warned: set[str] = set()
    # task classes of the quality model, plus routers' own
    tasks = set(TASK_CLASSES).union(*(getattr(p, "router", None).quality.offsets for p in sc.platforms
                                      if getattr(p, "router", None) is not None))
    for i, s in enumerate(sc.workload.streams):
        if s.task is not None and s.task not in tasks:
            problems.append(ScenarioError(f"unknown task class '{s.task}'{suggest(s.task, tasks)} (expected one of: "
                                          f"{', '.join(sorted(tasks))}; a router's quality.offsets may add more)",
                                          path=f"workload.streams[{i}].task"))
        for field_name in ("input_tokens", "output_tokens"):
            dist = getattr(s, field_name)
            if dist is not None and dist.kind == "empirical":
                check(check_trace, dist.trace, base_dir, path=f"workload.streams[{i}].{field_name}.trace")
        if s.arrival.kind == "trace":
            check(check_trace, s.arrival.path, base_dir, path=f"workload.streams[{i}].arrival.path")
    for pi, plat in enumerate(sc.platforms):
        n_plat = len(problems)
        if plat.kind == "disaggregated":  # both pools' setups and the KV link (build.disagg)
            problems.extend(_unknown_streams(plat.streams, stream_names, f"platforms[{pi}]"))
            try:
                disagg_build(plat, cat, f"platforms[{pi}]", base_dir=base_dir)
            except CapacityError as exc:
                problems.append(ScenarioError(str(exc), path=f"platforms[{pi}]"))
            except ScenarioError as exc:
                problems.extend(exc.problems or [exc])
            continue
        if plat.kind in ("lpu", "wafer", "token_api"):
            problems.extend(_unknown_streams(plat.streams, stream_names, f"platforms[{pi}]"))
            problems.extend(check_competitor(plat, cat, f"platforms[{pi}]"))
            continue
        for di, dep in enumerate(getattr(plat, "deployments", [])):
            where = f"platforms[{pi}].deployments[{di}]"
            problems.extend(_unknown_streams(dep.streams, stream_names, where))
            n = len(problems)
            check(cat.get_hardware, dep.hardware, path=f"{where}.hardware")
            check(cat.get_model, dep.model, path=f"{where}.model")
            if len(problems) > n:
                continue  # the setup needs both
            try:
                setup = deployment_setup(dep, cat, path=where, base_dir=base_dir)
                if setup.prefix_caching:
                    warned.update(_short_prefix_warnings(sc, dep, setup.block_size, where, warned))
            except CapacityError as exc:
                problems.append(ScenarioError(str(exc), path=where))
            except ScenarioError as exc:
                problems.extend(exc.problems or [exc])
        if getattr(plat, "pools", None) and len(problems) == n_plat:  # capacity pools match their hardware
            check(build_pools, plat, cat, path=f"platforms[{pi}]")
    if not problems:  # the counts need readable traces
        check(check_footprint, sc, base_dir)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ScenarioError("", problems=problems)
