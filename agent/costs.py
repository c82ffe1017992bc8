"""Cost per trusted label, from the log: what the models were paid (drafts.cost_usd), what
reviewers' time cost (reviews.seconds_on_screen at the `reviewer_cost_per_hour` setting), what
each final label cost by its source, and what people alone would have cost at the measured pace.
Used by `status`, `eval --html` and the review app's Report page."""

import math
from dataclasses import dataclass
from pathlib import Path

import duckdb

from labelagent.errors import ConfigError
from labelagent.store import costs as store
from labelagent.store.db import migrate, read_only, transaction
from labelagent.store.log import now

# The log's settings a person may set (`labelagent settings set NAME VALUE`), with what they mean.
SETTINGS = {
    "reviewer_cost_per_hour": "dollars per hour of a reviewer's time, to price reviews",
}


@dataclass(frozen=True)
class Spend:
    """What one model drafting under one guideline cost. `stage` is None until the log records
    the stage of a cascade that drafted."""

    model: str
    stage: str | None
    drafts: int
    prompt_tokens: int
    cached_prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class SourceCost:
    """The final labels of one source (human or llm) and what they cost: for llm, the model
    spend on their items; for human, that plus every reviewer second of the guideline. Dollars
    are None while reviewer time has no price."""

    source: str
    labels: int
    cost_usd: float | None
    per_label_usd: float | None


@dataclass(frozen=True)
class CoveragePoint:
    """Accepting every drafted label with agreement >= min_agreement: the share of items that
    would be auto-accepted, and the total cost (model spend, plus reviewer time for the rest at
    the median pace)."""

    min_agreement: float
    coverage: float
    total_cost_usd: float | None


@dataclass(frozen=True)
class GuidelineCosts:
    guideline_hash: str
    name: str
    items: int  # items with a decision or a person's review under the guideline
    spend: list[Spend]
    model_cost_usd: float
    timed_reviews: int
    review_seconds: float
    median_seconds_per_review: float | None
    reviewer_cost_usd: float | None
    final_labels: int
    per_final_label_usd: float | None
    by_source: list[SourceCost]
    people_alone_usd: float | None  # items x median seconds per review x rate
    curve: list[CoveragePoint]


@dataclass(frozen=True)
class Costs:
    reviewer_cost_per_hour: float | None
    guidelines: list[GuidelineCosts]


def parse_setting(name: str, value: str) -> float:
    """A setting's value, checked: a known name and a finite number >= 0."""
    if name not in SETTINGS:
        known = ", ".join(sorted(SETTINGS))
        raise ConfigError(f"unknown setting {name!r}; the settings are: {known}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{name} must be a number >= 0, not {value!r}")
    return number


def set_setting(db: str | Path, name: str, value: str) -> float:
    number = parse_setting(name, value)
    migrate(db)
    with transaction(db) as con:
        store.save_setting(con, name, str(number), now())
    return number


def read_settings(con: duckdb.DuckDBPyConnection) -> dict[str, float | None]:
    stored = {s.name: s.value for s in store.stored_settings(con) if s.name in SETTINGS}
    return {name: float(stored[name]) if name in stored else None for name in SETTINGS}


def settings(db: str | Path) -> dict[str, float | None]:
    with read_only(db), transaction(db) as con:
        return read_settings(con)


def costs(db: str | Path, guideline_hash: str | None = None) -> Costs:
    """Every guideline's costs, or one guideline's."""
    with read_only(db), transaction(db) as con:
        return log_costs(con, guideline_hash)


def log_costs(con: duckdb.DuckDBPyConnection, guideline_hash: str | None = None) -> Costs:
    rate = read_settings(con)["reviewer_cost_per_hour"]
    guidelines = store.guideline_names(con, guideline_hash)
    return Costs(rate, [guideline_costs(con, g.guideline_hash, g.name, rate) for g in guidelines])


def guideline_costs(
    con: duckdb.DuckDBPyConnection, ghash: str, name: str, rate: float | None
) -> GuidelineCosts:
    spend = model_spend(con, ghash)
    model_cost = sum(s.cost_usd for s in spend)
    totals = store.review_totals(con, ghash)
    items, median = totals.items, totals.median_seconds
    reviewer_cost = _dollars(totals.review_seconds, rate)
    sources = _by_source(con, ghash, reviewer_cost)
    final = sum(s.labels for s in sources)
    total = None if reviewer_cost is None else model_cost + reviewer_cost
    return GuidelineCosts(
        guideline_hash=ghash,
        name=name,
        items=items,
        spend=spend,
        model_cost_usd=round(model_cost, 6),
        timed_reviews=totals.timed_reviews,
        review_seconds=round(totals.review_seconds, 3),
        median_seconds_per_review=median,
        reviewer_cost_usd=reviewer_cost,
        final_labels=final,
        per_final_label_usd=_per(total, final),
        by_source=sources,
        people_alone_usd=None if median is None else _dollars(items * median, rate),
        curve=coverage_curve(con, ghash, items, model_cost, median, rate),
    )


def model_spend(con: duckdb.DuckDBPyConnection, ghash: str) -> list[Spend]:
    """Spend per model (and, once the log has one, per stage) under a guideline."""
    return [
        Spend(
            model=s.model,
            stage=None,
            drafts=s.drafts,
            prompt_tokens=s.prompt_tokens,
            cached_prompt_tokens=s.cached_prompt_tokens,
            completion_tokens=s.completion_tokens,
            cost_usd=round(s.cost_usd, 6),
        )
        for s in store.model_spend(con, ghash)
    ]


def _by_source(
    con: duckdb.DuckDBPyConnection, ghash: str, reviewer_cost: float | None
) -> list[SourceCost]:
    found = {s.source: (s.labels, s.model_cost_usd) for s in store.spend_by_source(con, ghash)}
    out = []
    for source in ("human", "llm"):
        labels, spent = found.get(source, (0, 0.0))
        if source == "human":
            spent = None if reviewer_cost is None else spent + reviewer_cost
        cost = None if spent is None else round(spent, 6)
        out.append(SourceCost(source, labels, cost, _per(spent, labels)))
    return out


def coverage_curve(
    con: duckdb.DuckDBPyConnection,
    ghash: str,
    items: int,
    model_cost: float,
    median_seconds: float | None,
    rate: float | None,
) -> list[CoveragePoint]:
    """One point per agreement level the decided labels reach: what accepting from there buys."""
    points, accepted = [], 0
    for level in store.agreement_levels(con, ghash):
        accepted += level.decisions
        rest = None if median_seconds is None else (items - accepted) * median_seconds
        people = None if rest is None else _dollars(rest, rate)
        total = None if people is None else round(model_cost + people, 6)
        points.append(CoveragePoint(round(level.agreement, 6), round(accepted / items, 6), total))
    return points[::-1]


def _dollars(seconds: float, rate: float | None) -> float | None:
    return None if rate is None else round(seconds / 3600 * rate, 6)


def _per(dollars: float | None, labels: int) -> float | None:
    return None if dollars is None or labels == 0 else round(dollars / labels, 6)
