"""Pydantic field types that accept human-friendly units (see ``infersim.core.units``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from infersim.core.units import parse_duration_s, parse_rate_per_s, parse_size_gb

STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class StrictModel(BaseModel):
    """Base of every scenario model: unknown keys refused, frozen, no inf/NaN."""

    model_config = STRICT

Seconds = Annotated[
    float, BeforeValidator(parse_duration_s), Field(ge=0),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*(us|ms|s|m|min|h|d)?\s*$"}],
                    "description": "duration: seconds, or '500ms', '90s', '15m', '2h'"}),
]
PositiveSeconds = Annotated[Seconds, Field(gt=0)]
RatePerS = Annotated[
    float, BeforeValidator(parse_rate_per_s), Field(ge=0),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*(/\s*(s|min|h|day))?\s*$"}],
                    "description": "rate per second, or '20/s', '1200/min'"}),
]
SizeGB = Annotated[
    float, BeforeValidator(parse_size_gb), Field(gt=0),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}], "description": "size: GB, or '80GB', '512MB'"}),
]


#: The most replicas one deployment may name (``replicas``, ``max_replicas``, schedule entries). ASSUMPTION: a
#: guard, not a measurement: a replica holds at least one accelerator, and the largest single cluster publicly
#: described is xAI's Colossus at 100,000 H100s (https://x.ai/colossus), so more replicas than that is a typo
#: (``replicas: 100000000`` would otherwise build that many replica objects and hang). A Cursor-scale hour
#: needs a few thousand.
MAX_REPLICAS = 100_000
