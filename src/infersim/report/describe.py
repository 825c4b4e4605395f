"""The scenario in plain words, and every catalog number it uses with its source (for the memo report).

Reads the scenario as saved (``scenario.json``: plain data, so it tolerates schema fields added later) and the
catalog through ``infersim.catalog.default_catalog()`` plus the scenario's extra catalog files. Returns text
lines and tables; rendering is ``memo``'s job.
"""

from __future__ import annotations

import json
from pathlib import Path

from infersim.catalog import Catalog, default_catalog, load_catalog_file
from infersim.core.errors import InfersimError


def _num(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int | float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}"
    return str(v)


def _secs(v) -> str:
    if v is None:
        return "-"
    v = float(v)
    if v < 1:
        return f"{v * 1000:g} ms"
    if v < 120:
        return f"{v:g} s"
    if v < 7200:
        return f"{v / 60:g} min"
    return f"{v / 3600:g} h"


def _dist(d: dict | None) -> str:
    """A token-length distribution in words."""
    if not d:
        return "-"
    d = dict(d)
    kind = d.pop("kind", "?")
    if kind == "lognormal" and "median" in d:
        s = f"lognormal, median {_num(d.get('median'))}"
        if d.get("p99") is not None:
            s += f", p99 {_num(d['p99'])}"
        if d.get("max") is not None:
            s += f" (capped at {_num(d['max'])})"
        return s
    if kind in ("constant", "fixed") and "value" in d:
        return f"always {_num(d['value'])}"
    rest = ", ".join(f"{k} {_num(v)}" for k, v in d.items() if v is not None and not isinstance(v, dict | list))
    return f"{kind}" + (f" ({rest})" if rest else "")


def _arrival(a: dict | None) -> str:
    if not a:
        return "share of the workload rate"
    kind = a.get("kind", "?")
    if kind == "poisson" and a.get("rate") is not None:
        return f"Poisson arrivals at {_num(a['rate'])} requests/s"
    if kind == "stages" and a.get("stages"):
        parts = [f"{_num(s.get('rate'))}/s for {_secs(s.get('duration'))}" for s in a["stages"]]
        return "arrival rate in stages: " + ", then ".join(parts)
    if kind == "trace":
        s = f"arrivals replayed from the trace {a.get('path') or a.get('file') or '?'}"
        if a.get("rate_scale") not in (None, 1, 1.0):
            s += f" at {_num(a['rate_scale'])}x its rate"
        if a.get("time_scale") not in (None, 1, 1.0):
            s += f", time scaled x{_num(a['time_scale'])}"
        return s
    if kind == "diurnal" and a.get("peak_rate") is not None:
        return (f"diurnal arrivals between {_num(a.get('trough_rate'))} and {_num(a['peak_rate'])} requests/s "
                f"(period {_secs(a.get('period'))}, peak at {_secs(a.get('peak_at'))})")
    rest = ", ".join(f"{k} {_num(v)}" for k, v in a.items() if k != "kind" and v is not None
                     and not isinstance(v, dict | list))
    return f"{kind} arrivals" + (f" ({rest})" if rest else "")


def _slo(slo: dict | None) -> str:
    parts = [f"{k.upper()} ≤ {_secs(v)}" for k, v in (slo or {}).items() if v is not None]
    return ", ".join(parts) if parts else "none"


def describe_scenario(sc: dict) -> dict[str, list[str]]:
    """``{'overview': [...], 'streams': [...], 'platforms': [...]}`` sentences about the scenario."""
    if not sc:
        return {"overview": ["The scenario was not saved with these results (no scenario.json)."], "streams": [],
                "platforms": []}
    ov = []
    if sc.get("description"):
        ov.append(str(sc["description"]))
    ov.append(f"Simulated {_secs(sc.get('duration'))} of traffic (seed {sc.get('seed')}); the first "
              f"{_secs(sc.get('warmup'))} are warm-up and excluded from latency, SLO and throughput figures; "
              f"requests in flight get up to {_secs(sc.get('drain'))} more to finish.")
    wl = sc.get("workload", {}) or {}
    if wl.get("rate") is not None:
        ov.append(f"Total workload rate {_num(wl['rate'])} requests/s, split between the streams by share.")
    streams = []
    for s in wl.get("streams", []) or []:
        line = f"**{s.get('name')}**: {_arrival(s.get('arrival'))}"
        if s.get("share") is not None:
            line += f" ({_num(100 * s['share'])}% of the workload)"
        if s.get("input_tokens") or s.get("output_tokens"):
            line += f"; input tokens {_dist(s.get('input_tokens'))}; output tokens {_dist(s.get('output_tokens'))}"
        else:
            line += "; token lengths from the trace"
        pre = s.get("prefix")
        if pre and pre.get("tokens"):
            line += (f"; {_num(100 * (pre.get('share') or 1))}% of requests start with a shared "
                     f"{_num(pre['tokens'])}-token prefix")
            if pre.get("groups"):
                line += f" (one of {_num(pre['groups'])} groups, Zipf {_num(pre.get('zipf_s'))})"
        line += f"; SLO: {_slo(s.get('slo'))}."
        streams.append(line)
    plats = [describe_platform(p) for p in sc.get("platforms", []) or []]
    return {"overview": ov, "streams": streams, "platforms": plats}


