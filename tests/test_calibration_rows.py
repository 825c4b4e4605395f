"""Calibration against published measurements, one test per row, each with its tolerance.

Rows: shared/calibration/serving_benchmarks.csv, TensorRT-LLM max-throughput table on H100
(NVIDIA/TensorRT-LLM docs/source/performance/perf-overview.md). The shipped trtllm profile was fitted on
these rows jointly with the other TensorRT-LLM sources (benchmarks/loso.py, each row weight 1), with the GEMM and
weight-streaming rates fixed to the measured kernels (perf/kernels.py) instead of fitted. The tolerance is 35 %
per row: the worst rows are Llama-3.1-8B at TP1 with short prompts and long outputs (-31 % in sample,
2026-12-03: at batches of ~1,000 sequences the fitted per-sequence CPU time, set mostly by the latency rows,
weighs more than it does on this table), the 70B rows are all within 13 %; the median error must stay under 12 %
(it is 8.2 %; held out of the fit, the tables' median is 11.8 %: docs/validation.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED, needs_shared, require_shared
from infersim.calibrate.throughput import predict, trtllm_rows
from infersim.perf.profiles import shipped_profile

CSV = SHARED / "calibration" / "serving_benchmarks.csv"
ROWS = trtllm_rows(CSV) if CSV.exists() else []
TOLERANCE = 0.35


def test_the_rows_are_there():
    require_shared("calibration/serving_benchmarks.csv")
    assert ROWS, f"{CSV} holds no TensorRT-LLM rows"


@pytest.mark.parametrize("row", ROWS, ids=[f"row{r.row}-{r.model}-tp{r.tp}-{r.input_tokens}x{r.output_tokens}"
                                           for r in ROWS])
def test_trtllm_throughput_row(row):
    pred = predict(row, shipped_profile("trtllm"))
    assert pred == pytest.approx(row.measured_tok_s, rel=TOLERANCE), (
        f"serving_benchmarks.csv row {row.row}: predicted {pred:.0f} vs measured {row.measured_tok_s:.0f} tok/s")


@needs_shared(CSV)
def test_trtllm_throughput_median_error():
    p = shipped_profile("trtllm")
    err = [abs(predict(r, p) / r.measured_tok_s - 1) for r in ROWS]
    assert np.median(err) < 0.12
