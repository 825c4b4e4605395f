"""Human-friendly quantities in scenario files: durations → seconds, sizes → GB, rates → per second."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infersim.core.units import format_duration, parse_duration_s, parse_rate_per_s, parse_size_gb


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0),
    ("250us", 250e-6), ("1.5h", 5400.0), ("10min", 600.0), ("3sec", 3.0), ("2hr", 7200.0), ("1day", 86400.0),
    (" 2 h ", 7200.0), ("1e3ms", 1.0), (".5s", 0.5), ("90", 90.0), ("2H", 7200.0), ("0s", 0.0),
    (45, 45.0), (2.5, 2.5),
])
def test_durations(text, seconds):
    assert parse_duration_s(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(("text", "gb"), [
    ("80GB", 80.0), ("80 gb", 80.0), ("512MB", 0.512), ("1.5TB", 1500.0), ("64KB", 64e-6), ("1000B", 1e-6),
    ("1GiB", 1024**3 / 1e9), ("256MiB", 256 * 1024**2 / 1e9), ("1TiB", 1024**4 / 1e9), ("141", 141.0),
    (24, 24.0), (0.5, 0.5),
])
def test_sizes(text, gb):
    assert parse_size_gb(text) == pytest.approx(gb, rel=1e-12)


@pytest.mark.parametrize(("text", "per_s"), [
    ("20/s", 20.0), ("1200/min", 20.0), ("1200/m", 20.0), ("36/h", 0.01), ("400000000/day", 400e6 / 86400),
    ("10 / min", 10 / 60), ("4.6/s", 4.6), ("3/sec", 3.0), ("7", 7.0), ("1e2/s", 100.0), (5, 5.0), (0.25, 0.25),
])
def test_rates(text, per_s):
    assert parse_rate_per_s(text) == pytest.approx(per_s, rel=1e-12)


@pytest.mark.parametrize(("parse", "value", "expected"), [
    (parse_duration_s, "10 parsecs", "unknown duration unit 'parsecs' in '10 parsecs' (use ms, s, m, h or d)"),
    (parse_duration_s, "fast", "expected a duration like '500ms', '90s', '15m' or '2h', got 'fast'"),
    (parse_duration_s, "", "expected a duration like"),
    (parse_duration_s, "5 s s", "expected a duration like"),
    (parse_duration_s, "1/s", "expected a duration like"),
    (parse_duration_s, None, "expected a duration like '500ms', '90s', '15m' or '2h', got None"),
    (parse_duration_s, True, "expected a duration, got True"),
    (parse_duration_s, [5], "expected a duration like"),
    (parse_size_gb, "80 parsecs", "unknown size unit 'parsecs' in '80 parsecs' (use MB, GB, TB, GiB)"),
    (parse_size_gb, "80G", "unknown size unit 'G'"),
    (parse_size_gb, "big", "expected a size like '80GB' or '512MB', got 'big'"),
    (parse_size_gb, False, "expected a size, got False"),
    (parse_rate_per_s, "fast", "expected a rate like '20/s' or '1200/min', got 'fast'"),
    (parse_rate_per_s, "5/fortnight", "unknown rate unit 'fortnight' in '5/fortnight' (use /s, /min, /h or /day)"),
    (parse_rate_per_s, "20/", "expected a rate like"),
    (parse_rate_per_s, "20 per s", "expected a rate like"),
    (parse_rate_per_s, "/s", "expected a rate like"),
    (parse_rate_per_s, True, "expected a rate, got True"),
    (parse_duration_s, float("inf"), "expected a finite duration, got inf"),
    (parse_duration_s, "1e400s", "expected a finite duration, got '1e400s'"),
    (parse_size_gb, float("nan"), "expected a finite size, got nan"),
    (parse_rate_per_s, "1e400/s", "expected a finite rate, got '1e400/s'"),
])
def test_bad_input_raises_value_error_saying_what_was_expected(parse, value, expected):
    with pytest.raises(ValueError) as e:
        parse(value)
    assert expected in str(e.value)


finite = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)


@given(finite)
def test_numbers_pass_through_in_the_base_unit(x):
    assert parse_duration_s(x) == x
    assert parse_size_gb(x) == x
    assert parse_rate_per_s(x) == x
    assert parse_duration_s(repr(x)) == x
    assert parse_size_gb(repr(x)) == x
    assert parse_rate_per_s(repr(x)) == x


@given(finite)
def test_round_trip_with_base_units(x):
    assert parse_duration_s(f"{x!r}s") == x
    assert parse_size_gb(f"{x!r}GB") == x
    assert parse_rate_per_s(f"{x!r}/s") == x


@given(finite, st.sampled_from([("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("min", 60.0), ("h", 3600.0),
                                 ("d", 86400.0)]))
def test_duration_units_scale(x, unit):
    name, factor = unit
    assert math.isclose(parse_duration_s(f"{x!r}{name}"), x * factor, rel_tol=1e-12)
    assert math.isclose(parse_duration_s(f" {x!r} {name.upper()} "), x * factor, rel_tol=1e-12)


@given(finite, st.sampled_from([("MB", 1e-3), ("GB", 1.0), ("TB", 1e3), ("GiB", 1024**3 / 1e9)]))
def test_size_units_scale(x, unit):
    name, factor = unit
    assert math.isclose(parse_size_gb(f"{x!r}{name}"), x * factor, rel_tol=1e-12)


@given(finite, st.sampled_from([("s", 1.0), ("min", 1 / 60), ("h", 1 / 3600), ("day", 1 / 86400)]))
def test_rate_units_scale(x, unit):
    name, factor = unit
    assert math.isclose(parse_rate_per_s(f"{x!r}/{name}"), x * factor, rel_tol=1e-12)


@given(st.integers(min_value=0, max_value=10**9))
def test_integer_durations(n):
    assert parse_duration_s(f"{n}h") == n * 3600
    assert parse_duration_s(f"{n}m") == n * 60
    assert parse_rate_per_s(f"{60 * n}/min") == pytest.approx(n, rel=1e-12)


@given(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False))
def test_format_duration_reads_back_close(seconds):
    text = format_duration(seconds)
    assert math.isclose(parse_duration_s(text), seconds, rel_tol=0.05, abs_tol=1e-6)


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0123, "12.3ms"), (5e-5, "50us"), (1.5, "1.50s"), (600, "10.0m"), (9000, "2.5h"), (float("nan"), "-"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
