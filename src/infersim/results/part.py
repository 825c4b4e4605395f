"""``PlatformPart``: one platform's share of a run's results (``infersim.results.tables.platform_part`` makes it;
``Results`` assembles the parts; ``infersim.results.spilled`` reads its requests part from disk)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(eq=False)
class PlatformPart:
    """One platform's share of the results, made as soon as it finished (``platform_part``): its summary,
    stream, customer and deployment rows, its samples, and its requests rows in memory (``frame``) or in a
    Parquet part on disk (``path``)."""

    name: str
    row: dict
    stream_rows: list[dict]
    customer_rows: list[dict]
    deployment_rows: list[dict]
    timeline: pd.DataFrame
    fleet: pd.DataFrame | None
    replica_log: pd.DataFrame | None
    itl_hist: np.ndarray
    price_source: str | None
    request_columns: tuple[str, ...]  # the platform's extra per-request columns (``PlatformRun.request_columns``)
    deployment_names: tuple[str, ...]  # the categories of its ``deployment`` column
    n_rows: int
    frame: pd.DataFrame | None = None
    path: str | None = None
