"""Refit the SRAM-pipeline profiles (Groq LPU, Cerebras wafer) on their calibration rows and write them.

    python benchmarks/fit_sram_profiles.py [--check]

Each profile (src/infersim/perf/profiles/groq.yaml, cerebras.yaml) names its ``fitted`` parameters and its
``calibration`` rows (role ``fit`` or ``check``, each with its source). The fitted parameters are solved by
least squares on log(predicted / measured) per-user tokens/s over the ``fit`` rows (exact when there are as
many rows as parameters); every row then gets its prediction and error written next to it. ``--check``
only prints the current errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import least_squares

from infersim.perf.sram.params import sram_profile
from infersim.perf.sram.pipeline import predict_row

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "src" / "infersim" / "perf" / "profiles"


def fit(name: str):
    prof = sram_profile(name)
    names = prof.doc["fitted"]
    rows = [r for r in prof.doc["calibration"] if r["role"] == "fit"]
    x0 = np.log([getattr(prof.params, n) for n in names])

    def resid(x):
        p = prof.params.with_(**dict(zip(names, np.exp(x), strict=True)))
        return [np.log(predict_row(r, prof, p) / r["measured_tok_s"]) for r in rows]

    sol = least_squares(resid, x0, x_scale=1.0, xtol=1e-12, ftol=1e-12)
    return prof.params.with_(**{n: float(f"{v:.4g}") for n, v in zip(names, np.exp(sol.x), strict=True)})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    for name in ("groq", "cerebras"):
        prof = sram_profile(name)
        params = prof.params if args.check else fit(name)
        print(f"{name}: " + ", ".join(f"{k}={getattr(params, k):.4g}" for k in prof.doc["fitted"]))
        doc = dict(prof.doc)
        rows = []
        for r in doc["calibration"]:
            pred = predict_row(r, prof, params)
            err = 100.0 * (pred / r["measured_tok_s"] - 1.0)
            print(f"  {r['id']:40s} {r['role']:5s} measured {r['measured_tok_s']:7.1f} predicted {pred:7.1f} ({err:+.1f}%)")
            rows.append({**r, "predicted_tok_s": round(pred, 1), "error_pct": round(err, 1)})
        if args.check:
            continue
        doc["params"] = {**doc["params"], **{k: getattr(params, k) for k in doc["fitted"]}}
        doc["fitted_on"] = dt.date.today().isoformat()
        doc["calibration"] = rows
        path = PROFILES / f"{name}.yaml"
        header = [ln for ln in path.read_text().splitlines() if ln.startswith("#")]
        path.write_text("\n".join(header) + "\n" + yaml.safe_dump(doc, sort_keys=False, width=110))
        sram_profile.cache_clear()


if __name__ == "__main__":
    main()
