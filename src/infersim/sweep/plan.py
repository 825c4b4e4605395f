"""A sweep's plan: its parameters, its points, the replication seeds, and every point validated up front.

Points are applied to the scenario's raw YAML mapping as ``load_scenario`` overrides, so unit strings parse exactly as in a
file, and each point is validated as a full scenario before anything runs.

Seeds (common random numbers): replication ``r`` of a point whose scenario seed is ``s`` runs with
``replication_seed(s, r)``: ``s`` itself for r = 0 (so a one-replication sweep point reproduces
``infersim run --seed s``), and for r >= 1 the first 32-bit word of
``numpy.random.SeedSequence(entropy=s, spawn_key=(r,)).generate_state(1)``. Unless ``seed`` is swept, ``s`` is
the scenario's seed at every point, so replication r uses the same seed (the same requests) everywhere and
differences between points are the knobs'. Sweeping ``seed`` makes the seed itself the varied quantity; it
then needs ``replications: 1``.

Random and LHS points are drawn from the named stream ``rng(scenario seed, "sweep", sampling)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import qmc

from infersim.core.errors import InfersimError, ScenarioError
from infersim.core.rng import rng
from infersim.scenario.loader import read_yaml
from infersim.scenario.paths import parse_path
from infersim.scenario.schema import Scenario
from infersim.scenario.values import Domain, column_values, parse_spec
from infersim.validate import load_scenario

SAMPLINGS = ("grid", "random", "lhs")
MAX_REPORTED = 5  # invalid points listed in one error message


def replication_seed(seed: int, r: int) -> int:
    """The seed replication ``r`` (0-based) runs with, for a point whose scenario seed is ``seed`` (see module doc)."""
    if r == 0:
        return int(seed)
    return int(np.random.SeedSequence(entropy=int(seed), spawn_key=(int(r),)).generate_state(1, np.uint32)[0])


@dataclass(frozen=True)
class Parameter:
    path: str
    domain: Domain


@dataclass
class Point:
    """Point ``index``: ``raw`` maps each swept path to the value written into the YAML; ``scenario`` is validated."""

    index: int
    raw: dict[str, Any]
    scenario: Scenario
    columns: dict[str, Any] = field(default_factory=dict)  # swept value per path in base units (table columns)


@dataclass(frozen=True)
class Unit:
    """One simulation: ``key`` identifies it by the point's values and its seed (resume skips finished keys)."""

    key: str
    point: int
    replication: int
    seed: int


@dataclass
class SweepPlan:
    file: str
    scenario_name: str
    parameters: list[Parameter]
    sampling: str
    samples: int | None
    replications: int
    points: list[Point]
    fingerprint: str
    base_dir: str
    scenario_json: str = ""  # the base scenario as validated (written as scenario.json for reports)

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.parameters]

    def units(self) -> list[Unit]:
        """Every point x replication, in point-major order."""
        out = []
        for pt in self.points:
            for r in range(self.replications):
                s = replication_seed(pt.scenario.seed, r)
                out.append(Unit(unit_key(pt.raw, s), pt.index, r, s))
        return out

    def values_listing(self) -> list[dict]:
        """``[{"path", "values"}]`` for sweep.json: grid values in grid order; for random/LHS the distinct drawn values."""
        out = []
        for p in self.parameters:
            if self.sampling == "grid":
                vals = column_values(p.domain.grid())
            else:
                vals = sorted(set(pt.columns[p.path] for pt in self.points))
            out.append({"path": p.path, "values": vals})
        return out


