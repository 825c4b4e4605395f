"""Measured runs for ``infersim calibrate``: read and validate a CSV, one row per benchmark run.

Columns (extra columns are ignored; a missing metric is skipped):

- required: ``model``, ``hardware``, ``tp``, ``engine``, ``input_tokens``, ``output_tokens`` and exactly one
  of ``concurrency`` (closed loop: that many clients, each sending its next request when the previous one
  finishes) or ``rate_per_s`` (an open loop at that mean rate);
- optional: ``arrival`` for ``rate_per_s`` rows: ``poisson`` (the default), ``constant`` (requests exactly
  1/rate apart: AIPerf's ``--arrival-pattern constant``, inference-perf's ``constant`` load) or ``gamma``
  with ``burstiness`` b > 0 (vLLM's ``vllm bench serve --request-rate R --burstiness b``: gamma gaps of shape
  b and mean 1/R, so b = 1 is Poisson, b < 1 burstier, b > 1 more regular; a ``burstiness`` without
  ``arrival`` means gamma, as in vLLM); ``precision`` (default bf16), ``pp`` (pipeline stages, default 1;
  the replica spans tp x pp GPUs), ``num_requests`` (default :func:`default_num_requests`),
  ``max_num_seqs``, ``max_batched_tokens``, ``prefix_tokens``, ``prefix_share`` and ``prefix_groups`` (a
  shared prefix of that many tokens carried by that share of requests, each request in one of that many
  equally popular groups with distinct prefixes; default 1 group), ``kv_precision``, ``gpu_memory_utilization``,
  ``think_time_s``, ``engine_version``, ``client_start`` (``burst``: the closed loop's clients send their first
  requests together; ``staggered``: spread over one request's latency, see ``runner.drive``; default: the one
  the engine's shipped profile was fitted with, ``client_start_default`` in the profile);
- optional layout: ``dp`` (attention data-parallel ranks in the replica, default 1; the replica spans
  tp x pp x dp GPUs), ``ep`` (expert parallelism of a MoE model: 1, the default, or tp x dp),
  ``two_batch_overlap`` (``true``/``false``, default false: SGLang's ``--enable-two-batch-overlap``); a
  disaggregated run (prefill and decode on separate pools, xPyD) gives ``prefill_replicas`` and
  ``decode_replicas`` (both or neither), optionally ``decode_tp``, ``decode_dp`` and ``decode_ep`` (the decode
  pool's replica; default the row's ``tp`` and ``dp``, and ``ep`` 1 if the row's ``ep`` is 1, else full expert
  parallelism ``decode_tp`` x ``decode_dp``, which is the row's ``ep`` when the decode replica is the same
  shape), ``kv_placement`` (how the KV cache moves from prefill to decode: ``same_domain`` (NVLink), ``rdma``
  (the default) or ``ethernet``), ``kv_bandwidth_gb_per_s`` (the link's GB/s, needed for ``ethernet``;
  overrides the catalog otherwise) and ``first_token`` (which pool streams the first token: ``decode``, the
  default, or ``prefill`` as DistServe does); ``tp``, ``pp``, ``dp``, ``ep``, ``precision``, ``kv_precision`` and the
  engine columns are the prefill pool's and, unless the ``decode_`` columns say otherwise, the decode pool's;
- metrics (any of): ``ttft_mean_ms``, ``ttft_p50_ms``, ``ttft_p90_ms``, ``ttft_p99_ms``, ``itl_mean_ms``,
  ``e2e_mean_ms``, ``e2e_p50_ms``, ``e2e_p90_ms``, ``e2e_p99_ms``, ``output_tok_s``.

Model and hardware accept catalog ids and their aliases (``meta-llama/Llama-3.1-70B``, ``H100-SXM-80GB``);
engine accepts ``vllm``/``vLLM``, ``sglang``/``SGLang``, ``trtllm``/``TensorRT-LLM``/``trt-llm``. Numbers may
be written as floats when integral (``2.0``). A malformed row becomes a :class:`RowProblem` naming its row
number (1-based over data rows; the header is line 1, so data row n is line n + 1 of the file).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from infersim.catalog import PRECISIONS, Catalog, default_catalog
from infersim.core.errors import InfersimError

#: metric column -> (what it measures, unit scale to seconds or tokens/s). ``itl_mean_ms`` is compared with
#: the simulated mean TPOT (see ``runner.simulated_metrics``).
METRICS: dict[str, float] = {
    "ttft_mean_ms": 1e-3, "ttft_p50_ms": 1e-3, "ttft_p90_ms": 1e-3, "ttft_p99_ms": 1e-3,
    "itl_mean_ms": 1e-3,
    "e2e_mean_ms": 1e-3, "e2e_p50_ms": 1e-3, "e2e_p90_ms": 1e-3, "e2e_p99_ms": 1e-3,
    "output_tok_s": 1.0,
}
ENGINES = {
    "vllm": "vllm", "sglang": "sglang", "trtllm": "trtllm", "tensorrtllm": "trtllm", "trt": "trtllm",
    "tensorrt": "trtllm",
}
CLIENT_STARTS = ("burst", "staggered")
ARRIVALS = ("poisson", "constant", "gamma")
KV_PLACEMENTS = ("same_domain", "rdma", "ethernet")
BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
#: columns of a disaggregated layout that need ``prefill_replicas`` and ``decode_replicas``
DISAGG_COLUMNS = ("decode_tp", "decode_dp", "decode_ep", "kv_placement", "kv_bandwidth_gb_per_s", "first_token")
FIRST_TOKEN = ("decode", "prefill")
REQUIRED = ("model", "hardware", "tp", "engine", "input_tokens", "output_tokens")
MAX_REQUESTS = 100_000


def default_num_requests(concurrency: int | None) -> int:
    """Requests simulated when a row does not say: eight rounds of the clients (at least 64, at most 1024)."""
    if concurrency is None:
        return 256
    return int(min(max(8 * concurrency, 64), 1024))


@dataclass(frozen=True)
class MeasuredRow:
    """One measured run. ``row`` is its 1-based data-row number in the CSV. Metrics in their CSV units."""

    row: int
    model: str  # catalog id
    hardware: str  # catalog id
    tp: int
    engine: str  # vllm | sglang | trtllm
    precision: str
    input_tokens: int
    output_tokens: int
    concurrency: int | None
    rate_per_s: float | None
    num_requests: int
    metrics: dict[str, float]
    engine_version: str = ""
    max_num_seqs: int | None = None
    max_batched_tokens: int | None = None
    prefix_tokens: int = 0
    prefix_share: float = 0.0
    kv_precision: str | None = None
    gpu_memory_utilization: float | None = None
    think_time_s: float = 0.0
    client_start: str | None = None  # None: the engine profile's default (``runner.default_client_start``)
    arrival: str | None = None  # rate rows: poisson | constant | gamma (None for closed-loop rows)
    burstiness: float = 1.0  # gamma shape (vLLM's --burstiness); 1.0 unless arrival is gamma
    prefix_groups: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    two_batch_overlap: bool = False
    # disaggregated layout (xPyD): None for a co-located row; the decode_ fields are resolved (never None) and
    # kv_placement is set when prefill_replicas is
    prefill_replicas: int | None = None
    decode_replicas: int | None = None
    decode_tp: int | None = None
    decode_dp: int | None = None
    decode_ep: int | None = None
    kv_placement: str | None = None  # same_domain | rdma | ethernet
    kv_bandwidth_gb_per_s: float | None = None
    first_token: str | None = None  # decode | prefill (set when prefill_replicas is)
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def disaggregated(self) -> bool:
        return self.prefill_replicas is not None

    @property
    def group(self) -> tuple[str, str, int]:
        return (self.engine, self.model, self.tp)

    def label(self) -> str:
        if self.concurrency is not None:
            load = f"c={self.concurrency}"
        else:
            load = f"{self.rate_per_s:g}/s" + {"poisson": "", "constant": " constant"}.get(
                self.arrival or "poisson", f" gamma b={self.burstiness:g}")
        pp = f" pp{self.pp}" if self.pp > 1 else ""
        layout = self.layout()
        return (f"{self.engine} {self.model} tp{self.tp}{pp}{' ' + layout if layout else ''} {self.precision} "
                f"{self.input_tokens}/{self.output_tokens} {load}")

    def layout(self) -> str:
        """The row's parallelism beyond tp and pp, '' when there is none: ``dp8 ep8``, ``TBO``, ``1P3D`` (with
        the decode replica's ``decode tp.. dp.. ep..`` when it differs from the prefill's and the KV link when
        it is not RDMA)."""
        def par(tp: int | None, dp: int, ep: int, with_tp: bool) -> list[str]:
            return ([f"tp{tp}"] if with_tp else []) + ([f"dp{dp}"] if dp > 1 else []) + ([f"ep{ep}"] if ep > 1 else [])

        parts = par(self.tp, self.dp, self.ep, False)
        if self.two_batch_overlap:
            parts.append("TBO")
        if self.disaggregated:
            parts.append(f"{self.prefill_replicas}P{self.decode_replicas}D")
            if (self.decode_tp, self.decode_dp, self.decode_ep) != (self.tp, self.dp, self.ep):
                parts.append("decode " + " ".join(par(self.decode_tp, self.decode_dp or 1, self.decode_ep or 1, True)))
            if self.kv_placement != "rdma":
                parts.append(str(self.kv_placement))
            if self.first_token == "prefill":
                parts.append("first token from prefill")
            if self.kv_bandwidth_gb_per_s is not None:
                parts.append(f"{self.kv_bandwidth_gb_per_s:g} GB/s")
        return " ".join(parts)


@dataclass(frozen=True)
class RowProblem:
    row: int
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


class _Bad(Exception):
    pass


def _blank(v: str | None) -> bool:
    return v is None or str(v).strip() == "" or str(v).strip().lower() in ("nan", "none", "null", "-")


def _int(raw: dict, name: str, *, required: bool = False, minimum: int = 1) -> int | None:
    v = raw.get(name)
    if _blank(v):
        if required:
            raise _Bad(f"missing {name}")
        return None
    try:
        f = float(str(v).strip())
    except ValueError:
        raise _Bad(f"{name}: expected an integer, got {v!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise _Bad(f"{name}: expected an integer, got {v!r}")
    if f < minimum:
        raise _Bad(f"{name}: expected an integer >= {minimum}, got {v!r}")
    return int(f)


def _float(raw: dict, name: str, *, lo: float = 0.0, hi: float = math.inf, strict_lo: bool = False) -> float | None:
    v = raw.get(name)
    if _blank(v):
        return None
    try:
        f = float(str(v).strip())
    except ValueError:
        raise _Bad(f"{name}: expected a number, got {v!r}") from None
    if not math.isfinite(f) or f < lo or f > hi or (strict_lo and f == lo):
        rng = f"> {lo:g}" if strict_lo else f">= {lo:g}"
        raise _Bad(f"{name}: expected a number {rng}" + (f" and <= {hi:g}" if math.isfinite(hi) else "") +
                   f", got {v!r}")
    return f


def _arrival(raw: dict, open_loop: bool) -> tuple[str | None, float]:
    """The row's (arrival process, burstiness): None for a closed-loop row."""
    kind = None if _blank(raw.get("arrival")) else str(raw["arrival"]).strip().lower()
    burst = _float(raw, "burstiness", strict_lo=True)
    if not open_loop:
        if kind is not None or burst is not None:
            raise _Bad("arrival and burstiness apply to rate_per_s rows (a concurrency row is a closed loop)")
        return None, 1.0
    if kind is None:
        kind = "poisson" if burst is None else "gamma"
    if kind not in ARRIVALS:
        raise _Bad(f"arrival: expected one of {', '.join(ARRIVALS)}, got {raw['arrival']!r}")
    if kind == "gamma" and burst is None:
        raise _Bad("arrival gamma needs burstiness (vLLM's --burstiness: the gamma shape, > 0)")
    if kind != "gamma" and burst is not None and burst != 1.0:
        raise _Bad(f"burstiness {burst:g} needs arrival gamma (arrival is {kind})")
    return kind, burst if kind == "gamma" else 1.0


