"""Prefix caching at each engine's own KV block: a short shared system prompt hits (issue 13's bug: a
150-token prompt hashed to zero 256-token blocks and never did), the workload is the same for every engine,
and a prefix shorter than the engine's block is warned about once, naming the YAML path."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import scenario
from infersim.build.gpu import deployment_setup
from infersim.catalog import default_catalog
from infersim.perf.profiles import kv_cache_spec
from infersim.results.simulate import simulate
from infersim.validate import PrefixCacheWarning

SYSTEM = {"kind": "shared", "tokens": 150, "groups": 1}


def _run(kind: str | None = None, prefix_caching: bool = True, **more):
    changes = {"workload.streams[0].prefix": SYSTEM,
               "workload.streams[0].input_tokens": {"kind": "fixed", "value": 400},
               "platforms[0].deployments[0].engine.prefix_caching": prefix_caching, **more}
    if kind is not None:
        changes["platforms[0].deployments[0].engine.kind"] = kind
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrefixCacheWarning)
        return simulate(scenario(**changes))


@pytest.mark.parametrize(("kind", "block"), [("vllm", 16), ("sglang", 1), ("trtllm", 32)])
def test_block_size_defaults_to_the_engine_profile(kind, block):
    sc = scenario(**{"platforms[0].deployments[0].engine.kind": kind})
    setup = deployment_setup(sc.platforms[0].deployments[0], default_catalog())
    assert setup.block_size == block == kv_cache_spec(kind).block_tokens
    sc = scenario(**{"platforms[0].deployments[0].engine.kind": kind,
                     "platforms[0].deployments[0].engine.block_size": 64})
    assert deployment_setup(sc.platforms[0].deployments[0], default_catalog()).block_size == 64


@pytest.mark.parametrize(("kind", "cached"), [("vllm", 144), ("sglang", 150), ("trtllm", 128)])
def test_a_150_token_system_prompt_hits_in_whole_engine_blocks(kind, cached):
    req = _run(kind).requests.sort_values("arrival_s")
    got = req["cached_tokens"].to_numpy()
    assert got[0] == 0  # the first request computes the prompt
    # every later request reuses the prompt rounded down to the engine's block (SGLang: token by token)
    assert (got[1:] == cached).all()


def test_removing_prefix_caching_changes_a_short_prefix_run():
    on, off = _run(), _run(prefix_caching=False)
    assert on.requests["cached_tokens"].sum() > 0 and off.requests["cached_tokens"].sum() == 0
    assert on.summary["ttft_mean_s"].iloc[0] < off.summary["ttft_mean_s"].iloc[0]
    assert not np.array_equal(on.requests["first_token_s"].to_numpy(), off.requests["first_token_s"].to_numpy())


def test_a_prefix_shorter_than_the_block_is_warned_once_with_its_yaml_path():
    changes = {"workload.streams[0].prefix": {"kind": "shared", "tokens": 10},
               "platforms[0].deployments[0].replicas": 2}
    with pytest.warns(PrefixCacheWarning) as got:
        scenario(**changes)
    msgs = [str(w.message) for w in got if w.category is PrefixCacheWarning]
    assert len(msgs) == 1
    assert "workload.streams[0].prefix.tokens" in msgs[0] and "16-token KV block" in msgs[0]
    assert "platforms[0].deployments[0].engine.block_size" in msgs[0]
    with warnings.catch_warnings():  # SGLang's radix cache reuses any prefix of a token or more
        warnings.simplefilter("error", PrefixCacheWarning)
        scenario(**changes, **{"platforms[0].deployments[0].engine.kind": "sglang"})
        scenario(**changes, **{"platforms[0].deployments[0].engine.prefix_caching": False})


def test_conversations_reuse_the_previous_turns_context():
    # one request a second, two sessions: a turn arrives 2 s after the previous one, long after it finished
    stream = {"name": "chat", "arrival": {"kind": "constant", "rate": 1},
              "input_tokens": {"kind": "fixed", "value": 100}, "output_tokens": {"kind": "fixed", "value": 20},
              "prefix": {"kind": "conversation", "turns": 4, "sessions": 2}}
    req = simulate(scenario(**{"workload.streams": [stream]})).requests
    later = req[req["input_tokens"] > 100]  # second turns onwards: the previous context is the prefix
    # the previous turn's context (prompt + answer, all but its last sampled token computed) in 16-token blocks
    assert len(later) and (later["cached_tokens"] == (later["input_tokens"] - 100 - 1) // 16 * 16).all()
