"""Existing human or gold labels go into the log as reviews (source `import`, blind: they never
saw the model's output). Every row is checked before anything is written; importing twice adds
nothing. A row without the guideline's fields makes a placeholder item, which the item's content
fills in when it is labeled or imported with its fields later. Labels of another model
(`annotator_kind` 'model', with an optional stated confidence) go in the same way, so
`labelagent eval` can compare them, but they are never final labels."""

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelagent import inputs
from labelagent.errors import InputError
from labelagent.guidelines import Guideline
from labelagent.item_checks import DEFAULT_MAX_ITEM_BYTES
from labelagent.records import Item
from labelagent.safe_text import shown
from labelagent.store import log
from labelagent.store.address import postgres_url
from labelagent.store.db import migrate, read_only, transaction
from labelagent.store.imports import ImportedRow, imported_kinds, insert_imported, model_decided
from labelagent.tasks import task_for

KINDS_SINCE = 3  # the schema version that added reviews.annotator_kind


@dataclass
class ImportSummary:
    rows: int
    added: int
    new_items: int


def parse_label(guideline: Guideline, value: Any, item: Item) -> Any:
    """A label in the task's own form; CSV cells may hold JSON ('["a","b"]', '{"x": 3}')."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        with contextlib.suppress(ValueError, RecursionError):
            value = json.loads(value)
    return task_for(guideline).read_imported(guideline, value, item)


def import_labels(
    db: str | Path,
    path: str | Path,
    annotator: str,
    guideline: Guideline,
    id_field: str = "id",
    label_field: str = "label",
    kind: str = "human",
    confidence_field: str | None = None,
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
) -> ImportSummary:
    required = [label_field] + ([confidence_field] if confidence_field else [])
    summary = inputs.scan(path, required, inputs.IdField(id_field, given=True), max_item_bytes)
    rows = []
    for chunk in inputs.iter_items(summary.path, id_field, summary.id_source):
        for item in chunk:
            try:
                label = parse_label(guideline, item.fields[label_field], item)
            except ValueError as e:
                raise InputError(
                    f"{path}, line {item.line}: field {label_field!r}: {shown(str(e), 300)}"
                ) from None
            confidence = (
                _confidence(item.fields[confidence_field], f"{path}, line {item.line}")
                if confidence_field
                else None
            )
            fields = {k: v for k, v in item.fields.items() if k not in required}
            rows.append(
                ImportedRow(
                    item_id=item.item_id,
                    fields=json.dumps(fields, ensure_ascii=False, sort_keys=True),
                    content_hash=inputs.content_id(fields),
                    placeholder=not all(name in fields for name in guideline.fields),
                    label=json.dumps(label, ensure_ascii=False, sort_keys=True),
                    source_key=f"import:{annotator}:{guideline.content_hash}:{item.item_id}",
                    confidence=confidence,
                )
            )
    if postgres_url(db) or Path(db).exists():
        _check_kind(db, annotator, kind)
    migrate(db)
    log.record_guideline(db, guideline)
    with transaction(db) as con:
        added = insert_imported(con, rows, summary.dataset, guideline.content_hash, annotator, kind)
    return ImportSummary(rows=len(rows), added=added.reviews, new_items=added.new_items)


def _confidence(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: confidence {value!r} is not a number") from None
    if not 0.0 <= number <= 1.0:
        raise InputError(f"{where}: confidence {number} is outside 0..1")
    return number


def _check_kind(db: str | Path, annotator: str, kind: str) -> None:
    """Read before the log is upgraded, so an import refused here changes nothing; a log older
    than annotator kinds holds no imported model."""
    with read_only(db, any_version=True) as version, transaction(db) as con:
        if version == 0:
            return
        known = imported_kinds(con, annotator) if version >= KINDS_SINCE else []
        if model_decided(con, annotator):
            raise InputError(
                f"annotator {annotator!r} is the name of a model that labeled items in this log;"
                " import under another --annotator name"
            )
    if known and known[0] != kind:
        was = "a model (--model)" if known[0] == "model" else "a person (no --model)"
        raise InputError(
            f"annotator {annotator!r} is already in the log as {was}; import under another"
            " --annotator name, or with the same kind"
        )
