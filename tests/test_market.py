"""The dated market dataset (catalog.market) and scenario price references."""

from __future__ import annotations

import pytest

from infersim.catalog import market
from infersim.cli import main
from infersim.core.errors import InfersimError
from infersim.scenario.competitors import Prices


def test_every_row_has_source_and_retrieval_date():
    for r in market.price_rows():
        assert r.source and r.retrieved, r
    for r in market.speed_rows():
        assert r.source and r.retrieved and r.measured_by, r
    for r in market.gpu_rental_rows():
        assert r.source and r.source_url and r.retrieved, r


def test_price_default_latest_on_or_before_as_of_then_lowest_output():
    # Two 2026 Groq rows disagree (litellm 1.109.1 2026-01: 0.15/0.60; kilocode 2026-06: 0.15/0.75); both kept.
    assert market.price("groq", "gpt-oss-120b", "2026-03").output_usd_per_mtok == 0.60
    assert market.price("groq", "gpt-oss-120b", "2026-06").output_usd_per_mtok == 0.75
    assert len(market.prices("gpt-oss-120b", "groq")) == 3
    # Bedrock and its 'mantle' endpoint are one provider slug; both rows 0.15 / 0.60.
    assert market.price("aws-bedrock", "gpt-oss-120b").input_usd_per_mtok == 0.15


def test_price_errors_name_what_exists():
    with pytest.raises(InfersimError, match="did you mean 'gpt-oss-120b'"):
        market.price("groq", "gpt-oss-12b")
    with pytest.raises(InfersimError, match="providers with one: .*Groq"):
        market.price("nobody", "gpt-oss-120b")
    with pytest.raises(InfersimError, match="first: 2025-09-01"):
        market.price("groq", "gpt-oss-120b", "2024-12")


def test_speed_prefers_independent_benchmark_over_vendor_claim():
    row = market.speed("cerebras", "gpt-oss-120b")
    assert row.output_tok_s_per_user == 1844.1 and row.measured_by == "Artificial Analysis"


def test_gpu_rental_default_and_terms():
    assert market.gpu_rental("h100-sxm", term="reserved").usd_per_gpu_hour == 2.72
    assert market.gpu_rental("h100-sxm", provider_class="hyperscaler").usd_per_gpu_hour == 6.88
    # spot: latest quarter, then lowest -> GCP's 2026Q3 Spot row; marketplace class -> Spheron's 2026Q2 row
    assert market.gpu_rental("h100-sxm", term="spot").usd_per_gpu_hour == 6.571
    assert market.gpu_rental("h100-sxm", provider_class="marketplace", term="spot").provider == "Spheron"
    with pytest.raises(InfersimError, match="no spot rental price for 'l40s'"):
        market.gpu_rental("l40s", term="spot")


def test_scenario_price_reference_resolves_and_labels_proxy():
    p = Prices.model_validate({"provider": "cerebras", "model": "gpt-oss-120b", "as_of": "2026-10"})
    assert (p.input_usd_per_mtok, p.output_usd_per_mtok) == (0.35, 0.75)
    assert "inference-docs.cerebras.ai" in p.source
    assert p.proxy_for("gpt-oss-120b") is None
    assert p.label("qwen2.5-coder-7b").startswith("PROXY (gpt-oss-120b price for qwen2.5-coder-7b)")


@pytest.mark.parametrize("bad, at", [
    ({"provider": "groq", "model": "gpt-oss-120b", "output_usd_per_mtok": 1}, "output_usd_per_mtok"),
    ({"provider": "groq"}, "model"),
    ({"provider": "groq", "model": "gpt-oss-120b", "as_of": "june"}, "as_of"),
    ({"provider": "groq", "model": "nope"}, "model"),
])
def test_scenario_price_reference_errors(bad, at):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as ei:
        Prices.model_validate(bad)
    assert ei.value.errors()[0]["ctx"]["error"].at == at


def test_cli_catalog_prices(capsys):
    assert main(["catalog", "prices", "--model", "kimi-k2", "--provider", "groq"]) == 0
    out = capsys.readouterr().out
    assert "moonshotai/kimi-k2-instruct-0905" in out and "0.15" in out
    assert main(["catalog", "gpus", "--model", "b200"]) == 0
    assert "Hyperstack" in capsys.readouterr().out
    assert main(["catalog", "speeds", "--model", "no-such-model"]) == 1


def test_unknown_price_row_in_scenario_is_a_yaml_path_error(tmp_path, capsys):
    from pathlib import Path

    text = Path("scenarios/cursor.yaml").read_text().replace(
        "    prices: {provider: groq, model: llama-3.1-8b, as_of: 2026-06}",
        "    prices: {provider: groq, model: gpt-oss-12b, as_of: 2026-06}")
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert "platforms[2].prices.model" in err and "did you mean 'gpt-oss-120b'" in err


def _quarter_index(q: str) -> int:
    return int(q[:4]) * 4 + int(q[5]) - 1


def test_spot_rows_are_sourced_and_below_on_demand():
    spot = market.gpu_rentals(term="spot")
    assert {r.hardware for r in spot} >= {"h100-sxm", "h200", "a100-80g", "b200"}
    assert {r.provider_class for r in spot} >= {"hyperscaler", "marketplace"}
    checked = []
    for r in spot:
        assert r.source and r.source_url.startswith("https://") and r.retrieved and r.quarter, r
        on_demand = [o for o in market.gpu_rentals(r.hardware, provider_class=r.provider_class, term="on_demand")
                     if o.quarter]
        same = [o for o in on_demand if o.provider == r.provider]
        pool = same or on_demand  # the provider's own on-demand rate where the table has one, else the class's
        if not pool:
            continue
        gap = min(abs(_quarter_index(o.quarter) - _quarter_index(r.quarter)) for o in pool)
        nearest = [o for o in pool if abs(_quarter_index(o.quarter) - _quarter_index(r.quarter)) == gap]
        cheapest = min(nearest, key=lambda o: o.usd_per_gpu_hour)
        assert r.usd_per_gpu_hour < cheapest.usd_per_gpu_hour, (r.cite(), cheapest.cite())
        checked.append(r)
    assert len(checked) == len(spot)  # every shipped spot row has an on-demand row to be checked against


def test_spot_pool_priced_from_market_row(capsys):
    from infersim.scenario.fleet import Pool

    pool = Pool.model_validate({"name": "s", "hardware": "h100-sxm", "limit_gpus": 8,
                                "pricing": {"kind": "spot", "provider": "gcp", "quarter": "2026Q3"}})
    assert pool.pricing.usd_per_gpu_hour == 6.571 and "silybench-data" in pool.pricing.source
    assert main(["catalog", "gpus", "--model", "b200", "--provider", "spheron"]) == 0
    out = capsys.readouterr().out
    assert "spot" in out and "2.68" in out and "8.32" in out


def test_catalog_gpus_filters_by_term(capsys):
    from infersim.cli import main

    assert main(["catalog", "gpus", "--model", "h100-sxm", "--term", "spot"]) == 0
    out = capsys.readouterr().out
    assert "spot" in out and "on_demand" not in out
    assert main(["catalog", "gpus", "--term", "spt"]) == 2
    assert "--term: unknown term 'spt'" in capsys.readouterr().err
