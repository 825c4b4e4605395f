"""Load a scenario file: YAML → (overrides) → pydantic validation → catalog checks.

Every problem becomes a ``ScenarioError`` naming the file, the YAML path (with its line) and what was
expected. Loading is pure: it reads files and writes nothing.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from infersim.catalog import Catalog, default_catalog, load_catalog_file
from infersim.core.errors import CapacityError, FieldError, ScenarioError, format_path, suggest
from infersim.scenario.schema import Scenario

_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_path(path: str) -> list[str | int]:
    """'platforms[0].deployments[1].tp' → ['platforms', 0, 'deployments', 1, 'tp']."""
    parts: list[str | int] = []
    pos = 0
    for m in _PATH_TOKEN.finditer(path):
        gap = path[pos:m.start()].strip(".")
        if gap:
            raise ValueError(f"malformed path {path!r}")
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not parts or path[pos:].strip("."):
        raise ValueError(f"malformed path {path!r}")
    return parts


def set_path(data: Any, path: str, value: Any) -> Any:
    """Return a copy of ``data`` with ``value`` at the dotted ``path`` (intermediate dicts created)."""
    import copy

    parts = parse_path(path)
    root = copy.deepcopy(data)
    node = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = format_path(parts[: i + 1])
        if isinstance(part, int):
            if not isinstance(node, list) or part > len(node) or (part == len(node) and not last):
                raise ScenarioError(f"no list item at index {part}", path=where)
            if last and part == len(node):
                node.append(value)  # one past the end appends
            elif last:
                node[part] = value
            else:
                node = node[part]
        else:
            if not isinstance(node, dict):
                raise ScenarioError("cannot set a field inside a non-mapping", path=where)
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return root


class _Lines:
    """Maps YAML paths to line numbers using the composed node tree."""

    def __init__(self, text: str):
        try:
            self.root = yaml.compose(text)
        except yaml.YAMLError:
            self.root = None

    def line(self, parts: list[str | int]) -> int | None:
        node, best = self.root, None
        for part in parts:
            if node is None:
                break
            best = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                nxt = None
                for k, v in node.value:
                    if k.value == part:
                        nxt, best = v, k.start_mark.line + 1
                        break
                node = nxt
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
            else:
                node = None
        if node is not None:
            best = node.start_mark.line + 1
        return best


def _data_path(loc: tuple, data: Any) -> list[str | int]:
    """Drop pydantic's union-tag and function-validator segments from an error location."""
    parts: list[str | int] = []
    node, tagged = data, False
    for seg in loc:
        if isinstance(seg, int) and isinstance(node, dict):  # a mapping key that YAML read as a number
            parts.append(str(seg))
            node = None
        elif isinstance(seg, int):
            parts.append(seg)
            node = node[seg] if isinstance(node, list) and seg < len(node) else None
            tagged = False
        elif isinstance(node, dict) and not tagged and node.get("kind") == seg:
            # pydantic puts the tag right after the union's own location, before any field of the member;
            # it may equal a field name (kind 'stages' has a field 'stages'), so skip it once per mapping.
            tagged = True
        elif isinstance(node, dict) and seg in node:
            parts.append(seg)
            node, tagged = node[seg], False
        elif "[" in str(seg) or "function" in str(seg):
            continue
        else:
            parts.append(seg)
            node = None
    return parts


def _model_at(parts: list[str | int], data: Any) -> type[BaseModel] | None:
    """The pydantic model class that validates the mapping at ``parts`` (for field suggestions)."""
    cls: Any = Scenario
    node = data
    for part in parts:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or part not in cls.model_fields:
            return None
        node = node.get(part) if isinstance(node, dict) else None
        cls = _resolve(cls.model_fields[part].annotation, node)
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _kinds_at(parts: list[str | int], data: Any) -> list[str]:
    """The ``kind`` tags accepted by the discriminated union at ``parts`` (for 'missing kind' messages)."""
    ann: Any = Scenario
    node = data
    for part in parts:
        if isinstance(part, int):
            ann = _strip(ann)
            if typing.get_origin(ann) not in (list, tuple):
                return []
            ann = typing.get_args(ann)[0]
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        cls = _resolve(ann, node)
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or part not in cls.model_fields:
            return []
        ann = cls.model_fields[part].annotation
        node = node.get(part) if isinstance(node, dict) else None
    ann = _strip(ann)
    options = typing.get_args(ann) if typing.get_origin(ann) in (typing.Union, types.UnionType) else (ann,)
    tags: list[str] = []
    for opt in options:
        opt = _strip(opt)
        f = opt.model_fields.get("kind") if isinstance(opt, type) and issubclass(opt, BaseModel) else None
        if f is not None:
            tags += [t for t in typing.get_args(f.annotation) if isinstance(t, str)]
    return tags


