"""`labelagent calibrate --apply`: route the items already decided again under a new rule. Only
the route, its reasons and the rule change; the label and the votes stay, and the replaced row
goes to `decisions_history`."""

import json
from pathlib import Path

from agent.calibration.rule import Thresholds, route
from agent.consistency import item_supports
from agent.guidelines import Guideline
from agent.records import Verdict
from agent.store.db import transaction
from agent.store.keys import audit_key
from agent.store.log import draft_votes, replace_decisions

COLUMNS = (
    "item_id, guideline_hash, run_id, model, prompt_hash, label, route, reasons, agreement,"
    " confidence, n_samples, n_failed, votes, disagreeing_models, rule"
)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def reroute(db: str | Path, guideline: Guideline, model: str, thresholds: Thresholds) -> dict:
    """Returns how many decisions moved each way."""
    moved = {"to_auto": 0, "to_escalated": 0, "reasons_changed": 0, "unchanged": 0}
    guideline_hash = guideline.content_hash
    with transaction(db) as con:
        rows = con.execute(
            f"SELECT {COLUMNS} FROM decisions WHERE guideline_hash = ? AND model = ?",
            [guideline_hash, model],
        ).fetchall()
        supports = item_supports(guideline, draft_votes(con, guideline_hash))
        key = audit_key(con)
        changed = []
        for values in rows:
            row = dict(zip(COLUMNS.replace(" ", "").split(","), values, strict=True))
            verdict = Verdict(
                label=None if row["label"] is None else json.loads(row["label"]),
                agreement=row["agreement"],
                confidence=row["confidence"],
                support=supports.get(row["item_id"]),
                n_samples=row["n_samples"],
                n_failed=row["n_failed"],
                disagreeing_models=json.loads(row["disagreeing_models"]),
            )
            new_route, reasons = route(verdict, thresholds, row["item_id"], guideline_hash, key)
            if new_route == row["route"] and reasons == json.loads(row["reasons"]):
                moved["unchanged"] += 1
                continue
            if new_route == row["route"]:
                moved["reasons_changed"] += 1
            else:
                moved["to_auto" if new_route == "auto" else "to_escalated"] += 1
            changed.append(
                {**row, "route": new_route, "reasons": _json(reasons),
                 "rule": _json(thresholds.model_dump())}
            )  # fmt: skip
        if changed:
            replace_decisions(con, changed)
    return moved
