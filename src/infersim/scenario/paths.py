"""YAML paths: parse and set ``platforms[0].deployments[1].tp``, and find the line a path is written on.

The one grammar of a dotted YAML path, used by overrides (``--set``), sweeps and error messages.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

from infersim.core.errors import ScenarioError, format_path

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


class YamlLines:
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