def _strip(ann: Any) -> Any:
    """Remove ``Annotated`` and ``| None`` wrappers."""
    while True:
        origin = typing.get_origin(ann)
        if origin is typing.Annotated:
            ann = typing.get_args(ann)[0]
        elif origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(ann):
            rest = tuple(a for a in typing.get_args(ann) if a is not type(None))
            ann = rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
        else:
            return ann


def _resolve(ann: Any, node: Any) -> Any:
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _resolve(typing.get_args(ann)[0], node)
    if origin in (list, tuple):
        inner = node[0] if isinstance(node, list) and node else None
        return _resolve(typing.get_args(ann)[0], inner)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(ann) if a is not type(None)]
        kind = node.get("kind") if isinstance(node, dict) else None
        for opt in options:
            o = _resolve(opt, node)
            if isinstance(o, type) and issubclass(o, BaseModel):
                f = o.model_fields.get("kind")
                if f is not None and kind is not None and kind in typing.get_args(f.annotation):
                    return o
        models = [_resolve(o, node) for o in options]
        models = [m for m in models if isinstance(m, type) and issubclass(m, BaseModel)]
        return models[0] if len(models) == 1 else None
    return ann


def _message(err: dict, parts: list[str | int], data: Any) -> tuple[list[str | int], str]:
    typ, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    if typ == "extra_forbidden":
        name = parts[-1] if parts else "?"
        parent = _model_at(parts[:-1], data)
        hint = suggest(str(name), parent.model_fields) if parent else ""
        allowed = f"; expected one of: {', '.join(parent.model_fields)}" if parent and not hint else ""
        return parts, f"unknown field '{name}'{hint}{allowed}"
    if typ == "missing":
        return parts, f"missing required field '{parts[-1] if parts else ''}'"
    if typ in ("union_tag_invalid", "union_tag_not_found"):
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
        got = ctx.get("tag")
        if typ == "union_tag_not_found":
            tags = _kinds_at(parts, data)
            return [*parts, "kind"], f"missing 'kind' (expected one of: {', '.join(tags)})"
        return [*parts, "kind"], f"unknown kind '{got}'{suggest(str(got), tags)} (expected one of: {', '.join(tags)})"
    if typ == "literal_error":
        return parts, f"{msg.replace('Input should be', 'expected')}, got {err.get('input')!r}"
    if typ == "value_error" and isinstance(ctx.get("error"), FieldError):
        parts = [*parts, *parse_path(ctx["error"].at)]
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    msg = msg.replace("Input should be", "expected")
    msg = re.sub(r"a valid dictionary or (instance of \w+|object to extract fields from)", "a mapping", msg)
    if typ == "too_short":
        return parts, f"expected at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if typ == "too_long":
        return parts, f"expected at most {ctx.get('max_length')} item(s), got {ctx.get('actual_length')}"
    if "input" in err and typ != "value_error":
        inp = err["input"]
        msg += f", got {_kind_of(inp)}" if isinstance(inp, dict | list) else f", got {inp!r}"
    return parts, msg


def _kind_of(value: Any) -> str:
    return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else repr(value)


def _errors(exc: ValidationError, data: Any, file: str, lines: _Lines) -> ScenarioError:
    problems, seen = [], set()
    for err in exc.errors(include_url=False):
        parts = _data_path(err["loc"], data)
        parts, msg = _message(err, parts, data)
        path = format_path(parts) or "(top level)"
        if (path, msg) in seen:
            continue
        seen.add((path, msg))
        problems.append(ScenarioError(msg, file=file, path=path, line=lines.line(parts) if parts else None))
    return problems[0] if len(problems) == 1 else ScenarioError("", problems=problems)


