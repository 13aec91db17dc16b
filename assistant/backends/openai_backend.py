"""Chat backend for any OpenAI-compatible server: OpenAI itself, llama.cpp's server, vLLM, Ollama...

Retries (429, 5xx, timeouts, connection errors) are left to the `openai` client, which honours
`retry-after`; this module only turns its exceptions into the product's error tree and makes sure a
reply that did not finish is raised as `IncompleteDraftError`, never returned as a draft.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import openai

from assistant.backends.base import GenerationRequest
from assistant.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigError,
    IncompleteDraftError,
    RateLimitedError,
)

if TYPE_CHECKING:
    from assistant.settings import Settings

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers (llama.cpp, vLLM, Ollama) ignore the key, but the client refuses to start without one.
LOCAL_API_KEY = "not-needed"
# The Chat Completions API rejects more than 4 stop sequences.
MAX_STOP_SEQUENCES = 4


class OpenAIBackend:
    """Streams a reply from `chat.completions` of an OpenAI-compatible server."""

    name = "openai"
    is_llm = True

    def __init__(self, settings: Settings, http_client: httpx.Client | None = None):
        if not settings.model:
            raise ConfigError(
                "The openai backend needs a model name.",
                hint="Set ASSISTANT_MODEL (for a local server, the id listed at <OPENAI_BASE_URL>/models).",
            )
        if not self.configured(settings):
            raise ConfigError(
                "The openai backend needs OPENAI_API_KEY or OPENAI_BASE_URL.",
                hint="Set OPENAI_API_KEY for api.openai.com, or OPENAI_BASE_URL for a local server.",
            )
        self.model: str = settings.model
        self.timeout_s = settings.timeout_s
        self.max_retries = settings.max_retries
        self.base_url = settings.openai_base_url or DEFAULT_BASE_URL
        # Pass everything explicitly: the client would otherwise read OPENAI_* from the environment,
        # and `Settings` is the only place that may do that.
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=settings.openai_api_key or LOCAL_API_KEY,
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
            http_client=http_client,
        )

    @staticmethod
    def configured(settings: Settings) -> bool:
        """True when a server to talk to is configured (a base URL or an API key for api.openai.com)."""
        return bool(settings.openai_base_url or settings.openai_api_key)

    def close(self) -> None:
        """Release the HTTP connections (the client is otherwise closed when garbage collected)."""
        self._client.close()

    def generate(self, request: GenerationRequest) -> Iterator[str]:
        """Yield the reply's text deltas; raise a `BackendError` if it fails or does not finish."""
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.prompt},
            ],
            # Always set: an unbounded reply from a rambling model would never end in time.
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
        }
        if request.stop:
            params["stop"] = request.stop[:MAX_STOP_SEQUENCES]
        try:
            stream = self._client.chat.completions.create(**params)
        except openai.APIError as exc:
            raise self._map_error(exc) from exc

        parts: list[str] = []
        finish_reason: str | None = None
        chunks = iter(stream)
        try:
            while True:
                # Only `next()` is guarded, so an exception thrown into this generator by its
                # consumer is not mistaken for a broken stream.
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except Exception as exc:
                    raise self._interrupted(exc, "".join(parts)) from exc
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
                    text = choice.delta.content if choice.delta else None
                    if text:
                        parts.append(text)
                        yield text
        finally:
            stream.close()

        partial = "".join(parts)
        if finish_reason is None:
            raise IncompleteDraftError(
                "The model server's stream ended before the reply was finished.", partial=partial
            )
        if finish_reason == "length":
            raise IncompleteDraftError(
                f"The reply was cut off: the reply hit max_tokens ({request.max_tokens}).",
                partial=partial,
                hint="Raise ASSISTANT_MAX_TOKENS or ask for a shorter reply.",
            )
        if finish_reason == "content_filter":
            raise IncompleteDraftError("The provider's content filter stopped the reply.", partial=partial)

    def _interrupted(self, exc: Exception, partial: str) -> BackendError:
        """The error for a stream that broke after it had started."""
        if not partial and isinstance(exc, openai.APIError):
            # Nothing was shown yet, so the plain cause (e.g. a timeout) is the clearer message.
            return self._map_error(exc)
        reason = self._map_error(exc) if isinstance(exc, openai.APIError) else exc
        return IncompleteDraftError(
            f"The model server's stream broke off mid-reply: {reason}", partial=partial
        )

    def _map_error(self, exc: openai.APIError) -> BackendError:
        """Translate an `openai` exception (raised after the client's own retries) into ours."""
        plural = "retry" if self.max_retries == 1 else "retries"
        retries = f" (after {self.max_retries} {plural})" if self.max_retries else ""
        if isinstance(exc, openai.APITimeoutError):
            return BackendTimeoutError(
                f"The model server at {self.base_url} did not answer within {self.timeout_s:g} s{retries}.",
                hint="Raise ASSISTANT_TIMEOUT_S, or check that the server is not overloaded.",
            )
        if isinstance(exc, openai.APIConnectionError):
            return BackendUnavailableError(
                f"Cannot reach the model server at {self.base_url}{retries}.",
                hint="Check OPENAI_BASE_URL and that the server is running.",
            )
        if isinstance(exc, openai.RateLimitError):
            retry_after = exc.response.headers.get("retry-after")
            wait = f"; it asks to retry after {retry_after} s" if retry_after else ""
            return RateLimitedError(
                f"The model server is rate limiting requests (HTTP 429){retries}{wait}.",
                hint="Wait a moment and try again, or raise ASSISTANT_MAX_RETRIES.",
            )
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return BackendUnavailableError(
                f"The model server at {self.base_url} refused the credentials (HTTP {exc.status_code}).",
                hint="check OPENAI_API_KEY",
            )
        if isinstance(exc, openai.NotFoundError):
            return BackendError(
                f"The model server does not know model {self.model!r} (HTTP 404).",
                hint="Check ASSISTANT_MODEL against the server's /models list.",
            )
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code >= 500:
                return BackendError(f"The model server failed with HTTP {exc.status_code}{retries}.")
            return BackendError(
                f"The model server rejected the request (HTTP {exc.status_code}): {exc.message}"
            )
        return BackendError(f"The model server sent an error: {exc.message}")
