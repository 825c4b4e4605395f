"""Calibration sources for ``benchmarks/loso.py``: every measured row, grouped into *sources*.

A source is one publication or repository's measurements of one engine version on one kind of hardware (the
unit a leave-one-source-out check holds out): its rows share a harness, a client and a software stack, so a
model that only reproduces one harness's quirks fails on the others. Sources defined here:

- ``aic-<engine>-<version>-h100``: NVIDIA aiconfigurator ``silicon_sample.csv`` (``engine_latency.csv``), one
  source per engine and version (vLLM 0.12 Qwen3-32B; vLLM with no recorded version, Llama-3.1-70B FP8; SGLang
  0.5.1 and 0.5.8; TensorRT-LLM 1.0 and 1.2), closed loop, mean TTFT and ITL;
- ``trtllm-perf-h100-<model>``: each of TensorRT-LLM's H100 max-throughput tables (``serving_benchmarks.csv``,
  Llama-3.1-8B TP1 and Llama-3.3-70B TP2, FP8), saturation output tokens/s;
- ``mlperf-v4.1-<submitter>``: MLPerf Inference v4.1 Llama-2-70B per submitter (NVIDIA H100 TensorRT-LLM, AMD
  MI300X vLLM): Offline saturation tokens/s (fitted) and Server TTFT/TPOT (checks only, see loso.py);
- ``apex-plus-vllm-0.6-h100``: microsoft/apex_plus vLLM 0.6.0 trace replays (``vllm_runs.csv``), open loop;
- every ``source_id`` of ``data/calibration/*.csv`` (same columns as the shared file each extends).

Rows the simulator cannot place (hardware not in the catalog: the LLMServingSim RTX rows) are listed as skipped.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from infersim.calibrate import throughput
from infersim.calibrate.measured import MeasuredRow, read_measured
from infersim.catalog import default_catalog
from infersim.catalog.bands import hardware_class

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "src" / "infersim" / "perf" / "profiles"
BANDS = ROOT / "src" / "infersim" / "catalog" / "data" / "validation_bands.csv"
DOC = ROOT / "docs" / "validation.md"
ENGINES = ("vllm", "sglang", "trtllm")
BEGIN, END = "<!-- loso:begin -->", "<!-- loso:end -->"

#: How the closed-loop clients of a source started (not recorded; the choice each source fits better, kept from
#: the earlier profile fits, docs/model.md).
CLIENT_START = {"vllm": "staggered", "sglang": "burst", "trtllm": "burst"}


@dataclass
class Source:
    """One held-out unit. ``rows``: simulated latency rows; ``tput``: saturation-throughput rows;
    ``mlperf``: MLPerf rows (dicts of the CSV)."""

    id: str
    engine: str
    hardware: str
    title: str
    rows: list[MeasuredRow] = field(default_factory=list)
    tput: list[throughput.ThroughputRow] = field(default_factory=list)
    mlperf: list[dict] = field(default_factory=list)
    fit: bool = True

    @property
    def hardware_class(self) -> str:
        return hardware_class(self.hardware) or self.hardware

    @property
    def n_rows(self) -> int:
        return len(self.rows) + len(self.tput) + len(self.mlperf)


def _version_key(v: str) -> str:
    m = re.match(r"v?(\d+\.\d+(?:\.\d+)?)", v or "")
    return m.group(1) if m else "nr"


def engine_latency_sources(path: Path, prefix: str = "aic", source_col: str | None = None) -> list[Source]:
    rows, _problems = read_measured(path)
    ids = _source_ids(path, source_col)
    out: dict[str, Source] = {}
    for r in rows:
        sid = ids.get(r.row) or f"{prefix}-{r.engine}-{_version_key(r.engine_version)}-{r.hardware.split('-')[0]}"
        r = replace(r, client_start=r.client_start or CLIENT_START[r.engine])
        src = out.setdefault(sid, Source(sid, r.engine, r.hardware, f"{path.name}: {r.engine} {r.engine_version}"))
        src.rows.append(r)
    return list(out.values())


def _source_ids(path: Path, col: str | None) -> dict[int, str]:
    if col is None:
        return {}
    with open(path, newline="") as f:
        return {i + 1: str(r.get(col) or "").strip() for i, r in enumerate(csv.DictReader(f))}


def trt_table_sources(path: Path) -> list[Source]:
    out: dict[str, Source] = {}
    for r in throughput.trtllm_rows(path):
        sid = f"trtllm-perf-h100-{r.model}"
        out.setdefault(sid, Source(sid, "trtllm", "h100-sxm", f"TensorRT-LLM perf table, H100, {r.model}")).tput.append(r)
    return list(out.values())


MLPERF_SETUPS = {  # deployment assumptions, as in benchmarks/validation_report.py
    "H100 SXM 80GB": {"hardware": "h100-sxm", "engine": "trtllm", "precision": "fp8", "tp": 2, "replicas": 4},
    "MI300X": {"hardware": "mi300x", "engine": "vllm", "precision": "fp8", "tp": 1, "replicas": 8},
}


def mlperf_sources(path: Path, source_col: str | None = None) -> list[Source]:
    out: dict[str, Source] = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            setup = MLPERF_SETUPS.get(r["accelerator"])
            if setup is None:
                continue
            sid = (r.get(source_col) if source_col else None) or f"mlperf-{r['round']}-{r['submitter'].lower()}"
            src = out.setdefault(sid, Source(sid, setup["engine"], setup["hardware"],
                                             f"MLPerf {r['round']} {r['submitter']} {r['accelerator']}"))
            src.mlperf.append({**r, **setup})
    return list(out.values())


_MODEL_MAP = {"llama-3.1-70b": ("3.1-70B", "3.1-70b"), "llama-3.1-8b": ("3.1-8B",), "qwen3-32b": ("Qwen3-32B",),
              "qwen3-30b-a3b": ("Qwen3-30B-A3B",)}


def _catalog_model(name: str) -> str | None:
    for mid, keys in _MODEL_MAP.items():
        if any(k.lower() in name.lower() for k in keys):
            return mid
    return None


def open_loop_sources(path: Path, source_col: str | None = None) -> tuple[list[Source], list[str]]:
    """Open-loop runs (``vllm_runs.csv`` layout) as Poisson rows at the run's mean rate and mean lengths."""
    cat = default_catalog()
    out: dict[str, Source] = {}
    skipped = []
    with open(path, newline="") as f:
        for i, r in enumerate(csv.DictReader(f)):
            model = _catalog_model(r["model"])
            try:
                hw = cat.get_hardware(r["hardware"]).id
            except Exception:  # noqa: BLE001 - a GPU the catalog lacks: not simulated, reported
                skipped.append(f"{path.name} row_id {r.get('row_id')}: hardware '{r['hardware']}' not in the catalog")
                continue
            if model is None:
                skipped.append(f"{path.name} row_id {r.get('row_id')}: model '{r['model']}' not in the catalog")
                continue
            m = re.search(r"([\d.]+) req/s", r["arrival"])
            rate = float(m.group(1)) if m else float(r["num_requests"]) / float(r["duration_s"])
            metrics = {k: float(r[k]) for k in ("ttft_mean_ms", "itl_mean_ms", "e2e_mean_ms")
                       if r.get(k) not in (None, "", "nan") and math.isfinite(float(r[k]))}
            chunk = 512 if "512" in (r.get("max_batched_tokens") or "") else None
            mem = re.match(r"[\d.]+", r.get("gpu_mem_util") or "")
            seqs = re.match(r"\d+", r.get("max_num_seqs") or "")
            version = (r.get("engine_version") or "").lstrip("v")
            row = MeasuredRow(row=int(r.get("row_id") or i + 1), model=model, hardware=hw, tp=int(r["tp"]),
                              engine="vllm", precision="bf16" if "bf" in r["precision"] else r["precision"],
                              input_tokens=round(float(r["input_len_mean"])),
                              output_tokens=max(round(float(r["output_len_mean"])), 2), concurrency=None,
                              rate_per_s=rate, num_requests=min(int(r["num_requests"]), 400), metrics=metrics,
                              engine_version=version, max_num_seqs=int(seqs.group(0)) if seqs else None,
                              max_batched_tokens=chunk, gpu_memory_utilization=float(mem.group(0)) if mem else None)
            repo = r["source_repo"].split("/")[-1].replace("_", "-").lower()
            sid = (r.get(source_col) if source_col else None) or f"{repo}-vllm-{_version_key(version)}-{hw.split('-')[0]}"
            out.setdefault(sid, Source(sid, "vllm", hw, f"{r['source_repo']} vLLM {version}")).rows.append(row)
    return list(out.values()), skipped


