"""infersim: a discrete-event simulator of AI inference platforms.

Notebook API::

    from infersim import load_scenario, simulate
    sc = load_scenario("scenarios/cursor.yaml")
    res = simulate(sc)            # Results: .summary, .requests, .timeline, .streams (DataFrames)
"""

from infersim.scenario import Scenario
from infersim.validate import load_scenario

__version__ = "0.1.0"


def simulate(scenario, **kwargs):
    """Simulate every platform of ``scenario`` against one workload (see ``infersim.results.simulate.simulate``)."""
    from infersim.results.simulate import simulate as _simulate

    return _simulate(scenario, **kwargs)


__all__ = ["Scenario", "__version__", "load_scenario", "simulate"]