def unit_key(raw: dict[str, Any], seed: int) -> str:
    """A stable id of (point values, seed): 20 hex digits of SHA-256 over their canonical JSON."""
    text = json.dumps([sorted(raw.items()), int(seed)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def parse_set(text: str) -> tuple[str, Domain]:
    """``'PATH=SPEC'`` from ``--set``; raises InfersimError naming the option."""
    path, eq, spec = text.partition("=")
    path = path.strip()
    if not eq or not path:
        raise InfersimError(f"--set {text!r}: expected PATH=VALUES, e.g. "
                            "platforms[0].deployments[0].replicas=1,2,4")
    try:
        parts = parse_path(path)
    except ValueError as exc:
        raise InfersimError(f"--set {path}: {exc}") from None
    if parts[0] == "sweep":
        raise InfersimError(f"--set {path}: a sweep cannot vary its own definition")
    try:
        return path, parse_spec(spec)
    except ValueError as exc:
        raise InfersimError(f"--set {path}: {exc}") from None


def build_plan(file: str | Path, sets: Sequence[str] = (), *, sampling: str | None = None, samples: int | None = None,
               replications: int | None = None, duration: str | None = None, data: Any = None) -> SweepPlan:
    """Read the scenario, merge its ``sweep:`` block with the command line, draw the points and validate each.

    ``sets`` are ``PATH=SPEC`` strings (they replace a block parameter of the same path or add one);
    ``sampling``/``samples``/``replications`` override the block; ``duration`` (e.g. ``'30s'``) replaces the
    scenario's duration before anything is validated. Raises ScenarioError/InfersimError (exit 2), writing nothing.
    """
    file = str(file)
    if data is None:
        data, _ = read_yaml(file)
    if isinstance(data, dict) and duration is not None:
        data = {**data, "duration": duration}
    base_sc = load_scenario(file, data=data)  # the scenario as written must be valid on its own
    block = base_sc.sweep
    params: dict[str, Domain] = {}
    if block is not None:
        params = {path: parse_spec(spec) for path, spec in block.parameters.items()}
    for text in sets:
        path, dom = parse_set(text)
        params[path] = dom
    if not params:
        raise InfersimError(f"{file}: nothing to sweep: give --set PATH=VALUES or a 'sweep.parameters' block")
    sampling = sampling or (block.sampling if block else "grid")
    if sampling not in SAMPLINGS:
        raise InfersimError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    if sampling == "grid":
        samples = None
    else:
        samples = samples if samples is not None else (block.samples if block else None)
        if not samples or samples < 1:
            raise InfersimError(f"{sampling} sampling needs a number of points, e.g. --{sampling} 50")
    reps = replications if replications is not None else (block.replications if block else 1)
    if reps < 1:
        raise InfersimError(f"--replications must be at least 1, got {reps}")
    if "seed" in params and reps > 1:
        raise InfersimError("sweeping 'seed' makes the seed the varied quantity: use --replications 1 "
                            "(replications already draw other seeds)")
    base = {k: v for k, v in data.items() if k != "sweep"}
    parameters = [Parameter(p, _typed(d, field_type(parse_path(p), base))) for p, d in params.items()]
    raws = _draw(parameters, sampling, samples, seed=base_sc.seed)
    points = _validate(file, base, parameters, raws)
    fp = fingerprint(base, parameters, sampling, samples)
    return SweepPlan(file=file, scenario_name=base_sc.name, parameters=parameters, sampling=sampling,
                     samples=samples, replications=reps, points=points, fingerprint=fp,
                     base_dir=str(Path(file).parent), scenario_json=base_sc.model_dump_json(indent=2))


def _draw(parameters: list[Parameter], sampling: str, samples: int | None, *, seed: int) -> list[dict[str, Any]]:
    """The raw values of every point. Grid: the cartesian product, the last parameter varying fastest."""
    paths = [p.path for p in parameters]
    if sampling == "grid":
        axes = []
        for p in parameters:
            try:
                axes.append(p.domain.grid())
            except ValueError as exc:
                raise InfersimError(f"{p.path}: {exc}") from None
        return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*axes)]
    gen = rng(seed, "sweep", sampling)
    if sampling == "random":
        u = gen.random((int(samples or 0), len(parameters)))
    else:
        u = qmc.LatinHypercube(d=len(parameters), rng=gen).random(samples)
    cols = [p.domain.sample(u[:, j]) for j, p in enumerate(parameters)]
    return [dict(zip(paths, vals, strict=True)) for vals in zip(*cols, strict=True)]