def load_sources(shared: Path, extra_dir: Path) -> tuple[list[Source], list[str]]:
    """Every source of ``shared/calibration`` and of ``extra_dir`` (``data/calibration``, files with a
    ``source_id`` column), and the rows skipped with the reason."""
    cal = shared / "calibration"
    srcs = engine_latency_sources(cal / "engine_latency.csv")
    srcs += trt_table_sources(cal / "serving_benchmarks.csv")
    srcs += mlperf_sources(cal / "mlperf.csv")
    ol, skipped = open_loop_sources(cal / "vllm_runs.csv")
    srcs += ol
    if extra_dir.is_dir():
        for f in sorted(extra_dir.glob("*.csv")):
            with open(f, newline="") as fh:
                header = next(csv.reader(fh), [])
            if "source_id" not in header:
                skipped.append(f"{f.name}: no source_id column, not used")
            elif "concurrency" in header or "rate_per_s" in header:
                srcs += engine_latency_sources(f, source_col="source_id")
            elif "arrival" in header and "input_len_mean" in header:
                more, sk = open_loop_sources(f, source_col="source_id")
                srcs += more
                skipped += sk
            elif "accelerator" in header and "scenario" in header:
                srcs += mlperf_sources(f, source_col="source_id")
            else:
                skipped.append(f"{f.name}: columns not recognised, not used")
    return srcs, skipped

def saturates(rec: dict) -> bool:
    """A predicted TTFT over 10x the measured one and over 2 s: the simulator's queue grew without bound."""
    return rec["metric"] == "ttft" and rec["predicted"] > max(10 * rec["measured"], 2000.0)


def summarise(records: list[dict]) -> pd.DataFrame:
    """Median and p90 |error| per (source, metric) with the row count."""
    t = pd.DataFrame(records)
    t = t.dropna(subset=["error_pct"]).assign(abs_err=lambda d: d["error_pct"].abs())
    g = t.groupby(["source", "metric"])["abs_err"]
    return pd.DataFrame({"n": g.size(), "median": g.median(), "p90": g.quantile(0.9)}).reset_index()
