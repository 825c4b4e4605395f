"""Performance models: how long one engine step takes on given hardware (pure functions)."""

from infersim.perf.base import StepModel, StepTime, prefill_pairs
from infersim.perf.gpu import GpuConfig, GpuRoofline
from infersim.perf.memory import MemoryPlan, plan_memory
from infersim.perf.params import PerfParams

__all__ = ["GpuConfig", "GpuRoofline", "MemoryPlan", "PerfParams", "StepModel", "StepTime",
           "plan_memory", "prefill_pairs"]
