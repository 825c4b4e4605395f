"""Format of the extra measured runs in ``data/calibration/`` (see that folder's README.md).

Every file has the columns of the ``../shared/calibration`` file it extends plus ``source_id`` (the unit of
leave-one-source-out); every row names its source; metrics are positive numbers; engine, hardware and model
names resolve in the catalog (or are listed in ``NOT_IN_CATALOG``); and each ``source_id`` may only cite the
repositories or pages allowed for it, so that nothing the project keeps for independent checks can slip in
(MLPerf rows only from the rounds in ``MLPERF_ROUNDS``; rows of TensorRT-LLM's performance tables only on
H100).
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest

from conftest import SHARED, require_shared, under_ci
from infersim.calibrate.measured import ENGINES
from infersim.catalog import PRECISIONS, default_catalog
from infersim.core.errors import InfersimError

DATA = Path(__file__).resolve().parents[1] / "data" / "calibration"
SHARED_CAL = SHARED / "calibration"

# Columns of the shared files (copied here so the test runs without ../shared; checked against it when present).
ENGINE_LATENCY = ("model,hardware,tp,engine,engine_version,precision,concurrency,input_tokens,output_tokens,"
                  "ttft_mean_ms,itl_mean_ms,source_repo,source_path,commit")
OPEN_LOOP = ("row_id,source_repo,source_path,commit,exp_name,stage,model,params_b,moe,precision,hardware,gpus,tp,dp,"
             "engine,engine_version,max_num_seqs,max_batched_tokens,max_model_len,chunked_prefill,prefix_caching,"
             "gpu_mem_util,other_engine_settings,arrival,arrival_process,duration_s,num_requests,num_failed,"
             "input_len_mean,input_len_dist,output_len_mean,output_len_dist,prefix_info,ttft_mean_ms,ttft_p50_ms,"
             "ttft_p90_ms,ttft_p99_ms,itl_mean_ms,itl_p50_ms,itl_p90_ms,itl_p99_ms,e2e_mean_ms,e2e_p50_ms,e2e_p90_ms,"
             "e2e_p99_ms,throughput_tok_s,total_tok_s,req_s,metric_definitions,caveats")
MLPERF = ("round,publish_date,submitter,system,accelerator,accel_count,benchmark,scenario,samples_per_s,tokens_per_s,"
          "tokens_per_s_per_accel,ttft_constraint_ms,tpot_constraint_ms,mean_ttft_ms,p99_ttft_ms,mean_tpot_ms,"
          "p99_tpot_ms,source,notes")
SERVING = ("engine,engine_version,model,precision,hardware,num_gpus,parallelism,isl,osl,concurrency_or_batch,metric,"
           "value,unit,ttft_ms,itl_tpot_ms,per_user_tok_s,source,date,notes")
KERNEL = ("source_id,source_repo,source_path,commit,hardware,model,tp,operator,num_tokens,size_elements,size_kib,dtype,"
          "time_min_ms,time_median_ms,time_mean_ms,time_max_ms,time_std_ms,n_head,n_kv_head,n_embd,"
          "n_expanded_embd,notes")

WIDE_EP = ("source_id,source_repo,source_path,commit,engine,model,hardware,precision,expert_precision,kv_precision,phase,"
           "nodes,gpus_per_node,tp,dp,ep,two_batch_overlap,tokens_per_device,input_tokens,batch_per_device,kv_tokens,"
           "tok_s_per_node,notes")

# file -> (columns, the ../shared/calibration file it extends or None, columns naming the source,
#          metric columns that must be positive where filled, of which at least one per row,
#          setting columns that must be positive numbers where filled, hardware column, model column, engine column)
FILES = {
    "engine_latency_extra.csv": dict(
        columns=ENGINE_LATENCY.split(",") + ["source_id"], shared="engine_latency.csv",
        source=("source_repo", "source_path"), metrics=("ttft_mean_ms", "itl_mean_ms"), need_all_metrics=True,
        settings=("tp", "concurrency", "input_tokens", "output_tokens"), hardware="hardware", model="model",
        engine="engine", precision="precision"),
    "open_loop_runs.csv": dict(
        columns=OPEN_LOOP.split(",") + ["source_id"], shared="vllm_runs.csv",
        source=("source_repo", "source_path"),
        metrics=tuple(f"{m}_{s}_ms" for m in ("ttft", "itl", "e2e") for s in ("mean", "p50", "p90", "p99"))
        + ("throughput_tok_s", "total_tok_s", "req_s"),
        settings=("gpus", "tp", "dp", "num_requests"), hardware="hardware", model="model", engine="engine"),
    "mlperf_extra.csv": dict(
        columns=MLPERF.split(",") + ["source_id"], shared="mlperf.csv", source=("source",),
        metrics=("samples_per_s", "tokens_per_s", "tokens_per_s_per_accel", "mean_ttft_ms", "p99_ttft_ms",
                 "mean_tpot_ms", "p99_tpot_ms"),
        settings=("accel_count", "ttft_constraint_ms", "tpot_constraint_ms"), hardware="accelerator",
        model="benchmark"),
    "serving_extra.csv": dict(
        columns=SERVING.split(",") + ["source_id"], shared="serving_benchmarks.csv", source=("source",),
        metrics=("value", "ttft_ms", "itl_tpot_ms", "per_user_tok_s"), settings=("num_gpus",),
        hardware="hardware", model="model", engine="engine"),
    "wide_ep.csv": dict(
        columns=WIDE_EP.split(","), shared=None, source=("source_repo", "source_path"), metrics=("tok_s_per_node",),
        settings=("nodes", "gpus_per_node", "tp", "dp", "ep", "tokens_per_device", "input_tokens", "batch_per_device",
                  "kv_tokens"), hardware="hardware", model="model", engine="engine", precision="precision",
        more_precisions=("expert_precision", "kv_precision")),
    "kernel_profiles.csv": dict(
        columns=KERNEL.split(","), shared=None, source=("source_repo", "source_path"),
        metrics=("time_min_ms", "time_median_ms", "time_mean_ms", "time_max_ms"),
        settings=("tp", "num_tokens", "size_elements", "size_kib"), hardware="hardware", model="model"),
}

# Each source_id and the citations its rows may carry (prefixes of the source columns, joined by a space).
ALLOWED_SOURCES = {
    "aiconfigurator_silicon": ("github.com/ai-dynamo/aiconfigurator aic-core/src/aiconfigurator_core/systems/"
                               "silicon_sample.csv",),
    "aiconfigurator_collector": ("github.com/ai-dynamo/aiconfigurator aic-core/src/aiconfigurator_core/systems/"
                                 "data/",),
    "sglang_v030_vs_vllm060": ("github.com/sgl-project/sglang benchmark/benchmark_vllm_060/README.md",),
    "vidur_profiles": ("github.com/microsoft/vidur data/profiling/",),
    "mlperf_v4.0_nvidia": ("mlcommons/inference_results_v4.0 commit ",),
    "nim_benchmarking": ("docs.nvidia.com/nim/benchmarking/llm/",),
    "apex_plus": ("github.com/microsoft/apex_plus sglang/results/", "github.com/microsoft/apex_plus vllm/results/",
                  "github.com/microsoft/apex_plus profile/comm/"),
    "dstack_deepseek_r1": ("github.com/dstackai/benchmarks Deepseek-R1/raw_data/",),
    "dstack_llama405b": ("github.com/dstackai/benchmarks comparison/h100sxm5_vs_mi300x/raw_data/",
                         "github.com/dstackai/benchmarks amd/tgi_vs_vllm/vllm/data/"),
    "sarathi_serve_osdi24": ("github.com/microsoft/sarathi-serve osdi-experiments/",),
    "sglang_large_scale_ep": ("github.com/lm-sys/lm-sys.github.io blog/2025-05-05-large-scale-ep.md",),
    "sglang_gb200_nvl72": ("github.com/lm-sys/lm-sys.github.io blog/2025-09-25-gb200-part-2.md",),
}
MLPERF_ROUNDS = {"v4.0", "v4.1", "v5.0"}
MLPERF_MODELS = {"llama2-70b": "llama-2-70b", "llama3.1-405b": "llama-3.1-405b", "llama3.1-8b": "llama-3.1-8b",
                 "mixtral-8x7b": "mixtral-8x7b"}

# Names that deliberately do not resolve in the catalog (models being added elsewhere, or same-architecture
# relatives of catalog models); each is explained in data/calibration/README.md.
NOT_IN_CATALOG = {
    "model": {"deepseek-ai/DeepSeek-R1", "Qwen/Qwen3-235B-A22B", "moonshotai/Kimi-K2.5",
              "meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-70B",
              "mistralai/Mixtral-8x22B-Instruct-v0.1", "mistralai/Mistral-Large-Instruct-2407", "01-ai/Yi-34B-200K"},
    "hardware": {"A100 80GB PCIe"},
}


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="") as f:
        return list(csv.DictReader(f))


def _header(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f))


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _engine_key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def test_every_file_is_known_and_documented():
    present = {p.name for p in DATA.glob("*.csv")}
    assert present == set(FILES), f"unchecked or missing files in {DATA}: {present ^ set(FILES)}"
    readme = (DATA / "README.md").read_text()
    for name in FILES:
        assert f"`{name}`" in readme, f"{name} is not described in data/calibration/README.md"


@pytest.mark.parametrize("name", sorted(FILES))
def test_columns_are_the_shared_files_plus_source_id(name):
    spec = FILES[name]
    assert _header(DATA / name) == spec["columns"], f"{name}: columns differ from the agreed layout"
    if spec["shared"] and (SHARED_CAL.exists() or under_ci()):  # under CI a missing file fails
        assert _header(SHARED_CAL / spec["shared"]) + ["source_id"] == spec["columns"], (
            f"{name}: ../shared/calibration/{spec['shared']} changed its columns")


@pytest.mark.parametrize("name", sorted(FILES))
def test_rows_name_an_allowed_source(name):
    spec = FILES[name]
    rows = _rows(name)
    assert rows, f"{name} has no rows"
    readme = (DATA / "README.md").read_text()
    for i, row in enumerate(rows, start=2):
        sid = row["source_id"].strip()
        assert sid, f"{name} line {i}: empty source_id"
        assert sid in ALLOWED_SOURCES, f"{name} line {i}: source_id '{sid}' has no entry in ALLOWED_SOURCES"
        assert f"### `{sid}`" in readme, f"{name} line {i}: source '{sid}' has no section in the README"
        cited = " ".join(row[c].strip() for c in spec["source"])
        assert all(row[c].strip() for c in spec["source"]), f"{name} line {i}: empty source column"
        assert cited.startswith(ALLOWED_SOURCES[sid]), (
            f"{name} line {i}: '{cited[:80]}' is not a citation allowed for source '{sid}'")


@pytest.mark.parametrize("name", sorted(FILES))
def test_metrics_and_settings_are_positive_numbers(name):
    spec = FILES[name]
    for i, row in enumerate(_rows(name), start=2):
        filled = [c for c in spec["metrics"] if row[c].strip()]
        if spec.get("need_all_metrics"):
            assert len(filled) == len(spec["metrics"]), f"{name} line {i}: a metric is missing"
        assert filled, f"{name} line {i}: no metric"
        for c in filled + [c for c in spec["settings"] if row[c].strip()]:
            try:
                value = _number(row[c])
            except ValueError:
                pytest.fail(f"{name} line {i}: {c}={row[c]!r} is not a number")
            assert value > 0, f"{name} line {i}: {c}={value} is not positive"


COLLECTIVES = {"all_reduce", "all_gather", "reduce_scatter", "alltoall", "sendrecv"}


def test_kernel_profiles_are_ordered_and_shaped():
    for i, row in enumerate(_rows("kernel_profiles.csv"), start=2):
        where = f"kernel_profiles.csv line {i}"
        assert row["time_mean_ms"] or row["time_median_ms"], f"{where}: needs a mean or median time"
        stats = [row[c] for c in ("time_min_ms", "time_median_ms", "time_mean_ms", "time_max_ms")]
        if all(stats):
            lo, med, mean, hi = (float(v) for v in stats)
            eps = 1e-9 * hi  # the published means carry float noise in the last digit
            assert lo <= med <= hi and lo - eps <= mean <= hi + eps, f"{where}: min/median/mean/max disorder"
        if row["operator"] in COLLECTIVES:
            assert (row["size_elements"] or row["size_kib"]) and not row["model"], f"{where}: a collective needs a size"
        elif row["operator"] == "gemm":  # a kernel sweep over GEMM shapes (M = num_tokens, N, K), not a model's
            assert row["num_tokens"] and row["n_embd"] and row["n_expanded_embd"], f"{where}: M, N and K"
        elif row["operator"] == "moe":  # a kernel sweep over expert shapes, not one model's layer
            assert row["num_tokens"] and row["n_embd"] and row["n_expanded_embd"] and row["tp"], f"{where}: a shape"
            assert re.search(r"topk=\d+ experts=\d+ ep=1 .*engine=\w+", row["notes"]), f"{where}: top-k, experts, engine"
        else:
            assert row["num_tokens"] and row["model"], f"{where}: an operator needs tokens and a model"


@pytest.mark.parametrize("name", sorted(FILES))
def test_names_resolve_in_the_catalog(name):
    spec = FILES[name]
    cat = default_catalog()
    for i, row in enumerate(_rows(name), start=2):
        hw = row[spec["hardware"]].strip()
        if hw not in NOT_IN_CATALOG["hardware"]:
            try:
                cat.get_hardware(hw)
            except InfersimError:
                pytest.fail(f"{name} line {i}: hardware '{hw}' is not in the catalog nor in NOT_IN_CATALOG")
        model = row[spec["model"]].strip()
        if name == "mlperf_extra.csv":
            model = next((v for k, v in MLPERF_MODELS.items() if model.startswith(k)), model)
        if model and model not in NOT_IN_CATALOG["model"]:
            try:
                cat.get_model(model)
            except InfersimError:
                pytest.fail(f"{name} line {i}: model '{model}' is not in the catalog nor in NOT_IN_CATALOG")
        if spec.get("engine"):
            engine = row[spec["engine"]]
            assert _engine_key(engine) in ENGINES, f"{name} line {i}: engine '{engine}' is not vllm/sglang/trtllm"
        if spec.get("precision"):
            assert row[spec["precision"]] in PRECISIONS, f"{name} line {i}: precision {row[spec['precision']]!r}"
        for col in spec.get("more_precisions", ()):
            assert row[col] in PRECISIONS, f"{name} line {i}: {col} {row[col]!r}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_no_row_is_repeated(name):
    seen: dict[tuple[str, ...], int] = {}
    for i, row in enumerate(_rows(name), start=2):
        key = tuple(row.values())
        assert key not in seen, f"{name} line {i} repeats line {seen[key]}"
        seen[key] = i
    if "row_id" in FILES[name]["columns"]:
        ids = [row["row_id"] for row in _rows(name)]
        assert len(ids) == len(set(ids)), f"{name}: row_id values repeat"


def test_mlperf_rows_come_from_allowed_rounds():
    for i, row in enumerate(_rows("mlperf_extra.csv"), start=2):
        assert row["round"] in MLPERF_ROUNDS, f"mlperf_extra.csv line {i}: round {row['round']!r} is not allowed"
        assert f"inference_results_{row['round']}" in row["source"], f"mlperf_extra.csv line {i}: round/source differ"
        assert row["scenario"] in {"Offline", "Server", "Interactive"}, f"mlperf_extra.csv line {i}: scenario"


def test_trtllm_performance_table_rows_are_h100_only():
    cat = default_catalog()
    for name, spec in FILES.items():
        for i, row in enumerate(_rows(name), start=2):
            cited = " ".join(row[c] for c in spec["source"]).lower()
            if "perf-overview" in cited or "perf_overview" in cited or "tensorrt-llm/docs" in cited:
                hw = cat.get_hardware(row[spec["hardware"]]).id
                assert hw == "h100-sxm", f"{name} line {i}: a TensorRT-LLM performance-table row on {hw}"


def test_no_row_repeats_the_shared_files():
    require_shared("calibration")
    with open(SHARED_CAL / "engine_latency.csv", newline="") as f:
        shared_ids = {r["source_path"].split("id=")[-1] for r in csv.DictReader(f)}
    for i, row in enumerate(_rows("engine_latency_extra.csv"), start=2):
        if "id=" in row["source_path"]:
            sample = row["source_path"].split("id=")[-1].split(" ")[0]
            assert sample not in shared_ids, f"engine_latency_extra.csv line {i}: {sample} is already in ../shared"
    with open(SHARED_CAL / "mlperf.csv", newline="") as f:
        shared_runs = {(r["round"], r["submitter"], r["system"], r["scenario"]) for r in csv.DictReader(f)}
    for i, row in enumerate(_rows("mlperf_extra.csv"), start=2):
        key = (row["round"], row["submitter"], row["system"], row["scenario"])
        assert key not in shared_runs, f"mlperf_extra.csv line {i}: already in ../shared/calibration/mlperf.csv"
