"""The engine's results stay byte-identical to the committed fingerprints (``tests/golden/engine_fingerprints.json``).

Every run of ``benchmarks/engine_fingerprint.py`` (the shipped scenarios shortened, the speed benchmark's
cases at small scale, preemption-, chunked-prefill-, prefill-priority- and prefix-cache-heavy cases) is
recomputed and its three table hashes compared. A refactor must leave them unchanged; a change that moves
results on purpose regenerates the file in its own commit saying why:

    python benchmarks/engine_fingerprint.py --json tests/golden/engine_fingerprints.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import engine_fingerprint as fp  # noqa: E402

from infersim.results.simulate import simulate  # noqa: E402

GOLDEN = json.loads((ROOT / "tests" / "golden" / "engine_fingerprints.json").read_text())
RUNS = {name: (load, dur) for name, load, dur in fp.runs()}


def test_every_run_has_a_fingerprint():
    assert sorted(RUNS) == sorted(GOLDEN)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_fingerprint_unchanged(name):
    load, dur = RUNS[name]
    res = simulate(load(), duration_s=dur) if dur else simulate(load())
    assert fp.digests(res) == GOLDEN[name], f"{name}: results moved (regenerate the goldens only if that is intended)"
