"""Where the bundled prompts, guidelines and demo data live, in a wheel and in a checkout."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """`prompts` or `guidelines`: the copy a wheel bundles under labelagent/_bundled/, else the
    repository's top-level folder beside agent/ (a checkout or an editable install). The bundled
    copy comes first so that an installed labelagent never reads a stranger's top-level folder of
    the same name in site-packages."""
    bundled = _PACKAGE / "_bundled" / name
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / name


DEMO_DATA = _PACKAGE / "demo_data"
