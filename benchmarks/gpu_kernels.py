"""Measure kernel efficiencies on one GPU: the calibration table of the step model (offline, <= 5 minutes).

    python benchmarks/gpu_kernels.py [--budget-s 300] [--out benchmarks/results/gpu_kernels_<gpu>_<date>.csv]
                                     [--hardware h100-sxm] [--plan-only]

Measures, with CUDA events after a warm-up (the median of 3 trials, each a loop of calls): GEMM throughput
by (M, N, K) in BF16 and FP8 (``torch._scaled_mm``) over the shapes of the catalog's models, SDPA
(FlashAttention backend where available) prefill attention by context and decode attention by batch and
context, HBM copy bandwidth, and one random-weight transformer layer per ``benchmarks/model_configs/*.json``
in prefill and decode. Operands rotate over copies larger than the L2 cache, so no call reads from L2.
Writes a CSV (one row per measurement, ``kernel_plan.COLUMNS``) and a markdown summary beside it, both
naming the machine (GPU, driver, CUDA, torch, Triton) and the date; efficiency = roofline time at the
catalog's peaks for the GPU (matched by name, or ``--hardware``) / measured time. Needs PyTorch with a CUDA
(or ROCm) device, and infersim installed or at least PyYAML (``kernel_plan.load_catalog``); everything it
reads is in the repository. The plan (``kernel_plan.make_plan``) fits the
budget by its own estimate; while running, an item whose estimate would pass the budget is skipped and
recorded as such. This module imports without torch (``--plan-only`` prints the plan on any machine).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

import kernel_plan as kp  # noqa: E402


def machine_info(torch) -> dict:
    """GPU name, driver (nvidia-smi), CUDA or HIP version, torch and Triton versions, date (UTC)."""
    info = {"date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
            "gpu_name": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "cuda": torch.version.cuda or f"hip {getattr(torch.version, 'hip', '') or '?'}"}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        info["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        info["driver"] = "unknown"
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = ""
    return info


class Runner:
    """Runs plan items on cuda:0; ``time_calls`` is the one timing routine (CUDA events around loops of calls)."""

    def __init__(self, torch):
        self.torch = torch
        self.dev = torch.device("cuda", 0)
        self.weights: dict = {}  # (n, k, dtype) -> list of weight copies, kept across M values

    def time_calls(self, fn) -> float:
        """Two warm-up calls (lazy initialisation, allocator, autotuning), one timed call that sizes the loops,
        then ``kp.TRIALS`` loops of about ``kp.TIMED_S / kp.TRIALS`` seconds each: the median seconds per call."""
        fn()
        fn()
        one = self._loop(fn, 1)
        reps = min(1000, max(1, int(kp.TIMED_S / kp.TRIALS / max(one, 1e-6))))
        return statistics.median(self._loop(fn, reps) for _ in range(kp.TRIALS))

    def _loop(self, fn, reps: int) -> float:
        torch = self.torch
        torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        b.synchronize()
        return a.elapsed_time(b) / 1e3 / reps

    def free_bytes(self) -> int:
        return self.torch.cuda.mem_get_info()[0]

    def run(self, item) -> tuple[float, str]:
        """(seconds per call, note on what ran) of one plan item."""
        return getattr(self, item.kind)(item)

    # -- kernels ---------------------------------------------------------------------------------
    def hbm_copy(self, it):
        torch = self.torch
        n = int(it.bytes // 2)
        src = torch.empty(n, dtype=torch.uint8, device=self.dev).random_(0, 255)
        dst = torch.empty_like(src)
        return self.time_calls(lambda: dst.copy_(src)), "dst.copy_(src)"

    def gemm(self, it):
        torch = self.torch
        key = (it.n, it.k, it.dtype)
        if key not in self.weights:
            self.weights.clear()
            torch.cuda.empty_cache()
            copies = min(32, max(1, -(-kp.L2_FLUSH_BYTES // (it.n * it.k * kp.ELEMENT_BYTES[it.dtype]))))
            ws = [torch.randn(it.n, it.k, device=self.dev, dtype=torch.bfloat16) for _ in range(copies)]
            if it.dtype == "fp8":
                ws = [w.to(torch.float8_e4m3fn) for w in ws]
            self.weights[key] = ws
        ws = self.weights[key]
        a = torch.randn(it.m, it.k, device=self.dev, dtype=torch.bfloat16)
        i = [0]
        if it.dtype == "bf16":
            def call():
                i[0] = (i[0] + 1) % len(ws)
                return a @ ws[i[0]].t()
            return self.time_calls(call), f"a @ w.t(), {len(ws)} weight copies"
        if not hasattr(torch, "_scaled_mm") or torch.cuda.get_device_capability(0) < (8, 9):
            raise Skip("FP8 GEMM needs torch._scaled_mm and a GPU of compute capability >= 8.9")
        one = torch.ones((), device=self.dev, dtype=torch.float32)
        note = f"torch._scaled_mm e4m3, per-tensor scales, fast accumulation, {len(ws)} weight copies"
        m = it.m
        try:
            torch._scaled_mm(a.to(torch.float8_e4m3fn), ws[0].t(), scale_a=one, scale_b=one,
                             out_dtype=torch.bfloat16, use_fast_accum=True)
        except RuntimeError:
            m = -(-it.m // 16) * 16  # cuBLASLt FP8 wants dimensions divisible by 16
            note += f"; M padded {it.m} -> {m}"
        a8 = torch.randn(m, it.k, device=self.dev, dtype=torch.bfloat16).to(torch.float8_e4m3fn)

        def call8():
            i[0] = (i[0] + 1) % len(ws)
            return torch._scaled_mm(a8, ws[i[0]].t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16,
                                    use_fast_accum=True)
        return self.time_calls(call8), note

    def _sdpa(self, q, k, v, causal):
        """SDPA forced to the FlashAttention backend when it accepts the inputs, with native GQA when torch
        has it; returns (callable, backend note)."""
        torch = self.torch
        F = torch.nn.functional
        gqa = q.shape[1] != k.shape[1]
        kw = {"is_causal": causal}
        note = "sdpa"
        try:
            F.scaled_dot_product_attention(q[:, :, :1], k[:, :, :1], v[:, :, :1], enable_gqa=gqa, **kw)
            kw["enable_gqa"] = gqa
        except TypeError:
            if gqa:
                r = q.shape[1] // k.shape[1]
                k, v = k.repeat_interleave(r, 1), v.repeat_interleave(r, 1)
                note += ", KV heads expanded (no enable_gqa)"
        try:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                F.scaled_dot_product_attention(q, k, v, **kw)

            def call():
                with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                    return F.scaled_dot_product_attention(q, k, v, **kw)
            return call, note + ", flash backend"
        except (ImportError, RuntimeError):
            return (lambda: F.scaled_dot_product_attention(q, k, v, **kw)), note + ", default backend"

    def attn_prefill(self, it):
        torch = self.torch
        q = torch.randn(1, it.heads, it.context, it.head_dim, device=self.dev, dtype=torch.bfloat16)
        k = torch.randn(1, it.kv_heads, it.context, it.head_dim, device=self.dev, dtype=torch.bfloat16)
        v = torch.randn_like(k)
        call, note = self._sdpa(q, k, v, causal=True)
        return self.time_calls(call), note + ", causal"

    def attn_decode(self, it):
        torch = self.torch
        kv_bytes = it.batch * it.context * 2 * it.kv_heads * it.head_dim * 2
        copies = min(16, max(1, -(-kp.L2_FLUSH_BYTES // kv_bytes)))
        q = torch.randn(it.batch, it.heads, 1, it.head_dim, device=self.dev, dtype=torch.bfloat16)
        kvs = [(torch.randn(it.batch, it.kv_heads, it.context, it.head_dim, device=self.dev, dtype=torch.bfloat16),
                torch.randn(it.batch, it.kv_heads, it.context, it.head_dim, device=self.dev, dtype=torch.bfloat16))
               for _ in range(copies)]
        calls = [self._sdpa(q, k, v, causal=False) for k, v in kvs]
        i = [0]

        def call():
            i[0] = (i[0] + 1) % len(calls)
            return calls[i[0]][0]()
        return self.time_calls(call), calls[0][1] + f", contiguous KV (not paged), {copies} KV copies"

    def _layer(self, it):
        from gpu_layer import build_layer

        return build_layer(self.torch, kp.LayerShape.from_config(kp.load_configs()[it.config]), self.dev)

    def layer_prefill(self, it):
        torch = self.torch
        layer = self._layer(it)
        x = torch.randn(1, it.m, layer.shape.hidden, device=self.dev, dtype=torch.bfloat16)
        with torch.inference_mode():
            t = self.time_calls(lambda: layer.prefill(x))
        return t, layer.note

    def layer_decode(self, it):
        torch = self.torch
        layer = self._layer(it)
        s = layer.shape
        x = torch.randn(it.batch, 1, s.hidden, device=self.dev, dtype=torch.bfloat16)
        kc = torch.randn(it.batch, s.kv_heads, it.context, s.head_dim, device=self.dev, dtype=torch.bfloat16)
        vc = torch.randn_like(kc)
        with torch.inference_mode():
            t = self.time_calls(lambda: layer.decode(x, kc, vc))
        return t, layer.note


class Skip(Exception):
    """A measurement that cannot run here (the reason goes into the table)."""


def run_plan(plan, runner, peaks, machine, budget_s: float, t0: float, log=print) -> list[dict]:
    """Measure every item in order; skip (recorded) those whose estimate would pass the budget, that need
    more memory than is free, or that the machine cannot run; an error in one item is recorded, not fatal."""
    rows = []
    torch = runner.torch
    for n, it in enumerate(plan):
        left = budget_s - (time.perf_counter() - t0)
        if it.est_s > left:
            rows.append(kp.table_row(it, machine, peaks, None, "skipped", f"budget: {left:.1f} s left"))
            continue
        if it.alloc_bytes > 0.9 * runner.free_bytes():
            rows.append(kp.table_row(it, machine, peaks, None, "skipped",
                                     f"needs {it.alloc_bytes / 1e9:.1f} GB, {runner.free_bytes() / 1e9:.1f} GB free"))
            continue
        try:
            t, note = runner.run(it)
            rows.append(kp.table_row(it, machine, peaks, t, "ok", note))
        except Skip as exc:
            rows.append(kp.table_row(it, machine, peaks, None, "skipped", str(exc)))
        except Exception as exc:  # one kernel's failure (out of memory, an unsupported shape) must not lose the rest
            rows.append(kp.table_row(it, machine, peaks, None, "error", f"{type(exc).__name__}: {str(exc)[:160]}"))
            torch.cuda.empty_cache()
        if it.kind != "gemm":
            runner.weights.clear()
            torch.cuda.empty_cache()
        if n % 100 == 0:
            log(f"  {n}/{len(plan)} items, {time.perf_counter() - t0:.0f} s")
    return rows


def write_table(rows: list[dict], out: Path, md: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=kp.COLUMNS)
        w.writeheader()
        w.writerows(rows)
    out.with_suffix(".md").write_text(md)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-s", type=float, default=300.0, help="bound on the whole run (seconds)")
    ap.add_argument("--out", type=Path, help="CSV path (default benchmarks/results/gpu_kernels_<gpu>_<date>.csv)")
    ap.add_argument("--hardware", help="catalog hardware id whose peaks to use (default: matched by GPU name)")
    ap.add_argument("--plan-only", action="store_true", help="print the plan and its time estimate, run nothing")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    catalog = kp.load_catalog()
    if args.plan_only:
        peaks = kp.peaks_for(args.hardware or "h100-sxm", catalog)
        plan = kp.make_plan(catalog, peaks, args.budget_s)
        for it in plan:
            print(f"{it.kind:>13} {it.dtype:>4} {it.label:<40} m={it.m} n={it.n} k={it.k} b={it.batch} "
                  f"ctx={it.context} est {it.est_s * 1e3:.1f} ms")
        print(f"{len(plan)} items, estimated {kp.plan_estimate_s(plan):.0f} s of {args.budget_s:.0f} s")
        return 0
    try:
        import torch
    except ImportError:
        print("gpu_kernels: PyTorch is not installed", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("gpu_kernels: no CUDA/ROCm device", file=sys.stderr)
        return 2
    machine = machine_info(torch)
    hid = args.hardware or kp.catalog_id_for_device(machine["gpu_name"], catalog)
    peaks = kp.peaks_for(hid, catalog) if hid else None
    machine["catalog_hardware"] = hid or ""
    plan = kp.make_plan(catalog, peaks or kp.peaks_for("h100-sxm", catalog), args.budget_s)
    print(f"{machine['gpu_name']} (catalog: {hid or 'no entry: times only'}), {len(plan)} items, "
          f"estimated {kp.plan_estimate_s(plan):.0f} s of {args.budget_s:.0f} s")
    torch.manual_seed(0)
    rows = run_plan(plan, Runner(torch), peaks, machine, args.budget_s, t0)
    elapsed = time.perf_counter() - t0
    out = args.out or kp.default_out(machine["gpu_name"], machine["date_utc"], ROOT)
    write_table(rows, out, kp.markdown(rows, machine, args.budget_s, elapsed))
    n_ok = sum(r["status"] == "ok" for r in rows)
    print(f"{n_ok}/{len(rows)} measured in {elapsed:.0f} s -> {out} (+ {out.with_suffix('.md').name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
