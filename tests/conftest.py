"""Shared helpers: small scenarios built from dicts, and the path to ../shared."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from infersim.validate import load_scenario

SHARED = Path(__file__).resolve().parents[2] / "shared"

BASE = {
    "name": "t",
    "seed": 1,
    "duration": 60,
    "drain": 600,
    "workload": {"streams": [{"name": "s", "arrival": {"kind": "poisson", "rate": 2},
                              "input_tokens": {"kind": "fixed", "value": 500},
                              "output_tokens": {"kind": "fixed", "value": 50}}]},
    "platforms": [{"name": "p", "kind": "gpu_fleet",
                   "deployments": [{"model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "fp8",
                                    "engine": {"kind": "vllm"}}]}],
}


def scenario(**changes):
    """BASE with dotted-path changes, validated: scenario(**{"duration": 30, "workload.streams[0].arrival.rate": 5})."""
    from infersim.scenario.paths import set_path

    data = copy.deepcopy(BASE)
    for k, v in changes.items():
        data = set_path(data, k, v)
    return load_scenario("test.yaml", data=data)


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared not available")
    return SHARED