def _gpu_replica(d: dict, model=None) -> str:
    """``model at precision on N x hardware per replica (layout; engine and its options)`` of a GPU deployment
    or pool entry (``model``: the platform's, for a disaggregated pool)."""
    tp, pp, dp, ep = (d.get(k) or 1 for k in ("tp", "pp", "dp", "ep"))
    layout = " ".join(f"{k}{v}" for k, v in (("tp", tp), ("pp", pp), ("dp", dp), ("ep", ep)) if v > 1 or k == "tp")
    eng = d.get("engine") or {}
    opts = [f"{eng.get('kind', '?')} engine"]
    if eng.get("two_batch_overlap"):
        opts.append("two-batch overlap")
    spec = eng.get("speculative")
    if spec:
        opts.append(f"{spec.get('method')} speculation ({spec.get('num_tokens')} tokens at "
                    f"{_num(100 * (spec.get('acceptance_rate') or 0))}% acceptance)")
    return (f"{model or d.get('model')} at {d.get('precision')} on {tp * pp * dp}x {d.get('hardware')} per replica "
            f"({layout}; {', '.join(opts)})")


def describe_platform(p: dict) -> str:
    """One sentence per platform, from its saved scenario entry (any kind)."""
    kind, name = p.get("kind", "?"), p.get("name", "?")
    if kind == "disaggregated":
        parts = []
        for side in ("prefill", "decode"):
            pool = p.get(side) or {}
            if pool.get("kind", "gpu") == "gpu":
                desc = _gpu_replica(pool, p.get("model"))
            else:
                units = pool.get("units")
                desc = (f"{p.get('model')} on {pool.get('hardware') or pool.get('kind')}, "
                        + (f"{units} units per replica" if units else "as many units per replica as the model needs"))
            a = pool.get("autoscaling")
            n = (f"autoscaled {a.get('min_replicas')}-{a.get('max_replicas')} replicas" if a
                 else f"{pool.get('replicas', 1)} replica(s)")
            parts.append(f"{side} {desc}, {n}")
        kv = p.get("kv_transfer") or {}
        s = f"**{name}** (disaggregated): " + "; ".join(parts) + f"; KV over {kv.get('placement', 'rdma')}"
        pr = p.get("prices")
        if pr:
            s += f"; customers pay ${_num(pr.get('input_usd_per_mtok'))} / ${_num(pr.get('output_usd_per_mtok'))} " \
                 f"per million input / output tokens"
        return s + "."
    if kind == "gpu_fleet":
        deps = []
        for d in p.get("deployments", []) or []:
            s = _gpu_replica(d)
            a = d.get("autoscaling")
            if a:
                s += (f", autoscaled {a.get('min_replicas')}-{a.get('max_replicas')} replicas "
                      f"({a.get('kind', '?')} rule, scale-down delay {_secs(a.get('scale_down_delay'))})")
            else:
                s += f", {d.get('replicas')} fixed replica(s)"
            if d.get("usd_per_gpu_hour") is not None:
                s += f", priced at ${_num(d['usd_per_gpu_hour'])}/GPU-hour (scenario override)"
            if (d.get("billing") or {}).get("unit"):
                s += f", billed per {_secs(d['billing']['unit'])}"
            deps.append(s)
        s = f"**{name}** (GPU fleet): " + "; ".join(deps)
        r = p.get("router")
        if r:
            s += f"; a {r.get('kind', '?')} router picks the deployment per request"
            if r.get("threshold") is not None:
                s += f" (threshold {_num(r['threshold'])})"
            if (r.get("token_api") or {}).get("preset"):
                s += f", overflowing to the token API {r['token_api']['preset']}"
        return s + "."
    if kind == "token_api":
        s = f"**{name}** (token API): {p.get('model')}"
        if p.get("preset"):
            s += f", preset {p['preset']}"
        pr = p.get("prices")
        if pr:
            s += f", ${_num(pr.get('input_usd_per_mtok'))} / ${_num(pr.get('output_usd_per_mtok'))} per million " \
                 f"input / output tokens"
        rl = p.get("rate_limits")
        if rl:
            s += ", rate limits " + ", ".join(f"{k} {_num(v)}" for k, v in rl.items()
                                              if v is not None and k.endswith("minute"))
        return s + "."
    units, what = (p.get("chips"), "chips") if p.get("chips") else (p.get("systems"), "systems")
    s = f"**{name}** ({kind}): {p.get('model')} on {p.get('hardware')}"
    s += f", {units} {what} per replica" if units else ", as many chips/systems per replica as the model needs"
    s += f", {p.get('replicas', 1)} replica(s)"
    pr = p.get("prices")
    if pr:
        s += f", customers pay ${_num(pr.get('input_usd_per_mtok'))} / ${_num(pr.get('output_usd_per_mtok'))} " \
             f"per million input / output tokens"
    return s + "."


