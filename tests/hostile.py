"""Untrusted text that must reach the reviewer's screen exactly as written: Markdown and HTML that
would load a remote image, make a link, run a script, decode an entity, draw an icon, make a
heading or colour text; indentation; a right-to-left override; and a very long text."""

RLO = "\u202e"


def hostile_text(port: int, tag: str = "") -> str:
    """Every trap in one text; `port` is a loopback server that must never be asked for anything,
    `tag` tells the requests of one field from another's."""
    url = f"http://127.0.0.1:{port}/log?{tag}"
    return "\n".join(
        [
            f"![x]({url}md-image) and [a link]({url}md-link) and {url}bare-url",
            f'<img src="{url}html-img"> <script>fetch("{url}script")</script>',
            "&lt;b&gt;not bold&lt;/b&gt; *not italic* :material/home: :red[not red] $x^2$",
            "A heading?",
            "===",
            "    four spaces in front",
            f"abc{RLO}reversed?",
        ]
    )


# What the page must show for the parts above (a browser's innerText of the item).
SHOWN_AS_WRITTEN = [
    "![x](",
    "&lt;b&gt;not bold&lt;/b&gt; *not italic* :material/home: :red[not red] $x^2$",
    '<img src="',
    "<script>",
    "A heading?\n===",
    "\n    four spaces in front",
    "abc[U+202E]reversed?",
]
LONG_TEXT = "long " * 3999 + "END-OF-LONG"  # 20,000 characters


def hostile_id(port: int) -> str:
    """An item id with the traps that fit on one line (no control or bidi characters: the input
    checks refuse those in ids)."""
    return f"![id](http://127.0.0.1:{port}/log?id) <b>&lt;id&gt;</b> :material/home: *x*"


# Pieces that only appear on the page if the text was read as Markdown or HTML, or not at all.
MARKERS = ["127.0.0.1", "<img", "<script", "&lt;", ":material/home:", RLO, "===", "four spaces"]