def _validate(file: str, base: dict, parameters: list[Parameter], raws: list[dict]) -> list[Point]:
    points, bad = [], []
    for i, raw in enumerate(raws):
        try:
            sc = load_scenario(file, overrides=raw, data=base)
        except ScenarioError as exc:
            what = "; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in (exc.problems or [exc]))
            assigned = ", ".join(f"{k}={v}" for k, v in raw.items())
            bad.append(f"sweep point {i} ({assigned}): {what}")
            continue
        points.append(Point(i, raw, sc))
    if bad:
        more = f"\n... and {len(bad) - MAX_REPORTED} more invalid points" if len(bad) > MAX_REPORTED else ""
        head = f"{len(bad)} of {len(raws)} sweep points are invalid (nothing was run):\n" if len(bad) > 1 else ""
        raise ScenarioError(head + "\n".join(bad[:MAX_REPORTED]) + more, file=file)
    for p in parameters:
        for pt, v in zip(points, column_values([pt.raw[p.path] for pt in points]), strict=True):
            pt.columns[p.path] = v
    return points


def fingerprint(base: dict, parameters: list[Parameter], sampling: str, samples: int | None) -> str:
    """SHA-256 of the sweep's definition: the scenario mapping (without its sweep block), the parameters in
    order with their specs, the sampling and sample count. Replications are not part of it: units are keyed by
    seed, so a re-run with more replications reuses the finished ones."""
    doc = {"scenario": base, "parameters": [[p.path, p.domain.spec] for p in parameters],
           "sampling": sampling, "samples": samples}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _typed(dom: Domain, typ: type | None) -> Domain:
    """A numeric range for an ``int`` field draws integers, for a ``float`` field never rounds; for a field of
    unknown type (inside an unresolvable union) integer-ness follows the ends as written."""
    if dom.kind == "list" or dom.unit != "number" or typ not in (int, float):
        return dom
    return dataclasses.replace(dom, integer=typ is int)


def field_type(parts: list[str | int], data: Any) -> type | None:
    """The Python type of the scenario field at ``parts`` (``int``, ``float``, ``str``, ...), or None when the
    path leads through something that cannot be resolved (an unknown field, a union without a ``kind``)."""
    ann: Any = Scenario
    node = data
    for part in parts:
        ann = _strip(ann)
        if isinstance(part, int):
            if typing.get_origin(ann) is not list:
                return None
            ann = typing.get_args(ann)[0]
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        cls = _model_of(ann, node)
        if cls is None or part not in cls.model_fields:
            return None
        ann = cls.model_fields[part].annotation
        node = node.get(part) if isinstance(node, dict) else None
    ann = _strip(ann)
    return ann if isinstance(ann, type) else None


def _strip(ann: Any) -> Any:
    """Remove ``Annotated[...]`` and ``| None``."""
    while True:
        if typing.get_origin(ann) is typing.Annotated:
            ann = typing.get_args(ann)[0]
            continue
        if typing.get_origin(ann) in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(ann) if a is not type(None)]
            if len(rest) == 1 and len(rest) < len(typing.get_args(ann)):
                ann = rest[0]
                continue
        return ann


def _model_of(ann: Any, node: Any) -> Any:
    """The pydantic model for ``ann`` at ``node``: the class itself, or the union member whose ``kind`` matches."""
    from pydantic import BaseModel

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        kind = node.get("kind") if isinstance(node, dict) else None
        for opt in typing.get_args(ann):
            opt = _strip(opt)
            f = opt.model_fields.get("kind") if isinstance(opt, type) and issubclass(opt, BaseModel) else None
            if f is not None and kind in typing.get_args(f.annotation):
                return opt
    return None
