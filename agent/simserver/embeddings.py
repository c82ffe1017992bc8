"""OpenAI-style `/v1/embeddings`: each text's hashed bag of words, so texts that share words are
close, the same text gets the same vector on every run, and no model is loaded."""

import hashlib
import math
import re

from aiohttp import web

DIMENSIONS = 64
_WORD = re.compile(r"\w+")


def hashed_bag_of_words(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """Each lower-cased word adds +1 or -1 (by its hash) at a hashed position; unit length (all
    zeros for a text without words)."""
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        vector[digest[0] % dimensions] += 1.0 if digest[1] % 2 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def _error(status: int, message: str, kind: str, code: str | None) -> web.Response:
    error = {"message": message, "type": kind, "param": None, "code": code}
    return web.json_response({"error": error}, status=status)


def embeddings_response(body: object, models: tuple[str, ...]) -> web.Response:
    """The answer to one request body: 404 for a model not in `models` (as OpenAI answers an
    unknown model), 400 for a body without a string or list of strings as `input`."""
    if not isinstance(body, dict):
        return _error(400, "request body is not a JSON object", "invalid_request_error", None)
    model, given = body.get("model"), body.get("input")
    if model not in models:
        message = f"The model `{model}` does not exist; embedding models: {', '.join(models)}"
        return _error(404, message, "invalid_request_error", "model_not_found")
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return _error(
            400, "'input' must be a string or a list of strings", "invalid_request_error", None
        )
    data = [
        {"object": "embedding", "index": i, "embedding": hashed_bag_of_words(text)}
        for i, text in enumerate(texts)
    ]
    words = sum(len(_WORD.findall(text)) for text in texts)
    usage = {"prompt_tokens": words, "total_tokens": words}
    return web.json_response({"object": "list", "data": data, "model": model, "usage": usage})