def _bool(raw: dict, name: str) -> bool | None:
    v = raw.get(name)
    if _blank(v):
        return None
    key = str(v).strip().lower()
    if key not in BOOLS:
        raise _Bad(f"{name}: expected true or false, got {v!r}")
    return BOOLS[key]


def _ep(raw: dict, name: str, tp: int, dp: int, default: int) -> int:
    """Expert parallelism of a replica of ``tp`` x ``dp`` GPUs per stage: 1 or tp x dp (the scenario's rule)."""
    ep = _int(raw, name)
    if ep is None:
        ep = default
    if ep != 1 and ep != tp * dp:
        raise _Bad(f"{name}: expected 1 or tp x dp = {tp * dp} (experts over all the replica's GPUs of a stage), "
                   f"got {ep}")
    return ep


def _layout(raw: dict, tp: int) -> dict:
    """The row's parallelism and disaggregated layout, as MeasuredRow fields."""
    dp = _int(raw, "dp") or 1
    ep = _ep(raw, "ep", tp, dp, 1)
    out: dict = {"dp": dp, "ep": ep, "two_batch_overlap": bool(_bool(raw, "two_batch_overlap"))}
    n_pre, n_dec = _int(raw, "prefill_replicas"), _int(raw, "decode_replicas")
    if n_pre is None and n_dec is None:
        given = [c for c in DISAGG_COLUMNS if not _blank(raw.get(c))]
        if given:
            raise _Bad(f"{given[0]}: applies to a disaggregated run (give prefill_replicas and decode_replicas)")
        return out
    if n_pre is None or n_dec is None:
        have, miss = ("prefill_replicas", "decode_replicas") if n_dec is None else ("decode_replicas",
                                                                                     "prefill_replicas")
        raise _Bad(f"{miss}: missing (a disaggregated run gives both prefill_replicas and decode_replicas; "
                   f"this row gives only {have})")
    d_tp = _int(raw, "decode_tp") or tp
    d_dp = _int(raw, "decode_dp") or dp
    d_ep = _ep(raw, "decode_ep", d_tp, d_dp, 1 if ep == 1 else d_tp * d_dp)
    place = "rdma" if _blank(raw.get("kv_placement")) else str(raw["kv_placement"]).strip().lower()
    if place not in KV_PLACEMENTS:
        raise _Bad(f"kv_placement: expected one of {', '.join(KV_PLACEMENTS)}, got {raw['kv_placement']!r}")
    bw = _float(raw, "kv_bandwidth_gb_per_s", strict_lo=True)
    if place == "ethernet" and bw is None:
        raise _Bad("kv_bandwidth_gb_per_s: missing (kv_placement ethernet has no catalog bandwidth; give the "
                   "link's GB/s)")
    first = "decode" if _blank(raw.get("first_token")) else str(raw["first_token"]).strip().lower()
    if first not in FIRST_TOKEN:
        raise _Bad(f"first_token: expected one of {', '.join(FIRST_TOKEN)}, got {raw['first_token']!r}")
    out.update(prefill_replicas=n_pre, decode_replicas=n_dec, decode_tp=d_tp, decode_dp=d_dp, decode_ep=d_ep,
               kv_placement=place, kv_bandwidth_gb_per_s=bw, first_token=first)
    return out


