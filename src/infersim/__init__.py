"""infersim: a discrete-event simulator of AI inference platforms.

Notebook API::

    from infersim import load_scenario, simulate
    sc = load_scenario("scenarios/cursor.yaml")
    res = simulate(sc)            # Results: .summary, .requests, .timeline, .streams (DataFrames)
"""

from infersim.core.compiled import install_source_finder

install_source_finder()  # before anything imports a compilable module (INFERSIM_PURE_PYTHON)

from infersim.scenario import Scenario  # noqa: E402
from infersim.validate import load_scenario  # noqa: E402

__version__ = "0.1.0"


def simulate(scenario, **kwargs):
    """Simulate every platform of ``scenario`` against one workload (see ``infersim.results.simulate.simulate``)."""
    from infersim.results.simulate import simulate as _simulate

    return _simulate(scenario, **kwargs)


__all__ = ["Scenario", "__version__", "load_scenario", "simulate"]
