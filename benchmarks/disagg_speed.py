"""Events per request of a disaggregated platform against the co-located case (issue 17's speed check):
the same workload and model as benchmarks/sim_speed.py's fleet case, on 4 H100 co-located (shared clock,
least-outstanding balancer, and round robin on own clocks) and as 2P2D.

    PYTHONPATH=src python benchmarks/disagg_speed.py [N_REQUESTS]
"""

from __future__ import annotations

import json
import sys

from sim_speed import case, measure


def disagg_case(n_requests: int) -> dict:
    data = case("disagg-2P2D", 4, n_requests)
    pool = {"hardware": "h100-sxm", "precision": "fp8", "replicas": 2, "engine": {"kind": "vllm"}}
    data["platforms"] = [{"name": "gpu", "kind": "disaggregated", "model": "llama-3.1-8b", "prefill": pool,
                          "decode": dict(pool), "kv_transfer": {"placement": "same_domain"}}]
    return data


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    for data in (case("colocated-4-least", 4, n, "least_outstanding"), case("colocated-4-rr", 4, n),
                 disagg_case(n)):
        print(json.dumps(measure(data)))


if __name__ == "__main__":
    main()
