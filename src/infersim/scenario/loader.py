"""Read a scenario file: YAML -> (overrides) -> pydantic validation -> checks against the catalog.

Every problem becomes a ``ScenarioError`` naming the file, the YAML path (with its line) and what was
expected. Reading is pure: it reads files and writes nothing. This package describes and validates only;
the whole-scenario checks that need to build runtime objects (memory fit, SRAM pipelines, traces) live in
``infersim.validate``, which passes them in as ``checks`` (``infersim.validate.load_scenario``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from infersim.catalog import Catalog, default_catalog, load_catalog_file
from infersim.core.errors import ScenarioError, format_path
from infersim.scenario.messages import kind_of, scenario_errors
from infersim.scenario.paths import YamlLines, parse_path, set_path
from infersim.scenario.schema import Scenario

#: A whole-scenario check: raises ``ScenarioError`` (with ``problems`` when several) naming YAML paths.
Check = Callable[[Scenario, Path], None]


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice: the YAML path of the repeat and both lines (1-based)."""

    def __init__(self, key: str, path: str, first_line: int, second_line: int):
        self.key, self.path, self.first_line, self.second_line = key, path, first_line, second_line
        super().__init__(f"duplicate key '{key}' at {path}")


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, except that a key repeated in one mapping is an error (plain YAML keeps the last
    one silently, so ``seed:`` written twice would run with whichever came last). Merge keys (``<<``) may
    still be overridden, as YAML intends."""

    def construct_document(self, node):
        self._check_unique(node, [])
        return super().construct_document(node)

    def _check_unique(self, node, parts: list[str | int]) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                if k.tag == "tag:yaml.org,2002:merge":
                    continue
                key = str(k.value)
                line = k.start_mark.line + 1
                if key in seen:
                    raise DuplicateKeyError(key, format_path([*parts, key]), seen[key], line)
                seen[key] = line
                self._check_unique(v, [*parts, key])
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._check_unique(v, [*parts, i])


def read_yaml(path: str | Path) -> tuple[Any, str]:
    """The parsed YAML of ``path`` and its text; unreadable or malformed files raise ``ScenarioError``."""
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
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except DuplicateKeyError as exc:
        raise ScenarioError(f"duplicate key '{exc.key}' on lines {exc.first_line} and {exc.second_line}: "
                            "expected each key once (YAML would silently keep the last)",
                            file=file, path=exc.path, line=exc.second_line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"malformed YAML: {what}", file=file, line=line) from None
    return data, text


def read_scenario(path: str | Path, overrides: dict[str, Any] | None = None, *, data: Any = None,
                  checks: Iterable[Check] = ()) -> Scenario:
    """Read and validate a scenario file, then run ``checks`` on it (besides the catalog names checked here).

    ``overrides`` maps dotted YAML paths to values; ``data`` replaces the file's content (then no line
    numbers). Problems found by ``checks`` get the line their path is written on."""
    file = str(path)
    if data is None:
        data, text = read_yaml(path)
    else:
        text = ""  # no file text: a dump's line numbers would point at lines the user never wrote
    if data is None:
        raise ScenarioError("empty file: expected a mapping with 'workload' and 'platforms'", file=file)
    if not isinstance(data, dict):
        raise ScenarioError(f"expected a mapping with 'workload' and 'platforms' at the top level, "
                            f"got {kind_of(data)}", file=file)
    for p, v in (overrides or {}).items():
        try:
            data = set_path(data, p, v)
        except ValueError as exc:
            raise ScenarioError(str(exc), file=file, path=p) from None
        except ScenarioError as exc:
            raise exc.with_file(file) from None
    lines = YamlLines(text)
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise scenario_errors(exc, data, file, lines) from None
    base = Path(path).parent
    try:
        for check in checks:
            check(sc, base)
    except ScenarioError as exc:
        if exc.problems:
            raise ScenarioError("", problems=[_with_line(p, file, lines) for p in exc.problems]) from None
        raise _with_line(exc, file, lines) from None
    sc._base_dir = str(base)
    return sc


def _with_line(exc: ScenarioError, file: str, lines: YamlLines) -> ScenarioError:
    line = exc.line
    if line is None and exc.path:
        try:
            line = lines.line(parse_path(exc.path))
        except ValueError:
            line = None
    return ScenarioError(exc.message, file=exc.file or file, path=exc.path, line=line)


def scenario_catalog(sc: Scenario, base_dir: Path = Path(".")) -> Catalog:
    """The shipped catalog extended by the scenario's ``catalog`` files (relative to ``base_dir``)."""
    cat = default_catalog()
    for i, extra in enumerate(sc.catalog):
        p = Path(extra) if Path(extra).is_absolute() else base_dir / extra
        if not p.exists():
            raise ScenarioError(f"catalog file '{extra}' not found", path=f"catalog[{i}]")
        cat = cat.extended(load_catalog_file(p))
    return cat