def scenario_header(path: Path | None) -> list[str]:
    """The leading ``#`` comment lines of the scenario YAML (its stated sources and assumptions)."""
    if path is None:
        return []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    out = []
    for ln in lines:
        if ln.startswith("#"):
            out.append(ln[1:].removeprefix(" "))
        elif ln.strip() == "" and out:
            out.append("")
        else:
            break
    while out and not out[-1]:
        out.pop()
    return out


def scenario_catalog(sc: dict, scenario_file: Path | None, notes: list[str]) -> Catalog:
    """The shipped catalog plus the scenario's extra catalog files (resolved next to the scenario file)."""
    cat = default_catalog()
    for f in sc.get("catalog", []) or []:
        p = Path(f)
        if not p.is_absolute() and scenario_file is not None:
            p = scenario_file.parent / p
        if not p.exists():
            notes.append(f"extra catalog file {f} not found (scenario file unknown or moved); its entries are "
                         f"described from the shipped catalog where the ids match")
            continue
        try:
            cat = cat.extended(load_catalog_file(p))
        except InfersimError as exc:
            notes.append(f"extra catalog file {p}: {str(exc).splitlines()[0]}")
    return cat


def used_names(sc: dict) -> dict[str, list[str]]:
    """Hardware, model, engine, token-API preset names the scenario uses, in order of first use."""
    used: dict[str, dict] = {"hardware": {}, "models": {}, "engines": {}, "presets": {}}
    keys = {"hardware": "hardware", "model": "models", "preset": "presets"}

    def walk(node) -> None:  # anywhere in a platform: deployments, routers, overflow APIs
        if isinstance(node, dict):
            for k, v in node.items():
                if k in keys and isinstance(v, str) and v:
                    used[keys[k]][v] = None
                elif k == "engine" and isinstance(v, dict) and v.get("kind"):
                    used["engines"][v.get("profile") or v["kind"]] = None
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(sc.get("platforms", []))
    return {k: list(v) for k, v in used.items()}


HW_FIELDS = (("tflops", "dense peak TFLOPS per precision"), ("memory_gb", "memory, GB"),
             ("memory_bw_tbps", "memory bandwidth, TB/s"), ("sram_mb", "on-chip SRAM, MB"),
             ("interconnect_gbps", "chip-to-chip, GB/s"), ("tdp_w", "TDP, W"),
             ("usd_per_hour", "price, $ per chip-hour"), ("list_price_usd", "list price, $ per chip"))
MODEL_FIELDS = (("hf_id", "Hugging Face id"), ("layers", "layers"), ("hidden_size", "hidden size"),
                ("num_heads", "attention heads"), ("num_kv_heads", "KV heads"), ("head_dim", "head dim"),
                ("intermediate_size", "intermediate size"), ("vocab_size", "vocabulary"),
                ("total_params_b", "parameters, billions"), ("active_params_b", "active parameters, billions"),
                ("num_experts", "experts"), ("experts_per_token", "experts per token"),
                ("kv_lora_rank", "KV LoRA rank (MLA)"), ("max_context", "max context, tokens"))


def _fmt_field(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_num(x)}" for k, x in v.items())
    return _num(v)


