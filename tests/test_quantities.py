"""The quantity registry: one name per quantity, every window known, and the run table's columns all named there."""

from __future__ import annotations

from infersim.core import quantities as q
from infersim.core.tables import CAPACITY_COLUMNS, ECONOMICS_COLUMNS, FLEET_COLUMNS, SUMMARY_COLUMNS


def test_one_label_per_quantity():
    labels = [x.label for x in q.QUANTITIES.values()]
    assert len(labels) == len(set(labels)), "two quantities share a printed name"


def test_every_quantity_has_a_known_window_and_unit():
    for x in q.QUANTITIES.values():
        assert x.window in q.WINDOWS and x.window in q.WINDOW_SHORT
        assert x.unit and x.meaning
    # the two windows the issue found mixed in one table are different windows
    assert q.window_of("utilization") == "window" and q.window_of("idle_share") == "billed"
    assert q.window_of("customer_usd") == "run"


def test_money_splits_into_its_named_parts():
    assert q.label("customer_gpu_minutes_usd") == "of which GPU-minutes"
    assert q.label("customer_token_api_usd") == "of which token-API spill"
    assert q.label("not_a_column") == "not_a_column"


def test_run_table_columns_are_registered():
    cols = {k for table in (SUMMARY_COLUMNS, FLEET_COLUMNS, ECONOMICS_COLUMNS) for _h, k, _t in table}
    cols -= {"platform", "kind"}
    missing = sorted(c for c in cols if c not in q.QUANTITIES)
    assert not missing, f"run-table columns without a registry entry: {missing}"
    assert CAPACITY_COLUMNS  # capacity columns are sizing properties; they are registered as they move over
