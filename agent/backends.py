"""Turn a --model string into a backend: the embedded local model by default, a student
trained in the log, else litellm."""

from pathlib import Path

from agent.errors import ConfigError
from agent.guidelines import Guideline
from agent.records import Backend

LOCAL = "local"


def make_backend(
    model: str | None,
    api_base: str | None = None,
    api_key: str | None = None,
    mode: str = "auto",
    concurrency: int = 8,
    timeout: float = 60.0,
    db: str | Path | None = None,
    guideline: Guideline | None = None,
) -> Backend:
    """`None` or `local` -> the bundled GGUF; `local:/path/model.gguf` -> that file in-process;
    `student` or `student:<id>` -> a student trained in the log `db` (agent/student.py);
    anything else is a litellm model string (openai/gpt-4o-mini, ollama/llama3.1, ...)."""
    if model is not None and (model == "student" or model.startswith("student:")):
        from agent.student import student_backend

        return student_backend(db, guideline, model)
    if model is None or model == LOCAL or model.startswith(LOCAL + ":"):
        if api_base:
            raise ConfigError(
                "--api-base needs a --model served there, e.g. --model openai/my-model"
            )
        from agent.local_model import LocalBackend

        path = model.split(":", 1)[1] if model and ":" in model else None
        return LocalBackend(model_path=path)
    from agent.llm import LiteLLMBackend

    backend = LiteLLMBackend(
        model,
        api_base=api_base,
        api_key=api_key,
        mode=mode,
        concurrency=concurrency,
        timeout=timeout,
    )
    _check_provider(model, api_base)
    return backend


def _check_provider(model: str, api_base: str | None) -> None:
    """A model litellm cannot route is refused before any call (LiteLLMBackend has set litellm
    up by now)."""
    import litellm

    try:
        litellm.get_llm_provider(model, api_base=api_base)
    except Exception as e:
        raise ConfigError(
            f"model {model!r} is unknown: litellm cannot tell its provider",
            hint=f"Name the provider, e.g. openai/{model} (with --api-base for your own server).",
        ) from e
