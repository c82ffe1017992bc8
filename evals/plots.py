"""Matplotlib figures of an evaluation result (what `labelagent.evals.evaluate.evaluate`
returns).

Every function builds a `matplotlib.figure.Figure` directly instead of going through pyplot: pyplot
keeps global state that is not thread-safe, and Streamlit draws each session in its own thread.
Each takes a plain part of the result and returns None when that part is missing or empty, so
callers can skip the figure.
"""

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

SIZE = (5.0, 3.5)
DPI = 110
MODEL_COLORS = ("#1f5fa8", "#d9731a", "#7b3fa0", "#b8283a")
HUMAN_COLORS = ("#3c8d4f", "#7a9e3b", "#2f8f8a", "#8c6d31")
MUTED = "#6b6b6b"
MAX_COUNTED = 20  # labels up to which a confusion matrix shows the count in each cell

Estimate = Mapping[str, Any]


def _figure(size: tuple[float, float] = SIZE) -> Figure:
    return Figure(figsize=size, layout="constrained")


def _value(estimate: Estimate | None) -> float | None:
    return None if not estimate else estimate.get("value")


def _error(estimate: Estimate) -> tuple[float, float]:
    """Distances from the value down to `low` and up to `high` (0 where a bound is missing)."""
    value = estimate["value"]
    low, high = estimate.get("low"), estimate.get("high")
    return (
        0.0 if low is None else max(0.0, value - low),
        0.0 if high is None else max(0.0, high - value),
    )


def _colors(kinds: Sequence[str]) -> list[str]:
    """Models in blues and oranges, humans in greens, each in order of appearance."""
    seen = {HUMAN_COLORS: 0, MODEL_COLORS: 0}
    colors = []
    for kind in kinds:
        palette = HUMAN_COLORS if kind == "human" else MODEL_COLORS
        colors.append(palette[seen[palette] % len(palette)])
        seen[palette] += 1
    return colors


def _share_axis(ax: Axes) -> None:
    ax.set_xlim(0, 1.02)
    ax.grid(axis="x", alpha=0.3)


def reliability_diagram(
    reliability: Mapping[str, Any] | None, signal: str | None = None
) -> Figure | None:
    """Observed accuracy against the mean predicted probability in each bin, with the diagonal
    of perfect calibration and the number of items above each bar."""
    bins = [b for b in (reliability or {}).get("bins") or [] if b.get("count")]
    if not bins:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    lows = np.array([b["low"] for b in bins], dtype=float)
    widths = np.array([b["high"] - b["low"] for b in bins], dtype=float)
    accuracy = np.array([b["accuracy"] for b in bins], dtype=float)
    ax.bar(
        lows,
        accuracy,
        width=widths,
        align="edge",
        color="#9ec3e6",
        edgecolor="#1f5fa8",
        label="observed accuracy",
    )
    ax.plot(
        [b["mean_prob"] for b in bins],
        accuracy,
        "o",
        color="#1f5fa8",
        markersize=4,
        label="bin mean",
    )
    ax.plot([0, 1], [0, 1], "--", color=MUTED, linewidth=1, label="perfect calibration")
    for low, width, acc, b in zip(lows, widths, accuracy, bins, strict=True):
        ax.annotate(
            f"n={b['count']}",
            (low + width / 2, acc),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=7,
            color=MUTED,
        )
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel(
        f"Mean predicted probability ({signal})" if signal else "Mean predicted probability"
    )
    ax.set_ylabel("Observed accuracy")
    ece = reliability.get("ece") if reliability else None
    ax.set_title("Reliability" + ("" if ece is None else f" (ECE {ece:.3f})"))
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return fig


