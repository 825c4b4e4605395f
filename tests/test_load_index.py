"""``LoadIndex``: the least-outstanding view of a list in O(log n) (issue 19) must be exactly what a scan of
the views returns (the first with the fewest), under any sequence of load changes, views added and removed,
in the compiled module and in its Python source alike; and balancers using it in a simulation must pick what
the scan picks at every request. Hypothesis draws the changes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infersim.policy.load as installed
from conftest import scenario
from infersim.fleet import deployment as deployment_mod
from infersim.policy import balancers
from infersim.results.simulate import simulate


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


LB_STREAM = {"name": "s", "arrival": {"kind": "poisson", "rate": 60},
             "input_tokens": {"kind": "uniform", "low": 16, "high": 3000},
             "output_tokens": {"kind": "uniform", "low": 1, "high": 600},
             "prefix": {"kind": "shared", "tokens": 512, "groups": 3}}
LB_ENGINE = {"kind": "vllm", "max_num_seqs": 64, "max_batched_tokens": 2048, "gpu_memory_utilization": 0.2}


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


@pytest.mark.parametrize("autoscaled", [False, True])
def test_an_index_is_kept_only_for_balancers_that_use_it(monkeypatch, autoscaled):
    from infersim.fleet import autoscaled as autoscaled_mod

    for kind in balancers.BALANCERS:
        made = []

        def counted(views, made=made):
            made.append(views)
            return installed.LoadIndex(views)

        monkeypatch.setattr(deployment_mod, "LoadIndex", counted)
        monkeypatch.setattr(autoscaled_mod, "LoadIndex", counted)
        dep = {"name": "a", "model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8",
               "engine": LB_ENGINE, "load_balancer": {"kind": kind}}
        if autoscaled:
            dep["autoscaling"] = {"kind": "baseten", "min_replicas": 2, "max_replicas": 3, "concurrency_target": 4}
        else:
            dep["replicas"] = 3
        res = simulate(scenario(**{"duration": 5, "workload.streams": [LB_STREAM], "platforms[0].deployments": [dep]}))
        assert len(res.requests) > 0
        assert len(made) == (kind in ("least_outstanding", "prefix_affinity")), kind


@pytest.mark.parametrize("lb", ["least_outstanding", "prefix_affinity"])
@pytest.mark.parametrize("fleet", ["fixed", "fixed_limit", "autoscaled"])
def test_balancers_pick_what_the_scan_picks(monkeypatch, lb, fleet):
    """Every least-outstanding choice of a simulation, through the index, equals a scan of the same views."""
    scan = installed.least_outstanding
    calls = {"indexed": 0, "scanned": 0}
    lengths = set()

    def checked(views):
        ix = views[0].index if views else None
        indexed = ix is not None and ix.views is views
        calls["indexed" if indexed else "scanned"] += 1
        lengths.add(len(views))
        got = scan(views)
        assert got == scan(list(views)) == _first_min([v.outstanding for v in views])
        return got

    monkeypatch.setattr(balancers, "least_outstanding", checked)
    monkeypatch.setattr(deployment_mod, "least_outstanding", checked)
    dep = {"name": "a", "model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8", "engine": LB_ENGINE,
           "load_balancer": {"kind": lb, **({"max_imbalance": 1.05} if lb == "prefix_affinity" else {})}}
    if fleet == "autoscaled":
        # fast cold starts, replicas failing and replaced, scaling down: the list of ready views changes
        dep["autoscaling"] = {"kind": "baseten", "min_replicas": 2, "max_replicas": 6, "concurrency_target": 4,
                              "autoscaling_window": 10, "scale_down_delay": 3}
        dep["cold_start"] = {"provision": 1, "image_pull": 1, "warmup": 1, "weights_gbps": 50}
        dep["failures"] = {"at": [8, 15, 22]}
    else:
        dep["replicas"] = 5
        if fleet == "fixed_limit":
            dep["replica_concurrency"] = 12
    sc = scenario(**{"duration": 30, "workload.streams": [LB_STREAM], "platforms[0].deployments": [dep]})
    res = simulate(sc)
    assert (res.requests["outcome"] == "finished").sum() > 0
    if fleet == "fixed_limit" and lb == "prefix_affinity":  # lists of the replicas below the limit: scanned
        assert calls["scanned"] > 20
    else:
        assert calls["indexed"] > 1000  # the index answered (and agreed with the scan) at every request
    if fleet == "autoscaled":
        assert len(lengths) > 1  # replicas came and went: the index was rebuilt
