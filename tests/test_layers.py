"""The house runs one way: every import of the package (module level, inside functions, under
``TYPE_CHECKING``) goes to the same package or a lower layer; policies use neither SimPy nor the engine;
the scenario package imports only ``core`` and ``catalog``; no import circle at import time.

Read from the source with ``ast`` (nothing is imported), so a late import inside a function that climbs
back up is caught like any other. The layers are those of ``docs/architecture.md``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "infersim"

#: bottom to top; a unit may import its own unit or any unit of a lower rank, never a sibling of its rank
LAYERS: list[tuple[str, ...]] = [
    ("core",),
    ("catalog",),
    ("scenario",),
    ("workload",),
    ("economics",),
    ("perf",),
    ("policy",),
    ("engine",),
    ("fleet",),
    ("build",),
    ("platforms",),
    ("results",),
    ("validate",),
    ("sweep", "calibrate", "report"),
    ("app",),  # cli.py, estimate.py and the package's __init__.py
]
RANK = {unit: i for i, units in enumerate(LAYERS) for unit in units}
APP = {"cli", "estimate", "__init__"}
POLICY_FORBIDDEN = ("simpy", "infersim.engine")
SCENARIO_ALLOWED = {"core", "catalog", "scenario"}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def unit_of(module: str) -> str:
    """The layer unit of a dotted module name inside the package (``infersim.perf.gpu`` -> ``perf``)."""
    parts = module.split(".")
    first = parts[1] if len(parts) > 1 else "__init__"
    return "app" if first in APP else first


def imports(path: Path, me: str | None = None) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import statement of the file (``me``: its dotted
    name, default from its place under ``src/``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = me or module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    top = {id(n) for n in tree.body}  # run at import time (an ``if TYPE_CHECKING:`` block does not)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if node.module is None or name == "infersim":  # `from infersim import economics`: the submodules
                out += [(f"{name}.{a.name}", node.lineno, id(node) in top) for a in node.names]
            else:
                out.append((name, node.lineno, id(node) in top))
    return out


FILES = sorted(p for p in SRC.rglob("*.py"))
EDGES = {module_name(p): imports(p) for p in FILES}


def resolve(name: str) -> str:
    """``from infersim import load_scenario`` names an attribute, not a module: keep the longest module prefix."""
    while name not in EDGES and "." in name:
        name = name.rpartition(".")[0]
    return name


def test_every_unit_has_a_layer():
    units = {unit_of(m) for m in EDGES}
    assert units <= set(RANK), f"modules outside the declared layers: {sorted(units - set(RANK))}"


def violations(me: str, edges: list[tuple[str, int, bool]]) -> list[str]:
    """Every import of module ``me`` that runs up a layer, sideways into a sibling unit, or breaks the
    policy and scenario rules."""
    mine = unit_of(me)
    bad = []
    for name, line, _ in edges:
        if mine == "policy" and name.startswith(POLICY_FORBIDDEN):
            bad.append(f"line {line}: policy imports {name} (policies are pure: no SimPy, no engine)")
        if not name.startswith("infersim.") and name != "infersim":
            continue
        other = unit_of(resolve(name))
        if mine == "scenario" and other not in SCENARIO_ALLOWED:
            bad.append(f"line {line}: the scenario package imports {name} (only core and catalog)")
        elif other != mine and RANK[other] >= RANK[mine]:
            bad.append(f"line {line}: {mine} (layer {RANK[mine]}) imports {name} ({other}, layer {RANK[other]})")
    return bad


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_run_down(path):
    bad = violations(module_name(path), EDGES[module_name(path)])
    assert not bad, f"{path.relative_to(SRC)}:\n  " + "\n  ".join(bad)


def test_no_import_circle():
    """Module-level imports between the package's modules form no cycle (a package's ``__init__`` counts
    as imported by its submodules, as Python does)."""
    graph: dict[str, set[str]] = {m: set() for m in EDGES}
    for m, edges in EDGES.items():
        for name, _, top in edges:
            if top and name.startswith("infersim"):
                target = resolve(name)
                if target != m and not m.startswith(target + "."):  # a submodule importing its own package
                    graph[m].add(target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_check_sees_a_climb(tmp_path):
    """The checker itself: a late import of a higher layer, SimPy in a policy, the engine in the scenario
    package and a sideways import between sibling units are all reported."""
    src = tmp_path / "m.py"
    src.write_text("import numpy\n\ndef f():\n    from infersim.platforms import gpu_fleet\n    import simpy\n")
    bad = violations("infersim.policy.batching", imports(src, "infersim.policy.batching"))
    assert len(bad) == 2 and "line 4" in bad[0] and "simpy" in bad[1]
    src.write_text("def f():\n    from infersim.engine.replica import Replica\n")
    assert "scenario package imports" in violations("infersim.scenario.x", imports(src, "infersim.scenario.x"))[0]
    src.write_text("from infersim.report.load import RunDir\n")
    assert violations("infersim.sweep.x", imports(src, "infersim.sweep.x"))
    assert not violations("infersim.report.x", imports(src, "infersim.report.x"))
