"""KV-cache transfer between a prefill and a decode replica (physics, no clock).

A disaggregated request's KV cache moves once, after its prefill: ``bytes = prompt tokens x the model's KV
bytes per token`` (``catalog.Model.kv_bytes_per_token`` at the prefill pool's KV precision: the upper bound
for sliding-window layers, which real connectors also ship whole), and on an idle link it takes
``latency_s + bytes / bandwidth``. Concurrent transfers share a link's bandwidth (``fleet.kv_link``).

Which link, by where the pools are (``placement``):

- ``same_domain``: both replicas in one NVLink domain (``Hardware.nvlink_domain_gpus``, e.g. 72 in a GB200/GB300
  NVL72 rack). Every GPU of the prefill replica sends its KV shard over its own NVLink port at half the
  published bidirectional ``interconnect_gbps`` (NVLink 5 = 1.8 TB/s bidirectional = 900 GB/s each way).
- ``rdma`` (default across nodes): each prefill GPU sends over its own scale-out NIC (``Hardware.scaleout_gbps``,
  per direction: a 400 Gb/s ConnectX-7 per GPU = 50 GB/s, a ConnectX-8 = 100 GB/s), GPUDirect RDMA over
  InfiniBand or RoCE, as NIXL / Mooncake's transfer engine do.
- ``ethernet``: a host-staged TCP path (no GPUDirect), one NIC per node shared by the node's GPUs; its
  bandwidth must be given (``bandwidth_gb_per_s``), there is no catalog figure for it.

A replica's aggregate bandwidth is its GPUs' links together, capped by the receiving replica's (a TP-4
prefill replica sending to a TP-8 decode replica is limited by its 4 senders). SRAM-pipeline systems (LPU,
wafer) have no scale-out figure in the catalog: the GPU side's NICs bound a heterogeneous link.

Latency: per-transfer fixed cost (connection, descriptor exchange, completion notification), not a wire
latency. ASSUMPTIONS, no public measurement with a source in the calibration data: NVLink 10 us, RDMA 50 us,
Ethernet (TCP, host-staged) 1 ms; a scenario sets ``latency_s`` to override.
"""

from __future__ import annotations

from dataclasses import dataclass

from infersim.catalog import Hardware, Model
from infersim.core.errors import ScenarioError

PLACEMENTS = ("same_domain", "rdma", "ethernet")
#: ASSUMPTIONS (see the module docstring): fixed cost of one KV transfer per link kind, seconds.
DEFAULT_LATENCY_S = {"same_domain": 10e-6, "rdma": 50e-6, "ethernet": 1e-3}


@dataclass(frozen=True)
class KvLink:
    """One prefill replica's path to the decode pool: ``bandwidth_gb_per_s`` (GB/s, 1e9 bytes, one
    direction, the replica's GPUs together) and ``latency_s`` per transfer."""

    kind: str
    bandwidth_gb_per_s: float
    latency_s: float

    def transfer_s(self, nbytes: float) -> float:
        """Seconds to move ``nbytes`` on this link when nothing else uses it."""
        if self.bandwidth_gb_per_s == float("inf"):
            return self.latency_s
        return self.latency_s + nbytes / (self.bandwidth_gb_per_s * 1e9)


def kv_bytes(model: Model, kv_precision: str, tokens: int) -> float:
    """Bytes of KV cache ``tokens`` of prompt occupy (what a disaggregated prefill ships)."""
    return model.kv_bytes_per_token(kv_precision) * float(tokens)


def per_gpu_gb_per_s(hw: Hardware, placement: str) -> float:
    """One GPU's one-direction bandwidth on ``placement`` (0 when the catalog has no figure)."""
    if placement == "same_domain":
        return hw.interconnect_gbps / 2.0
    if placement == "rdma":
        return hw.scaleout_gbps
    return 0.0


def link_for(prefill_hw: Hardware, prefill_gpus: int, decode_hw: Hardware, decode_gpus: int, placement: str,
             *, bandwidth_gb_per_s: float | None = None, latency_s: float | None = None,
             path: str = "link") -> KvLink:
    """The link a prefill replica of ``prefill_gpus`` GPUs uses to reach a decode replica of ``decode_gpus``.
    ``bandwidth_gb_per_s`` / ``latency_s`` override the catalog figures and the assumed latency."""
    if placement not in PLACEMENTS:
        raise ScenarioError(f"unknown placement '{placement}' (expected one of: {', '.join(PLACEMENTS)})",
                            path=f"{path}.placement")
    if placement == "same_domain":
        for hw, side in ((prefill_hw, "prefill"), (decode_hw, "decode")):
            if hw.kind != "gpu":
                raise ScenarioError(f"placement 'same_domain' needs both pools in one NVLink domain, but the "
                                    f"{side} pool runs on '{hw.id}' ({hw.kind})", path=f"{path}.placement")
        if prefill_hw.id != decode_hw.id:
            raise ScenarioError(f"placement 'same_domain' needs one NVLink domain, but the pools run on "
                                f"'{prefill_hw.id}' and '{decode_hw.id}'", path=f"{path}.placement")
        if prefill_gpus + decode_gpus > prefill_hw.nvlink_domain_gpus:
            raise ScenarioError(f"a prefill replica ({prefill_gpus} GPUs) and a decode replica ({decode_gpus} GPUs)"
                                f" do not fit one NVLink domain of {prefill_hw.nvlink_domain_gpus} "
                                f"'{prefill_hw.id}' GPUs; use placement 'rdma'", path=f"{path}.placement")
    lat = DEFAULT_LATENCY_S[placement] if latency_s is None else latency_s
    if bandwidth_gb_per_s is not None:
        return KvLink(placement, float(bandwidth_gb_per_s), lat)
    if placement == "ethernet":
        raise ScenarioError("placement 'ethernet' needs 'bandwidth_gb_per_s' (no catalog figure for a "
                            "host-staged path)", path=f"{path}.bandwidth_gb_per_s")
    sides = []
    for hw, n in ((prefill_hw, prefill_gpus), (decode_hw, decode_gpus)):
        if hw.kind == "gpu":
            sides.append(per_gpu_gb_per_s(hw, placement) * n)
    bw = min(sides) if sides else 0.0
    if bw <= 0:
        raise ScenarioError(f"no {placement} bandwidth in the catalog for '{prefill_hw.id}' / '{decode_hw.id}'; "
                            "set 'bandwidth_gb_per_s'", path=f"{path}.bandwidth_gb_per_s")
    return KvLink(placement, bw, lat)
