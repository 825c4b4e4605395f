"""The batch policy's rules as plain functions (no SimPy, no replica), and the compiled-module list."""

from __future__ import annotations

import ast
from array import array
from pathlib import Path

from infersim.core.compiled import COMPILED_MODULES
from infersim.policy.batching import (
    IDLE,
    blocks_to_add,
    decodes_held,
    first_chunk,
    new_plan,
    preemption_victim,
    prompt_budget,
)


def test_blocks_to_add_is_a_ceiling_division_beyond_the_shared_prefix():
    assert blocks_to_add(17, 0, 0, 16) == 2  # 17 tokens need 2 blocks of 16
    assert blocks_to_add(32, 16, 1, 16) == 0  # 16 private tokens already in 1 block
    assert blocks_to_add(33, 16, 1, 16) == 1
    assert blocks_to_add(10, 16, 0, 16) == 0  # all inside the shared prefix


def test_budget_and_prefill_priority():
    assert prompt_budget(2048, 10, 0) == 2038
    assert prompt_budget(2048, 10, 512) == 512  # mixed-step limit applies only with decodes
    assert prompt_budget(2048, 0, 512) == 2048
    assert decodes_held(True, False, 3, 1, 3) and decodes_held(True, False, 3, 0, 4)
    assert not decodes_held(True, False, 3, 0, 3)  # nothing waits or prefills
    assert not decodes_held(True, True, 3, 1, 3)  # the retry mixes decodes back in
    assert not decodes_held(False, False, 3, 1, 3)


def test_first_chunk_and_victim():
    assert first_chunk(100, 0, 64) == (0, 64)
    assert first_chunk(100, 100, 64) == (99, 1)  # the cache never covers the last prompt token
    assert first_chunk(100, 48, 1000) == (48, 52)
    order = array("l", [5, 9, 2, 7])
    assert preemption_victim([0, 2, 3], order) == 3 and preemption_victim([0, 1, 2, 3], order) == 1


def test_plan_values():
    p = new_plan([(0, 64)], 3, 1, False)
    assert (p.chunks, p.n_dec, p.k, p.fast_forward) == ([(0, 64)], 3, 1, False)
    assert IDLE.k == 0 and not IDLE.chunks


def test_setup_compiles_the_modules_the_source_switch_knows():
    tree = ast.parse((Path(__file__).resolve().parents[1] / "setup.py").read_text())
    listed = next(ast.literal_eval(n.value) for n in tree.body
                  if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "ENGINE_MODULES")
    assert tuple(listed) == COMPILED_MODULES
