"""DistServe's measured OPT-13B runs, replayed request by request (``data/calibration/distserve_opt13b*``).

The authors of DistServe (OSDI 2024) published every request of their end-to-end runs on A100-80GB SXM: vLLM on
one GPU and DistServe's disaggregated layouts (a tp=2 prefill instance with a decode instance of one GPU, or of
two in a pipeline), on ShareGPT requests arriving as a Poisson process at 1-16 req/s. Each run is replayed here
with its own requests (arrival times, prompt and output lengths) and every request's TTFT and TPOT compared with
the measured one; the SLO attainment (TTFT <= 0.25 s and TPOT <= 0.1 s) per run, and from it the per-GPU
goodput, are compared the same way. These runs are in no fit.

Two ways to set the engines' speed (``engines``):

- ``stock``: both systems on infersim's shipped vLLM profile (today's kernels and scheduling overheads), the
  schedulers as each system had them: vLLM of that time ran prompts in steps of their own that pause the running
  decodes (``prefill_priority``) and never chunked one (``max_num_batched_tokens`` 16,384 > 2,048 positions);
  DistServe's prefill instance returns the first token itself (``first_token: prefill``).
- ``profiled``: each system's step time fitted (``step_overrides``: compute and memory efficiency, per-step
  overhead, all-reduce latency; least squares on log step time) to the per-step latencies the authors measured
  for that engine on the same GPUs (``step_profiles`` in the YAML: their simulator's fitted formulas, evaluated
  over prompts of 64-2,048 tokens and batches of 1-90 sequences of 256-1,024 context tokens), everything else
  as shipped. Those step measurements are not the end-to-end runs checked here.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

#: the per-step parameters ``step_overrides`` fits (``perf.params.PerfParams`` fields)
STEP_PARAMS = ("compute_eff", "memory_eff", "step_overhead_s", "allreduce_latency_s")
_BOUNDS = ([0.05, 0.05, 0.0, 0.0], [1.0, 1.0, 0.1, 0.01])
_PREFILL_LENS = (64, 128, 256, 512, 768, 1024, 1536, 2048)
_DECODE_POINTS = tuple((b, c) for b in (1, 4, 16, 32, 64, 90) for c in (256, 512, 1024))


@dataclass(frozen=True)
class DistServeData:
    meta: dict
    requests: pd.DataFrame

    @property
    def slo(self) -> dict:
        return self.meta["slo"]


def load(yaml_path: str | Path) -> DistServeData:
    """The YAML (model, SLOs, servers, step profiles) and the per-request table beside it."""
    p = Path(yaml_path)
    meta = yaml.safe_load(p.read_text())
    reqs = pd.read_csv(p.with_name(p.stem + "_requests.csv.gz"))
    return DistServeData(meta, reqs)


def runs(data: DistServeData) -> pd.DataFrame:
    """One row per measured run: run, system, layout, gpus, rate_per_s, requests."""
    g = data.requests.groupby("run", sort=False)
    out = g.agg(system=("system", "first"), prefill_tp=("prefill_tp", "first"), prefill_pp=("prefill_pp", "first"),
                decode_tp=("decode_tp", "first"), decode_pp=("decode_pp", "first"),
                rate_per_s=("rate_per_s", "first"), requests=("request", "size")).reset_index()
    out["layout"] = [_layout(r) for r in out.itertuples()]
    out["gpus"] = [_gpus(r) for r in out.itertuples()]
    return out.sort_values(["layout", "rate_per_s", "requests"]).reset_index(drop=True)


def _layout(r) -> str:
    if r.system == "vllm":
        return "vllm"
    return f"distserve-c{r.prefill_tp}{r.prefill_pp}d{r.decode_tp}{r.decode_pp}"


def _gpus(r) -> int:
    if r.system == "vllm":
        return 1
    return int(r.prefill_tp * r.prefill_pp + r.decode_tp * r.decode_pp)


# -- the engines' step time -----------------------------------------------------------------------------
def _profile_ms(prof: dict, tp: int, kind: str, a: int, b: int) -> float:
    p = prof[tp]
    if kind == "prefill":
        c0, c1, c2 = p["prefill"]
        return c0 + c1 * a + c2 * a * a
    row = p["decoding_smallbs"] if a < p["decoding_large_small_bs_threshold"] else p["decoding_largebs"]
    c0, c1, c2 = row
    return c0 + c1 * a * b + c2 * a


def _roofline(data: DistServeData, params, tp: int):
    from infersim.perf.gpu import GpuConfig, GpuRoofline

    cat = _catalog(yaml.safe_dump({"models": [data.meta["model"]]}, sort_keys=False))
    hw, m = cat.get_hardware(data.meta["hardware"]), cat.get_model(data.meta["model"]["id"])
    prec = data.meta["precision"]
    return GpuRoofline(GpuConfig(hw, m, prec, prec, tp, 1, 1, 1), params, engine="vllm")


@lru_cache(maxsize=4)
def _catalog(text: str):
    from infersim.catalog import default_catalog, load_catalog_file

    return default_catalog().extended(load_catalog_file("distserve-opt13b.yaml", text=text))


def step_errors(data: DistServeData, engine: str, overrides: dict | None = None) -> np.ndarray:
    """log(predicted / measured) step time over the profile grid (tp 1 then 2; prefills then decodes), with
    the shipped vLLM profile changed by ``overrides``."""
    from infersim.perf.profiles import shipped_profile

    params = replace(shipped_profile("vllm"), **(overrides or {}))
    prof = data.meta["step_profiles"][engine]
    out = []
    for tp in sorted(prof):
        perf = _roofline(data, params, int(tp))
        for n in _PREFILL_LENS:
            s = perf.step_s(n, n * (n + 1) / 2.0, 1, 0, 0.0, 0.0)
            out.append(math.log(s * 1e3 / _profile_ms(prof, tp, "prefill", n, 0)))
        for b, c in _DECODE_POINTS:
            s = perf.step_s(0, 0.0, 0, b, float(b * c))
            out.append(math.log(s * 1e3 / _profile_ms(prof, tp, "decode", b, c)))
    return np.array(out)


def step_overrides(data: DistServeData, engine: str) -> dict[str, float]:
    """``STEP_PARAMS`` fitted to ``engine``'s measured step profile (``vllm`` or ``distserve``)."""
    from scipy.optimize import least_squares

    from infersim.perf.profiles import shipped_profile

    base = shipped_profile("vllm")
    x0 = np.clip([getattr(base, k) for k in STEP_PARAMS], _BOUNDS[0], _BOUNDS[1])
    fit = least_squares(lambda x: step_errors(data, engine, dict(zip(STEP_PARAMS, x, strict=True))), x0, bounds=_BOUNDS)
    return {k: round(float(v), 6) for k, v in zip(STEP_PARAMS, fit.x, strict=True)}


