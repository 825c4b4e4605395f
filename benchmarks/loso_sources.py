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
from functools import cache
from pathlib import Path

import pandas as pd

from infersim.calibrate import throughput
from infersim.calibrate.measured import MeasuredRow, normalize_engine, read_measured
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


#: Publications whose rows arrive under more than one name: each is one fold of the leave-one-source-out check
#: (held out together, so no publication's harness leaks across folds). Shared ``engine_latency.csv`` rows are
#: aiconfigurator's ``silicon_sample.csv`` like ``aiconfigurator_silicon`` (data/calibration/README.md); the
#: shared apex rows and ``apex_plus`` are one repository's replays; the two dstack posts are one team's harness;
#: the two TensorRT-LLM H100 throughput tables are one page.
GROUPS = {"aiconfigurator_silicon": "aiconfigurator", "aic": "aiconfigurator", "apex_plus": "apex_plus",
          "apex-plus": "apex_plus", "dstack_deepseek_r1": "dstack", "dstack_llama405b": "dstack",
          "trtllm-perf-h100": "trtllm-perf-table"}
#: Checkpoints that share a catalog model's architecture (the step model only needs the architecture):
#: DeepSeek-R1 is post-trained from DeepSeek-V3-Base with the same config.json architecture (671B MoE, 256
#: routed experts, top-8, MLA; huggingface.co/deepseek-ai/DeepSeek-R1 model card, "Model Summary").
ARCH_TWINS = {"deepseek-v3": ("deepseek-ai/DeepSeek-R1", "DeepSeek-R1", "deepseek-r1")}


def group_of(key: str) -> str:
    return GROUPS.get(key, key)


@dataclass
class Source:
    """One held-out unit: one publication's rows of one engine on one hardware class. ``group``: the
    publication (every unit of a group is held out together). ``rows``: simulated latency rows; ``tput``:
    saturation-throughput rows; ``mlperf``: MLPerf rows (dicts of the CSV)."""

    id: str
    engine: str
    hardware: str
    title: str
    rows: list[MeasuredRow] = field(default_factory=list)
    tput: list[throughput.ThroughputRow] = field(default_factory=list)
    mlperf: list[dict] = field(default_factory=list)
    fit: bool = True
    group: str = ""

    def __post_init__(self):
        self.group = self.group or self.id

    @property
    def hardware_class(self) -> str:
        return hardware_class(self.hardware) or self.hardware

    @property
    def n_rows(self) -> int:
        return len(self.rows) + len(self.tput) + len(self.mlperf)


def unit_id(group: str, engine: str, hardware: str) -> str:
    return f"{group}/{engine}/{hardware_class(hardware) or hardware}"


def _version_key(v: str) -> str:
    m = re.match(r"v?(\d+\.\d+(?:\.\d+)?)", v or "")
    return m.group(1) if m else "nr"


@cache
def fit_catalog():
    """The shipped catalog with the architecture twins' names as aliases."""
    cat = default_catalog()
    models = dict(cat.models)
    for mid, names in ARCH_TWINS.items():
        if mid in models:
            models[mid] = replace(models[mid], aliases=(*models[mid].aliases, *names))
    return replace(cat, models=models)


def _add(out: dict, src: Source) -> Source:
    return out.setdefault(src.id, src)


def engine_latency_sources(path: Path, group: str = "aic", source_col: str | None = None,
                           skipped: list[str] | None = None) -> list[Source]:
    rows, problems = read_measured(path, fit_catalog())
    if skipped is not None and problems:
        why: dict[str, int] = {}
        for p in problems:
            why[p.message] = why.get(p.message, 0) + 1
        skipped += [f"{path.name}: {n} rows: {m}" for m, n in sorted(why.items(), key=lambda kv: -kv[1])]
    ids = _source_ids(path, source_col)
    out: dict[str, Source] = {}
    for r in rows:
        g = group_of(ids.get(r.row) or group)
        r = replace(r, client_start=r.client_start or CLIENT_START[r.engine])
        sid = unit_id(g, r.engine, r.hardware)
        _add(out, Source(sid, r.engine, r.hardware, f"{path.name}: {g} {r.engine}", group=g)).rows.append(r)
    return list(out.values())


def _source_ids(path: Path, col: str | None) -> dict[int, str]:
    if col is None:
        return {}
    with open(path, newline="") as f:
        return {i + 1: str(r.get(col) or "").strip() for i, r in enumerate(csv.DictReader(f))}


def trt_table_sources(path: Path) -> list[Source]:
    out: dict[str, Source] = {}
    g = group_of("trtllm-perf-h100")
    for r in throughput.trtllm_rows(path):
        sid = unit_id(g, "trtllm", "h100-sxm")
        _add(out, Source(sid, "trtllm", "h100-sxm", "TensorRT-LLM perf tables, H100", group=g)).tput.append(r)
    return list(out.values())


