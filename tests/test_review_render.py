"""How untrusted text and the team's guideline become HTML and Markdown in the review app."""

import html
import re

from hostile import LONG_TEXT, RLO, hostile_text

from labelagent.review_ui import render


def shown(fragment: str) -> str:
    """The text a browser shows for an HTML fragment without tags of its own inside the text."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_untrusted_text_is_escaped_kept_whole_and_on_one_source_line():
    text = hostile_text(8000)
    fragment = render.verbatim_html(text)
    assert shown(fragment) == text.replace(RLO, "[U+202E]")
    inner = fragment[fragment.index(">") + 1 : fragment.rindex("<")]
    assert "<" not in inner and ">" not in inner, "no tag of the text's own survives"
    assert "\n" not in fragment, "no blank line can end the HTML block"
    assert not re.search(r"[*_\[\]:$`!]", inner), "nothing Markdown or Streamlit could act on"
    assert "white-space:pre-wrap" in fragment


def test_direction_and_control_characters_are_shown_not_obeyed():
    assert render.visible_controls(f"a{RLO}b\u2066c\x00d\te\n") == (
        "a[U+202E]b[U+2066]c[U+0000]d\te\n"
    )
    assert render.visible_controls("emoji 👩‍💻 stays") == "emoji 👩‍💻 stays"


def test_a_long_text_is_kept_whole():
    assert shown(render.verbatim_html(LONG_TEXT)) == LONG_TEXT


def test_guideline_markdown_keeps_masked_words_and_does_not_load_remote_images():
    body = (
        "Slurs are masked: b*tch and f*ck count as insults, **bold** stays bold.\n"
        "![diagram](http://example.com/d.png) and `a*b*c ![in](code)`\n"
        "```\nb*tch ![x](y)\n```"
    )
    assert render.guideline_markdown(body).split("\n") == [
        r"Slurs are masked: b\*tch and f\*ck count as insults, **bold** stays bold.",
        "[diagram](http://example.com/d.png) and `a*b*c ![in](code)`",
        "```",
        "b*tch ![x](y)",
        "```",
    ]
    allowed = render.guideline_markdown(body, remote_images=True)
    assert "![diagram](http://example.com/d.png)" in allowed
