"""The replica engine: continuous batching, paged KV cache, prefix caching, fast-forward (mechanism).

``kvcache``, ``fastforward``, ``recorder``, ``replica`` and ``own_clock`` are plain Python that the build compiles with Cython when it
can (``setup.py``; C types in the ``.pxd`` files beside them). Compiled or not, they are the same source and
give identical results; ``compiled()`` says which one runs. ``INFERSIM_PURE_PYTHON=1`` in the environment
makes this process import the Python source even where the compiled modules are installed (to compare the
two, or to profile the engine line by line).
"""

from __future__ import annotations

import importlib.util
import os
import sys

COMPILED_MODULES = ("kvcache", "fastforward", "recorder", "replica", "own_clock")


class _PythonSourceFirst:
    """Meta-path finder returning the ``.py`` source of the engine's compilable modules."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        pkg, _, mod = name.rpartition(".")
        if pkg != __name__ or mod not in COMPILED_MODULES:
            return None
        return importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), mod + ".py"))


if os.environ.get("INFERSIM_PURE_PYTHON") and not any(f is _PythonSourceFirst for f in sys.meta_path):
    sys.meta_path.insert(0, _PythonSourceFirst)


def compiled() -> bool:
    """Whether the engine running in this process is the compiled one."""
    from infersim.engine import replica

    return not replica.__file__.endswith(".py")