def catalog_sources(sc: dict, scenario_file: Path | None, notes: list[str]) -> list[dict]:
    """Entries for the assumptions-and-sources section: ``{'title', 'numbers': [(label, value)], 'sources':
    [(key, text)], 'assumptions': [text]}``, one per hardware, model, token-API preset and engine profile the
    scenario uses."""
    cat = scenario_catalog(sc, scenario_file, notes)
    used = used_names(sc)
    out = []
    for h in used["hardware"]:
        try:
            e = cat.get_hardware(h)
        except InfersimError:
            notes.append(f"hardware '{h}' is not in the catalog available to the report")
            continue
        nums = [(lbl, _fmt_field(getattr(e, f))) for f, lbl in HW_FIELDS
                if getattr(e, f) not in (None, 0, 0.0, {})]
        out.append({"title": f"Hardware {e.id}: {e.name} ({e.vendor}, {e.kind})", "numbers": nums,
                    "sources": list(e.source.items()), "assumptions": list(e.assumptions), "notes": e.notes})
    for m in used["models"]:
        try:
            e = cat.get_model(m)
        except InfersimError:
            notes.append(f"model '{m}' is not in the catalog available to the report")
            continue
        nums = [(lbl, _fmt_field(getattr(e, f))) for f, lbl in MODEL_FIELDS if getattr(e, f) not in (None, 0, "")]
        out.append({"title": f"Model {e.id}: {e.name}", "numbers": nums, "sources": list(e.source.items()),
                    "assumptions": list(e.assumptions), "notes": e.notes})
    for pid in used["presets"]:
        try:
            from infersim.perf.token_api import token_api_preset

            e = token_api_preset(pid)
        except InfersimError:
            notes.append(f"token API preset '{pid}' not found")
            continue
        nums = [("TTFT median, s", _num(e.latency.ttft.median)), ("TTFT log-sigma", _num(e.latency.ttft.sigma)),
                ("output speed median, tok/s", _num(e.latency.speed.median)),
                ("output speed log-sigma", _num(e.latency.speed.sigma))]
        if e.prices:
            nums += [("price, $ per million input tokens", _num(e.prices.input_usd_per_mtok)),
                     ("price, $ per million output tokens", _num(e.prices.output_usd_per_mtok))]
        out.append({"title": f"Token API preset {e.id} ({e.provider})", "numbers": nums,
                    "sources": list(e.source.items()), "assumptions": list(e.assumptions), "notes": ""})
    for eng in used["engines"]:
        out.append(_engine_entry(eng, scenario_file))
    for h in used["hardware"]:
        try:
            hw = cat.get_hardware(h)
        except InfersimError:
            continue
        if hw.kind in ("lpu", "wafer"):
            from infersim.perf.sram.params import profile_for

            prof = profile_for(hw)
            out.append(_doc_entry(f"SRAM-pipeline profile {prof.name} (for {hw.id})", prof.doc))
    return out


def _doc_entry(title: str, doc: dict) -> dict:
    params = doc.get("params") or {}
    nums = [(k, _num(v)) for k, v in params.items()]
    srcs = []
    for key in ("method", "fitted", "source", "sources", "rows", "fit"):
        if doc.get(key) is not None:
            v = doc[key]
            srcs.append((key, v if isinstance(v, str) else json.dumps(v, default=str)))
    asm = doc.get("assumptions") or {}
    asm_list = [f"{k}: {v}" for k, v in asm.items()] if isinstance(asm, dict) else [str(a) for a in asm]
    if not srcs and not asm_list:
        asm_list = ["the profile file states no source for these parameters: treat them as assumptions"]
    return {"title": title, "numbers": nums, "sources": srcs, "assumptions": asm_list, "notes": ""}


def _engine_entry(eng: str, scenario_file: Path | None) -> dict:
    from infersim.perf.profiles import shipped_profile_doc

    try:
        doc = shipped_profile_doc(eng)
        return _doc_entry(f"Engine profile {eng} (shipped, perf/profiles/{eng}.yaml)", doc)
    except (OSError, FileNotFoundError, ValueError):
        pass
    p = Path(eng)
    if not p.is_absolute() and scenario_file is not None:
        p = scenario_file.parent / p
    try:
        import yaml

        return _doc_entry(f"Engine profile file {eng} (from the scenario)", yaml.safe_load(p.read_text()) or {})
    except (OSError, ValueError):
        return {"title": f"Engine profile {eng}", "numbers": [], "sources": [],
                "assumptions": ["profile file not readable from the report; parameters not listed"], "notes": ""}