MLPERF_SETUPS = {  # deployment assumptions, as in benchmarks/validation_report.py
    "H100 SXM 80GB": {"hardware": "h100-sxm", "engine": "trtllm", "precision": "fp8", "tp": 2, "replicas": 4},
    "H200 SXM 141GB": {"hardware": "h200", "engine": "trtllm", "precision": "fp8", "tp": 1, "replicas": 8},
    "MI300X": {"hardware": "mi300x", "engine": "vllm", "precision": "fp8", "tp": 1, "replicas": 8},
}


def mlperf_sources(path: Path, source_col: str | None = None) -> list[Source]:
    out: dict[str, Source] = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            setup = MLPERF_SETUPS.get(r["accelerator"])
            if setup is None:
                continue
            g = group_of((r.get(source_col) if source_col else None) or f"mlperf-{r['round']}-{r['submitter'].lower()}")
            sid = unit_id(g, setup["engine"], setup["hardware"])
            src = _add(out, Source(sid, setup["engine"], setup["hardware"],
                                   f"MLPerf {r['round']} {r['submitter']} {r['accelerator']}", group=g))
            src.mlperf.append({**r, **setup})
    return list(out.values())


def _precision(text: str) -> tuple[str, str | None]:
    t = (text or "").lower()
    w = "fp8" if t.startswith("fp8") else "fp4" if t.startswith(("fp4", "nvfp4", "mxfp4")) else "bf16"
    kv = "fp8" if ("fp8 kv" in t or "kv-cache-dtype fp8" in t) else None
    return w, kv


def _num(text: str | None) -> float | None:
    m = re.match(r"\s*([\d.]+)", text or "")
    return float(m.group(1)) if m else None


_MODEL_MAP = {"llama-3.1-70b": ("3.1-70B", "3.1-70b"), "llama-3.1-8b": ("3.1-8B",), "qwen3-32b": ("Qwen3-32B",)}


def _catalog_model(name: str) -> str | None:
    for mid, keys in _MODEL_MAP.items():
        if any(k.lower() in name.lower() for k in keys):
            return mid
    return None


def vllm_v0_chunk(r: dict, model_context: int) -> int | None:
    """The prompt-token budget per step of a ``vllm_runs.csv``-layout row: a number recorded in its
    ``max_batched_tokens``, else vLLM 0.5-0.6's default. Those versions turn chunked prefill on by themselves,
    with ``max_num_batched_tokens`` 512, for a ``max_model_len`` above 32,768 (the model's context when not
    set) unless prefix caching is on or chunked prefill was turned off (vllm/engine/arg_utils.py
    ``create_engine_config``: "enable chunked prefill by default for long context (> 32K) models"; the server
    logs "Chunked prefill is enabled with max_num_batched_tokens=512"); otherwise a prompt runs whole (None)."""
    text = (r.get("max_batched_tokens") or "").strip()
    if text[:1].isdigit():
        return int(re.match(r"\d+", text).group(0))
    engine = (r.get("engine") or "").lower()
    version = (r.get("engine_version") or "").lstrip("v")
    if "vllm" not in engine or not re.match(r"0\.[56]\.", version):
        return None
    if (r.get("chunked_prefill") or "").lower().startswith("off") or (r.get("prefix_caching") or "").lower().startswith("on"):
        return None
    m = re.match(r"\d+", (r.get("max_model_len") or "").strip())
    max_len = int(m.group(0)) if m else int(model_context)
    return 512 if max_len > 32768 else None


