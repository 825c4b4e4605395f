"""Shared helpers: small scenarios built from dicts, and the shared data directory.

The shared data (calibration sets, traces) live outside the repository: ``$INFERSIM_SHARED_DIR``, by default
``../shared`` beside the checkout. Tests that need it skip where it is absent, except under CI (``CI=true``,
as GitHub Actions, GitLab and most CI services set it), where a missing directory fails them: a CI run that
silently skipped every calibration check would pass without checking anything.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from infersim.validate import load_scenario

SHARED = Path(os.environ.get("INFERSIM_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_shared(sub: str = "") -> Path:
    """``SHARED / sub``; skips the test where it is absent, fails it under CI."""
    p = SHARED / sub if sub else SHARED
    if not p.exists():
        msg = (f"shared data {p} not available (set INFERSIM_SHARED_DIR, default ../shared beside the "
               "checkout)")
        if under_ci():
            pytest.fail(f"{msg}; under CI a missing shared directory is an error, not a skip")
        pytest.skip(msg)
    return p

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


def needs_shared(path: Path):
    """A mark: skip where ``path`` (in the shared directory) is absent, except under CI, where the test runs
    and fails on the missing file."""
    return pytest.mark.skipif(not path.exists() and not under_ci(), reason=f"{path} not available")


@pytest.fixture
def shared_dir() -> Path:
    return require_shared()
