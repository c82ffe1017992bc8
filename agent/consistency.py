"""Self-consistency: when to stop sampling, and how samples become a verdict.

Stopping follows Adaptive-Consistency (Aggarwal et al., 2023): after each batch, stop when the
remaining samples cannot change the majority, or when the Beta posterior probability that the
leading label is the more likely of the top two reaches `stop_confidence`.

A verdict's `support` is computed here, and only here, from its samples: by the pipeline when it
builds the verdict, and from the stored drafts' votes (`labelagent.store.log.draft_votes`) when
calibrate or `--apply` need it again.
"""

from collections import Counter
from dataclasses import dataclass
from math import comb, fsum
from statistics import mean
from typing import Any

from labelagent.guidelines import Guideline
from labelagent.records import Sample, Verdict
from labelagent.tasks import aggregate, task_for
from labelagent.tasks.voting import vote_key


def leader_probability(top: int, second: int) -> float:
    """P(p_top > p_second) under independent Beta(top+1, second+1) mass: for Beta(a, b) with
    whole a, b, P(X > 1/2) = P(Binomial(a+b-1, 1/2) <= a-1)."""
    a, b = top + 1, second + 1
    n = a + b - 1
    return sum(comb(n, k) for k in range(a)) / 2**n


def should_stop(samples: list[Sample], max_samples: int, stop_confidence: float | None) -> bool:
    """`stop_confidence` None: no early stop, every item gets all `max_samples`."""
    remaining = max_samples - len(samples)
    if remaining <= 0:
        return True
    if stop_confidence is None:
        return False
    counts = sorted(Counter(vote_key(s.label) for s in samples if s.ok).values(), reverse=True)
    top = counts[0] if counts else 0
    second = counts[1] if len(counts) > 1 else 0
    if top > second + remaining:
        return True
    return stop_confidence < 1 and top >= 2 and leader_probability(top, second) >= stop_confidence


def next_batch(samples: list[Sample], max_samples: int, stop_confidence: float | None) -> int:
    """How many samples to ask for next: at first the fewest that, all agreeing, would end the
    sampling; then one at a time (all at once without early stopping)."""
    if stop_confidence is None:
        return max_samples - len(samples)
    if samples:
        return 1
    for agreeing in range(1, max_samples + 1):
        decided = agreeing > max_samples - agreeing
        likely = (
            stop_confidence < 1
            and agreeing >= 2
            and leader_probability(agreeing, 0) >= stop_confidence
        )
        if decided or likely:
            return agreeing
    return max_samples


@dataclass(frozen=True)
class RoundCosts:
    """What one more request costs a model, in dollars, as measured on its answers so far."""

    prompt_usd: float  # the prompt of one request, its cached share at the cached rate
    sample_usd: float  # the completion of one sample
    honours_n: bool  # one request returns several samples and pays the prompt once


def round_size(
    samples: list[Sample],
    max_samples: int,
    stop_confidence: float | None,
    costs: RoundCosts | None = None,
) -> int:
    """How many samples the next round asks for: the cheapest in dollars, not in samples.

    Cost model: a request for n samples costs `prompt_usd + n * sample_usd` when the provider
    honours `n`, and n requests of one sample, `n * (prompt_usd + sample_usd)`, when it does not.
    `next_batch` (the fewest samples that could end the sampling, then one at a time) is the
    cheapest when every sample pays its own prompt: without `n`, or without known costs.

    With `n` honoured, every further round pays the prompt again. So the round asks for
    `next_batch` plus as many more samples as one prompt's price buys, `prompt_usd //
    sample_usd`, up to what is left of `max_samples`: when the prompt dominates, that is one
    request of K; when completions dominate, the adaptive schedule. A round's speculative samples
    never cost more than the prompt of the round they may save (the break-even rule of ski
    rental). When to stop stays `should_stop`'s.
    """
    remaining = max_samples - len(samples)
    fewest = min(next_batch(samples, max_samples, stop_confidence), remaining)
    if costs is None or not costs.honours_n or fewest >= remaining:
        return fewest
    if costs.sample_usd <= 0:
        return remaining
    return min(remaining, fewest + int(costs.prompt_usd // costs.sample_usd))


Vote = tuple[bool, float | None]  # one valid sample: whether it chose the label, its confidence


def support(guideline: Guideline, label: Any, samples: list[Sample]) -> float | None:
    """The mean, over the valid samples, of the probability each gives `label` (see
    `support_of`)."""
    key = vote_key(label)
    return support_of(
        guideline, [(vote_key(s.label) == key, s.confidence) for s in samples if s.ok]
    )


def support_of(guideline: Guideline, votes: list[Vote]) -> float | None:
    """The mean, over the votes, of the probability each gives the label: its stated confidence
    if it chose the label, else the rest (1 - confidence) shared evenly by the other labels. A
    vote without a stated confidence counts as itself (1 or 0), so with no stated confidence at
    all this is the agreement. Only for one label out of a fixed set (the task's
    `has_support`); None for other tasks."""
    if not task_for(guideline).has_support or not votes:
        return None
    others = max(len(guideline.labels) - 1, 1)
    given = []
    for chose, confidence in votes:
        stated = 1.0 if confidence is None else confidence
        given.append(stated if chose else (1 - stated) / others)
    return fsum(given) / len(given)  # fsum: the same value whatever the votes' order


def item_supports(guideline: Guideline, votes: dict[str, list[Vote]]) -> dict[str, float]:
    """Item id -> support, for the votes of each item's stored drafts (where support applies)."""
    found = {item: support_of(guideline, given) for item, given in votes.items()}
    return {item: value for item, value in found.items() if value is not None}


def build_verdict(guideline: Guideline, by_model: dict[str, list[Sample]]) -> Verdict:
    everything = [s for samples in by_model.values() for s in samples]
    valid = [s for s in everything if s.ok]
    n_failed = len(everything) - len(valid)
    if not valid:
        return Verdict(n_samples=len(everything), n_failed=n_failed)
    label, agreement = aggregate(guideline, [s.label for s in valid])
    key = vote_key(label)
    per_model, disagreeing = {}, []
    for model, samples in by_model.items():
        ok = [s.label for s in samples if s.ok]
        if not ok:
            per_model[model] = {"label": None, "agreement": None, "n": 0}
            disagreeing.append(model)
            continue
        own, own_agreement = aggregate(guideline, ok)
        per_model[model] = {"label": own, "agreement": own_agreement, "n": len(ok)}
        if vote_key(own) != key:
            disagreeing.append(model)
    confidences = [s.confidence for s in valid if s.confidence is not None]
    return Verdict(
        label=label,
        agreement=agreement,
        confidence=mean(confidences) if confidences else None,
        support=support(guideline, label, valid),
        n_samples=len(everything),
        n_failed=n_failed,
        votes=dict(Counter(vote_key(s.label) for s in valid)),
        per_model=per_model if len(by_model) > 1 else {},
        disagreeing_models=disagreeing if len(by_model) > 1 else [],
    )
