"""Which modules the build compiles with Cython, and the switch that runs their Python source instead.

``setup.py`` compiles ``COMPILED_MODULES`` (plain Python that Cython compiles as it is; C types in the
``.pxd`` files beside them) when it can. Compiled or not, they are the same source and give identical
results. ``INFERSIM_PURE_PYTHON=1`` in the environment makes this process import their ``.py`` source even
where the compiled modules are installed (to compare the two, or to profile line by line); the package's
``__init__`` calls ``install_source_finder`` before any of them can be imported.
"""

from __future__ import annotations

import importlib.util
import os
import sys

#: dotted names under ``infersim``; setup.py builds ``src/infersim/<name with / for .>.py``
COMPILED_MODULES = ("engine.kvcache", "engine.fastforward", "engine.recorder", "engine.sequences", "engine.replica",
                    "engine.own_clock", "engine.clock", "policy.batching", "policy.load",
                    "perf.sram.round", "perf.gpu_step")
_FULL = {f"infersim.{m}" for m in COMPILED_MODULES}


class _PythonSourceFirst:
    """Meta-path finder returning the ``.py`` source of the compilable modules."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name not in _FULL:
            return None
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        return importlib.util.spec_from_file_location(name, os.path.join(root, *name.split(".")[1:]) + ".py")


def install_source_finder() -> None:
    """Under ``INFERSIM_PURE_PYTHON``, make the compilable modules import from their Python source."""
    if os.environ.get("INFERSIM_PURE_PYTHON") and not any(f is _PythonSourceFirst for f in sys.meta_path):
        sys.meta_path.insert(0, _PythonSourceFirst)
