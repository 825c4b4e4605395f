"""The vLLM-like batch policy of a replica: which sequences join the next step and how many tokens each
computes (pure decisions, no SimPy; compiled with the engine, see ``core.compiled``).

The rules, in the order ``engine.replica.Replica._plan`` applies them (vLLM v1's scheduler: a request has
``num_tokens`` and ``num_computed``; chunked prefill is scheduling fewer tokens; no room means preemption):

1. Decodes first: every running sequence with one token left to compute decodes one token. If their new KV
   blocks cannot be had, the newest running sequence is preempted (``preemption_victim``) and its KV freed;
   it returns to the head of the queue and recomputes later.
2. Prefill priority (``decodes_held``, sglang-like profiles): while prompts wait or are being prefilled, a
   step runs prompt chunks only; the decodes run after all if no prompt can start.
3. A step computes at most ``max_batched_tokens`` tokens and, when it also decodes, at most
   ``mixed_prefill_tokens`` prompt tokens (``prompt_budget``).
4. Running prefills continue in admission order, each with the tokens it has left or what the budget still
   allows (a chunk), while their KV blocks can be had (``blocks_to_add``).
5. Waiting requests start first come first served while a slot, budget and KV room are free; a start
   skips its cached prefix (``first_chunk``). No admission in a step that preempted.
6. KV reservation (``reserve_tokens``), chosen by the engine profile's ``kv_cache.capacity_scheduler``:
   ``recompute`` (vLLM, SGLang) holds the blocks of the tokens computed so far and grows them step by
   step, preempting as in rule 1; ``guaranteed_no_evict`` (TensorRT-LLM's default capacity scheduler)
   reserves a request's prompt plus maximum output when it starts, so it starts only when that fits and
   is never preempted (rules 1 and 4 then always find their blocks).

The replica keeps the state (slots, KV cache) and applies each decision; a plan is a ``BatchPlan``.
"""

from __future__ import annotations


class BatchPlan:
    """One plan of a replica's scheduler, frozen once made (read-only attributes when compiled; build it
    with ``new_plan``): ``chunks`` the prompt work in scheduling order as (slot, tokens) pairs, ``n_dec``
    the decoding sequences (one token each per step), ``k`` the steps it runs (more than one only for a
    decode-only fast-forward, ``fast_forward``)."""

    def __init__(self):
        self.chunks = []
        self.n_dec = 0
        self.k = 0
        self.fast_forward = False

    def __repr__(self) -> str:
        return f"BatchPlan(chunks={self.chunks!r}, n_dec={self.n_dec}, k={self.k}, fast_forward={self.fast_forward})"


def new_plan(chunks: list, n_dec: int, k: int, fast_forward: bool) -> BatchPlan:
    """A ``BatchPlan`` (``chunks``: (slot, tokens) pairs; ``k`` steps; ``fast_forward``: k decode-only steps)."""
    p = BatchPlan.__new__(BatchPlan)
    p.chunks = chunks
    p.n_dec = n_dec
    p.k = k
    p.fast_forward = fast_forward
    return p


#: No work: the replica is idle.
IDLE = new_plan([], 0, 0, False)


def blocks_to_add(tokens: int, shared_tokens: int, private_blocks: int, block_size: int) -> int:
    """KV blocks a sequence must add so that its private blocks (``private_blocks`` held) hold its
    ``tokens`` beyond the ``shared_tokens`` of a shared prefix; zero or negative when it holds enough."""
    return -(-(tokens - shared_tokens) // block_size) - private_blocks


def reserve_tokens(no_evict: bool, computed_tokens: int, max_tokens: int) -> int:
    """Tokens a sequence's KV blocks must hold once ``computed_tokens`` are computed: those (recompute
    policy), or the request's ``max_tokens`` (prompt + maximum output) from its start on under
    ``guaranteed_no_evict``, which thereby never needs another block and never preempts."""
    return max_tokens if no_evict else computed_tokens


def decodes_held(prefill_first: bool, mixed: bool, n_dec: int, n_waiting: int, n_active: int) -> bool:
    """Whether a step leaves its ``n_dec`` decodes out to run prompt chunks only: a prefill-priority
    profile (``prefill_first``) with prompts waiting (``n_waiting``) or in prefill (fewer decodes than
    ``n_active`` running sequences); never on the retry that mixes them back in (``mixed``)."""
    return prefill_first and not mixed and n_dec > 0 and (n_waiting > 0 or n_dec < n_active)


def prompt_budget(max_batched_tokens: int, n_dec: int, mixed_prefill_tokens: int) -> int:
    """Prompt tokens a step may compute besides its ``n_dec`` decode tokens: ``max_batched_tokens`` in all,
    at most ``mixed_prefill_tokens`` (when set, > 0) in a step that also decodes."""
    budget = max_batched_tokens - n_dec
    if n_dec and mixed_prefill_tokens and mixed_prefill_tokens < budget:
        budget = mixed_prefill_tokens
    return budget


def first_chunk(prompt_tokens: int, cached_tokens: int, budget: int) -> tuple[int, int]:
    """(tokens already computed, tokens of the first chunk) of a starting sequence of ``prompt_tokens``
    (its whole context when it resumes after a preemption) whose first ``cached_tokens`` are in the prefix
    cache: the cache covers all but the last token at most (one must be computed to sample), and the chunk
    is the rest or what the ``budget`` allows."""
    comp = min(cached_tokens, prompt_tokens - 1)
    return comp, min(prompt_tokens - comp, budget)


def preemption_victim(active: list, order) -> int:
    """The slot to preempt when KV runs out: the newest running sequence (largest admission ``order``
    among the ``active`` slots; ``order`` is indexed by slot)."""
    best = active[0]
    for s in active:
        if order[s] > order[best]:
            best = s
    return best
