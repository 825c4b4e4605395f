"""Quality model: the probability that a model's answer to a request is acceptable (pure functions).

For a model with ``params_b`` billion parameters, a request of task class ``t`` and difficulty ``d`` in [0, 1]:

    capability(model, t) = c0 + c1 * log10(params_b) + offset[t]
    P(acceptable)        = 1 / (1 + exp(-k * (capability - d)))

so a request is answered acceptably with probability 1/2 when its difficulty equals the model's capability,
larger models are better at every difficulty (``c1 > 0``), and ``k`` sets how sharply quality falls with
difficulty. Every parameter is an ASSUMPTION (no public source states such a curve); they are chosen so
that the default threshold router on the default workload difficulty (Beta(2, 2)) reproduces the order of
magnitude of the published router results in ``shared/calibration/routing.csv`` (RouteLLM: 35-85 % cost
cut at 95 % of the strong model's quality), see ``docs/economics.md``:

- ``c1`` = 0.15 per decade of parameters: a 7.6B model then reaches ~84 % of a 33B model's acceptable-answer
  rate on the default difficulty mix (0.61 vs 0.72), about the ratio of Mixtral-8x7B to GPT-4 on MT-Bench
  (8.3 vs 9.3 of 10) and MMLU (70.6 vs 86.4) that RouteLLM's routers were scored on (RouteLLM paper, Table 1
  and model cards, as summarised in routing.csv's setting column).
- ``c0`` = 0.45 puts a 7B model's capability near the median request (0.58 at difficulty median 0.5).
- ``k`` = 10: P(acceptable) goes from 0.27 to 0.73 over +-0.1 of difficulty around the capability.
- task offsets: ``completion`` +0.25 (a tab completion of a few tokens is easier than a chat answer; small
  dedicated models serve it in production, workloads.csv Cursor Tab row), ``agent`` -0.15 (multi-step
  edits), ``math`` -0.10, everything else 0.

A model's size is the catalog's ``total_params_b`` (for a mixture of experts, total rather than active
parameters: ASSUMPTION, MoE models score like dense models of similar total size). A scenario may
override any parameter, or a model's capability directly (``capability: {model: value}``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: task class -> capability offset (ASSUMPTIONS, see the module docstring)
TASK_CLASSES: dict[str, float] = {
    "general": 0.0, "chat": 0.0, "code": 0.0, "completion": 0.25, "agent": -0.15, "math": -0.10,
}
#: default parameters of the logistic (ASSUMPTIONS, see the module docstring)
QUALITY_PARAMS: dict[str, float] = {"c0": 0.45, "c1_per_decade": 0.15, "slope": 10.0}


@dataclass(frozen=True)
class QualityModel:
    """P(acceptable) per (model size, task class, difficulty). ``capability`` maps a model id to a fixed
    capability (overrides the size law for that model); ``offsets`` maps task class -> capability offset."""

    c0: float = QUALITY_PARAMS["c0"]
    c1_per_decade: float = QUALITY_PARAMS["c1_per_decade"]
    slope: float = QUALITY_PARAMS["slope"]
    offsets: dict[str, float] = field(default_factory=lambda: dict(TASK_CLASSES))
    capability: dict[str, float] = field(default_factory=dict)

    def model_capability(self, model_id: str, params_b: float, task: str | None) -> float:
        """Capability (on the difficulty scale, unitless) of a model for a task class (None = general)."""
        base = self.capability.get(model_id)
        if base is None:
            if not params_b > 0:
                raise ValueError(f"model '{model_id}' needs params_b > 0 (got {params_b})")
            base = self.c0 + self.c1_per_decade * math.log10(params_b)
        return base + self.offsets.get(task or "general", 0.0)

    def p_acceptable(self, capability: float | np.ndarray, difficulty: float | np.ndarray) -> np.ndarray:
        """P(acceptable) in (0, 1), elementwise: logistic(slope x (capability - difficulty))."""
        x = np.subtract(capability, difficulty, dtype=float)
        if np.ndim(x) == 0:
            return 1.0 / (1.0 + np.exp(-(self.slope * x)))
        # in place on one array (the same operations: -(s x d) == d x (-s) exactly): a run's per-request
        # qualities cost one float per request instead of five temporaries
        x *= -self.slope
        np.exp(x, out=x)
        x += 1.0
        return np.divide(1.0, x, out=x)


DEFAULT_QUALITY = QualityModel()
