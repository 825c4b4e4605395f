"""The compiled engine and its Python source give identical results.

``setup.py`` compiles ``infersim/engine/{kvcache,fastforward,recorder,replica}.py`` with Cython when it can;
the same source runs uncompiled otherwise (or with ``INFERSIM_PURE_PYTHON=1``). Runs here cover both clocks
(replicas alone behind round robin, and the shared SimPy clock behind least-outstanding with autoscaling),
prefix caching (long and short shared prefixes at vLLM's and SGLang's blocks, conversations), chunked prefill
and preemption.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from infersim.engine import compiled

SCRIPT = textwrap.dedent('''
    import sys
    from conftest import scenario
    from infersim.engine import compiled
    from infersim.results.simulate import simulate

    streams = [{"name": "chat", "arrival": {"kind": "poisson", "rate": 25}, "input_tokens": {"kind": "lognormal", "median": 900, "p99": 9000, "max": 16000},
                "output_tokens": {"kind": "lognormal", "median": 120, "p99": 1200, "max": 3000},
                "prefix": {"kind": "shared", "tokens": 768, "groups": 3}},
               {"name": "system", "arrival": {"kind": "poisson", "rate": 8}, "input_tokens": {"kind": "uniform", "low": 200, "high": 900},
                "output_tokens": {"kind": "fixed", "value": 60}, "prefix": {"kind": "shared", "tokens": 150, "groups": 2}},
               {"name": "conv", "arrival": {"kind": "poisson", "rate": 6}, "input_tokens": {"kind": "fixed", "value": 120},
                "output_tokens": {"kind": "fixed", "value": 40}, "prefix": {"kind": "conversation", "turns": 4, "sessions": 8}}]
    deps = {"alone": {"replicas": 3, "engine": {"kind": "vllm", "max_batched_tokens": 1024,
                                                "gpu_memory_utilization": 0.3}},
            "shared": {"load_balancer": {"kind": "least_outstanding"}, "engine": {"kind": "sglang"},
                       "autoscaling": {"kind": "baseten", "max_replicas": 3, "concurrency_target": 8}}}
    for name, dep in deps.items():
        base = {"model": "llama-3.1-8b", "hardware": "a100-80g", "precision": "bf16"}
        sc = scenario(**{"duration": 40, "workload.streams": streams,
                         "platforms[0].deployments": [{**base, **dep}]})
        res = simulate(sc, timeline_points=40)
        for table in ("requests", "summary", "timeline"):
            getattr(res, table).to_pickle(f"{sys.argv[1]}/{name}-{table}.pkl")
    print("compiled" if compiled() else "python")
''')


def _run(out, pure: bool) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    env.pop("INFERSIM_PURE_PYTHON", None)
    if pure:
        env["INFERSIM_PURE_PYTHON"] = "1"
    out.mkdir()
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_compiled_and_python_engines_agree(tmp_path):
    a = _run(tmp_path / "default", pure=False)
    b = _run(tmp_path / "pure", pure=True)
    assert b == "python" and a == ("compiled" if compiled() else "python")
    for name in ("alone", "shared"):
        for table in ("requests", "summary", "timeline"):
            pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "default" / f"{name}-{table}.pkl"),
                                          pd.read_pickle(tmp_path / "pure" / f"{name}-{table}.pkl"),
                                          check_exact=True, obj=f"{name} {table}")
    for name in ("alone", "shared"):
        req = pd.read_pickle(tmp_path / "default" / f"{name}-requests.pkl")
        for stream in ("chat", "system", "conv"):
            assert req.loc[req["stream"] == stream, "cached_tokens"].sum() > 0, (name, stream)
    assert pd.read_pickle(tmp_path / "default" / "alone-requests.pkl")["preemptions"].sum() > 0


@pytest.mark.skipif(importlib.util.find_spec("Cython") is None, reason="Cython is not installed here")
def test_engine_is_compiled_where_cython_is_installed():
    """Where the build had Cython (the test extras install it), a silently failed compile would leave the
    simulator several times slower: say so."""
    assert compiled(), ("the engine runs from its Python source: its compilation failed at install "
                        "(see the pip build log) or the package was installed without building extensions")


def _source_module(name: str):
    """``infersim.<name>`` imported from its ``.py`` source, whether or not the build compiled it."""
    import infersim

    path = os.path.join(os.path.dirname(infersim.__file__), *name.split(".")) + ".py"
    spec = importlib.util.spec_from_file_location(f"_source_{name.replace('.', '_')}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sram_round_compiled_and_source_agree_bit_for_bit():
    """The SRAM pipeline's round (``perf/sram/round.py``, compiled with the engine) gives the same floats as its
    Python source on both systems' geometries, for decode-only, prefill-only and mixed rounds."""
    import random

    from infersim.perf.sram.pipeline import pipeline_for
    from infersim.perf.sram.round import PipelineRound

    src = _source_module("perf.sram.round")
    rng = random.Random(7)
    for model, hw in (("qwen2.5-coder-7b", "groq-lpu"), ("llama-3.1-70b", "groq-lpu"),
                      ("qwen2.5-coder-7b", "cerebras-wse3"), ("llama-3.1-8b", "cerebras-wse3")):
        pipe = pipeline_for(model, hw)
        r = pipe.round
        assert isinstance(r, PipelineRound)
        twin = src.PipelineRound(r.stages, r.microbatch, r.a_s, r.w_s, r.kv_s, r.c_s, r.attn_s, r.hops, r.hop_s,
                                 r.act_s)
        for _ in range(2000):
            n_dec = rng.choice([0, 1, 3, rng.randint(1, 4 * pipe.concurrency)])
            n_seq = rng.choice([0, 1, rng.randint(1, 8)])
            tok = n_seq * rng.randint(1, 4000)
            pairs = float(tok) * rng.uniform(1, 3000)
            ctx = float(n_dec * rng.randint(1, 30000))
            pctx = float(rng.choice([0, rng.randint(0, 30000)]))
            args = (tok, pairs, n_seq, n_dec, ctx, pctx)
            assert pipe.step_s(*args) == twin.step_s(*args), (model, hw, args)
            if n_dec:
                assert pipe.decode_affine(n_dec) == twin.decode_affine(n_dec)
