"""Scenario files, described and validated: schema (pydantic), YAML paths, the reader (errors name the path).

Imports only ``core`` and ``catalog``. ``infersim.validate.load_scenario`` adds the checks that need the
builders (memory fit, SRAM pipelines, traces) and is what callers use to load a file.
"""

from infersim.scenario.loader import read_scenario
from infersim.scenario.paths import parse_path, set_path
from infersim.scenario.schema import Scenario

__all__ = ["Scenario", "parse_path", "read_scenario", "set_path"]
