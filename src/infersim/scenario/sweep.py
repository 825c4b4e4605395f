"""The optional ``sweep:`` block of a scenario file (run with ``infersim sweep FILE``; ``infersim run`` ignores it).

```yaml
sweep:
  parameters:                       # dotted YAML path -> values (see infersim.scenario.values)
    workload.streams[0].arrival.rate: 10/s:40/s:4
    platforms[0].deployments[0].replicas: [1, 2, 4]
  sampling: grid                    # grid | random | lhs
  samples: 50                       # points to draw for random / lhs
  replications: 3                   # seeds per point (common random numbers across points)
```

The command line's ``--set``, ``--grid/--random/--lhs`` and ``--replications`` override or extend it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from infersim.core.errors import FieldError
from infersim.scenario.paths import parse_path
from infersim.scenario.types import STRICT
from infersim.scenario.values import parse_spec


class Sweep(BaseModel):
    """Which scenario knobs to vary and how. ``samples`` (points) is required for random/LHS sampling."""

    model_config = STRICT

    parameters: dict[str, list[Any] | str | int | float | bool] = Field(
        default_factory=dict, description="dotted YAML path -> values: a list, 'V1,V2', 'A:B:N' or 'log:A:B:N'")
    sampling: Literal["grid", "random", "lhs"] = "grid"
    samples: int | None = Field(None, ge=1, description="number of points for random or lhs sampling")
    replications: int = Field(1, ge=1, description="seeds per point (replication r uses the same seed at every point)")

    @model_validator(mode="after")
    def _check(self):
        for path, spec in self.parameters.items():
            try:
                parts = parse_path(path)
            except ValueError as exc:
                raise FieldError("parameters", f"{exc} (expected a dotted YAML path such as "
                                 "'platforms[0].deployments[0].replicas')") from None
            if parts[0] == "sweep":
                raise FieldError("parameters", f"'{path}': a sweep cannot vary its own definition")
            try:
                dom = parse_spec(spec)
                if self.sampling == "grid":
                    dom.grid()
            except ValueError as exc:
                raise FieldError("parameters", f"'{path}': {exc}") from None
        if self.sampling != "grid" and self.samples is None:
            raise FieldError("samples", f"{self.sampling} sampling needs 'samples' (the number of points)")
        return self
