"""The values one swept parameter takes.

A parameter is given as a *spec*, the same on the command line (``--set PATH=SPEC``) and in a scenario's
``sweep.parameters`` block:

- a list: ``1,2,4`` or ``15m,30m`` (comma-separated YAML scalars; brackets and braces may hold commas), or a
  YAML list in the scenario file; sampled values are the listed ones;
- a linear range ``A:B:N``: N evenly spaced points from A to B inclusive (``0.5:0.9:5`` = 0.5, 0.6, ..., 0.9);
- a log range ``log:A:B:N``: N points evenly spaced in log(value) (``log:1:1000:4`` = 1, 10, 100, 1000);
  A and B must be > 0.

Range ends may carry units, the same on both ends or a bare number in the base unit: durations
(``1m:15m:5``), rates (``5/s:40/s:8``), sizes (``40GB:80GB:3``). Range points are written back into the
scenario with the unit's base unit (``"90s"``, ``"12.5/s"``, ``"60GB"``), so a range of durations given to a
rate field fails validation instead of being read in the wrong unit. A bare-number range is an integer range
when its field is an integer (``replicas``, ``seed``, token counts; set by ``plan`` from the schema) or, for a
field whose type cannot be told, when both ends are written as integers: points are then rounded to integers
(an error if two coincide) and random/LHS draws are integers. Random and Latin-hypercube sampling draw within ``[A, B]``
(uniformly in value, or in log(value) for log ranges) and ignore N, which may then be left out (``A:B``).

For the result tables every value is also given as a *column value*: a number in base units (seconds, per
second, GB) where all of a parameter's values parse as quantities, else the values as text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from infersim.core.units import parse_duration_s, parse_rate_per_s, parse_size_gb

__all__ = ["Domain", "column_values", "parse_spec", "quantity", "split_list"]

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_QTY = re.compile(rf"^\s*({_NUM})\s*(/\s*[a-zA-Z]+|[a-zA-Z]+)?\s*$")
_INT = re.compile(r"^\s*[-+]?\d+\s*$")
_RANGE = re.compile(r"^\s*(log\s*:)?([^:]+):([^:]+)(?::([^:]+))?\s*$")
_SUFFIX = {"duration": "s", "rate": "/s", "size": "GB"}


def quantity(value: Any) -> tuple[str, float] | None:
    """``(kind, base-unit number)`` for a number or a quantity string, else None.

    kind is ``number`` (bare), ``duration`` (seconds), ``rate`` (per second) or ``size`` (GB).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return ("number", float(value)) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    m = _QTY.match(value)
    if not m:
        return None
    unit = m.group(2)
    try:
        if unit is None:
            return "number", float(m.group(1))
        if unit.startswith("/"):
            return "rate", parse_rate_per_s(value)
        try:
            return "duration", parse_duration_s(value)
        except ValueError:
            return "size", parse_size_gb(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Domain:
    """One parameter's values: ``kind`` ``list`` (``values`` as written) or ``range``/``log`` (``lo``..``hi``).

    For ranges, ``unit`` is the quantity kind of the ends, ``integer`` whether the ends are integers, and
    ``count`` the number of grid points (None when not given: random/LHS only). ``spec`` is the text as given.
    """

    spec: str
    kind: str
    values: tuple = ()
    lo: float = 0.0
    hi: float = 0.0
    count: int | None = None
    unit: str = "number"
    integer: bool = False

    def grid(self) -> list:
        """The grid values, as raw scenario values (a range's points carry their base unit)."""
        if self.kind == "list":
            return list(self.values)
        if self.count is None:
            raise ValueError(f"range {self.spec!r} needs a number of points for a grid, e.g. "
                             f"'{self.spec.strip()}:5'")
        if self.kind == "log":
            pts = np.exp(np.linspace(math.log(self.lo), math.log(self.hi), self.count))
        else:
            pts = np.linspace(self.lo, self.hi, self.count)
        pts[0], pts[-1] = self.lo, self.hi  # exact ends (exp/log round-trip)
        if self.integer:
            ints = [int(round(x)) for x in pts]
            if len(set(ints)) != len(ints):
                raise ValueError(f"integer range {self.spec!r} gives repeated integers {ints}; use fewer "
                                 "points or write an end with a decimal point for fractional values")
            return [self._raw(x) for x in ints]
        return [self._raw(x) for x in pts]

    def sample(self, u: np.ndarray) -> list:
        """Map uniform draws ``u`` in [0, 1) to raw values: within [lo, hi] for ranges, among the list."""
        u = np.asarray(u, dtype=float)
        if self.kind == "list":
            idx = np.minimum((u * len(self.values)).astype(np.int64), len(self.values) - 1)
            return [self.values[i] for i in idx]
        if self.integer and self.kind == "range":
            a, b = math.ceil(self.lo), math.floor(self.hi)
            x = np.minimum(np.floor(a + u * (b - a + 1)), b)
            return [self._raw(int(v)) for v in x]
        if self.kind == "log":
            a, b = math.log(self.lo), math.log(self.hi)
            x = np.exp(a + u * (b - a))
        else:
            x = self.lo + u * (self.hi - self.lo)
        if self.integer:
            return [self._raw(int(min(max(round(v), self.lo), self.hi))) for v in x]
        return [self._raw(v) for v in x]

    def _raw(self, x) -> Any:
        if isinstance(x, int | np.integer) and self.unit == "number":
            return int(x)
        x = float(f"{float(x):.12g}")  # 0.7000000000000001 -> 0.7: stable keys and tidy columns
        if self.unit == "number":
            return x
        return f"{x:.12g}{_SUFFIX[self.unit]}"


def split_list(text: str) -> list[str]:
    """Split on commas outside brackets, braces and quotes: ``'[1,2],3'`` -> ``['[1,2]', '3']``."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def parse_spec(spec: Any) -> Domain:
    """A parameter's values from its spec (see the module docstring). Raises ValueError with what was expected."""
    if isinstance(spec, list | tuple):
        if not spec:
            raise ValueError("expected at least one value, got an empty list")
        return Domain(spec=yaml.safe_dump(list(spec), default_flow_style=True).strip(), kind="list",
                      values=tuple(spec))
    if not isinstance(spec, str):
        return Domain(spec=str(spec), kind="list", values=(spec,))
    text = spec.strip()
    if not text:
        raise ValueError("expected values like '1,2,4', a range '0.5:0.9:5' or 'log:1:1000:4', got ''")
    m = _RANGE.match(text)
    if m and ":" in text and not text.startswith(("[", "{", "'", '"')):
        return _range(text, bool(m.group(1)), m.group(2), m.group(3), m.group(4))
    values = []
    for item in split_list(text):
        if not item:
            raise ValueError(f"empty value in list {text!r}")
        try:
            values.append(yaml.safe_load(item))
        except yaml.YAMLError:
            raise ValueError(f"cannot read value {item!r} in {text!r} as YAML") from None
    return Domain(spec=text, kind="list", values=tuple(values))


def _range(text: str, log: bool, a: str, b: str, n: str | None) -> Domain:
    qa, qb = quantity(a), quantity(b)
    if qa is None or qb is None:
        bad = a if qa is None else b
        raise ValueError(f"range {text!r}: {bad.strip()!r} is not a number or a quantity like '90s', '20/s', "
                         "'80GB' (ranges are 'A:B:N' or 'log:A:B:N')")
    kinds = {qa[0], qb[0]} - {"number"}
    if len(kinds) > 1:
        raise ValueError(f"range {text!r}: ends in different units ({' and '.join(sorted(kinds))})")
    unit = kinds.pop() if kinds else "number"
    lo, hi = qa[1], qb[1]
    if lo > hi:
        raise ValueError(f"range {text!r}: the start must not exceed the end")
    count = None
    if n is not None:
        if not _INT.match(n) or int(n) < 1:
            raise ValueError(f"range {text!r}: the number of points must be a positive integer, got {n.strip()!r}")
        count = int(n)
        if count == 1 and lo != hi:
            raise ValueError(f"range {text!r}: one point cannot span {a.strip()}..{b.strip()}; give N >= 2")
    if log and lo <= 0:
        raise ValueError(f"log range {text!r}: both ends must be > 0")
    integer = unit == "number" and bool(_INT.match(a)) and bool(_INT.match(b))
    return Domain(spec=text, kind="log" if log else "range", lo=lo, hi=hi, count=count, unit=unit,
                  integer=integer)


def column_values(raw: list) -> list:
    """Values for a result column: base-unit numbers when every value is a quantity, else text.

    Integers stay integers when all values are integral bare numbers; booleans stay booleans when all are.
    """
    qs = [quantity(v) for v in raw]
    if raw and all(q is not None for q in qs):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
            return [int(v) for v in raw]
        return [q[1] for q in qs]
    if raw and all(isinstance(v, bool) for v in raw):
        return list(raw)
    return [v if isinstance(v, str) else yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("\n...")
            for v in raw]