# -- platforms ------------------------------------------------------------------------------------------
def _engine(server: dict, perf: dict) -> dict:
    eng = {"kind": "vllm", "max_num_seqs": server["max_num_seqs"], "max_batched_tokens": server["max_batched_tokens"],
           "block_size": server["block_size"], "prefix_caching": False,
           "gpu_memory_utilization": server["gpu_memory_utilization"]}
    perf = dict(perf)
    if server.get("prefill_priority"):
        perf["prefill_priority"] = 1
    if perf:
        eng["perf"] = perf
    return eng


def platform(data: DistServeData, run, perf_by_system: dict[str, dict]) -> dict:
    """The scenario platform of one measured run (a ``runs`` row)."""
    m, hw, prec = data.meta["model"]["id"], data.meta["hardware"], data.meta["precision"]
    sv = data.meta["servers"]
    if run.system == "vllm":
        return {"name": "vllm", "kind": "gpu_fleet",
                "deployments": [{"model": m, "hardware": hw, "precision": prec, "replicas": 1,
                                 "engine": _engine(sv["vllm"], perf_by_system["vllm"])}]}
    perf = perf_by_system["distserve"]
    return {"name": "distserve", "kind": "disaggregated", "model": m, "first_token": "prefill",
            "prefill": {"hardware": hw, "precision": prec, "tp": int(run.prefill_tp), "pp": int(run.prefill_pp),
                        "engine": _engine(sv["distserve_prefill"], perf)},
            "decode": {"hardware": hw, "precision": prec, "tp": int(run.decode_tp), "pp": int(run.decode_pp),
                       "engine": _engine(sv["distserve_decode"], perf)},
            "kv_transfer": {"placement": "same_domain"}}  # one 8-GPU A100 node: NVLink


def _attained(ttft: np.ndarray, tpot: np.ndarray, slo: dict) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (ttft <= slo["ttft_s"]) & ((tpot <= slo["tpot_s"]) | np.isnan(tpot))


