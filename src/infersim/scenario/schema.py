"""The scenario file's top level. Load with ``infersim.validate.load_scenario``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, PrivateAttr, model_validator

from infersim.core.errors import FieldError, first_repeat
from infersim.scenario.competitors import LpuPlatform, TokenApiPlatform, WaferPlatform
from infersim.scenario.disagg import Disaggregated
from infersim.scenario.platform import GpuFleet
from infersim.scenario.sweep import Sweep
from infersim.scenario.types import STRICT, PositiveSeconds, Seconds
from infersim.scenario.workload import Workload

#: every platform kind (``scenario.platform.Platform`` plus the disaggregated kind, whose schema builds on the
#: engine block of ``scenario.platform``)
Platform = Annotated[GpuFleet | LpuPlatform | WaferPlatform | TokenApiPlatform | Disaggregated,
                     Field(discriminator="kind")]


class Scenario(BaseModel):
    """A workload and the platforms that compete to serve it.

    ``duration`` is how long requests keep arriving (simulated seconds); ``drain`` how long the simulation
    may run past it for requests in flight to finish (they are recorded as in flight after that);
    ``warmup`` is excluded from the summary statistics.
    """

    model_config = STRICT
    _base_dir: str = PrivateAttr(".")  # directory the scenario file was loaded from (relative paths)

    name: str = "scenario"
    description: str = ""
    question: str = Field("", description="the question this scenario asks, in a memo's words (the report's "
                                          "executive summary leads with it and answers it)")
    seed: int = Field(0, ge=0)
    duration: PositiveSeconds = 600.0
    warmup: Seconds = 0.0
    drain: Seconds = 600.0
    catalog: list[str] = Field(default_factory=list, description="extra catalog files (hardware/models)")
    workload: Workload
    platforms: list[Platform] = Field(min_length=1)
    sweep: Sweep | None = Field(None, description="parameter sweep for 'infersim sweep' (ignored by run)")
    baseline: str | None = Field(None, description="name of the platform the others are compared against "
                                                   "(cost saved, quality kept, latency change)")

    @property
    def base_dir(self) -> str:
        """Directory that relative paths in the scenario (catalog files, traces) are resolved against."""
        return self._base_dir

    @model_validator(mode="after")
    def _check(self):
        if self.warmup >= self.duration:
            raise FieldError("warmup", f"warmup ({self.warmup:g}s) must be shorter than duration "
                             f"({self.duration:g}s)")
        j = first_repeat([p.name for p in self.platforms])
        if j is not None:
            raise FieldError(f"platforms[{j}].name", f"duplicate platform name '{self.platforms[j].name}' "
                             "(platform names must be unique)")
        if self.baseline is not None and self.baseline not in {p.name for p in self.platforms}:
            raise FieldError("baseline", f"'{self.baseline}' is not a platform of this scenario (expected one of: "
                             f"{', '.join(p.name for p in self.platforms)})")
        return self
