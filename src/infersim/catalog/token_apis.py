"""Token-API presets as shipped data (``data/token_apis.yaml``): one raw entry per ``provider/model`` id.

The scenario validates preset names against these; ``perf.token_api.token_api_presets`` builds the latency
models and prices from them.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml


@cache
def token_api_entries() -> dict[str, dict]:
    """The shipped presets' raw entries by id (``provider/model``), in file order."""
    res = resources.files("infersim.catalog") / "data" / "token_apis.yaml"
    return {raw["id"]: raw for raw in yaml.safe_load(res.read_text())["token_apis"]}
