"""What trusted labels bought: every decision ever made for a guideline (current or replaced),
with the example setting of the run that made it (`runs.settings.examples`)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelagent.store.db import transaction


@dataclass(frozen=True)
class DecisionRow:
    item_id: str
    model: str
    examples: dict[str, Any] | None  # n, selector, pool (trusted labels available), setting_hash
    label: str | None  # JSON
    route: str


def decisions_by_setting(db: str | Path, guideline_hash: str) -> list[DecisionRow]:
    """One row per decision, the latest of each item, run configuration (prompt hash) and model."""
    with transaction(db) as con:
        found = con.execute(
            "WITH every AS (SELECT item_id, guideline_hash, run_id, model, prompt_hash, label,"
            "  route FROM decisions UNION ALL SELECT item_id, guideline_hash, run_id, model,"
            "  prompt_hash, label, route FROM decisions_history)"
            " SELECT DISTINCT ON (e.item_id, e.prompt_hash, e.model) e.item_id, e.model,"
            "  CAST(r.settings->'examples' AS VARCHAR), CAST(e.label AS VARCHAR), e.route"
            " FROM every e JOIN runs r USING (run_id) WHERE e.guideline_hash = $1"
            " ORDER BY e.item_id, e.prompt_hash, e.model, r.started_at DESC",
            [guideline_hash],
        ).fetchall()
    return [
        DecisionRow(item_id, model, json.loads(setting) if setting else None, label, route)
        for item_id, model, setting, label, route in found
    ]


def example_item_ids(db: str | Path, guideline_hash: str) -> set[str]:
    """Every item whose trusted label some prompt of the guideline showed as an example."""
    with transaction(db) as con:
        found = con.execute(
            "SELECT DISTINCT CAST(example_ids AS VARCHAR) FROM drafts"
            " WHERE guideline_hash = ? AND example_ids IS NOT NULL",
            [guideline_hash],
        ).fetchall()
    return {item_id for (ids,) in found for item_id in json.loads(ids)}
