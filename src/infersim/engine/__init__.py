"""The replica engine: continuous batching, paged KV cache, prefix caching, fast-forward (mechanism).

``kvcache``, ``fastforward``, ``recorder``, ``sequences``, ``replica`` and ``own_clock`` are plain Python
that the build compiles with Cython when it can, together with the policies the replica calls in its inner
loop (``policy.batching``, ``policy.load``); see ``infersim.core.compiled``. ``compiled()`` says which one runs.
"""

from __future__ import annotations


def compiled() -> bool:
    """Whether the engine running in this process is the compiled one."""
    from infersim.engine import replica

    return not replica.__file__.endswith(".py")
