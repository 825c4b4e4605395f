"""``infersim solve``: brentq over simulations finds the knob value where two platforms' metrics meet."""

from __future__ import annotations

import pytest
import yaml

from infersim.cli import main
from infersim.core.errors import InfersimError
from infersim.sweep.solve import solve

SC = {
    "name": "s", "seed": 1, "duration": 20, "drain": 60,
    "workload": {"streams": [{"name": "s", "arrival": {"kind": "constant", "rate": 2},
                              "input_tokens": {"kind": "fixed", "value": 500},
                              "output_tokens": {"kind": "fixed", "value": 50}}]},
    "platforms": [
        {"name": "a", "kind": "token_api", "model": "gpt-oss-120b",
         "prices": {"input_usd_per_mtok": 0.2, "output_usd_per_mtok": 0.6},
         "ttft": {"median": 0.1}, "output_speed": {"median": 100}},
        {"name": "b", "kind": "token_api", "model": "gpt-oss-120b",
         "prices": {"provider": "fireworks", "model": "gpt-oss-120b", "as_of": "2026-06"},
         "ttft": {"median": 0.1}, "output_speed": {"median": 525.0}}],
}


@pytest.fixture
def file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(SC))
    return f


def test_price_scale_where_two_apis_charge_the_same_per_mtok(file):
    sol = solve(file, "platforms[1].prices.scale", 0.5, 3.0, platform="b", metric="customer_usd_per_mtok",
                match="a", xtol=1e-9)
    # same tokens on both: (500 x 0.2 + 50 x 0.6) / (500 x 0.15 + 50 x 0.6) = 130 / 105 (Fireworks row 0.15/0.60)
    assert sol.root == pytest.approx(130 / 105, rel=1e-6)
    assert sol.bracket == (0.5, 3.0) and sol.f_bracket[0] < 0 < sol.f_bracket[1]
    assert sol.at_root["b"]["slo_attainment"] == 1.0


def test_bracket_without_sign_change_is_an_error(file, capsys):
    with pytest.raises(InfersimError, match="does not change sign"):
        solve(file, "platforms[1].prices.scale", 2.0, 3.0, platform="b", metric="customer_usd_per_mtok", match="a")
    assert main(["solve", str(file), "--set", "platforms[1].prices.scale", "--bracket", "2", "3",
                 "--platform", "b", "--metric", "customer_usd_per_mtok", "--match", "a"]) == 2
    assert "widen the bracket" in capsys.readouterr().err