def _mark_rule(ax: Axes, points: Sequence[Mapping[str, Any]], rule: Mapping[str, Any]) -> None:
    """The stored rule's operating point: on the curve at its threshold, else at its error
    bound."""
    coverage = rule.get("coverage")
    threshold = rule.get("threshold")
    bound = rule.get("error_bound")
    chosen = next(
        (
            p
            for p in points
            if threshold is not None
            and p.get("threshold") is not None
            and math.isclose(p["threshold"], threshold)
        ),
        None,
    )
    error = chosen["error"] if chosen else bound
    if coverage is None or error is None:
        return
    ax.plot(
        coverage, error, "*", color="#d9731a", markersize=14, label="chosen threshold", zorder=3
    )
    lines = [] if threshold is None else [f"threshold {threshold:g}"]
    lines.append(f"{coverage:.0%} automated")
    if bound is not None:
        lines.append(f"error ≤ {bound:.0%}")
    ax.annotate(
        "\n".join(lines),
        (coverage, error),
        xytext=(-10, 14),
        textcoords="offset points",
        ha="right",
        fontsize=7,
        arrowprops={"arrowstyle": "-", "color": MUTED},
    )


def risk_coverage(
    points: Sequence[Mapping[str, Any]] | None,
    target_error: float | None = None,
    rule: Mapping[str, Any] | None = None,
) -> Figure | None:
    """Error among auto-accepted items against the share of items accepted automatically, one
    point per threshold; the target error as a line and the chosen threshold marked."""
    points = [
        p for p in points or [] if p.get("coverage") is not None and p.get("error") is not None
    ]
    if not points:
        return None
    if target_error is None and rule:
        target_error = rule.get("target_error")
    fig = _figure()
    ax = fig.add_subplot()
    ordered = sorted(points, key=lambda p: p["coverage"])
    ax.plot(
        [p["coverage"] for p in ordered],
        [p["error"] for p in ordered],
        "o-",
        color="#1f5fa8",
        markersize=4,
        label="observed error",
    )
    if target_error is not None:
        ax.axhline(
            target_error,
            color="#b8283a",
            linestyle="--",
            linewidth=1,
            label=f"target error {target_error:.0%}",
        )
    if rule:
        _mark_rule(ax, points, rule)
    top = max([p["error"] for p in points] + [target_error or 0.0])
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, max(0.05, top * 1.3))
    ax.grid(alpha=0.3)
    ax.set_xlabel("Share of items automated (coverage)")
    ax.set_ylabel("Error of auto-accepted items")
    ax.set_title("Risk and coverage by threshold")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return fig


def confusion_matrix(confusion: Mapping[str, Any] | None, title: str) -> Figure | None:
    """Counts of reference labels (rows) against the annotator's labels (columns). The figure
    grows with the label set; past MAX_COUNTED labels the cells are too small for their counts."""
    if not confusion or not confusion.get("labels") or not confusion.get("matrix"):
        return None
    labels = list(confusion["labels"])
    matrix = np.array(confusion["matrix"], dtype=int)
    grow = 0.3 * max(0, len(labels) - 8)
    fig = _figure((5.0 + grow, 4.2 + grow))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    if len(labels) <= MAX_COUNTED:
        dark = matrix.max() / 2
        for (row, col), count in np.ndenumerate(matrix):
            ax.text(
                col,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if count > dark else "black",
            )
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, rotation=35, ha="right", fontsize=7)
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set_xlabel("Annotator's label")
    ax.set_ylabel("Reference label")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8, label="items")
    return fig


