"""What a replica reads besides its step model: the engine knobs (a typed object) and the setup protocol.

``ReplicaKnobs`` holds the engine-profile parameters the replica mechanism and its batch policy apply
(``perf.params.PerfParams`` documents each); ``ReplicaSetup`` lists the fields ``engine.replica.Replica``
reads from a deployment's setup (``build.gpu.DeploymentSetup``, ``build.sram.SramSetup``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from infersim.catalog import Hardware, Model
from infersim.perf.params import PerfParams


@dataclass(frozen=True)
class ReplicaKnobs:
    """Engine knobs of one replica (seconds and tokens; defaults: no API hop, no mixed-step limit, decodes
    join every step, KV grown step by step with preemption by recompute)."""

    schedule_delay_s: float = 0.0  # arrival at the engine -> first schedulable step
    schedule_delay_per_seq_s: float = 0.0  # extra delay per request already outstanding
    api_serial_s: float = 0.0  # CPU seconds per request on the single API-server process (FCFS)
    mixed_prefill_tokens: int = 0  # most prompt tokens in a step that also decodes (0: no limit)
    prefill_first: bool = False  # steps run prompt chunks only while prompts wait (prefill priority)
    no_evict: bool = False  # guaranteed_no_evict: reserve prompt + max output at admission, never preempt

    @classmethod
    def from_params(cls, p: PerfParams) -> ReplicaKnobs:
        """The knobs of an engine profile."""
        return cls(p.schedule_delay_s, p.schedule_delay_per_seq_s, p.api_serial_s, int(p.mixed_prefill_tokens),
                   bool(p.prefill_priority))


class ReplicaSetup(Protocol):
    """The fields of a deployment's setup that a replica reads (computed once per deployment)."""

    name: str
    hardware: Hardware
    model: Model
    perf: object  # the step model (perf.base.StepModel)
    max_num_seqs: int
    max_batched_tokens: int
    block_size: int
    prefix_caching: bool
    kv_blocks: int  # paged KV blocks per replica
    knobs: ReplicaKnobs
