"""Per-customer economics of one platform's run: a row per platform x customer (``customers.csv``).

A customer owns streams (``workload.customers``, ``stream.customer``). Its rows split the platform's totals
so that the customers' revenue and cost sum to the platform's exactly:

- revenue: the platform's ``customer_usd`` x the customer's share of the *revenue key*, its finished
  requests' input tokens x the platform's input price plus output tokens x its output price when the
  platform charges per token (then the share is exactly what the customer's tokens cost), else (GPU-minute
  billing) its share of finished input + output tokens;
- cost: the platform's ``provider_cost_usd`` (unused commitments included: a customer that leaves leaves its
  share of committed capacity to the others) x the customer's share of finished input + output tokens.
  ASSUMPTION: tokens are the allocation key; no public source says how a GPU platform splits shared
  capacity between customers, and a token is the unit both prices and the step model count;
- SLO attainment over the measurement window, as in the stream rows.

Keys count every finished request of the run (as the platform totals do), not only the window's.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from infersim.economics import margin, per_mtok
from infersim.results.summary import slo_met


def customer_rows(sc, platform_row: dict, df: pd.DataFrame, win: pd.DataFrame, slos: dict) -> list[dict]:
    """The platform's rows of the customers table (empty when the workload names no customers)."""
    customers = sc.workload.customers
    if not customers:
        return []
    owner = {s.name: s.customer for s in sc.workload.streams}
    stream = df["stream"].astype(str).to_numpy()
    fin = (df["outcome"] == "finished").to_numpy(dtype=bool)
    tin = df["input_tokens"].to_numpy(dtype=float)
    tout = df["output_tokens"].to_numpy(dtype=float)
    p_in, p_out = platform_row.get("price_usd_per_mtok_in"), platform_row.get("price_usd_per_mtok_out")
    per_token = p_in is not None and p_out is not None and not (math.isnan(p_in) or math.isnan(p_out))
    rev_key = tin * p_in + tout * p_out if per_token else tin + tout
    cost_key = tin + tout
    rev_total = float(rev_key[fin].sum())
    cost_total = float(cost_key[fin].sum())
    revenue = float(platform_row.get("customer_usd", math.nan))
    cost = float(platform_row.get("provider_cost_usd", math.nan))
    w_stream = win["stream"].astype(str).to_numpy()
    w_met = slo_met(win, slos)
    rows = []
    for c in customers:
        mine = np.isin(stream, [s for s, o in owner.items() if o == c.name])
        m = mine & fin
        r_share = float(rev_key[m].sum()) / rev_total if rev_total > 0 else math.nan
        c_share = float(cost_key[m].sum()) / cost_total if cost_total > 0 else math.nan
        rev_c = revenue * r_share if rev_total > 0 else 0.0
        cost_c = cost * c_share if cost_total > 0 else 0.0
        tok_in, tok_out = float(tin[m].sum()), float(tout[m].sum())
        wm = np.isin(w_stream, [s for s, o in owner.items() if o == c.name])
        rows.append({
            "platform": platform_row["platform"], "customer": c.name, "enabled": c.enabled,
            "rate_scale": c.rate_scale, "requests": int(mine.sum()), "finished": int(m.sum()),
            "input_tokens": tok_in, "output_tokens": tok_out,
            "revenue_usd": rev_c, "revenue_share": r_share, "cost_usd": cost_c, "cost_share": c_share,
            "gross_margin": margin(rev_c, cost_c) if rev_c else math.nan,
            "revenue_usd_per_mtok": per_mtok(rev_c, tok_in + tok_out),
            "cost_usd_per_mtok": per_mtok(cost_c, tok_in + tok_out),
            "slo_attainment": float(w_met[wm].mean()) if wm.any() else math.nan,
        })
    return rows
