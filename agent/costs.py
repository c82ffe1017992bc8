"""Cost per trusted label, from the log: what the models were paid (drafts.cost_usd), what
reviewers' time cost (reviews.seconds_on_screen at the `reviewer_cost_per_hour` setting), what
each final label cost by its source, and what people alone would have cost at the measured pace.
Used by `status`, `eval --html` and the review app's Report page."""

import math
from dataclasses import dataclass
from pathlib import Path

import duckdb

from agent.errors import ConfigError
from agent.store.db import migrate, read_only, transaction
from agent.store.log import now

# The log's settings a person may set (`labelagent settings set NAME VALUE`), with what they mean.
SETTINGS = {
    "reviewer_cost_per_hour": "dollars per hour of a reviewer's time, to price reviews",
}

# Reviews made in the app carry the seconds a reviewer spent on the item.
TIMED = "source = 'review_ui' AND seconds_on_screen IS NOT NULL"
# The pace of one review: a skip leaves the item to someone else, so it is not a review.
PACED = f"{TIMED} AND action <> 'skip'"


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
        con.execute(
            "INSERT OR REPLACE INTO log_settings (name, value, created_at) VALUES (?, ?, ?)",
            [name, str(number), now()],
        )
    return number


def read_settings(con: duckdb.DuckDBPyConnection) -> dict[str, float | None]:
    stored = dict(
        con.execute(
            "SELECT name, value FROM log_settings WHERE name = ANY($1)", [list(SETTINGS)]
        ).fetchall()
    )
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
    guidelines = con.execute(
        "SELECT guideline_hash, name FROM guidelines"
        " WHERE CAST($1 AS VARCHAR) IS NULL OR guideline_hash = $1 ORDER BY name",
        [guideline_hash],
    ).fetchall()
    return Costs(rate, [guideline_costs(con, ghash, name, rate) for ghash, name in guidelines])


def guideline_costs(
    con: duckdb.DuckDBPyConnection, ghash: str, name: str, rate: float | None
) -> GuidelineCosts:
    spend = model_spend(con, ghash)
    model_cost = sum(s.cost_usd for s in spend)
    items, timed, seconds, median = con.execute(
        "SELECT (SELECT count(*) FROM (SELECT item_id FROM decisions WHERE guideline_hash = $1"
        "  UNION SELECT item_id FROM reviews WHERE guideline_hash = $1"
        "  AND annotator_kind = 'human') AS touched),"
        f" (SELECT count(*) FROM reviews WHERE guideline_hash = $1 AND {TIMED}),"
        f" (SELECT coalesce(sum(seconds_on_screen), 0) FROM reviews"
        f"  WHERE guideline_hash = $1 AND {TIMED}),"
        " (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds_on_screen) FROM reviews"
        f"  WHERE guideline_hash = $1 AND {PACED})",
        [ghash],
    ).fetchone()
    reviewer_cost = _dollars(seconds, rate)
    sources = _by_source(con, ghash, reviewer_cost)
    final = sum(s.labels for s in sources)
    total = None if reviewer_cost is None else model_cost + reviewer_cost
    return GuidelineCosts(
        guideline_hash=ghash,
        name=name,
        items=items,
        spend=spend,
        model_cost_usd=round(model_cost, 6),
        timed_reviews=timed,
        review_seconds=round(seconds, 3),
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
    rows = con.execute(
        "SELECT model, NULL AS stage, count(*), coalesce(sum(prompt_tokens), 0),"
        " coalesce(sum(cached_prompt_tokens), 0), coalesce(sum(completion_tokens), 0),"
        " coalesce(sum(cost_usd), 0) FROM drafts WHERE guideline_hash = $1"
        " GROUP BY model ORDER BY model",
        [ghash],
    ).fetchall()
    return [Spend(*row[:6], cost_usd=round(row[6], 6)) for row in rows]


def _by_source(
    con: duckdb.DuckDBPyConnection, ghash: str, reviewer_cost: float | None
) -> list[SourceCost]:
    rows = con.execute(
        "SELECT f.source, count(*), coalesce(sum(d.cost), 0) FROM final_labels f"
        " LEFT JOIN (SELECT item_id, sum(cost_usd) AS cost FROM drafts WHERE guideline_hash = $1"
        "  GROUP BY 1) d USING (item_id) WHERE f.guideline_hash = $1 GROUP BY 1",
        [ghash],
    ).fetchall()
    found = {source: (labels, spent) for source, labels, spent in rows}
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
    levels = con.execute(
        "SELECT agreement, count(*) FROM decisions WHERE guideline_hash = $1"
        " AND label IS NOT NULL AND agreement IS NOT NULL GROUP BY 1 ORDER BY 1 DESC",
        [ghash],
    ).fetchall()
    points, accepted = [], 0
    for level, count in levels:
        accepted += count
        rest = None if median_seconds is None else (items - accepted) * median_seconds
        people = None if rest is None else _dollars(rest, rate)
        total = None if people is None else round(model_cost + people, 6)
        points.append(CoveragePoint(round(level, 6), round(accepted / items, 6), total))
    return points[::-1]


def _dollars(seconds: float, rate: float | None) -> float | None:
    return None if rate is None else round(seconds / 3600 * rate, 6)


def _per(dollars: float | None, labels: int) -> float | None:
    return None if dollars is None or labels == 0 else round(dollars / labels, 6)
