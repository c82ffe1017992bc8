"""Lenient readers for the messy parts of model answers: JSON in prose, '85%', 'Label: Positive.'"""

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_PREFIX = re.compile(r"^(?:final\s+)?(?:label|answer|category|class|choice)\s*[:=\-]\s*", re.I)
_STRIP = " \t\r\n\"'`.,;:!*()[]{}<>"


def extract_json(raw: str) -> Any:
    """The JSON value in a model's text: the whole text, a fenced block, or the first {...}."""
    text = raw.strip()
    candidates = [text, *(m.strip() for m in _FENCE.findall(text))]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    start = text.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
            return value
        except ValueError:
            start = text.find("{", start + 1)
    raise ValueError(f"no JSON object in the answer: {text[:80]!r}")


def clean_choice(value: str) -> str:
    """'Label: Positive.' -> 'Positive'; quotes, markdown and trailing punctuation go."""
    text = value.strip().strip(_STRIP)
    text = _PREFIX.sub("", text)
    return text.strip(_STRIP)


def match_choice(value: Any, choices: list[str]) -> str:
    """Map an answer onto one of `choices`: exact, then case-insensitive, then cleaned."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"expected one of {choices}, got {value!r}")
    text = str(value)
    if text in choices:
        return text
    by_lower = {c.lower(): c for c in choices}
    for candidate in (text.strip(), clean_choice(text)):
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    raise ValueError(f"{text!r} is not one of the labels: {', '.join(choices)}")


def coerce_confidence(value: Any) -> float | None:
    """0.85, '0.85', '85%', 85 -> 0.85. Missing -> None. Out of range -> ValueError."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"confidence must be a number from 0 to 1, got {value!r}")
    percent = False
    if isinstance(value, str):
        text = value.strip()
        percent = text.endswith("%")
        try:
            value = float(text.rstrip("%").strip())
        except ValueError:
            raise ValueError(f"confidence must be a number from 0 to 1, got {text!r}") from None
    number = float(value)
    if percent or (1 < number <= 100 and number.is_integer()):
        number /= 100
    if not 0 <= number <= 1:
        raise ValueError(f"confidence must be a number from 0 to 1, got {value!r}")
    return number


def as_score(value: Any, scale_max: int) -> int:
    """4, 4.0, '4', '4/5' -> 4 on a scale up to 5; '3/10' on that scale is refused."""
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    match = isinstance(value, str) and re.fullmatch(
        r"\s*(-?\d+)(?:\.0+)?\s*(?:/\s*(\d+))?\s*", value
    )
    if match:
        if match.group(2) is not None and int(match.group(2)) != scale_max:
            raise ValueError(f"{value!r} is not on this scale (out of {scale_max})")
        return int(match.group(1))
    raise ValueError(f"expected a whole number, got {value!r}")
