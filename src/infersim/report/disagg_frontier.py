"""The disaggregation frontier chart (issue 17): output tokens/s per GPU and provider $ per million tokens
against output tokens/s per user, one curve per platform, each point one concurrency of a sweep, as
SemiAnalysis InferenceMAX draws its throughput-interactivity frontiers.

``frontier_table`` turns ``{concurrency: Results}`` into one row per (platform, concurrency);
``frontier_chart`` draws the two panels with matplotlib. Throughput per GPU counts GPUs only: a configuration
with SRAM-pipeline chips (LPU decode) is placed on the $/Mtok panel, where chips of every kind are costed,
and left off the per-GPU panel (its GPUs do only part of the work).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FRONTIER_COLUMNS = ("platform", "concurrency", "output_tok_s_per_user", "output_tok_s", "gpus",
                    "output_tok_s_per_gpu", "provider_usd_per_mtok", "ttft_p50_s", "kv_transfer_share_of_ttft",
                    "sram_chips")


def frontier_table(results_by_concurrency: dict[int, object]) -> pd.DataFrame:
    """One row per platform and concurrency from each run's summary."""
    rows = []
    for c, res in sorted(results_by_concurrency.items()):
        s = res.summary
        for _, r in s.iterrows():
            chips = float(r.get("chips", float("nan")))
            sram = 0.0
            if r["kind"] == "disaggregated":
                gpus = float(r["prefill_chips"])
                if r["decode_kind"] == "gpu":
                    gpus += float(r["decode_chips"])
                else:
                    sram = float(r["decode_chips"])
            elif r["kind"] in ("lpu", "wafer"):
                gpus, sram = float("nan"), chips
            else:
                gpus = chips
            share = r.get("kv_transfer_share_of_ttft", float("nan"))
            rows.append({"platform": r["platform"], "concurrency": int(c),
                         "output_tok_s_per_user": float(r["output_tok_s_per_user"]),
                         "output_tok_s": float(r["output_tok_s"]), "gpus": gpus,
                         "output_tok_s_per_gpu": float(r["output_tok_s"]) / gpus if gpus else float("nan"),
                         "provider_usd_per_mtok": float(r["provider_usd_per_mtok"]),
                         "ttft_p50_s": float(r["ttft_p50_s"]), "kv_transfer_share_of_ttft": float(share),
                         "sram_chips": sram})
    return pd.DataFrame(rows, columns=list(FRONTIER_COLUMNS))


def frontier_chart(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Two panels (tok/s per GPU, provider $/Mtok) against tok/s per user; returns the written path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, g in table.groupby("platform", sort=False):
        g = g.sort_values("concurrency")
        b.plot(g["output_tok_s_per_user"], g["provider_usd_per_mtok"], marker="o", label=name)
        if (g["sram_chips"] > 0).any():
            continue  # per GPU is not comparable when SRAM chips do part of the work: cost panel only
        a.plot(g["output_tok_s_per_user"], g["output_tok_s_per_gpu"], marker="o", label=name)
        for _, r in g.iterrows():
            a.annotate(str(r["concurrency"]), (r["output_tok_s_per_user"], r["output_tok_s_per_gpu"]),
                       fontsize=7, xytext=(3, 3), textcoords="offset points")
    a.set_xlabel("output tokens/s per user")
    a.set_ylabel("output tokens/s per GPU")
    a.set_title("throughput per GPU vs interactivity (labels: concurrency)")
    b.set_xlabel("output tokens/s per user")
    b.set_ylabel("provider $ per million tokens (in + out)")
    b.set_yscale("log")
    b.set_title("cost vs interactivity")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