def open_loop_sources(path: Path, source_col: str | None = None) -> tuple[list[Source], list[str]]:
    """Runs in the ``vllm_runs.csv`` layout: open-loop rates (trace replays at their mean rate) as Poisson rows,
    concurrency-capped clients as closed loops, bursts as a closed loop of one request per client; mean lengths
    as recorded. Rows without lengths, rate or a catalog model/GPU, attention-DP runs and servers without CUDA
    graphs are skipped."""
    cat = fit_catalog()
    out: dict[str, Source] = {}
    skipped = []
    with open(path, newline="") as f:
        for i, r in enumerate(csv.DictReader(f)):
            tag = f"{path.name} row_id {r.get('row_id')}"
            try:
                hw = cat.get_hardware(r["hardware"]).id
            except Exception:  # noqa: BLE001 - a GPU the catalog lacks: not simulated, reported
                skipped.append(f"{tag}: hardware '{r['hardware']}' not in the catalog")
                continue
            try:
                model = cat.get_model(r["model"].split(" (")[0].strip()).id
            except Exception:  # noqa: BLE001 - a free-text name ("... (base; per llama.sh)"): by its key words
                model = _catalog_model(r["model"])
            if model is None:
                skipped.append(f"{tag}: model '{r['model']}' not in the catalog")
                continue
            if (_num(r.get("dp")) or 1) > 1:
                skipped.append(f"{tag}: attention data parallelism (dp {r['dp']}) is not a calibrate row")
                continue
            if "--disable-cuda-graph" in (r.get("other_engine_settings") or ""):
                # a debugging set-up (every step launched kernel by kernel, here with Triton attention): the
                # engine profiles describe servers with CUDA graphs, their default
                skipped.append(f"{tag}: CUDA graphs disabled (--disable-cuda-graph), not the profiled set-up")
                continue
            if not _num(r.get("input_len_mean")) or not _num(r.get("output_len_mean")):
                skipped.append(f"{tag}: no mean input/output length recorded")
                continue
            arrival = r.get("arrival") or ""
            n_req = int(float(r["num_requests"]))
            conc = rate = None
            if m := re.search(r"at most (\d+) requests in flight", arrival):
                conc = int(m.group(1))
            elif m := re.search(r"a burst: (\d+) requests", arrival):
                conc = int(m.group(1))
            elif "all at once" in (r.get("arrival_process") or ""):
                conc = n_req
            elif m := re.search(r"([\d.]+) req/s", arrival):
                rate = float(m.group(1))
            elif _num(r.get("duration_s")):
                rate = n_req / float(r["duration_s"])
            else:
                skipped.append(f"{tag}: no arrival rate or concurrency recorded")
                continue
            metrics = {k: float(r[k]) for k in ("ttft_mean_ms", "itl_mean_ms", "e2e_mean_ms")
                       if _num(r.get(k)) and math.isfinite(float(r[k]))}
            if not metrics:
                skipped.append(f"{tag}: no mean TTFT, ITL or E2E")
                continue
            chunk = vllm_v0_chunk(r, cat.get_model(model).max_context)
            mem = _num(r.get("gpu_mem_util"))
            seqs = _num(r.get("max_num_seqs"))
            version = (r.get("engine_version") or "").lstrip("v")
            engine = normalize_engine(re.split(r"[ (]", (r.get("engine") or "vllm").strip())[0])
            prec, kv = _precision(r["precision"])
            row = MeasuredRow(row=i + 1, model=model, hardware=hw, tp=int(float(r["tp"])),
                              engine=engine, precision=prec, kv_precision=kv,
                              input_tokens=round(float(r["input_len_mean"])),
                              output_tokens=max(round(float(r["output_len_mean"])), 2), concurrency=conc,
                              rate_per_s=rate, num_requests=min(n_req, 400 if rate else 1024), metrics=metrics,
                              engine_version=version, max_num_seqs=int(seqs) if seqs else None,
                              max_batched_tokens=chunk, gpu_memory_utilization=mem if mem and mem <= 1 else None,
                              client_start="burst" if conc else None, arrival="poisson" if rate else None,
                              extra={"row_id": r.get("row_id") or ""})
            repo = r["source_repo"].split("/")[-1].replace("_", "-").lower()
            g = group_of((r.get(source_col) if source_col else None) or repo)
            sid = unit_id(g, engine, hw)
            _add(out, Source(sid, engine, hw, f"{r['source_repo']} {engine}", group=g)).rows.append(row)
    return list(out.values()), skipped


def load_sources(shared: Path, extra_dir: Path) -> tuple[list[Source], list[str]]:
    """Every source of ``shared/calibration`` and of ``extra_dir`` (``data/calibration``, files with a
    ``source_id`` column), merged into one unit per (publication, engine, hardware class), and the rows skipped
    with the reason."""
    cal = shared / "calibration"
    skipped: list[str] = []
    srcs = engine_latency_sources(cal / "engine_latency.csv", skipped=skipped)
    srcs += trt_table_sources(cal / "serving_benchmarks.csv")
    srcs += mlperf_sources(cal / "mlperf.csv")
    ol, sk = open_loop_sources(cal / "vllm_runs.csv")
    srcs += ol
    skipped += sk
    if extra_dir.is_dir():
        for f in sorted(extra_dir.glob("*.csv")):
            with open(f, newline="") as fh:
                header = next(csv.reader(fh), [])
            if "source_id" not in header:
                skipped.append(f"{f.name}: no source_id column, not used")
            elif "concurrency" in header or "rate_per_s" in header:
                srcs += engine_latency_sources(f, source_col="source_id", skipped=skipped)
            elif "arrival" in header and "input_len_mean" in header:
                more, sk = open_loop_sources(f, source_col="source_id")
                srcs += more
                skipped += sk
            elif "accelerator" in header and "scenario" in header:
                srcs += mlperf_sources(f, source_col="source_id")
            else:
                skipped.append(f"{f.name}: columns not recognised, not used")
    merged: dict[str, Source] = {}
    for s in srcs:
        if s.id in merged:
            m = merged[s.id]
            m.rows += s.rows
            m.tput += s.tput
            m.mlperf += s.mlperf
        else:
            merged[s.id] = s
    return list(merged.values()), skipped

def saturates(rec: dict) -> bool:
    """A predicted TTFT over 10x the measured one and over 2 s: the simulator's queue grew without bound."""
    return rec["metric"] == "ttft" and rec["predicted"] > max(10 * rec["measured"], 2000.0)


def summarise(records: list[dict]) -> pd.DataFrame:
    """Median and p90 |error| per (source, metric) with the row count."""
    t = pd.DataFrame(records)
    t = t.dropna(subset=["error_pct"]).assign(abs_err=lambda d: d["error_pct"].abs())
    g = t.groupby(["source", "metric"])["abs_err"]
    return pd.DataFrame({"n": g.size(), "median": g.median(), "p90": g.quantile(0.9)}).reset_index()
