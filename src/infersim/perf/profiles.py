"""Serving-engine profiles: the fitted ``PerfParams`` of vLLM, SGLang and TensorRT-LLM.

Profiles are data files (``perf/profiles/<engine>.yaml``) holding the parameters and the calibration rows
they were fitted on, with the residual error per row. Users add their own with ``infersim calibrate --fit``
and name them in a scenario (``engine: {kind: vllm, profile: my_fit.yaml}``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from infersim.errors import ScenarioError
from infersim.perf.params import PerfParams

_PARAM_NAMES = set(PerfParams.__dataclass_fields__)


def parse_profile(data: dict, file: str) -> PerfParams:
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        raise ScenarioError("expected a mapping with a 'params' mapping", file=file)
    params = data["params"]
    unknown = set(params) - _PARAM_NAMES
    if unknown:
        raise ScenarioError(f"unknown parameter '{sorted(unknown)[0]}' (expected: {', '.join(sorted(_PARAM_NAMES))})",
                            file=file, path=f"params.{sorted(unknown)[0]}")
    return PerfParams(**{k: float(v) for k, v in params.items()})


@cache
def shipped_profile(engine: str) -> PerfParams:
    """The fitted parameters shipped for ``engine`` (vllm, sglang or trtllm)."""
    res = resources.files("infersim.perf") / "profiles" / f"{engine}.yaml"
    return parse_profile(yaml.safe_load(res.read_text()), f"profiles/{engine}.yaml")


def shipped_profile_doc(engine: str) -> dict:
    res = resources.files("infersim.perf") / "profiles" / f"{engine}.yaml"
    return yaml.safe_load(res.read_text())


def load_profile_file(path: str | Path) -> PerfParams:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ScenarioError(f"cannot read profile: {exc.strerror}", file=str(path)) from None
    return parse_profile(data, str(path))
