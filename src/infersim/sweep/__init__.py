"""Parameter sweeps: many variants of one scenario, replicated, on local processes or a Dask cluster.

- ``values``: the value syntax of one swept parameter (lists, ``a:b:n`` ranges, ``log:a:b:n`` log ranges).
- ``plan``: the points (grid, random, Latin hypercube), replication seeds, validation of every point.
- ``execute``: running one point x replication unit, and the local-process / Dask executors.
- ``results``: the per-unit part files (resume), the tidy tables and the confidence intervals.
- ``runner``: the sweep loop with progress, resume and interrupt handling; ``cli``: ``infersim sweep``.

This package imports nothing at import time, so ``infersim.scenario.sweep`` can use ``values`` without a cycle.
See ``docs/sweeps.md`` for the user-facing description and the output contract.
"""
