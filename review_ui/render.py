"""How the review app turns text into what the browser shows.

Text from items, models, reviewers and imports is untrusted: it is shown exactly as written, never
read as Markdown or HTML. It becomes HTML-escaped text in a block that keeps whitespace, with every
character Markdown could act on written as an entity, and with invisible direction and control
characters shown as `[U+202E]`, so they cannot reorder or hide what is around them.

Only the guideline, written by the team, is Markdown. Even there, a masked word like `b*tch` keeps
its asterisk, and an image on another host is shown as a link to it unless the guideline's front
matter says `remote_images: true`, so opening the queue does not call other servers.
"""

import re

# Direction controls (embeddings, overrides, isolates, marks) and the other invisible controls:
# C0 except tab and newline, DEL, C1.
_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\x00-\x08\x0b-\x1f\x7f-\x9f]")
# HTML's special characters and the ASCII punctuation Markdown, Streamlit's directives
# (`:red[...]`, `:material/...:`), LaTeX or GFM autolinks could act on: written as numeric entities.
_MARKUP = re.compile(r"[<>&\"'!#$%()*+\-./:;=?@\[\\\]^_`{|}~]")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1", re.DOTALL)
_INTRAWORD_STAR = re.compile(r"(?<=\w)\*(?=\w)")
_IMAGE = re.compile(r"(?<!\\)!\[")

VERBATIM_STYLE = "white-space:pre-wrap;overflow-wrap:anywhere;unicode-bidi:isolate"


def visible_controls(text: str) -> str:
    """`text` with each direction or control character written out as `[U+XXXX]`."""
    return _CONTROLS.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def escape(text: str) -> str:
    """HTML for `text` shown exactly as written, on one source line (no blank line can end the
    HTML block, so the Markdown renderer never looks inside)."""
    escaped = _MARKUP.sub(lambda m: f"&#{ord(m.group())};", visible_controls(text))
    return escaped.replace("\r", "").replace("\n", "&#10;")


def verbatim_html(text: str, tag: str = "div", style: str = "") -> str:
    """`text` verbatim in a `tag` that keeps its spaces, indentation and line breaks."""
    return f'<{tag} class="verbatim" style="{VERBATIM_STYLE};{style}">{escape(text)}</{tag}>'


def guideline_markdown(markdown: str, remote_images: bool = False) -> str:
    """The team's guideline Markdown, with asterisks inside words kept as asterisks and, unless
    `remote_images`, images turned into links (outside code, which Markdown shows as written)."""
    out, in_fence = [], False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            out.append(line)
        elif in_fence:
            out.append(line)
        else:
            out.append(_outside_code_spans(line, remote_images))
    return "\n".join(out)


def _outside_code_spans(line: str, remote_images: bool) -> str:
    parts, at = [], 0
    for span in _CODE_SPAN.finditer(line):
        parts.append(_plain_part(line[at : span.start()], remote_images))
        parts.append(span.group())
        at = span.end()
    parts.append(_plain_part(line[at:], remote_images))
    return "".join(parts)


def _plain_part(text: str, remote_images: bool) -> str:
    text = _INTRAWORD_STAR.sub(r"\\*", text)
    return text if remote_images else _IMAGE.sub("[", text)


def labelled_html(name: str, text: str) -> str:
    """`name` (the app's own words) in bold, then `text` verbatim."""
    return f"<div><b>{escape(name)}</b> {verbatim_html(text, 'span')}</div>"


def list_html(texts: list[str]) -> str:
    return "<ul>" + "".join(verbatim_html(t, "li") for t in texts) + "</ul>"


def table_html(columns: dict[str, list[str]], rows: list[str]) -> str:
    """A table with a header row of `columns` names and a first column of `rows` names."""
    head = "<th></th>" + "".join(f"<th>{escape(name)}</th>" for name in columns)
    body = "".join(
        f"<tr><th>{escape(row)}</th>"
        + "".join(f"<td>{verbatim_html(cells[n], 'span')}</td>" for cells in columns.values())
        + "</tr>"
        for n, row in enumerate(rows)
    )
    return f'<table class="verbatim-table"><tr>{head}</tr>{body}</table>'


ALERT_COLORS = {"warning": "rgba(255,189,69,0.2)", "success": "rgba(33,195,84,0.15)"}


def alert_html(kind: str, text: str) -> str:
    """A message box like Streamlit's, whose text (it may quote an item) is shown verbatim."""
    style = f"background:{ALERT_COLORS[kind]};padding:0.75rem 1rem;border-radius:0.5rem"
    return f'<div role="alert" class="message {kind}" style="{style}">{escape(text)}</div>'
