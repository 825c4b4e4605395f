"""The measurement plan and the calibration table of ``gpu_kernels.py`` (pure Python: no torch, no GPU).

A plan is a list of ``Item``s: GEMMs (M, N, K) in BF16 and FP8 over the shapes of the catalog's models,
prefill and decode attention, an HBM copy, and one random-weight transformer layer per committed
``model_configs/*.json`` in prefill and decode. Each item knows its work (FLOPs and bytes moved, the
roofline's inputs) and an estimate of the seconds measuring it takes, so that ``make_plan`` keeps the whole
run inside ``--budget-s`` by its own estimate. ``table_rows`` turns measured times into the table's rows:
efficiency = roofline time at the catalog's peaks / measured time (1.0 = at peak FLOP/s or peak HBM
bandwidth, whichever bounds the item).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import SimpleNamespace

CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
M_FULL = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)  # tokens in the step
M_COARSE = (1, 8, 64, 256, 1024, 4096, 16384)
CORE_MODELS = ("llama-3.1-8b", "qwen3-32b", "gpt-oss-120b", "mixtral-8x7b")  # full M grid, both dtypes
ELEMENT_BYTES = {"bf16": 2, "fp8": 1}
STARTUP_S = 25.0  # torch import, CUDA context, nvidia-smi (ASSUMPTION: typical cold start)
PLAN_SHARE = 0.85  # of the budget the plan may fill by its estimate (the rest is margin)
ASSUMED_EFF = 0.5  # for estimating kernel time before measuring (ASSUMPTION)
TIMED_S = 0.02  # seconds of timed kernel work per item (split into TRIALS trials)
TRIALS = 3
L2_FLUSH_BYTES = 256 << 20  # operands rotate over copies of at least this size, so no call hits L2
OVERHEAD_S = 0.004  # per item: allocation, random init, synchronisation (ASSUMPTION)

# CUDA/ROCm device names -> catalog hardware ids, first match wins. Variants that share a family name
# but not the catalog entry's clocks or memory (H100 PCIe/NVL, GH200, A100 40GB) map to None: no peaks.
DEVICE_PATTERNS: tuple[tuple[str, str | None], ...] = (
    (r"GH200", None), (r"H100.*(PCIe|NVL)", None), (r"H100", "h100-sxm"), (r"H200", "h200"),
    (r"GB200", "gb200"), (r"B200", "b200"), (r"A100.*80\s*GB", "a100-80g"), (r"A100", None),
    (r"L40S", "l40s"), (r"\bL4\b", "l4"), (r"MI325X", "mi325x"), (r"MI300X", "mi300x"),
)


@dataclass(frozen=True)
class Peaks:
    """A chip's catalog peaks: dense TFLOP/s per precision and HBM TB/s."""

    hardware_id: str
    tflops: dict
    memory_bw_tbps: float

    def flops_per_s(self, dtype: str) -> float | None:
        tf = self.tflops.get(dtype)
        return tf * 1e12 if tf else None


@dataclass(frozen=True)
class Item:
    """One measurement. ``kind``: gemm | attn_prefill | attn_decode | hbm_copy | layer_prefill | layer_decode.
    GEMM: C[m, n] = A[m, k] @ W[n, k]^T. Attention: ``batch`` sequences of ``context`` tokens (prefill: one
    causal sequence of ``context`` tokens). Layer: ``m`` tokens (prefill) or ``batch`` x 1 (decode) over
    ``context`` tokens of KV. ``flops``/``bytes`` are the work; ``est_s`` the estimated measuring time."""

    kind: str
    label: str
    dtype: str = "bf16"
    m: int = 0
    n: int = 0
    k: int = 0
    batch: int = 0
    context: int = 0
    heads: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    config: str = ""
    flops: float = 0.0
    bytes: float = 0.0
    alloc_bytes: float = 0.0
    est_s: float = 0.0
    priority: int = 0