def read_yaml(path: str | Path) -> tuple[Any, str]:
    file = str(path)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ScenarioError("no such file", file=file) from None
    except UnicodeDecodeError:
        raise ScenarioError("cannot read: not UTF-8 text", file=file) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read: {(exc.strerror or exc.__class__.__name__).lower()}", file=file) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"malformed YAML: {what}", file=file, line=line) from None
    return data, text


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None,
                  *, data: Any = None) -> Scenario:
    """Read, validate and check a scenario file. ``overrides`` maps dotted paths to values."""
    file = str(path)
    if data is None:
        data, text = read_yaml(path)
    else:
        text = ""  # no file text: a dump's line numbers would point at lines the user never wrote
    if data is None:
        raise ScenarioError("empty file: expected a mapping with 'workload' and 'platforms'", file=file)
    if not isinstance(data, dict):
        raise ScenarioError(f"expected a mapping with 'workload' and 'platforms' at the top level, "
                            f"got {_kind_of(data)}", file=file)
    for p, v in (overrides or {}).items():
        try:
            data = set_path(data, p, v)
        except ValueError as exc:
            raise ScenarioError(str(exc), file=file, path=p) from None
        except ScenarioError as exc:
            raise exc.with_file(file) from None
    lines = _Lines(text)
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _errors(exc, data, file, lines) from None
    base = Path(path).parent
    try:
        check_scenario(sc, base_dir=base)
    except ScenarioError as exc:
        if exc.problems:
            raise ScenarioError("", problems=[_with_line(p, file, lines) for p in exc.problems]) from None
        raise _with_line(exc, file, lines) from None
    sc._base_dir = str(base)
    return sc


def _with_line(exc: ScenarioError, file: str, lines: _Lines) -> ScenarioError:
    line = exc.line
    if line is None and exc.path:
        try:
            line = lines.line(parse_path(exc.path))
        except ValueError:
            line = None
    return ScenarioError(exc.message, file=exc.file or file, path=exc.path, line=line)


def scenario_catalog(sc: Scenario, base_dir: Path = Path(".")) -> Catalog:
    cat = default_catalog()
    for i, extra in enumerate(sc.catalog):
        p = Path(extra) if Path(extra).is_absolute() else base_dir / extra
        if not p.exists():
            raise ScenarioError(f"catalog file '{extra}' not found", path=f"catalog[{i}]")
        cat = cat.extended(load_catalog_file(p))
    return cat


def _unknown_streams(names: list[str] | None, stream_names: list[str], where: str) -> list[ScenarioError]:
    """A problem per name in a platform's or deployment's ``streams`` filter that is not a workload stream."""
    out = []
    for si, name in enumerate(names or []):
        if name not in stream_names:
            hint = suggest(name, stream_names) or f" (expected one of: {', '.join(stream_names)})"
            out.append(ScenarioError(f"unknown stream '{name}'{hint}", path=f"{where}.streams[{si}]"))
    return out


def check_scenario(sc: Scenario, base_dir: Path = Path(".")) -> None:
    """Checks that need the catalog or the file system: names, precisions, memory fit, traces.

    Every failing stream and deployment is reported (one ``ScenarioError`` with ``problems`` when several).
    """
    from infersim.build.gpu import deployment_setup  # late import: the builder uses perf + engine
    from infersim.workload.traces import resolve_trace

    cat = scenario_catalog(sc, base_dir)
    problems: list[ScenarioError] = []

    def check(fn, *args, **kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except ScenarioError as exc:
            problems.extend(exc.problems or [exc])

    stream_names = [s.name for s in sc.workload.streams]
    from infersim.policy.quality import TASK_CLASSES  # task classes of the quality model, plus routers' own

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
                check(resolve_trace, dist.trace, base_dir, path=f"workload.streams[{i}].{field_name}.trace")
        if s.arrival.kind == "trace":
            check(resolve_trace, s.arrival.path, base_dir, path=f"workload.streams[{i}].arrival.path")
    for pi, plat in enumerate(sc.platforms):
        n_plat = len(problems)
        if plat.kind in ("lpu", "wafer", "token_api"):
            from infersim.scenario.competitors import check_competitor

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
                deployment_setup(dep, cat, path=where, base_dir=base_dir)
            except CapacityError as exc:
                problems.append(ScenarioError(str(exc), path=where))
            except ScenarioError as exc:
                problems.extend(exc.problems or [exc])
        if getattr(plat, "pools", None) and len(problems) == n_plat:  # capacity pools match their hardware
            from infersim.fleet.collect import build_pools

            check(build_pools, plat, cat, path=f"platforms[{pi}]")
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ScenarioError("", problems=problems)
