"""Parsing of human-friendly quantities used in scenario files.

Durations become seconds (``500ms``, ``90s``, ``15m``, ``2h``, ``1d``); sizes become gigabytes
(``80GB``, ``512MB``, ``1.5TB``; decimal SI, as accelerator vendors quote them); rates become
events per second (``20/s``, ``1200/min``, ``5/h``, ``400000000/day``). Plain numbers pass through
unchanged in the base unit (seconds, GB, per second).
"""

from __future__ import annotations

import math
import re

_NUM = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"

_DURATION_UNITS = {
    "us": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0,
    "h": 3600.0, "hr": 3600.0, "d": 86400.0, "day": 86400.0,
}
_SIZE_UNITS = {"b": 1e-9, "kb": 1e-6, "mb": 1e-3, "gb": 1.0, "tb": 1e3,
               "kib": 1024 / 1e9, "mib": 1024**2 / 1e9, "gib": 1024**3 / 1e9, "tib": 1024**4 / 1e9}
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "min": 1 / 60.0, "m": 1 / 60.0, "h": 1 / 3600.0, "hr": 1 / 3600.0,
               "day": 1 / 86400.0, "d": 1 / 86400.0}

_DURATION_RE = re.compile(rf"^\s*{_NUM}\s*([a-zA-Z]+)?\s*$")
_SIZE_RE = re.compile(rf"^\s*{_NUM}\s*([a-zA-Z]+)?\s*$")
_RATE_RE = re.compile(rf"^\s*{_NUM}\s*(?:/\s*([a-zA-Z]+))?\s*$")


def _number(value: object, what: str) -> float | None:
    if isinstance(value, bool):
        raise ValueError(f"expected a {what}, got {value!r}")
    if isinstance(value, int | float):
        return _finite(float(value), value, what)
    return None


def _finite(x: float, value: object, what: str) -> float:
    """``x`` unless it is infinite or NaN (``.inf`` in YAML, or ``1e999s``), which no quantity here may be."""
    if not math.isfinite(x):
        raise ValueError(f"expected a finite {what}, got {value!r}")
    return x


def _parse(value: object, what: str, pattern: re.Pattern[str], units: dict[str, float], default_unit: str,
           expected: str, known: str) -> float:
    """The one parser behind the three below: a bare number is in ``default_unit``; otherwise
    ``pattern`` splits number and unit, looked up (lower-cased) in ``units``."""
    num = _number(value, what)
    if num is not None:
        return num
    m = pattern.match(str(value))
    if not m:
        raise ValueError(f"expected a {what} like {expected}, got {value!r}")
    unit = (m.group(2) or default_unit).lower()
    if unit not in units:
        raise ValueError(f"unknown {what} unit {m.group(2)!r} in {value!r} (use {known})")
    return _finite(float(m.group(1)) * units[unit], value, what)


def parse_duration_s(value: object) -> float:
    """``'90s'`` → 90.0 seconds. Accepts us, ms, s, m/min, h, d; a bare number is seconds."""
    return _parse(value, "duration", _DURATION_RE, _DURATION_UNITS, "s", "'500ms', '90s', '15m' or '2h'",
                  "ms, s, m, h or d")


def parse_size_gb(value: object) -> float:
    """``'80GB'`` → 80.0 (decimal gigabytes). A bare number is GB."""
    return _parse(value, "size", _SIZE_RE, _SIZE_UNITS, "gb", "'80GB' or '512MB'", "MB, GB, TB, GiB")


def parse_rate_per_s(value: object) -> float:
    """``'1200/min'`` → 20.0 per second. A bare number is per second."""
    return _parse(value, "rate", _RATE_RE, _RATE_UNITS, "s", "'20/s' or '1200/min'", "/s, /min, /h or /day")


def format_duration(seconds: float) -> str:
    """Compact human form for tables: 0.0123 → '12.3ms'."""
    if seconds != seconds:  # NaN
        return "-"
    a = abs(seconds)
    if a == 0:
        return "0s"
    if a < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if a < 1:
        return f"{seconds * 1e3:.1f}ms"
    if a < 120:
        return f"{seconds:.2f}s"
    if a < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def duration_option_s(text: str | None, flag: str = "--duration") -> float | None:
    """A command-line duration option in seconds (None when not given); a bad value names the flag (exit 2)."""
    from infersim.core.errors import InfersimError

    if text is None:
        return None
    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise InfersimError(f"{flag}: {exc}") from None
