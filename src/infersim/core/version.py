"""The installed infersim version, for provenance lines (charts, calibrate's chart): read from the package
metadata, so every layer can print it without importing the application package."""

from __future__ import annotations

from functools import cache


@cache
def installed_version() -> str:
    """``infersim``'s version from its package metadata, or a phrase saying it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("infersim")
    except PackageNotFoundError:
        return "(version unknown: not installed)"
