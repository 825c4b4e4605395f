"""Platforms on the SimPy clock: arrivals, dispatch, the GPU fleet, SRAM pipelines and token APIs, each producing a PlatformRun."""
