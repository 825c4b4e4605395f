"""``LoadIndex``: the least-outstanding view of a list in O(log n) (issue 19) must be exactly what a scan of
the views returns (the first with the fewest), under any sequence of load changes, views added and removed,
in the compiled module and in its Python source alike. Hypothesis draws the changes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infersim.policy.load as installed


def _source_module():
    """``policy/load.py`` imported from its source, whether or not the compiled module is installed."""
    path = Path(installed.__file__).with_name("load.py")
    spec = importlib.util.spec_from_file_location("infersim_policy_load_source", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MODULES = {"installed": installed, "source": _source_module()}


def _first_min(loads: list[int]) -> int:
    return min(range(len(loads)), key=lambda i: (loads[i], i)) if loads else 0


# an operation: ("add", position, delta) on a view of the list, ("append",) a new idle view, ("remove", position)
OPS = st.lists(st.one_of(st.tuples(st.just("add"), st.integers(0, 40), st.integers(-3, 4)),
                         st.tuples(st.just("append")), st.tuples(st.just("remove"), st.integers(0, 40))),
               max_size=200)


@pytest.mark.parametrize("which", MODULES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 40), ops=OPS)
def test_argmin_equals_the_scan_under_changes(which, n, ops):
    m = MODULES[which]
    views = [m.LoadView() for _ in range(n)]
    ix = m.LoadIndex(views)
    removed = []
    for op in ops:
        if op[0] == "add" and views:
            v = views[op[1] % len(views)]
            v.add(max(op[2], -v.outstanding))  # loads stay >= 0, as a replica's do
        elif op[0] == "append":
            views.append(m.LoadView())
            ix.rebuild()
        elif op[0] == "remove" and views:
            removed.append(views.pop(op[1] % len(views)))
            ix.rebuild()
        for v in removed:  # a view that left the list (a draining replica) still changes: the index ignores it
            v.add(1)
        loads = [v.outstanding for v in views]
        assert ix.argmin() == _first_min(loads)
        assert m.least_outstanding(views) == _first_min(loads)  # through the index
        assert m.least_outstanding(list(views)) == _first_min(loads)  # another list: the scan
    assert all(v.index is ix and v.pos == i for i, v in enumerate(views))
    assert all(v.index is None for v in removed)


@pytest.mark.parametrize("which", MODULES)
def test_a_list_changed_without_rebuild_is_scanned(which):
    m = MODULES[which]
    views = [m.LoadView() for _ in range(3)]
    ix = m.LoadIndex(views)
    for v, k in zip(views, (2, 1, 3), strict=True):
        v.add(k)
    assert m.least_outstanding(views) == ix.argmin() == 1
    views.append(m.LoadView())  # idle, not yet in the index
    assert m.least_outstanding(views) == 3
    ix.rebuild()
    assert ix.argmin() == 3 and views[3].index is ix