def agreement_by_label(
    comparisons: Sequence[Mapping[str, Any]] | None, labels: Sequence[str] | None
) -> Figure | None:
    """Per-label F1 of each annotator against the reference, with its interval."""
    scored = [c for c in comparisons or [] if c.get("per_label")]
    if not scored:
        return None
    names = list(labels or [])
    for comparison in scored:
        names += [label for label in comparison["per_label"] if label not in names]
    names = [
        n
        for n in names
        if any(_value((c["per_label"].get(n) or {}).get("f1")) is not None for c in scored)
    ]
    if not names:
        return None
    fig = _figure((5.0, max(2.6, 0.9 + 0.55 * len(names))))
    ax = fig.add_subplot()
    step = 0.7 / len(scored)
    colors = _colors([c.get("kind", "model") for c in scored])
    for index, (comparison, color) in enumerate(zip(scored, colors, strict=True)):
        offset = (index - (len(scored) - 1) / 2) * step
        ys, xs, errors = [], [], ([], [])
        for row, label in enumerate(names):
            f1 = (comparison["per_label"].get(label) or {}).get("f1")
            if _value(f1) is None:
                continue
            below, above = _error(f1)
            ys.append(row + offset)
            xs.append(f1["value"])
            errors[0].append(below)
            errors[1].append(above)
        human = comparison.get("kind") == "human"
        ax.errorbar(
            xs,
            ys,
            xerr=np.array(errors),
            fmt="s" if human else "o",
            color=color,
            capsize=2,
            markersize=5,
            linewidth=1,
            label=f"{comparison['annotator']} ({comparison.get('kind', '')})",
        )
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    _share_axis(ax)
    ax.set_xlabel("F1 against the reference")
    ax.set_title("Agreement by label")
    fig.legend(loc="outside lower center", ncols=min(3, len(scored)), fontsize=7, frameon=False)
    return fig


def prevalence(rows: Sequence[Mapping[str, Any]] | None) -> Figure | None:
    """Per label: the LLM labels' share, the human-only estimate and the prediction-powered
    estimate, each estimate with its interval."""
    rows = list(rows or [])
    if not rows:
        return None
    fig = _figure((5.0, max(2.6, 1.0 + 0.55 * len(rows))))
    ax = fig.add_subplot()
    series = (
        ("human_share", "humans only", "#3c8d4f", "s", -0.2),
        ("ppi", "PPI (LLM + humans)", "#1f5fa8", "o", 0.0),
    )
    llm = [(i, r["llm_share"]) for i, r in enumerate(rows) if r.get("llm_share") is not None]
    if llm:
        ax.plot(
            [s for _, s in llm],
            [i + 0.2 for i, _ in llm],
            "x",
            color="#d9731a",
            markersize=6,
            label="LLM labels only",
        )
    for key, title, color, marker, offset in series:
        present = [(i, r[key]) for i, r in enumerate(rows) if _value(r.get(key)) is not None]
        if not present:
            continue
        ax.errorbar(
            [e["value"] for _, e in present],
            [i + offset for i, _ in present],
            xerr=np.array([_error(e) for _, e in present]).T,
            fmt=marker,
            color=color,
            capsize=2,
            markersize=5,
            linewidth=1,
            label=title,
        )
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    _share_axis(ax)
    ax.set_xlabel("Share of items")
    ax.set_title("Label prevalence")
    fig.legend(loc="outside lower center", ncols=3, fontsize=7, frameon=False)
    return fig


def _usd(value: float) -> str:
    return f"${value:.2f}" if value >= 0.01 or value == 0 else f"${value:.5f}"


def _text_panel(ax: Axes, text: str) -> None:
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, color=MUTED)


def cost(cost: Mapping[str, Any] | None) -> Figure | None:
    """Cost per final label: dollars on the left, reviewer seconds on the right. Without a
    review cost the dollars are the LLM's alone, so they are stated as text rather than drawn as
    a lone bar that would pass for the whole cost."""
    if not cost or not cost.get("final_labels"):
        return None
    final = cost["final_labels"]
    llm = cost.get("cost_usd_per_final_label")
    seconds = cost.get("review_seconds_per_final_label")
    review_usd = cost.get("review_cost_usd")
    if llm is None and seconds is None and review_usd is None:
        return None
    fig = _figure((5.0, 2.8))
    money, time = fig.subplots(1, 2)
    if review_usd is None:
        llm_text = "not recorded" if llm is None else _usd(llm)
        _text_panel(money, f"LLM: {llm_text}\nper final label\n\nreview cost not given")
    else:
        dollars = {"LLM": llm or 0.0, "review": review_usd / final}
        bars = money.bar(list(dollars), list(dollars.values()), color=["#1f5fa8", "#3c8d4f"])
        money.bar_label(bars, labels=[_usd(v) for v in dollars.values()], fontsize=7)
        money.set_ylim(0, max(max(dollars.values()) * 1.3, 0.001))
        money.set_ylabel("USD per final label")
        money.set_title("Money", fontsize=9)
    if seconds is None:
        _text_panel(time, "no review time recorded")
    else:
        bars = time.bar(["review"], [seconds], color="#3c8d4f")
        time.bar_label(bars, labels=[f"{seconds:.1f} s"], fontsize=7)
        time.set_ylim(0, max(seconds * 1.3, 1.0))
        time.set_ylabel("Seconds per final label")
        time.set_title("Reviewer time", fontsize=9)
    fig.suptitle(f"Cost per final label ({final} final labels)", fontsize=10)
    return fig


