"""Text from input files, shown safely: messages print it with control characters escaped, so a
hostile id or field name cannot move the cursor, recolour the terminal or hide part of a line."""

import unicodedata

CONTROL_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
MAX_SHOWN = 60


def shown(text: str, limit: int = MAX_SHOWN) -> str:
    """`text` cut in the middle to `limit` characters, every character that does not print
    escaped (\\x1b)."""
    if len(text) > limit:
        head = (limit - 3) // 2
        text = text[:head] + "..." + text[len(text) - (limit - 3 - head) :]
    return "".join(c if c.isprintable() else escaped(c) for c in text)


def escaped(character: str) -> str:
    return character.encode("unicode_escape").decode("ascii")


def control_character(text: str) -> str | None:
    """The first control, format or line-separator character in `text` (ESC, NUL, a newline, a
    right-to-left override, a lone surrogate), or None."""
    if text.isprintable():  # the fast path: every one of these categories is unprintable
        return None
    return next((c for c in text if unicodedata.category(c) in CONTROL_CATEGORIES), None)
