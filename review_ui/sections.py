"""The part of a guideline that matters for one label, shown beside the item under review.

A guideline body is Markdown. It is cut into blocks at headings and each block into units
(paragraphs, list items, fenced code, tables). A block whose heading names the label is shown
whole; otherwise the units that name it are shown under their heading. When no part names the
label, the opening of the body stands in.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+\S")
_LIST_ITEM = re.compile(r"^ {0,3}(?:\d+[.)]|[-*+])\s+\S")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
DEFAULT_MAX_CHARS = 3000
FALLBACK_CHARS = 1200


@dataclass
class Block:
    heading: str  # the heading line as written, "" for text before the first heading
    units: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n\n".join(([self.heading] if self.heading else []) + self.units)


def split_blocks(body: str) -> list[Block]:
    """Cut the body into heading blocks, each a list of units; headings in code are not headings."""
    blocks = [Block(heading="")]
    unit: list[str] = []
    in_fence = False

    def close() -> None:
        if any(line.strip() for line in unit):
            blocks[-1].units.append("\n".join(unit).strip("\n"))
        unit.clear()

    for line in body.replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            if not in_fence:
                close()
            unit.append(line)
            in_fence = not in_fence
            if not in_fence:
                close()
            continue
        if in_fence:
            unit.append(line)
        elif _HEADING.match(line):
            close()
            blocks.append(Block(heading=line.strip()))
        elif not line.strip():
            close()
        elif _LIST_ITEM.match(line) and not _is_table_row(unit):
            close()
            unit.append(line)
        else:
            unit.append(line)
    close()
    return [b for b in blocks if b.heading or b.units]


def _is_table_row(unit: list[str]) -> bool:
    return bool(unit) and unit[-1].lstrip().startswith("|")


def _word(text: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(text)}(?![\w-])", flags)


def _patterns(label: str) -> list[re.Pattern[str]]:
    """A name of one or two characters (A, B) counts only when marked up as code or bold; a
    longer one as a word in any case, also with underscores or hyphens read as spaces."""
    if len(label) <= 2:
        return [re.compile(rf"`{re.escape(label)}`|\*\*{re.escape(label)}\*\*")]
    spaced = re.sub(r"[_-]+", " ", label)
    return [_word(label, re.IGNORECASE), _word(spaced, re.IGNORECASE)]


def _matching(blocks: list[Block], pattern: re.Pattern[str]) -> list[str]:
    parts = []
    for block in blocks:
        if block.heading and pattern.search(block.heading):
            parts.append(block.text())
            continue
        units = [u for u in block.units if pattern.search(u)]
        if units:
            parts.append("\n\n".join(([block.heading] if block.heading else []) + units))
    return parts


def label_sections(body: str, label: str) -> list[str]:
    """The parts of the body that mention `label` (empty when none does)."""
    blocks = split_blocks(body)
    for pattern in _patterns(label.strip()):
        found = _matching(blocks, pattern)
        if found:
            return found
    return []


def opening(body: str, max_chars: int = FALLBACK_CHARS) -> str:
    """The first units of the body, cut at a unit boundary near `max_chars`."""
    kept: list[str] = []
    size = 0
    for block in split_blocks(body):
        for unit in ([block.heading] if block.heading else []) + block.units:
            if kept and size + len(unit) > max_chars:
                return "\n\n".join(kept)
            kept.append(unit)
            size += len(unit) + 2
    return "\n\n".join(kept)


def relevant_sections(
    body: str, labels: str | Iterable[str], max_chars: int = DEFAULT_MAX_CHARS
) -> str:
    """Markdown with the sections of the guideline that mention any of `labels` (in body order,
    each once), cut near `max_chars`; the opening of the body when none mentions them."""
    names = [labels] if isinstance(labels, str) else list(labels)
    parts: list[str] = []
    for name in names:
        if not name or not name.strip():
            continue
        parts += [p for p in label_sections(body, name) if p not in parts]
    if not parts:
        return opening(body)
    ordered = sorted(parts, key=lambda p: _position(body, p))
    return _cut("\n\n".join(ordered), max_chars)


def _position(body: str, part: str) -> int:
    first_line = part.split("\n", 1)[0]
    found = body.find(first_line)
    return len(body) if found < 0 else found


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text.rfind("\n\n", 0, max_chars)
    return text[: cut if cut > 0 else max_chars].rstrip() + "\n\n…"