def coverage_cost(
    curve: Sequence[Mapping[str, Any]] | None, people_alone_usd: float | None
) -> Figure | None:
    """What each agreement threshold buys: the share of items auto-accepted against the total
    cost (model spend plus reviewer time for the rest), with people alone as a line."""
    points = [p for p in curve or [] if p.get("total_cost_usd") is not None]
    if not points:
        return None
    fig = _figure((5.0, 3.2))
    ax = fig.subplots()
    coverage = [p["coverage"] for p in points]
    dollars = [p["total_cost_usd"] for p in points]
    ax.plot(coverage, dollars, marker="o", color="#1f5fa8")
    for p in points:
        ax.annotate(
            f"≥{p['min_agreement']:.2g}",
            (p["coverage"], p["total_cost_usd"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=7,
        )
    if people_alone_usd is not None:
        ax.axhline(people_alone_usd, color=MUTED, linestyle="--", linewidth=1)
        ax.annotate(
            f"people alone {_usd(people_alone_usd)}",
            (0.0, people_alone_usd),
            textcoords="offset points",
            xytext=(2, 3),
            fontsize=7,
            color=MUTED,
        )
    _share_axis(ax)
    ax.set_ylim(0, max([*dollars, people_alone_usd or 0.0]) * 1.2 or 1.0)
    ax.set_xlabel("Coverage (share auto-accepted)")
    ax.set_ylabel("Total cost (USD)")
    ax.set_title("Coverage vs cost by agreement threshold", fontsize=9)
    return fig


def figure_to_data_uri(fig: Figure, fmt: str = "png") -> str:
    """The figure as a `data:` URI, so a page can embed it without a separate file."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=DPI, bbox_inches="tight")
    mime = "image/svg+xml" if fmt == "svg" else f"image/{fmt}"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def teaching_loop(rows: Sequence[Mapping[str, Any]] | None) -> Figure | None:
    """What reviews bought: accuracy and coverage (auto-accepted share) against the number of
    trusted labels the examples were drawn from, one line per model and example setting."""
    lines: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows or []:
        setting = "no examples" if not row["examples"] else f"{row['examples']} {row['selector']}"
        lines.setdefault(f"{row['model']}, {setting}", []).append(row)
    if not lines:
        return None
    fig = _figure((8.0, 3.2))
    accuracy, coverage = fig.subplots(1, 2, sharex=True)
    colors = MODEL_COLORS + HUMAN_COLORS
    for index, (name, points) in enumerate(sorted(lines.items())):
        points = sorted(points, key=lambda p: p["trusted_labels"])
        style = {"marker": "o", "color": colors[index % len(colors)], "label": name}
        judged = [p for p in points if p["accuracy"] is not None]
        if judged:
            accuracy.plot(
                [p["trusted_labels"] for p in judged], [p["accuracy"] for p in judged], **style
            )
        coverage.plot(
            [p["trusted_labels"] for p in points], [p["coverage"] for p in points], **style
        )
    for ax, title in ((accuracy, "Accuracy against the reference"), (coverage, "Coverage")):
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.set_xlabel("Trusted labels available")
        ax.set_title(title, fontsize=9)
    coverage.legend(fontsize=7, loc="lower right")
    fig.suptitle("The loop: what reviews bought, by example setting", fontsize=10)
    return fig
