"""Majority votes over canonical labels."""

import json
from collections import Counter
from functools import lru_cache
from typing import Any


def vote_key(label: Any) -> str:
    if isinstance(label, str):
        return _string_key(label)
    return json.dumps(label, sort_keys=True, ensure_ascii=False)


@lru_cache(maxsize=4096)
def _string_key(label: str) -> str:
    """Votes are counted again after every sample: a class name's key is made once."""
    return json.dumps(label, ensure_ascii=False)


def plurality(labels: list[Any], order: list[str] | None = None) -> tuple[Any, float]:
    """The most common label and the share of samples that gave it. Ties go to the label first in
    `order` (the guideline's order), else to the one seen first."""
    counts = Counter(vote_key(label) for label in labels)
    first_seen = {}
    for label in labels:
        first_seen.setdefault(vote_key(label), label)
    rank = {vote_key(name): i for i, name in enumerate(order or [])}
    best = max(
        counts, key=lambda k: (counts[k], -rank.get(k, len(rank)), -list(first_seen).index(k))
    )
    return first_seen[best], counts[best] / len(labels)


def membership_majority(sets: list[list[Any]]) -> tuple[list[Any], float]:
    """Majority per member: kept when more than half the samples have it. Agreement is the lowest,
    over members any sample named, of the share of samples on the majority side."""
    n = len(sets)
    counts = Counter(
        vote_key(member)
        for members in sets
        for member in {vote_key(m): m for m in members}.values()
    )
    members = {vote_key(m): m for s in sets for m in s}
    kept = [members[k] for k in members if counts[k] * 2 > n]
    agreement = min((max(c, n - c) / n for c in counts.values()), default=1.0)
    return kept, agreement
