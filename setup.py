"""Build script: the package metadata is in pyproject.toml; this file only adds the compiled engine.

The replica engine (``infersim/engine/{kvcache,fastforward,recorder,sequences,replica,own_clock}.py``) and the
policies its inner loop calls (``infersim/policy/{batching,load}.py``) and the SRAM pipeline's round
(``infersim/perf/sram/round.py``) and the GPU step (``infersim/perf/gpu_step.py``) are plain Python that Cython can
compile as it is ("pure Python mode"; the ``.pxd`` files beside the modules only declare C types). The
compiled modules are *optional*: without Cython or a C compiler the build skips them and the same Python
source runs, with identical results, several times slower. ``INFERSIM_PURE_PYTHON=1`` at build time
skips compilation on purpose.
"""

import os

from setuptools import Extension, setup

#: dotted names under ``infersim`` (the same list as ``infersim.core.compiled.COMPILED_MODULES``)
ENGINE_MODULES = ("engine.kvcache", "engine.fastforward", "engine.recorder", "engine.sequences", "engine.replica",
                  "engine.own_clock", "engine.clock", "policy.batching", "policy.load", "perf.sram.round",
                  "perf.gpu_step")
DIRECTIVES = {
    "language_level": 3,
    "annotation_typing": False,  # the .py annotations are documentation; C types come from the .pxd files
    "binding": False,
}


def engine_extensions() -> list:
    if os.environ.get("INFERSIM_PURE_PYTHON"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:  # pragma: no cover - the build requirements normally provide Cython
        return []
    exts = cythonize([Extension(f"infersim.{m}", [f"src/infersim/{m.replace('.', '/')}.py"]) for m in ENGINE_MODULES],
                     include_path=["src"], compiler_directives=DIRECTIVES, quiet=True)
    for ext in exts:  # set after cythonize, which rebuilds the Extension objects without this flag
        ext.optional = True  # a failed C compile skips the module: the Python source runs instead
    return exts


setup(ext_modules=engine_extensions())
