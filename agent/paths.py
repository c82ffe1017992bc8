"""Where the bundled prompts, guidelines and demo data live, in a checkout and in a wheel."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """`prompts` or `guidelines`: the repository's top-level folder in a checkout (editable
    install), else the copy the wheel bundles under agent/_bundled/."""
    checkout = _PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    return _PACKAGE / "_bundled" / name


DEMO_DATA = _PACKAGE / "demo_data"
