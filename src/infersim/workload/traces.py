"""Request traces: the shipped public traces and user files (Azure CSV, Mooncake JSONL).

``resolve_trace`` turns a shipped name (``azure-conv-2023``) or a file path into a ``Path``; ``load_trace``
reads it once (cached) into a ``TraceData`` of columnar arrays: arrival seconds from the first row, input and
output token counts and, for Mooncake traces, the per-request prefix block hash ids (512-token blocks).

Formats (see ``traces/README.md``):

- Azure CSV: ``TIMESTAMP,ContextTokens,GeneratedTokens``; timestamps ``2023-11-16 18:17:03.9799600``
  (also ISO 8601, or plain numbers taken as seconds).
- Mooncake JSONL: ``{"timestamp": ms, "input_length": n, "output_length": m, "hash_ids": [..]}``;
  ``hash_ids`` is optional (a trace without it has no prefix information).

A malformed row raises ``ScenarioError`` naming the file, the 1-based data row and the line in the file.
Reading is vectorised with pandas; only after a problem is detected are lines scanned to locate it.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import importlib.resources
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from infersim.core.errors import ScenarioError, suggest

#: shipped trace name → file in ``infersim/workload/traces/``
SHIPPED: dict[str, str] = {
    "azure-code-2023": "azure_code_2023.csv.gz",
    "azure-conv-2023": "azure_conv_2023.csv.gz",
    "mooncake-conversation": "mooncake_fast25_conversation.jsonl.gz",
    "mooncake-synthetic": "mooncake_fast25_synthetic.jsonl.gz",
}
MOONCAKE_BLOCK_TOKENS = 512
_AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_MOONCAKE_COLUMNS = ("timestamp", "input_length", "output_length")
_AZURE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_resources = contextlib.ExitStack()  # keeps extracted resource files alive (zip installs only)


@dataclass(frozen=True, eq=False)
class TraceData:
    """A trace as columns (read-only arrays).

    ``arrival_s``: float64 seconds from the first row (non-decreasing); ``input_tokens``/``output_tokens``:
    int64 >= 1; ``block_offsets`` (n+1, int64) and ``block_hashes`` (int64): request i's prefix block hash
    ids are ``block_hashes[block_offsets[i]:block_offsets[i+1]]``, or both None when the trace has none;
    ``hash_block_tokens``: tokens per hashed block (512 for Mooncake, 0 without hashes).
    """

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    block_offsets: np.ndarray | None
    block_hashes: np.ndarray | None
    hash_block_tokens: int
    name: str

    def __len__(self) -> int:
        return len(self.arrival_s)


def _shipped_path(file: str) -> Path:
    res = importlib.resources.files("infersim.workload") / "traces" / file
    if isinstance(res, Path):
        return res
    return _resources.enter_context(importlib.resources.as_file(res))


def resolve_trace(name_or_path: str, base_dir: Path, path: str | None = None) -> Path:
    """A shipped trace name (or its file name) → the shipped file; else a file relative to ``base_dir``
    (or absolute). Raises ``ScenarioError`` at YAML ``path`` when it is neither."""
    x = str(name_or_path).strip()
    by_file = {f: f for f in SHIPPED.values()}
    if x in SHIPPED or x in by_file:
        return _shipped_path(SHIPPED.get(x) or by_file[x])
    p = Path(x).expanduser()
    if not p.is_absolute():
        p = Path(base_dir) / p
    if p.is_file():
        return p
    raise ScenarioError(
        f"unknown trace '{x}'{suggest(x, [*SHIPPED, *by_file])}; expected a shipped trace "
        f"({', '.join(SHIPPED)}) or a file (Azure CSV or Mooncake JSONL)", path=path)


def load_trace(p: Path) -> TraceData:
    """Read a trace file (cached by resolved path, size and modification time)."""
    p = Path(p)
    try:
        st = p.stat()
    except OSError as exc:
        raise ScenarioError(f"cannot read trace: {exc.strerror}", file=str(p)) from None
    return _load_cached(str(p.resolve()), st.st_size, st.st_mtime_ns, str(p))


@functools.lru_cache(maxsize=16)
def _load_cached(resolved: str, _size: int, _mtime_ns: int, display: str) -> TraceData:
    p = Path(resolved)
    try:
        with p.open("rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        return _read(p, gz, display)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # a CRC mismatch, a truncated stream
        raise ScenarioError(f"corrupt or truncated gzip trace ({exc}); expected a complete .gz file",
                            file=display) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read trace: {(exc.strerror or str(exc)).lower()}", file=display) from None


def _read(p: Path, gz: bool, display: str) -> TraceData:
    names = {f: n for n, f in SHIPPED.items()}
    name = names.get(p.name, p.name)
    suffixes = [s.lower() for s in p.suffixes]
    if ".jsonl" in suffixes or ".json" in suffixes:
        jsonl = True
    elif ".csv" in suffixes:
        jsonl = False
    else:
        jsonl = _head(p, gz).lstrip().startswith("{")
    reader = _read_mooncake if jsonl else _read_azure
    return reader(p, gz, display, name)


def _head(p: Path, gz: bool, n: int = 4096) -> str:
    with (gzip.open(p, "rb") if gz else p.open("rb")) as f:
        return f.read(n).decode("utf-8", errors="replace")


def _lines(p: Path, gz: bool) -> list[str]:
    with (gzip.open(p, "rt", encoding="utf-8", errors="replace", newline="") if gz
          else p.open("rt", encoding="utf-8", errors="replace", newline="")) as f:
        return f.read().splitlines()


def _locate(p: Path, gz: bool, row0: int, header: bool) -> tuple[int, int]:
    """(1-based data row, 1-based file line) of data row ``row0`` (0-based; blank lines skipped)."""
    seen = -1 if header else 0
    for ln, text in enumerate(_lines(p, gz), start=1):
        if text.strip():
            if seen == row0:
                return row0 + 1, ln
            seen += 1
    return row0 + 1, row0 + 1 + int(header)


def _fail(p: Path, gz: bool, display: str, row0: int, header: bool, what: str) -> ScenarioError:
    row, line = _locate(p, gz, row0, header)
    return ScenarioError(f"row {row} (line {line}): {what}", file=display)


def _shown(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "nothing"
    return repr(v.item() if isinstance(v, np.generic) else v)


def _counts(s: pd.Series, p: Path, gz: bool, display: str, header: bool, col: str) -> np.ndarray:
    """Positive integer token counts, or a ScenarioError at the first bad row."""
    try:
        v = pd.to_numeric(s, errors="coerce")
    except (TypeError, ValueError):  # lists or dicts in a JSON column
        v = pd.to_numeric(s.map(lambda x: x if isinstance(x, int | float | str) else np.nan), errors="coerce")
    vals = v.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(vals) | (vals <= 0) | (vals != np.floor(vals))
    if s.dtype == object:
        bad |= s.map(type).eq(bool).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(p, gz, display, i, header, f"expected a positive integer {col}, got {_shown(s.iloc[i])}")
    return vals.astype(np.int64)


def _arrivals(t: np.ndarray, raw: pd.Series, p: Path, gz: bool, display: str, header: bool) -> np.ndarray:
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise _fail(p, gz, display, i, header,
                    f"timestamp {_shown(raw.iloc[i])} goes backwards (previous row: {_shown(raw.iloc[i - 1])}); "
                    "rows must be sorted by time")
    return t - t[0]


def _frozen(*arrays):
    for a in arrays:
        if a is not None:
            a.setflags(write=False)


def _missing(columns, required, display: str) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise ScenarioError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                            f"(expected {', '.join(required)}; found {', '.join(map(str, columns)) or 'none'})",
                            file=display)


def _read_azure(p: Path, gz: bool, display: str, name: str) -> TraceData:
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, compression="gzip" if gz else None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"not a readable CSV trace: {str(exc).strip()}", file=display) from None
    df.columns = [str(c).strip() for c in df.columns]
    _missing(df.columns, _AZURE_COLUMNS, display)
    if df.empty:
        raise ScenarioError("the trace has no rows", file=display)
    df = df.fillna("")
    raw = df["TIMESTAMP"].str.strip()
    ts = pd.to_datetime(raw, format=_AZURE_TIME_FORMAT, errors="coerce")
    if ts.isna().any():
        ts = pd.to_datetime(raw, format="ISO8601", errors="coerce")
    if ts.isna().any():
        num = pd.to_numeric(raw, errors="coerce")
        if num.notna().all():
            t = num.to_numpy(np.float64)
        else:
            i = int(np.argmax(ts.isna().to_numpy()))
            raise _fail(p, gz, display, i, True,
                        f"expected a TIMESTAMP like '2023-11-16 18:17:03.9799600', got {raw.iloc[i]!r}")
    else:
        t = (ts - ts.iloc[0]).dt.total_seconds().to_numpy(np.float64)
    arrival = _arrivals(t, raw, p, gz, display, True)
    inp = _counts(df["ContextTokens"].str.strip(), p, gz, display, True, "ContextTokens")
    out = _counts(df["GeneratedTokens"].str.strip(), p, gz, display, True, "GeneratedTokens")
    _frozen(arrival, inp, out)
    return TraceData(arrival, inp, out, None, None, 0, name)


def _bad_json(p: Path, gz: bool, display: str, exc: Exception) -> ScenarioError:
    row = 0
    for ln, text in enumerate(_lines(p, gz), start=1):
        if not text.strip():
            continue
        row += 1
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            return ScenarioError(f"row {row} (line {ln}): invalid JSON: {e.msg} at column {e.colno}", file=display)
        if not isinstance(obj, dict):
            return ScenarioError(f"row {row} (line {ln}): expected a JSON object, got {type(obj).__name__}",
                                 file=display)
    return ScenarioError(f"not a readable JSONL trace: {exc}", file=display)


def _read_mooncake(p: Path, gz: bool, display: str, name: str) -> TraceData:
    try:
        df = pd.read_json(p, lines=True, dtype=False, compression="gzip" if gz else None)
    except (ValueError, TypeError) as exc:
        raise _bad_json(p, gz, display, exc) from None
    _missing(list(df.columns), _MOONCAKE_COLUMNS, display)
    if df.empty:
        raise ScenarioError("the trace has no rows", file=display)
    ts = pd.to_numeric(df["timestamp"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
    bad = ~np.isfinite(ts)
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(p, gz, display, i, False,
                    f"expected a numeric timestamp (ms), got {_shown(df['timestamp'].iloc[i])}")
    arrival = _arrivals(ts / 1000.0, df["timestamp"], p, gz, display, False)
    inp = _counts(df["input_length"], p, gz, display, False, "input_length")
    out = _counts(df["output_length"], p, gz, display, False, "output_length")
    offsets = hashes = None
    block = 0
    if "hash_ids" in df.columns:
        col = df["hash_ids"]
        is_list = col.map(type).eq(list).to_numpy()
        if not is_list.all():
            i = int(np.argmax(~is_list))
            raise _fail(p, gz, display, i, False, f"expected hash_ids to be a list of ints, got {_shown(col.iloc[i])}")
        lengths = col.str.len().to_numpy(np.int64)
        flat = col.explode()
        if lengths.min() == 0:  # explode leaves one NaN placeholder per empty list
            flat = flat[np.repeat(lengths > 0, np.maximum(lengths, 1))]
        ok = flat.map(type).eq(int).to_numpy()
        if not ok.all():
            j = int(np.argmax(~ok))
            i = int(flat.index[j])
            raise _fail(p, gz, display, i, False,
                        f"expected hash_ids to be a list of ints, got element {flat.iloc[j]!r}")
        offsets = np.zeros(len(df) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        hashes = flat.to_numpy(dtype=np.int64) if len(flat) else np.zeros(0, np.int64)
        block = MOONCAKE_BLOCK_TOKENS
    _frozen(arrival, inp, out, offsets, hashes)
    return TraceData(arrival, inp, out, offsets, hashes, block, name)