# -- shapes ---------------------------------------------------------------------------------------
def gemm_shapes(model, tp: int = 1) -> list[tuple[str, int, int, bool]]:
    """(name, N, K, per_expert) of one layer's GEMMs (and the LM head) on one of ``tp`` GPUs.

    qkv: N = (heads + 2 kv_heads) x head_dim / tp, K = hidden; o: N = hidden, K = heads x head_dim / tp;
    gate_up (fused SwiGLU): N = 2 x intermediate / tp, K = hidden; down: N = hidden, K = intermediate / tp;
    for MoE models the FFN pair is per expert (``per_expert``: M is the tokens routed to one expert);
    lm_head: N = vocab / tp, K = hidden. Multi-head latent attention (kv_lora_rank > 0) has projections the
    catalog does not describe: only its FFN/expert GEMMs and LM head are planned."""
    h, d = model.hidden_size, model.head_dim
    out = []
    if not model.kv_lora_rank:
        out.append(("qkv", (model.num_heads + 2 * model.num_kv_heads) * d // tp, h, False))
        out.append(("o", h, model.num_heads * d // tp, False))
    moe = model.num_experts > 0
    out.append(("expert_gate_up" if moe else "gate_up", 2 * model.intermediate_size // tp, h, moe))
    out.append(("expert_down" if moe else "down", h, model.intermediate_size // tp, moe))
    out.append(("lm_head", model.vocab_size // tp, h, False))
    return out


def expert_tokens(model, tokens: int) -> int:
    """Tokens one expert computes in a step of ``tokens`` tokens (uniform routing), at least 1."""
    return max(1, round(tokens * model.experts_per_token / model.num_experts))


def _gemm(label: str, dtype: str, m: int, n: int, k: int, prio: int) -> Item:
    e = ELEMENT_BYTES[dtype]
    moved = (m * k + n * k) * e + m * n * 2  # A and W read once, C written in BF16
    copies = min(32, max(1, math.ceil(L2_FLUSH_BYTES / (n * k * e))))
    return Item("gemm", label, dtype, m=m, n=n, k=k, flops=2.0 * m * n * k, bytes=float(moved),
                alloc_bytes=float(copies * n * k * e + (m * k * e + m * n * 2)), priority=prio)


def gemm_items(catalog, core: tuple[str, ...] = CORE_MODELS) -> list[Item]:
    """GEMMs of every catalog model at TP 1 (models of hidden >= 8192 also at TP 8), BF16 and FP8:
    the full M grid for ``core`` models, a coarse one for the others. Shapes repeated across models are
    planned once (the label names the first model)."""
    items, seen = [], set()
    for mid, model in sorted(catalog.models.items(), key=lambda kv: (kv[0] not in core, kv[0])):
        if mid not in core and model.hidden_size < 2048:
            continue
        grid = M_FULL if mid in core else M_COARSE
        for tp in (1, 8) if model.hidden_size >= 8192 else (1,):
            for name, n, k, per_expert in gemm_shapes(model, tp):
                for dtype in ("bf16", "fp8"):
                    prio = (3 if dtype == "bf16" else 4) if mid in core else 5
                    for tokens in grid:
                        m = expert_tokens(model, tokens) if per_expert else tokens
                        key = (m, n, k, dtype)
                        if key in seen:
                            continue
                        seen.add(key)
                        label = f"{mid} tp{tp} {name}" + (f" ({tokens} tokens)" if per_expert else "")
                        items.append(_gemm(label, dtype, m, n, k, prio))
    return items


def attention_items(catalog, core: tuple[str, ...] = CORE_MODELS) -> list[Item]:
    """Prefill (one causal sequence) by context and decode (batch x 1 query) by batch and context, BF16,
    for the head layouts of the core models at TP 1 (and TP 8 for models of hidden >= 8192)."""
    layouts = {}
    for mid in core:
        m = catalog.models[mid]
        for tp in (1, 8) if m.hidden_size >= 8192 else (1,):
            key = (m.num_heads // tp, max(1, m.num_kv_heads // tp), m.head_dim)
            layouts.setdefault(key, f"{mid} tp{tp}")
    items = []
    for (h, hkv, d), label in layouts.items():
        for s in (512, 2048, 8192, 32768):
            flops = 2.0 * h * d * s * (s + 1)  # QK^T and AV over the causal triangle, 2 FLOPs per MAC
            moved = s * d * (2 * h + 2 * hkv) * 2.0
            items.append(Item("attn_prefill", label, "bf16", batch=1, context=s, heads=h, kv_heads=hkv,
                              head_dim=d, flops=flops, bytes=moved, alloc_bytes=moved, priority=2))
        for b in (1, 8, 32, 128):
            for c in (1024, 4096, 16384):
                kv = b * c * 2 * hkv * d * 2.0
                if kv > 16e9:
                    continue
                copies = min(16, max(1, math.ceil(L2_FLUSH_BYTES / kv)))
                items.append(Item("attn_decode", label, "bf16", batch=b, context=c, heads=h, kv_heads=hkv,
                                  head_dim=d, flops=4.0 * b * h * d * c, bytes=kv + b * h * d * 4.0,
                                  alloc_bytes=copies * kv, priority=2))
    return items


def copy_items() -> list[Item]:
    """Device-to-device copies (read + write) of 256 MiB, 1 GiB and 4 GiB."""
    return [Item("hbm_copy", f"copy {size >> 20} MiB", "bf16", bytes=2.0 * size, alloc_bytes=2.0 * size,
                 priority=0) for size in (256 << 20, 1 << 30, 4 << 30)]


def load_configs(directory: Path = CONFIG_DIR) -> dict[str, dict]:
    """The committed config.json files, by file stem."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


@dataclass(frozen=True)
class LayerShape:
    """One transformer layer's architecture read from a Hugging Face config.json."""

    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int  # dense FFN width, or one expert's
    experts: int
    top_k: int
    bias: bool

    @classmethod
    def from_config(cls, cfg: dict) -> LayerShape:
        hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        experts = int(cfg.get("num_local_experts") or cfg.get("num_experts") or 0)
        top_k = int(cfg.get("num_experts_per_tok") or cfg.get("experts_per_token") or 0) if experts else 0
        width = int(cfg.get("moe_intermediate_size") or cfg["intermediate_size"]) if experts else int(cfg["intermediate_size"])
        return cls(hidden, heads, int(cfg.get("num_key_value_heads") or heads),
                   int(cfg.get("head_dim") or hidden // heads), width, experts, top_k,
                   bool(cfg.get("attention_bias", False)))

    def attn_params(self) -> float:
        return float(self.hidden * (self.heads + 2 * self.kv_heads) * self.head_dim
                     + self.heads * self.head_dim * self.hidden)

    def ffn_params(self) -> float:
        """All FFN weights (every expert, plus the router)."""
        one = 3.0 * self.hidden * self.intermediate
        return one * self.experts + self.hidden * self.experts if self.experts else one

    def work(self, tokens: int, context: int, decode: bool) -> tuple[float, float]:
        """(FLOPs, bytes) of a step of ``tokens`` new tokens: prefill = one causal sequence of ``tokens``;
        decode = ``tokens`` sequences of one token over ``context`` tokens of KV each. BF16 weights, read
        once per step (MoE: the experts the step touches under uniform routing)."""
        e = 2.0
        active = self.attn_params() + (3.0 * self.hidden * self.intermediate * self.top_k + self.hidden * self.experts
                                       if self.experts else self.ffn_params())
        flops = 2.0 * tokens * active
        if self.experts:
            touched = 1.0 - (1.0 - self.top_k / self.experts) ** tokens
            weights = self.attn_params() + 3.0 * self.hidden * self.intermediate * self.experts * touched
        else:
            weights = self.attn_params() + self.ffn_params()
        kv_row = 2.0 * self.kv_heads * self.head_dim * e
        if decode:
            flops += 4.0 * tokens * self.heads * self.head_dim * context
            moved = weights * e + tokens * context * kv_row
        else:
            flops += 2.0 * self.heads * self.head_dim * tokens * (tokens + 1)
            moved = weights * e + tokens * kv_row
        return flops, moved + 4.0 * tokens * self.hidden * e


def layer_items(configs: dict[str, dict]) -> list[Item]:
    """Each config's layer: prefill of 512 / 2048 / 8192 tokens, decode of batch 1 / 16 / 64 / 256 at a
    2048-token context."""
    items = []
    for name, cfg in configs.items():
        shape = LayerShape.from_config(cfg)
        weights = (shape.attn_params() + shape.ffn_params()) * 2.0
        for t in (512, 2048, 8192):
            fl, by = shape.work(t, t, decode=False)
            items.append(Item("layer_prefill", name, "bf16", m=t, context=t, heads=shape.heads,
                              kv_heads=shape.kv_heads, head_dim=shape.head_dim, config=name, flops=fl, bytes=by,
                              alloc_bytes=weights + 40.0 * t * max(shape.hidden, shape.intermediate * max(shape.top_k, 1)),
                              priority=1))
        for b in (1, 16, 64, 256):
            fl, by = shape.work(b, 2048, decode=True)
            kv = b * 2048 * 2 * shape.kv_heads * shape.head_dim * 2.0
            items.append(Item("layer_decode", name, "bf16", batch=b, context=2048, heads=shape.heads,
                              kv_heads=shape.kv_heads, head_dim=shape.head_dim, config=name, flops=fl, bytes=by,
                              alloc_bytes=weights + kv, priority=1))
    return items


# -- time estimate and plan ----------------------------------------------------------------------------
def roofline_s(item: Item, peaks: Peaks) -> float | None:
    """Seconds at the catalog's peaks: max(FLOPs / peak FLOP/s of the dtype, bytes / peak bandwidth)."""
    bw = peaks.memory_bw_tbps * 1e12
    t_mem = item.bytes / bw if bw > 0 else 0.0
    if item.flops <= 0:
        return t_mem
    fl = peaks.flops_per_s(item.dtype)
    if fl is None:
        return None
    return max(item.flops / fl, t_mem)


def bound(item: Item, peaks: Peaks) -> str:
    fl = peaks.flops_per_s(item.dtype)
    if item.flops <= 0 or fl is None:
        return "memory"
    return "compute" if item.flops / fl >= item.bytes / (peaks.memory_bw_tbps * 1e12) else "memory"


def estimate_s(item: Item, peaks: Peaks) -> float:
    """Seconds measuring ``item`` takes (``gpu_kernels.Runner.time_calls``): set-up (allocating and filling
    its tensors at ~200 GB/s, plus a fixed overhead; layers 10x that for building the module) + 3 calls
    (2 warm-up, 1 sizing the loops) + ``TRIALS`` loops of about ``TIMED_S / TRIALS`` seconds, at least one
    call each, at ``ASSUMED_EFF`` of the roofline."""
    t = roofline_s(item, peaks) or item.flops / 400e12
    kernel = t / ASSUMED_EFF + 10e-6
    reps = max(1, math.ceil(TIMED_S / TRIALS / kernel)) * TRIALS
    setup = OVERHEAD_S + item.alloc_bytes / 200e9 * (10 if item.kind.startswith("layer") else 1)
    return setup + (reps + 3) * kernel


def make_plan(catalog, peaks: Peaks, budget_s: float, configs: dict[str, dict] | None = None) -> list[Item]:
    """Every item with its estimate, in priority order (copies, layers, attention, core BF16 GEMMs, core
    FP8 GEMMs, other models' GEMMs), cut where the running estimate would pass ``PLAN_SHARE`` of the budget
    after ``STARTUP_S``. Items that fit are kept in that order; lower-priority ones are dropped whole tiers
    last first."""
    configs = load_configs() if configs is None else configs
    items = copy_items() + layer_items(configs) + attention_items(catalog) + gemm_items(catalog)
    items = [replace(i, est_s=estimate_s(i, peaks)) for i in items]
    items.sort(key=lambda i: i.priority)
    room = budget_s * PLAN_SHARE - STARTUP_S
    plan, used = [], 0.0
    for it in items:
        if used + it.est_s <= room:
            plan.append(it)
            used += it.est_s
    return plan


def plan_estimate_s(plan: list[Item]) -> float:
    return STARTUP_S + sum(i.est_s for i in plan)


# -- the catalog ---------------------------------------------------------------------------------------
CATALOG_DIR = Path(__file__).resolve().parents[1] / "src" / "infersim" / "catalog" / "data"
_MODEL_DEFAULTS = {"num_experts": 0, "experts_per_token": 0, "kv_lora_rank": 0, "aliases": ()}


def load_catalog():
    """infersim's shipped catalog; on a machine where infersim's dependencies are not installed (a GPU box
    with only PyTorch), the same ``hardware.yaml`` and ``models.yaml`` read with PyYAML alone."""
    try:
        from infersim.catalog import default_catalog
    except ImportError:
        import yaml  # PyYAML: ships with most ML images (huggingface_hub, transformers)

        def entries(name: str, section: str, defaults: dict) -> dict:
            data = yaml.safe_load((CATALOG_DIR / name).read_text())[section]
            return {e["id"]: SimpleNamespace(**{**defaults, **e}) for e in data}

        return SimpleNamespace(hardware=entries("hardware.yaml", "hardware", {"aliases": ()}),
                               models=entries("models.yaml", "models", _MODEL_DEFAULTS))
    return default_catalog()


def catalog_id_for_device(name: str, catalog) -> str | None:
    """The catalog hardware id of a CUDA/ROCm device name (``torch.cuda.get_device_name()``), or None when
    the catalog has no entry with that chip's peaks. Known device-name patterns first, then an exact match
    of the normalised name against catalog names and aliases."""
    for pat, hid in DEVICE_PATTERNS:
        if re.search(pat, name, re.IGNORECASE):
            return hid if hid is None or hid in catalog.hardware else None
    norm = _norm(name.replace("NVIDIA", "").replace("AMD", ""))
    for hw in catalog.hardware.values():
        if norm in {_norm(x.replace("NVIDIA", "").replace("AMD", "")) for x in (hw.id, hw.name, *hw.aliases)}:
            return hw.id
    return None


def peaks_for(hardware_id: str, catalog) -> Peaks:
    hw = catalog.hardware[hardware_id]
    return Peaks(hw.id, dict(hw.tflops), float(hw.memory_bw_tbps))


def _norm(s: str) -> str:
    return "".join(ch for ch in s.lower() if ch.isalnum())


# -- the table -------------------------------------------------------------------------------------------
COLUMNS = ("date_utc", "gpu_name", "catalog_hardware", "driver", "cuda", "torch", "triton", "kind", "label",
           "dtype", "m", "n", "k", "batch", "context", "heads", "kv_heads", "head_dim", "flops", "bytes", "time_s",
           "achieved_tflops", "achieved_tbps", "peak_tflops", "peak_tbps", "roofline_s", "bound", "efficiency",
           "status", "note")


def table_row(item: Item, machine: dict, peaks: Peaks | None, time_s: float | None, status: str,
              note: str = "") -> dict:
    """One table row. ``time_s``: measured seconds per call (None when not measured). Efficiency =
    roofline seconds at the catalog's peaks / measured seconds; blank without peaks or a time."""
    row = {c: "" for c in COLUMNS}
    row.update({k: machine.get(k, "") for k in ("date_utc", "gpu_name", "driver", "cuda", "torch", "triton")})
    d = asdict(item)
    row.update({k: d[k] for k in ("kind", "label", "dtype", "m", "n", "k", "batch", "context", "heads",
                                  "kv_heads", "head_dim", "flops", "bytes")})
    row["status"], row["note"] = status, note
    if peaks is not None:
        row["catalog_hardware"] = peaks.hardware_id
        fl = peaks.flops_per_s(item.dtype)
        row["peak_tflops"] = round(fl / 1e12, 1) if fl and item.flops > 0 else ""
        row["peak_tbps"] = peaks.memory_bw_tbps
        r = roofline_s(item, peaks)
        if r is not None:
            row["roofline_s"] = r
            row["bound"] = bound(item, peaks)
    if time_s is not None and time_s > 0:
        row["time_s"] = time_s
        row["achieved_tflops"] = round(item.flops / time_s / 1e12, 3) if item.flops > 0 else ""
        row["achieved_tbps"] = round(item.bytes / time_s / 1e12, 4)
        if row["roofline_s"] != "":
            row["efficiency"] = round(row["roofline_s"] / time_s, 4)
    return row


def default_out(gpu_name: str, date: str, root: Path) -> Path:
    """benchmarks/results/gpu_kernels_<gpu>_<date>.csv with the GPU name as a file-name slug."""
    slug = re.sub(r"[^a-z0-9]+", "-", gpu_name.lower()).strip("-") or "unknown-gpu"
    return root / "benchmarks" / "results" / f"gpu_kernels_{slug}_{date}.csv"


def markdown(rows: list[dict], machine: dict, budget_s: float, elapsed_s: float) -> str:
    """A short summary: the machine, then median efficiency by kind and by the axis that matters (GEMM:
    dtype x M; prefill attention: context; decode attention: batch x context; layers: config x shape)."""
    ok = [r for r in rows if r["status"] == "ok"]
    lines = [f"# GPU kernel calibration, {machine.get('date_utc', '')}", "",
             f"- GPU: {machine.get('gpu_name', '?')} (catalog entry: {machine.get('catalog_hardware') or 'none: no efficiencies'})",
             f"- driver {machine.get('driver', '?')}, CUDA {machine.get('cuda', '?')}, torch {machine.get('torch', '?')}, "
             f"Triton {machine.get('triton') or 'absent'}",
             f"- {len(ok)} of {len(rows)} measurements ran in {elapsed_s:.0f} s (budget {budget_s:.0f} s); "
             "efficiency = roofline time at catalog peaks / measured time", ""]
    for r in rows:
        if r["status"] not in ("ok", "skipped"):
            lines.append(f"- {r['kind']} {r['label']} {r['dtype']}: {r['status']} ({r['note']})")

    def med(vals):
        vals = sorted(v for v in vals if v != "")
        return f"{vals[len(vals) // 2]:.3f}" if vals else "-"

    gem = [r for r in ok if r["kind"] == "gemm"]
    if gem:
        ms = sorted({r["m"] for r in gem})
        lines += ["", "## GEMM efficiency (median over shapes) by M", "", "| dtype | " + " | ".join(map(str, ms)) + " |",
                  "|---|" + "---|" * len(ms)]
        for dt in ("bf16", "fp8"):
            lines.append(f"| {dt} | " + " | ".join(med([r["efficiency"] for r in gem if r["m"] == m and r["dtype"] == dt])
                                                   for m in ms) + " |")
    for kind, keys in (("attn_prefill", ("label", "context")), ("attn_decode", ("label", "batch", "context")),
                       ("hbm_copy", ("label",)), ("layer_prefill", ("label", "m")), ("layer_decode", ("label", "batch"))):
        sel = [r for r in ok if r["kind"] == kind]
        if not sel:
            continue
        lines += ["", f"## {kind}", "", "| " + " | ".join(keys) + " | time_s | TFLOP/s | TB/s | efficiency |",
                  "|" + "---|" * (len(keys) + 4)]
        for r in sel:
            lines.append("| " + " | ".join(str(r[k]) for k in keys)
                         + f" | {r['time_s']:.3g} | {r['achieved_tflops']} | {r['achieved_tbps']} | {r['efficiency']} |")
    return "\n".join(lines) + "\n"
