"""Scenario files: schema (pydantic) and loader (YAML with errors that name the path)."""

from infersim.scenario.loader import load_scenario, parse_path, set_path
from infersim.scenario.schema import Scenario

__all__ = ["Scenario", "load_scenario", "parse_path", "set_path"]
