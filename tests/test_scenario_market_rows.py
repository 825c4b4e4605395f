"""Every price and speed a shipped scenario uses resolves to a row of the market dataset with a source and a
date: token prices (typed references, presets, SRAM defaults), published speeds (presets and typed medians),
and the GPU prices of GPU fleets (Baseten's customer list and the provider's rental rate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infersim import economics as econ
from infersim.catalog import market
from infersim.catalog.token_apis import token_api_entries
from infersim.validate import load_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))


def _price_row(provider: str, model: str, p_in: float, p_out: float) -> market.PriceRow:
    rows = [r for r in market.prices(model, provider)
            if (r.input_usd_per_mtok, r.output_usd_per_mtok) == (p_in, p_out)]
    assert rows, f"no {provider} {model} market row at ${p_in} / ${p_out}"
    return rows[-1]


def _speed_row(value: float) -> market.SpeedRow:
    rows = [r for r in market.speed_rows() if r.output_tok_s_per_user == value]
    assert rows, f"no provider_speeds.csv row at {value} tok/s/user"
    return rows[0]


def _gpu_row(hardware: str, usd_per_gpu_hour: float) -> market.GpuRentalRow:
    rows = [r for r in market.gpu_rentals(hardware) if abs(r.usd_per_gpu_hour - usd_per_gpu_hour) < 1e-9]
    assert rows, f"no gpu_rental.csv row for {hardware} at ${usd_per_gpu_hour}/GPU-h"
    return rows[0]


def _preset_rows(preset: str):
    raw = token_api_entries()[preset]
    rows = []
    if raw.get("prices"):
        provider = raw["provider"]
        rows.append(_price_row(provider, raw["model"], raw["prices"]["input_usd_per_mtok"],
                               raw["prices"]["output_usd_per_mtok"]))
    speed = raw["output_speed_tok_s"]["median"]
    rows.append(_speed_row(speed))
    return rows


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_price_and_speed_has_a_dated_sourced_row(path):
    sc = load_scenario(path)
    rows = []
    for plat in sc.platforms:
        if plat.kind in ("lpu", "wafer"):
            if plat.prices is not None:
                assert plat.prices.provider, f"{plat.name}: typed prices without a market reference"
                rows.append(market.price(plat.prices.provider, plat.prices.model, plat.prices.as_of))
            else:
                rows.append(market.price(plat.provider, plat.model))
        elif plat.kind == "token_api":
            if plat.prices is not None:
                assert plat.prices.provider, f"{plat.name}: typed prices without a market reference"
                rows.append(market.price(plat.prices.provider, plat.prices.model, plat.prices.as_of))
            if plat.preset:
                rows += _preset_rows(plat.preset)
            if plat.output_speed is not None:
                rows.append(_speed_row(plat.output_speed.median))
        else:  # gpu_fleet
            if plat.router is not None and plat.router.token_api is not None:
                rows += _preset_rows(plat.router.token_api.preset)
            for d in plat.deployments:
                if d.usd_per_gpu_hour is not None:
                    rows.append(_gpu_row(d.hardware, d.usd_per_gpu_hour))
                    continue
                prov = econ.provider_usd_per_gpu_hour(d.hardware, None, "on_demand",
                                                      plat.economics.provider_usd_per_gpu_hour)
                rows.append(_gpu_row(d.hardware, prov))
                if plat.economics.customer.kind != "per_token":
                    cust, src = econ.customer_usd_per_gpu_minute(d.hardware, None,
                                                                 plat.economics.customer.usd_per_gpu_minute)
                    if src == "price_list":
                        rows.append(_gpu_row(d.hardware, round(cust * 60, 2)))
            for p in plat.pools:
                if p.pricing.usd_per_gpu_hour is not None:
                    rows.append(_gpu_row(p.hardware, p.pricing.usd_per_gpu_hour))
    assert rows
    for r in rows:
        date = getattr(r, "as_of", None) or getattr(r, "date", None) or getattr(r, "quarter", None)
        assert r.source and r.retrieved and date, r
