"""Statistics behind the charts and findings (pure functions of tables; no plotting).

- ``t_interval``: 95 % Student-t interval of a mean across replications (nan when n < 2), as the sweep's
  summary table computes it.
- ``paired_bootstrap_quantile``: for a single run, a percentile-bootstrap CI of a latency percentile per
  platform and of its difference between platforms, resampling *request ids* so that every platform sees the
  same resample (every platform served the identical request stream). It measures the sampling noise of the
  requests in this run only, not seed-to-seed variation of the system.
- ``pareto_mask``: points not dominated when both coordinates are to be minimised.
- ``marginal``: a metric's mean per value of one swept parameter, the others averaged over (replication is
  the unit: a mean per replication first, then a t interval across replications).
- ``tornado``: per parameter, the marginal mean at its lowest and highest value (bottom/top quintile of the
  sampled values when a parameter has more than ``MAX_LEVELS`` distinct values, as with random or LHS sampling;
  for a non-numeric parameter, its levels with the lowest and highest mean).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

MAX_LEVELS = 12
CONFIDENCE = 0.95


def t_interval(values) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of the finite ``values``: 95 % t interval; lo = hi = nan when n < 2."""
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    n = int(a.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    m = float(a.mean())
    if n < 2:
        return m, math.nan, math.nan, n
    half = float(sps.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * a.std(ddof=1) / math.sqrt(n))
    return m, m - half, m + half, n


def pareto_mask(x, y) -> np.ndarray:
    """True where (x[i], y[i]) is on the Pareto frontier, minimising both; non-finite points are False.
    Ties: a point equal to another in both coordinates stays on the frontier."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    out = np.zeros(len(x), dtype=bool)
    for i in np.flatnonzero(ok):
        dominated = ok & (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))
        out[i] = not dominated.any()
    return out


def paired_bootstrap_quantile(values: dict[str, np.ndarray], q: float, *, n_boot: int = 400,
                              seed: int = 0, chunk: int = 40) -> dict[str, np.ndarray]:
    """Bootstrap replicates of the ``q`` quantile per platform, request ids resampled jointly.

    ``values[platform]`` is an array over the same request ids (nan where the request does not count for
    that platform, e.g. not finished). Returns ``{platform: array of n_boot quantiles}``; the inverse-CDF
    quantile of each weighted resample. Memory: ``chunk x len(ids)`` integers at a time.
    """
    names = list(values)
    if not names:
        return {}
    n = len(values[names[0]])
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    prep = {}
    for k in names:
        v = np.asarray(values[k], dtype=float)
        order = np.argsort(v, kind="stable")  # nan last
        valid = np.isfinite(v[order])
        prep[k] = (order, valid, v[order])
    out = {k: np.empty(n_boot) for k in names}
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        draws = rng.integers(0, n, size=(b, n)) if n else np.zeros((b, 0), np.int64)
        counts = np.stack([np.bincount(d, minlength=n) for d in draws]) if n else draws
        for k in names:
            order, valid, sv = prep[k]
            c = counts[:, order] * valid
            cum = np.cumsum(c, axis=1)
            total = cum[:, -1:] if cum.shape[1] else np.zeros((b, 1))
            idx = np.argmax(cum >= np.maximum(q * total, 1e-12), axis=1)
            res = sv[idx] if sv.size else np.full(b, math.nan)
            res = np.where(total[:, 0] > 0, res, math.nan)
            out[k][done:done + b] = res
        done += b
    return out


def percentile_ci(samples: np.ndarray) -> tuple[float, float]:
    """The central 95 % of bootstrap ``samples`` (nan when there are none)."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if not s.size:
        return math.nan, math.nan
    lo, hi = np.quantile(s, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return float(lo), float(hi)


def levels(values: pd.Series) -> pd.Series:
    """The value itself when a parameter has at most ``MAX_LEVELS`` distinct values; otherwise the mean of
    its quintile bin (so random/LHS samples can be grouped). Same index as ``values``."""
    if values.nunique() <= MAX_LEVELS or not pd.api.types.is_numeric_dtype(values):
        return values
    bins = pd.qcut(values.astype(float), 5, duplicates="drop")
    return values.astype(float).groupby(bins, observed=True).transform("mean")


def marginal(points: pd.DataFrame, param: str, metric: str, by: str = "platform") -> pd.DataFrame:
    """Mean and 95 % t interval of ``metric`` per (``by``, level of ``param``), other parameters averaged.

    Method: for every replication, average the metric over the rows at that level (all values of the other
    parameters); then a t interval across replications. With one swept parameter this equals the sweep
    summary's ``M_mean``/``M_ci_lo``/``M_ci_hi``. Columns: by, param, mean, ci_lo, ci_hi, n.
    """
    df = points[[by, param, metric, "replication"]].copy()
    df["_lvl"] = levels(df[param])
    per_rep = df.groupby([by, "_lvl", "replication"], observed=True, sort=True)[metric].mean().reset_index()
    rows = []
    for (b, lvl), g in per_rep.groupby([by, "_lvl"], observed=True, sort=True):
        m, lo, hi, n = t_interval(g[metric])
        rows.append({by: b, param: lvl, "mean": m, "ci_lo": lo, "ci_hi": hi, "n": n})
    return pd.DataFrame(rows, columns=[by, param, "mean", "ci_lo", "ci_hi", "n"])


def tornado(points: pd.DataFrame, params: list[str], metric: str, by: str = "platform") -> pd.DataFrame:
    """Per (``by``, parameter): the metric's marginal mean at the parameter's lowest and highest level,
    the smallest and largest marginal mean over all its levels (``at_min``, ``at_max``: a response that is
    not monotone peaks or dips between the extremes), the overall mean (``base``) and ``swing`` =
    ``at_max - at_min`` (= |high - low| for a monotone response); sorted by swing, largest first within each
    ``by`` value. Parameters with a single value are left out."""
    rows = []
    for p in params:
        if points[p].nunique() < 2:
            continue
        mg = marginal(points, p, metric, by)
        numeric = pd.api.types.is_numeric_dtype(points[p])
        for b, g in mg.groupby(by, sort=False):
            g = g.sort_values(p if numeric else "mean")  # categories have no order: lowest vs highest mean
            lo_row, hi_row = g.iloc[0], g.iloc[-1]
            base = float(points.loc[points[by] == b, metric].mean())
            means = g["mean"].astype(float)
            rows.append({by: b, "parameter": p, "low_value": lo_row[p], "high_value": hi_row[p],
                         "at_low": float(lo_row["mean"]), "at_high": float(hi_row["mean"]),
                         "at_min": float(means.min()), "at_max": float(means.max()), "base": base,
                         "swing": float(means.max() - means.min()),
                         "levels": [float(v) for v in means]})
    out = pd.DataFrame(rows, columns=[by, "parameter", "low_value", "high_value", "at_low", "at_high", "at_min",
                                      "at_max", "base", "swing", "levels"])
    return out.sort_values([by, "swing"], ascending=[True, False], kind="stable").reset_index(drop=True)
