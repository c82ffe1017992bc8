"""Providers' batch interfaces (`label --batch`): upload a JSONL file of chat completion
requests, create a batch from it, poll it, read its output and error files, at the provider's
batch price.

OpenAI-compatible providers with a batch interface go through the openai SDK's async client
(`/v1/files`, `/v1/batches`), the providers litellm routes through its own `acreate_file`,
`acreate_batch`, `alist_batches`, `aretrieve_batch` and `afile_content`. Every batch carries the
id of its input file, so a run killed between creating a batch and logging its id finds it again
(`find`) instead of creating a second one.
"""

from dataclasses import dataclass
from typing import Any, Protocol

import openai

ENDPOINT = "/v1/chat/completions"
WINDOW = "24h"
FIND_LIMIT = 500  # newest batches looked through for one made from a given input file
# OpenAI-compatible providers with /v1/files and /v1/batches.
OPENAI_BATCH_PROVIDERS = ("openai", "groq", "together_ai")
# Providers whose batches litellm can create and also list (a resume must find what it created):
# in litellm 1.102 create_batch serves openai (and hosted_vllm, whose servers have no /v1/files),
# azure, vertex_ai and bedrock, and list_batches all of those but bedrock.
LITELLM_BATCH_PROVIDERS = ("openai", "azure", "vertex_ai")
FINISHED = ("completed", "failed", "expired", "cancelled")


@dataclass(frozen=True)
class BatchState:
    status: str  # validating | in_progress | finalizing | completed | failed | expired | ...
    output_file_id: str | None = None
    error_file_id: str | None = None
    error: str | None = None  # the provider's reasons, for a failed batch

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class BatchClient(Protocol):
    async def upload(self, name: str, data: bytes) -> str:
        """The id of the uploaded JSONL file."""
        ...

    async def create(self, input_file_id: str) -> str:
        """The id of a new batch of the file's requests."""
        ...

    async def find(self, input_file_id: str) -> str | None:
        """A batch created from this file already, among the newest."""
        ...

    async def retrieve(self, batch_id: str) -> BatchState: ...

    async def content(self, file_id: str) -> bytes: ...


def batch_state(batch: Any) -> BatchState:
    errors = getattr(getattr(batch, "errors", None), "data", None) or []
    reasons = "; ".join(f"{e.code}: {e.message}" for e in errors) or None
    return BatchState(batch.status, batch.output_file_id, batch.error_file_id, reasons)


class OpenAIBatches:
    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self._client = client

    async def upload(self, name: str, data: bytes) -> str:
        return (await self._client.files.create(file=(name, data), purpose="batch")).id

    async def create(self, input_file_id: str) -> str:
        batch = await self._client.batches.create(
            input_file_id=input_file_id,
            endpoint=ENDPOINT,
            completion_window=WINDOW,
            metadata={"labelagent_input_file": input_file_id},
        )
        return batch.id

    async def find(self, input_file_id: str) -> str | None:
        seen = 0
        async for batch in self._client.batches.list(limit=100):
            if batch.input_file_id == input_file_id:
                return batch.id
            seen += 1
            if seen >= FIND_LIMIT:
                break
        return None

    async def retrieve(self, batch_id: str) -> BatchState:
        return batch_state(await self._client.batches.retrieve(batch_id))

    async def content(self, file_id: str) -> bytes:
        return (await self._client.files.content(file_id)).content


class LiteLLMBatches:
    def __init__(self, provider: str, fixed: dict[str, Any]) -> None:
        import litellm

        self._litellm = litellm
        self._fixed = {**fixed, "custom_llm_provider": provider}

    async def upload(self, name: str, data: bytes) -> str:
        created = await self._litellm.acreate_file(
            file=(name, data), purpose="batch", **self._fixed
        )
        return created.id

    async def create(self, input_file_id: str) -> str:
        batch = await self._litellm.acreate_batch(
            completion_window=WINDOW,
            endpoint=ENDPOINT,
            input_file_id=input_file_id,
            metadata={"labelagent_input_file": input_file_id},
            **self._fixed,
        )
        return batch.id

    async def find(self, input_file_id: str) -> str | None:
        listed = await self._litellm.alist_batches(limit=100, **self._fixed)
        for batch in getattr(listed, "data", None) or []:
            if batch.input_file_id == input_file_id:
                return batch.id
        return None

    async def retrieve(self, batch_id: str) -> BatchState:
        return batch_state(await self._litellm.aretrieve_batch(batch_id=batch_id, **self._fixed))

    async def content(self, file_id: str) -> bytes:
        return (await self._litellm.afile_content(file_id=file_id, **self._fixed)).content
