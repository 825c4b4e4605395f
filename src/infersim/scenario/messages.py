"""Pydantic validation errors rendered as scenario errors that name the YAML path and what was expected."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from infersim.core.errors import FieldError, ScenarioError, format_path, suggest
from infersim.scenario.paths import YamlLines, parse_path
from infersim.scenario.schema import Scenario


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
        msg += f", got {kind_of(inp)}" if isinstance(inp, dict | list) else f", got {inp!r}"
    return parts, msg


def kind_of(value: Any) -> str:
    """How a value reads in a message: "a mapping", "a list", or its repr."""
    return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else repr(value)


def scenario_errors(exc: ValidationError, data: Any, file: str, lines: YamlLines) -> ScenarioError:
    """One ``ScenarioError`` per distinct problem (path, message), with the line each path is written on."""
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
