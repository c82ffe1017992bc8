"""Turn a --model string into a backend: the embedded local model by default, a student
trained in the log, else a remote model (agent/llm.py)."""

from pathlib import Path

from labelagent.errors import ConfigError
from labelagent.guidelines import Guideline
from labelagent.records import Backend

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
    transport: str = "auto",
    rpm: float | None = None,
    tpm: float | None = None,
) -> Backend:
    """`None` or `local` -> the bundled GGUF; `local:/path/model.gguf` -> that file in-process;
    `student` or `student:<id>` -> a student trained in the log `db` (agent/student.py);
    anything else is a litellm model string (openai/gpt-4o-mini, anthropic/..., ...)."""
    if model is not None and (model == "student" or model.startswith("student:")):
        from labelagent.student import student_backend

        return student_backend(db, guideline, model)
    if model is None or model == LOCAL or model.startswith(LOCAL + ":"):
        if api_base:
            raise ConfigError(
                "--api-base needs a --model served there, e.g. --model openai/my-model"
            )
        from labelagent.local_model import LocalBackend

        path = model.split(":", 1)[1] if model and ":" in model else None
        return LocalBackend(model_path=path)
    from labelagent.llm import RemoteBackend
    from labelagent.transports import transport_for

    backend = RemoteBackend(
        model,
        api_base=api_base,
        api_key=api_key,
        mode=mode,
        concurrency=concurrency,
        timeout=timeout,
        transport=transport,
        rpm=rpm,
        tpm=tpm,
    )
    _check_provider(model, api_base, transport_for(model, transport))
    return backend


def _check_provider(model: str, api_base: str | None, transport: str) -> None:
    """A model whose provider cannot be told is refused before any call: a bare name must be
    one the price table knows (as litellm requires), and litellm must route the rest it serves."""
    from labelagent import prices

    unknown = ConfigError(
        f"model {model!r} is unknown: its provider cannot be told",
        hint=f"Name the provider, e.g. openai/{model} (with --api-base for your own server).",
    )
    if "/" not in model and prices.model_info(model) is None:
        raise unknown
    if transport == "litellm":
        import litellm

        try:
            litellm.get_llm_provider(model, api_base=api_base)
        except Exception as e:
            raise unknown from e
