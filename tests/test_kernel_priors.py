"""The measured kernel priors of the step model (catalog/data/kernel_priors.csv, benchmarks/kernel_priors.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infersim.catalog import default_catalog
from infersim.perf.gpu import GpuConfig, GpuRoofline
from infersim.perf.kernels import allreduce_measured, gemm_prior
from infersim.perf.params import PerfParams

ROOT = Path(__file__).resolve().parents[1]
CAT = default_catalog()


def test_committed_priors_are_what_the_kernel_profiles_give():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kernel_priors.py"), "--check"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("hw", ["a100-80g", "h100-sxm"])
def test_measured_gemm_priors_are_physical_and_the_roofline_describes_the_kernels(hw):
    p = gemm_prior(hw)
    assert p.measured_on == hw
    assert 0.5 < p.share_of_ceiling <= 1.0  # real layer shapes reach most of the best shape's FLOP/s
    assert 0.6 < p.stream_share <= 1.0  # and most of the datasheet HBM bandwidth
    assert 0 < p.kernel_fixed_s < 2e-5
    assert 0 <= p.half_tokens < 1000
    import csv

    rows = {(r["hardware"], r["quantity"]): float(r["value"]) for r in csv.DictReader(
        line for line in (ROOT / "src/infersim/catalog/data/kernel_priors.csv").open() if not line.startswith("#"))}
    assert rows[(hw, "gemm_fit_median_abs_error")] < 0.10  # the kernel roofline fits the measured operators


def test_unmeasured_hardware_takes_the_h100s_prior_and_says_so():
    assert gemm_prior("b200").measured_on == "h100-sxm"


@pytest.mark.parametrize("hw,tp", [("h100-sxm", 2), ("h100-sxm", 4), ("h100-sxm", 8), ("h200", 4)])
def test_ring_all_reduce_prior_is_within_a_quarter_of_measured_nccl(hw, tp):
    """The step model's TP all-reduce (ring bytes 2(tp-1)/tp over the per-direction NVLink bandwidth x the
    engines' comm_eff 0.7 prior) against NCCL's measured large-message algorithm bandwidth."""
    lat, algbw = allreduce_measured(hw, tp)
    m = CAT.get_model("llama-3.1-70b")
    g = GpuRoofline(GpuConfig(CAT.get_hardware(hw), m, "bf16", "bf16", tp, 1), PerfParams(comm_eff=0.7))
    model_algbw = g.ar_bw / (2.0 * (tp - 1) / tp)  # message bytes per second of the model's all-reduce
    assert model_algbw == pytest.approx(algbw, rel=0.25)
    assert 1e-6 < lat < 5e-5
