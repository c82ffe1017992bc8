"""Prompt templates are Jinja2 files in prompts/, loaded by name; a missing variable is an error."""

import hashlib
from functools import cache

import jinja2

from labelagent.errors import PromptError
from labelagent.paths import resource_dir


@cache
def _environment() -> jinja2.Environment:
    # auto_reload off: the templates do not change during a run, and checking their files' times
    # was three stat calls per item.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_dir("prompts")),
        auto_reload=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(name: str, **variables: object) -> str:
    try:
        return _environment().get_template(name).render(**variables).strip()
    except jinja2.TemplateNotFound:
        raise PromptError(
            f"prompt template {name!r} not found in {resource_dir('prompts')}"
        ) from None
    except jinja2.UndefinedError as e:
        raise PromptError(f"prompt template {name!r}: {e.message}") from None
    except jinja2.TemplateSyntaxError as e:
        raise PromptError(f"prompt template {name!r}, line {e.lineno}: {e.message}") from None


def templates_hash(*names: str) -> str:
    """Hash of the template files, stored with every draft so a changed prompt is a new config."""
    digest = hashlib.sha256()
    for name in names:
        try:
            source = (resource_dir("prompts") / name).read_bytes()
        except FileNotFoundError:
            raise PromptError(f"prompt template {name!r} not found") from None
        digest.update(name.encode() + b"\0" + source + b"\0")
    return digest.hexdigest()[:16]
