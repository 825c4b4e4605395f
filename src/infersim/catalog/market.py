"""The dated market dataset: token prices, published provider speeds and GPU rental prices, every row with its
source, source URL and retrieval date.

Files (``catalog/data``):

- ``token_prices.csv``: $ per million input / cached-input / output tokens per provider x model x date, and
  a batch discount where one is published;
- ``provider_speeds.csv``: published per-user output speed and TTFT (with the benchmark's input length where
  the benchmark states it, and whether TTFT is the first token or the first *answer* token of a reasoning
  model);
- ``gpu_rental.csv``: $/GPU-hour by GPU x provider x provider class (hyperscaler, specialist, marketplace,
  customer_list for what a platform charges) x quarter x term (on_demand, reserved, spot).

Where two sources disagree both rows are kept; the *default* row a lookup returns is stated in each function
(latest date not after ``as_of``, then the lowest price), and the caller reports the row it used.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from infersim.core.errors import InfersimError, suggest


def provider_slug(name: str) -> str:
    """``'AWS Bedrock (mantle)'`` -> ``'aws-bedrock'``: lower case, parenthetical dropped, words joined by '-'."""
    base = re.sub(r"\(.*?\)", "", name)
    return "-".join(re.findall(r"[a-z0-9.]+", base.lower()))


def _provider_matches(query: str, provider: str) -> bool:
    q, p = provider_slug(query), provider_slug(provider)
    return q == p or q == p.replace("-", "") or (len(q) >= 4 and q in p.split("-"))


def _f(x: str) -> float | None:
    x = (x or "").strip()
    return float(x) if x else None


def _as_of_key(as_of: str | None) -> str:
    """An ``as_of`` of ``2026``, ``2026-06`` or ``2026-06-15`` as the last ISO date it covers (string order)."""
    if not as_of:
        return "9999-12-31"
    s = str(as_of).strip()
    if not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", s):
        raise InfersimError(f"as_of '{s}' is not a date (expected YYYY, YYYY-MM or YYYY-MM-DD)")
    return s + {4: "-12-31", 7: "-31", 10: ""}[len(s)]


@cache
def _rows(name: str) -> tuple[dict, ...]:
    text = (resources.files("infersim.catalog") / "data" / name).read_text()
    return tuple(csv.DictReader(io.StringIO(text)))


# -- token prices ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceRow:
    """One dated token price of ``token_prices.csv``."""

    catalog_model: str
    provider: str
    model_id: str
    as_of: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    cached_input_usd_per_mtok: float | None
    batch_discount_pct: float | None
    source: str
    source_url: str
    retrieved: str
    notes: str

    def cite(self) -> str:
        """One line naming the row: provider, model id, date, source and retrieval date."""
        url = f" <{self.source_url}>" if self.source_url else ""
        return (f"{self.provider} {self.model_id} as of {self.as_of}: ${self.input_usd_per_mtok:g} in / "
                f"${self.output_usd_per_mtok:g} out per Mtok; {self.source}{url}; retrieved {self.retrieved}")


@cache
def price_rows() -> tuple[PriceRow, ...]:
    out = []
    for r in _rows("token_prices.csv"):
        i, o = _f(r["usd_per_1m_input"]), _f(r["usd_per_1m_output"])
        if i is None or o is None:
            continue
        out.append(PriceRow(r["catalog_model"], r["provider"], r["model_id"], r["as_of"], i, o,
                            _f(r.get("usd_per_1m_cached_input", "")), _f(r.get("batch_discount_pct", "")),
                            r["source"], r.get("source_url", ""), r.get("retrieved", ""), r.get("notes", "")))
    return tuple(out)


def prices(model: str | None = None, provider: str | None = None, as_of: str | None = None) -> list[PriceRow]:
    """Every price row for ``model`` / ``provider`` dated on or before ``as_of`` (all when None)."""
    key = _as_of_key(as_of)
    return [r for r in price_rows() if (model is None or r.catalog_model == model)
            and (provider is None or _provider_matches(provider, r.provider)) and r.as_of <= key]


#: Model ids of a provider's tier that is a different product (Groq's speculative-decoding tier).
EXCLUDED_TIERS = ("specdec",)


def price(provider: str, model: str, as_of: str | None = None) -> PriceRow:
    """The default price of ``provider`` for catalog ``model`` as of ``as_of``: among rows dated on or before
    it, the latest date, then the lowest output price (``EXCLUDED_TIERS`` skipped). Raises ``InfersimError``
    naming what exists when no row matches."""
    rows = [r for r in prices(model, provider, as_of) if not any(x in r.model_id for x in EXCLUDED_TIERS)]
    if not rows:
        providers = sorted({r.provider for r in price_rows() if r.catalog_model == model})
        if not providers:
            models = sorted({r.catalog_model for r in price_rows()})
            raise InfersimError(f"no price row for model '{model}'{suggest(model, models)} "
                                f"(priced models: {', '.join(models)})")
        if not any(_provider_matches(provider, p) for p in providers):
            raise InfersimError(f"no {provider} price for '{model}' (providers with one: {', '.join(providers)})")
        first = min(r.as_of for r in prices(model, provider))
        raise InfersimError(f"no {provider} price for '{model}' dated on or before {as_of} (first: {first})")
    latest = max(r.as_of for r in rows)
    return min((r for r in rows if r.as_of == latest), key=lambda r: r.output_usd_per_mtok)


# -- provider speeds ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpeedRow:
    """One published per-user speed / TTFT of ``provider_speeds.csv``."""

    catalog_model: str
    provider: str
    hardware: str
    date: str
    output_tok_s_per_user: float | None
    ttft_s: float | None
    ttft_kind: str
    input_tokens: float | None
    measured_by: str
    source: str
    source_url: str
    retrieved: str
    notes: str

    def cite(self) -> str:
        what = []
        if self.output_tok_s_per_user is not None:
            what.append(f"{self.output_tok_s_per_user:g} tok/s/user")
        if self.ttft_s is not None:
            what.append(f"TTFT {self.ttft_s:g} s" + (f" ({self.ttft_kind})" if self.ttft_kind else ""))
        url = f" <{self.source_url}>" if self.source_url else ""
        return (f"{self.provider} {self.catalog_model} {self.date}: {', '.join(what)}; {self.measured_by}; "
                f"{self.source}{url}; retrieved {self.retrieved}")


@cache
def speed_rows() -> tuple[SpeedRow, ...]:
    return tuple(SpeedRow(r["catalog_model"], r["provider"], r["hardware"], r["date"],
                          _f(r["output_tok_s_per_user"]), _f(r["ttft_s"]), r["ttft_kind"], _f(r["input_tokens"]),
                          r["measured_by"], r["source"], r["source_url"], r["retrieved"], r["notes"])
                 for r in _rows("provider_speeds.csv"))


def speeds(model: str | None = None, provider: str | None = None, as_of: str | None = None) -> list[SpeedRow]:
    key = _as_of_key(as_of)
    return [r for r in speed_rows() if (model is None or r.catalog_model == model)
            and (provider is None or _provider_matches(provider, r.provider)) and r.date <= key]


def speed(provider: str, model: str, as_of: str | None = None) -> SpeedRow:
    """The default speed row: the latest with an output speed, independent benchmarks before vendor claims."""
    rows = [r for r in speeds(model, provider, as_of) if r.output_tok_s_per_user is not None]
    if not rows:
        raise InfersimError(f"no published {provider} speed for '{model}'"
                            + (f" dated on or before {as_of}" if as_of else ""))
    return max(rows, key=lambda r: (r.date, not r.measured_by.startswith("vendor")))


# -- GPU rental -----------------------------------------------------------------------------------------------
PROVIDER_CLASSES = ("hyperscaler", "specialist", "marketplace", "customer_list")
TERMS = ("on_demand", "reserved", "spot")


@dataclass(frozen=True)
class GpuRentalRow:
    """One GPU rental price of ``gpu_rental.csv``."""

    hardware: str
    provider: str
    provider_class: str
    quarter: str
    term: str
    usd_per_gpu_hour: float
    source: str
    source_url: str
    retrieved: str
    notes: str

    def cite(self) -> str:
        return (f"{self.hardware} {self.provider} ({self.provider_class}) {self.term} {self.quarter or 'undated'}: "
                f"${self.usd_per_gpu_hour:g}/GPU-h; {self.source} <{self.source_url}>; retrieved {self.retrieved}")


@cache
def gpu_rental_rows() -> tuple[GpuRentalRow, ...]:
    out = []
    for r in _rows("gpu_rental.csv"):
        if r["provider_class"] not in PROVIDER_CLASSES or r["term"] not in TERMS:
            raise InfersimError(f"gpu_rental.csv row {r['hardware']} {r['provider']}: provider_class must be one "
                                f"of {PROVIDER_CLASSES} and term one of {TERMS}")
        out.append(GpuRentalRow(r["hardware"], r["provider"], r["provider_class"], r["quarter"], r["term"],
                                float(r["usd_per_gpu_hour"]), r["source"], r["source_url"], r["retrieved"],
                                r["notes"]))
    return tuple(out)


def _quarter_key(q: str) -> str:
    return q or "0000Q0"


def gpu_rentals(hardware: str | None = None, provider: str | None = None, provider_class: str | None = None,
                term: str | None = None, quarter: str | None = None) -> list[GpuRentalRow]:
    """Rental rows matching the filters; ``quarter`` (``2026Q3``) keeps rows of that quarter or before."""
    return [r for r in gpu_rental_rows() if (hardware is None or r.hardware == hardware)
            and (provider is None or _provider_matches(provider, r.provider))
            and (provider_class is None or r.provider_class == provider_class)
            and (term is None or r.term == term)
            and (quarter is None or _quarter_key(r.quarter) <= quarter)]


def gpu_rental(hardware: str, provider: str | None = None, provider_class: str | None = None,
               term: str = "on_demand", quarter: str | None = None) -> GpuRentalRow:
    """The default rental row: latest quarter, then the lowest price, among rows matching the filters
    (``customer_list`` rows, what a platform charges, only when asked for by provider or class)."""
    rows = gpu_rentals(hardware, provider, provider_class, term, quarter)
    if provider is None and provider_class is None:  # a platform's own list price is not a rental
        rows = [r for r in rows if r.provider_class != "customer_list"]
    if not rows:
        have = sorted({f"{r.provider} {r.term}" for r in gpu_rental_rows() if r.hardware == hardware})
        raise InfersimError(f"no {term} rental price for '{hardware}'"
                            + (f" at {provider}" if provider else "") + (f" ({provider_class})" if provider_class else "")
                            + (f" in or before {quarter}" if quarter else "")
                            + (f"; rows: {', '.join(have)}" if have else "; no row for this hardware"))
    latest = max(_quarter_key(r.quarter) for r in rows)
    return min((r for r in rows if _quarter_key(r.quarter) == latest), key=lambda r: r.usd_per_gpu_hour)