def replay(data: DistServeData, engines: str = "stock", only: list[str] | None = None) -> pd.DataFrame:
    """Every measured run (or those named in ``only``) simulated on its own requests; one row per run with the
    measured and simulated TTFT/TPOT percentiles, SLO attainment and the median per-request |error|."""
    from infersim.results.simulate import simulate
    from infersim.validate import load_scenario

    if engines == "stock":
        perf = {"vllm": {}, "distserve": {}}
    elif engines == "profiled":
        perf = {s: step_overrides(data, s) for s in ("vllm", "distserve")}
    else:
        raise ValueError(f"engines must be 'stock' or 'profiled', not {engines!r}")
    table = runs(data)
    if only is not None:
        table = table[table.run.isin(only)]
    slo = data.slo
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "opt.yaml").write_text(yaml.safe_dump({"models": [data.meta["model"]]}, sort_keys=False))
        (d / "scenario.yaml").write_text("{}")
        for run in table.itertuples():
            g = data.requests[data.requests.run == run.run].sort_values("request")
            pd.DataFrame({"TIMESTAMP": g.issue_s, "ContextTokens": g.prompt_len,
                          "GeneratedTokens": g.output_len}).to_csv(d / "trace.csv", index=False)
            sc = {"name": run.run, "seed": 0, "duration": float(g.issue_s.max()) + 1e-3, "drain": 900.0,
                  "catalog": ["opt.yaml"],
                  "workload": {"streams": [{"name": "sharegpt", "arrival": {"kind": "trace", "path": "trace.csv"},
                                            "slo": {"ttft": slo["ttft_s"], "tpot": slo["tpot_s"]}}]},
                  "platforms": [platform(data, run, perf)]}
            res = simulate(load_scenario(d / "scenario.yaml", data=sc))
            rq, summ = res.requests, res.summary.iloc[0]
            mt, mp = g.ttft_ms.to_numpy() / 1e3, g.tpot_ms.to_numpy() / 1e3
            mp = np.where(g.output_len.to_numpy() > 1, mp, np.nan)
            st, sp = rq.ttft_s.to_numpy(dtype=float), rq.tpot_s.to_numpy(dtype=float)
            fin = (rq.outcome == "finished").to_numpy()
            st, sp = np.where(fin, st, np.inf), np.where(fin, sp, np.inf)
            ok_p = ~np.isnan(mp) & np.isfinite(sp)
            rows.append({**run._asdict(),
                         "ttft_p50_s": float(np.median(mt)), "sim_ttft_p50_s": float(np.median(st)),
                         "ttft_p90_s": float(np.quantile(mt, 0.9)), "sim_ttft_p90_s": float(np.quantile(st, 0.9)),
                         "tpot_p50_s": float(np.nanmedian(mp)), "sim_tpot_p50_s": float(np.nanmedian(sp[~np.isnan(mp)])),
                         "attainment": float(_attained(mt, mp, slo).mean()),
                         "sim_attainment": float(_attained(st, sp, slo).mean()),
                         "ttft_abs_err": float(np.median(np.abs(st[fin] / mt[fin] - 1))) if fin.any() else math.nan,
                         "tpot_abs_err": float(np.median(np.abs(sp[ok_p] / mp[ok_p] - 1))) if ok_p.any() else math.nan,
                         "finished": float(fin.mean()),
                         "decode_recomputed_blocks": int(summ.get("decode_recomputed_blocks", 0) or 0)})
    out = pd.DataFrame(rows).drop(columns=["Index"])
    return out.reset_index(drop=True)


def goodput_brackets(table: pd.DataFrame, column: str = "attainment", target: float = 0.9) -> pd.DataFrame:
    """Per layout, the per-GPU goodput bracketed by the measured rates: ``lo`` = the highest rate up to which
    every run meets ``target`` (0 if the lowest does not), ``hi`` = the next rate (inf if none misses). Only the
    100-second runs (``requests`` = 100 x rate: the runs of every rate, as long as each other) are used."""
    out = []
    for layout, g in table.groupby("layout", sort=True):
        g = g[np.isclose(g.requests, 100 * g.rate_per_s)].sort_values("rate_per_s")
        lo, hi = 0.0, math.inf
        for r in g.itertuples():
            if getattr(r, column) >= target:
                lo = r.rate_per_s
            else:
                hi = r.rate_per_s
                break
        gpus = int(g.gpus.iloc[0])
        out.append({"layout": layout, "gpus": gpus, "lo_per_gpu": lo / gpus, "hi_per_gpu": hi / gpus})
    return pd.DataFrame(out)