def normalize_engine(name: str) -> str:
    key = "".join(ch for ch in str(name).lower() if ch.isalnum())
    if key in ENGINES:
        return ENGINES[key]
    raise _Bad(f"engine: unknown engine {name!r} (expected vllm, sglang or trtllm)")


def parse_row(raw: dict[str, str], row: int, catalog: Catalog | None = None) -> MeasuredRow:
    """Validate one CSV record. Raises ``InfersimError`` naming the problem (without the row number)."""
    cat = catalog or default_catalog()
    try:
        for name in REQUIRED:
            if _blank(raw.get(name)):
                raise _Bad(f"missing {name}")
        try:
            model = cat.get_model(str(raw["model"]).strip()).id
            hardware = cat.get_hardware(str(raw["hardware"]).strip()).id
        except InfersimError as exc:
            raise _Bad(str(exc)) from None
        engine = normalize_engine(raw["engine"])
        precision = "bf16" if _blank(raw.get("precision")) else str(raw["precision"]).strip().lower()
        if precision not in PRECISIONS:
            raise _Bad(f"precision: unknown precision {raw['precision']!r} (expected one of {', '.join(PRECISIONS)})")
        kv = None if _blank(raw.get("kv_precision")) else str(raw["kv_precision"]).strip().lower()
        if kv is not None and kv not in PRECISIONS:
            raise _Bad(f"kv_precision: unknown precision {raw['kv_precision']!r}")
        tp = _int(raw, "tp", required=True)
        i_tok = _int(raw, "input_tokens", required=True)
        o_tok = _int(raw, "output_tokens", required=True)
        conc = _int(raw, "concurrency")
        rate = _float(raw, "rate_per_s", strict_lo=True)
        if (conc is None) == (rate is None):
            raise _Bad("give exactly one of concurrency or rate_per_s" if conc is not None
                       else "missing concurrency or rate_per_s")
        arrival, burst = _arrival(raw, rate is not None)
        pp = _int(raw, "pp") or 1
        layout = _layout(raw, tp)
        n = _int(raw, "num_requests")
        n = default_num_requests(conc) if n is None else n
        if n > MAX_REQUESTS:
            raise _Bad(f"num_requests: at most {MAX_REQUESTS:,} supported, got {n:,}")
        metrics: dict[str, float] = {}
        for m in METRICS:
            v = _float(raw, m, strict_lo=True)
            if v is not None:
                metrics[m] = v
        share = _float(raw, "prefix_share", hi=1.0)
        ptok = _int(raw, "prefix_tokens", minimum=0) or 0
        if ptok >= i_tok:
            raise _Bad(f"prefix_tokens ({ptok}) must be smaller than input_tokens ({i_tok})")
        groups = _int(raw, "prefix_groups")
        if groups is not None and not ptok:
            raise _Bad("prefix_groups needs prefix_tokens")
        gmu = _float(raw, "gpu_memory_utilization", hi=1.0, strict_lo=True)
        think = _float(raw, "think_time_s") or 0.0
        start = None if _blank(raw.get("client_start")) else str(raw["client_start"]).strip().lower()
        if start is not None and start not in CLIENT_STARTS:
            raise _Bad(f"client_start: expected one of {', '.join(CLIENT_STARTS)}, got {raw['client_start']!r}")
        known = set(REQUIRED) | set(METRICS) | {
            "precision", "concurrency", "rate_per_s", "num_requests", "max_num_seqs", "max_batched_tokens",
            "prefix_tokens", "prefix_share", "kv_precision", "gpu_memory_utilization", "think_time_s",
            "engine_version", "client_start", "arrival", "burstiness", "prefix_groups", "pp", "dp", "ep",
            "two_batch_overlap", "prefill_replicas", "decode_replicas", *DISAGG_COLUMNS}
        return MeasuredRow(
            row=row, model=model, hardware=hardware, tp=tp, engine=engine, precision=precision,
            input_tokens=i_tok, output_tokens=o_tok, concurrency=conc, rate_per_s=rate, num_requests=n,
            metrics=metrics, engine_version="" if _blank(raw.get("engine_version")) else str(raw["engine_version"]),
            max_num_seqs=_int(raw, "max_num_seqs"), max_batched_tokens=_int(raw, "max_batched_tokens", minimum=16),
            prefix_tokens=ptok, prefix_share=(1.0 if share is None else share) if ptok else 0.0,
            kv_precision=kv, gpu_memory_utilization=gmu, think_time_s=think, client_start=start,
            arrival=arrival, burstiness=burst, prefix_groups=groups or 1, pp=pp, **layout,
            extra={k: v for k, v in raw.items() if k not in known and k is not None})
    except _Bad as exc:
        raise InfersimError(str(exc)) from None


def read_measured(path: str | Path, catalog: Catalog | None = None) -> tuple[list[MeasuredRow], list[RowProblem]]:
    """All valid rows of the CSV and the problems of the others (each with its row number)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InfersimError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InfersimError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc.__class__.__name__}") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise InfersimError(f"{path}: empty file (expected a header row with {', '.join(REQUIRED)})")
    reader.fieldnames = header
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InfersimError(f"{path}: missing column(s) {', '.join(missing)} (required: {', '.join(REQUIRED)})")
    if "concurrency" not in header and "rate_per_s" not in header:
        raise InfersimError(f"{path}: needs a concurrency or a rate_per_s column")
    rows, problems = [], []
    cat = catalog or default_catalog()
    for i, raw in enumerate(reader, start=1):
        if None in raw:  # more fields than the header
            problems.append(RowProblem(i, f"{len(header) + len(raw[None])} fields, the header has {len(header)}"))
            continue
        if all(_blank(v) for v in raw.values()):
            continue
        try:
            rows.append(parse_row(raw, i, cat))
        except InfersimError as exc:
            problems.append(RowProblem(i, str(exc)))
    return rows, problems
