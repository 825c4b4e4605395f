"""A run's requests table on disk: one Parquet part per platform, read and written as the in-memory table would
be (large runs, past ``infersim.workload.footprint.SPILL_MIN_ROWS`` rows; ``infersim.results.tables`` decides)."""

from __future__ import annotations

import contextlib
import os
import shutil
import weakref
from pathlib import Path

import numpy as np
import pandas as pd

from infersim.results.part import PlatformPart

#: rows per Parquet row group of the parts and of ``requests.parquet`` when spilled (pyarrow's default)
ROW_GROUP_ROWS = 1 << 20


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """``df.to_parquet(path, index=False)``, converted and written one row group at a time (no whole copy)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(df.iloc[:0], preserve_index=False)
    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(tmp, schema) as w:
        for i in range(0, len(df), ROW_GROUP_ROWS):
            w.write_table(pa.Table.from_pandas(df.iloc[i:i + ROW_GROUP_ROWS], schema=schema, preserve_index=False))
    os.replace(tmp, path)


class SpilledRequests:
    """A run's requests table as one Parquet part per platform (platform order = row order), read or written
    as the in-memory table would be: the same columns (every platform's extra columns, NaN where a platform
    has none), the same dtypes and categories (the union over platforms, in platform order).

    The parts live in ``staging`` (removed by ``discard``, by ``saved_as``, or when this object is garbage);
    after ``saved_as(path)`` the table is read from the saved file."""

    CATEGORICAL = ("platform", "stream", "deployment", "outcome", "reason")

    def __init__(self, parts: list[PlatformPart], extra_cols: list[str], staging: Path | None):
        self.paths = [Path(p.path) for p in parts]
        self.n_rows = sum(p.n_rows for p in parts)
        self.saved: Path | None = None
        self.categories = {"platform": [p.name for p in parts],
                           "deployment": list(dict.fromkeys(d for p in parts for d in p.deployment_names))}
        self._finalizer = (weakref.finalize(self, shutil.rmtree, str(staging), True) if staging is not None
                           else None)
        import pyarrow.parquet as pq

        base = pq.read_schema(self.paths[0]).names if self.paths else []
        self.columns = [*base, *(c for c in extra_cols if c not in base)]

    def _fix(self, chunk: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        """A part's chunk with the table's columns (missing extra columns as NaN) and categories."""
        out = {}
        for c in columns:
            if c not in chunk.columns:
                out[c] = np.full(len(chunk), np.nan)
            elif c in self.categories:
                out[c] = chunk[c].cat.set_categories(self.categories[c])
            else:
                out[c] = chunk[c]
        return pd.DataFrame(out, index=chunk.index)

    def chunks(self, columns: list[str] | None = None):
        """The table as DataFrames of at most a row group each, in row order."""
        import pyarrow.parquet as pq

        if self.saved is not None:
            f = pq.ParquetFile(self.saved)
            for i in range(f.num_row_groups):
                yield f.read_row_group(i, columns=columns).to_pandas()
            return
        cols = list(self.columns if columns is None else columns)
        for path in self.paths:
            f = pq.ParquetFile(path)
            have = [c for c in cols if c in f.schema_arrow.names]
            if f.num_row_groups == 0:
                yield self._fix(f.read(columns=have).to_pandas(), cols)
            for i in range(f.num_row_groups):
                yield self._fix(f.read_row_group(i, columns=have).to_pandas(), cols)

    def read(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The whole table (or ``columns`` of it) in memory, equal to the in-memory run's ``requests``."""
        if self.saved is not None:
            return pd.read_parquet(self.saved, columns=columns)
        return concat_categorical(list(self.chunks(columns)))

    def write(self, path: Path) -> None:
        """Stream the parts into one Parquet file with the in-memory table's schema, a row group at a time."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.saved is not None:
            shutil.copyfile(self.saved, path)
            return
        schema = None
        with contextlib.ExitStack() as stack:
            for chunk in self.chunks():
                if schema is None:
                    schema = pa.Schema.from_pandas(chunk.iloc[:0], preserve_index=False)
                    w = stack.enter_context(pq.ParquetWriter(path, schema))
                if len(chunk):
                    w.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))

    def discard(self) -> None:
        """Remove the parts (idempotent)."""
        if self._finalizer is not None:
            self._finalizer()

    def saved_as(self, path: Path) -> None:
        """The table now lives in ``path`` (a saved ``requests.parquet``): read it from there, drop the parts."""
        self.saved = Path(path)
        self.discard()


def concat_categorical(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-platform tables keeping categorical columns categorical (union of categories)."""
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    from pandas.api.types import union_categoricals

    out = {}
    for col in frames[0].columns:
        parts = [f[col] for f in frames]
        if isinstance(parts[0].dtype, pd.CategoricalDtype):
            out[col] = union_categoricals([p.array for p in parts])
        else:
            out[col] = np.concatenate([p.to_numpy() for p in parts])
    return pd.DataFrame(out)
