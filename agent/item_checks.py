"""Checks on the values of one item, the same for every input format: a size limit, a nesting
limit, text that is valid Unicode, numbers JSON can store, and ids that print as what they are."""

import json
import math
from typing import Any

from labelagent.errors import InputError
from labelagent.safe_text import control_character, escaped, shown

DEFAULT_MAX_ITEM_BYTES = 100_000
MAX_DEPTH = 100
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def check_item(where: str, fields: dict[str, Any], max_item_bytes: int) -> None:
    """Refuse an item nested more than MAX_DEPTH levels, holding a lone surrogate, NaN or an
    infinity, or larger than `max_item_bytes` as stored (JSON, UTF-8). `where` is 'file, line N'.
    """
    try:
        stored = _ENCODER.encode(fields).encode("utf-8")
    except (ValueError, UnicodeEncodeError, RecursionError):
        _check_values(where, fields)
        raise
    if stored.count(b"[") + stored.count(b"{") > MAX_DEPTH:  # could be nested that deep
        _check_values(where, fields)
    if len(stored) > max_item_bytes:
        sizes = {str(name): _size(value) for name, value in fields.items()}
        largest = max(sizes, key=sizes.__getitem__)
        raise InputError(
            f"{where}: the item is {len(stored):,} bytes, over the limit of {max_item_bytes:,} "
            f"bytes; its largest is field '{shown(largest)}' ({sizes[largest]:,} bytes). If "
            "items this large are expected, raise it with --max-item-bytes "
            f"{_round_up(len(stored))}."
        )


def check_id(where: str, item_id: str) -> None:
    """An id must print as itself: no surrounding whitespace (' a' and 'a' would look like one
    id in every listing, and an import would not match them), no control characters."""
    if item_id != item_id.strip():
        raise InputError(
            f"{where}: the id '{shown(item_id)}' begins or ends with whitespace; remove it "
            "(' a' and 'a' look like one id wherever ids are shown)."
        )
    bad = control_character(item_id)
    if bad:
        raise InputError(
            f"{where}: the id '{shown(item_id)}' contains a control character ({escaped(bad)}); "
            "ids are printed in the terminal, the review app and exports, so they must be "
            "printable text."
        )


def _size(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return len(text.encode("utf-8"))


def _round_up(size: int) -> int:
    return -(-size // 100_000) * 100_000


def _check_values(where: str, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        _check_text(where, str(name), str(name))
        _check_value(where, str(name), value)


def _check_value(where: str, name: str, value: Any) -> None:
    """Walk a JSON-like value without recursion; raise on what JSON or UTF-8 cannot hold."""
    stack = [(value, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(where, name, value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise InputError(
                f"{where}: field '{shown(name)}' holds {value}, which is not a JSON number; "
                "write null, or the value as a string."
            )
        elif isinstance(value, dict | list):
            if depth == MAX_DEPTH:
                raise InputError(
                    f"{where}: field '{shown(name)}' is nested more than {MAX_DEPTH} levels deep."
                )
            if isinstance(value, dict):
                for key in value:
                    _check_text(where, name, str(key))
                value = list(value.values())
            stack.extend((child, depth + 1) for child in value)


def _check_text(where: str, name: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{where}: field '{shown(name)}' holds a lone surrogate "
            f"({escaped(text[exc.start])}) at character {exc.start}: half of a UTF-16 pair, "
            "not a character. Fix the \\u escape in the file."
        ) from None
