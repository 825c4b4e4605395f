"""Wide expert-parallel runs (``data/calibration/wide_ep.csv``) against the step model, phase by phase.

Each row is one phase of a disaggregated wide-EP deployment measured on its own, as the publications report it
(the other phase given unlimited resources): a prefill replica of ``nodes x gpus_per_node`` GPUs with attention
data parallelism ``dp`` and expert parallelism ``ep`` running full steps of ``tokens_per_device`` prompt tokens per
GPU, or a decode replica holding ``batch_per_device`` sequences of ``kv_tokens`` context per GPU, with the dense
weights at ``precision``, the routed experts at ``expert_precision`` (NVFP4 experts beside FP8 dense layers on
Blackwell) and the KV cache at ``kv_precision``. The links follow the hardware: an ``ep`` group inside one NVLink
domain (8 GPUs on HGX boards, 72 in a GB200 NVL72 rack) all-to-alls over NVLink, a larger one over the scale-out
network (``perf.collectives``). The prediction
is one step of the engine's shipped profile (``perf.gpu.GpuRoofline``, two-batch overlap as the row says):
prefill input tokens or decode output tokens per second, per node. No scheduling, no queue: the figures are
steady-state step throughputs, which is what the rows measured. These rows are an independent check, in no fit.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infersim.catalog import default_catalog
from infersim.perf.gpu import GpuConfig, GpuRoofline
from infersim.perf.profiles import shipped_profile


@dataclass(frozen=True)
class WideEpCheck:
    row: int
    phase: str
    label: str
    measured: float
    predicted: float
    source_id: str = ""

    @property
    def error(self) -> float:
        return (self.predicted - self.measured) / self.measured


def predict(row: dict[str, str]) -> float:
    """Tokens per second per node the step model gives for one ``wide_ep.csv`` row."""
    cat = default_catalog()
    hw, m = cat.get_hardware(row["hardware"]), cat.get_model(row["model"])
    tp, dp, ep = int(row["tp"]), int(row["dp"]), int(row["ep"])
    prec, experts = row["precision"], row["expert_precision"].strip() or None
    cfg = GpuConfig(hw, m, prec, row["kv_precision"], tp, 1, dp, ep, expert_precision=experts)
    perf = GpuRoofline(cfg, shipped_profile(row["engine"]), overlap=row["two_batch_overlap"].strip() == "true",
                       engine=row["engine"])
    nodes = int(row["nodes"])
    if row["phase"] == "prefill":
        per_dev, prompt = int(row["tokens_per_device"]), int(row["input_tokens"])
        seqs = max(per_dev // prompt, 1) * dp
        tokens = seqs * prompt
        step = perf.step_s(tokens, seqs * prompt * (prompt + 1) / 2.0, seqs, 0, 0.0, 0.0)
        return tokens / step / nodes
    n = int(row["batch_per_device"]) * dp
    step = perf.step_s(0, 0.0, 0, n, float(n * int(row["kv_tokens"])))
    return n / step / nodes


def wide_ep_checks(path: str | Path) -> list[WideEpCheck]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for i, r in enumerate(rows, start=1):
        size = r["input_tokens"] if r["phase"] == "prefill" else f"b{r['batch_per_device']}/dev ctx {r['kv_tokens']}"
        tbo = " TBO" if r["two_batch_overlap"].strip() == "true" else ""
        experts = r["expert_precision"].strip() or r["precision"]
        prec = r["precision"] if experts == r["precision"] else f"{r['precision']}/{experts} experts"
        label = (f"{r['engine']} {r['model']} {r['nodes']}x{r['gpus_per_node']} {r['hardware']} {prec} "
                 f"kv {r['kv_precision']} dp{r['dp']} ep{r['ep']}{tbo} {r['phase']} {size}")
        out.append(WideEpCheck(i, r["phase"], label, float(r["tok_s_per_node"]), predict(r), r["source_id"]))
    return out


def median_abs_error(checks: list[WideEpCheck]) -> float:
    """Median |predicted - measured| / measured over ``checks`` (nan when there are none)."""
    return float(np.median([abs(c.error) for c in checks])) if checks else math.nan
