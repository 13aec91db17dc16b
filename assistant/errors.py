"""One error tree so the CLI, the UI and the evals can show a clear message for every failure."""

from __future__ import annotations


class AssistantError(Exception):
    """Base of every error the product raises on purpose; the message is shown to the user as is."""

    exit_code = 1
    #: A short hint on what to do next (shown under the message by the CLI and UI).
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(AssistantError):
    """A setting is missing or invalid."""


class InputError(AssistantError):
    """The user's input (a message, a file, a dataset) cannot be used."""

    exit_code = 2


class EmptyMessageError(InputError):
    """The customer message is empty or whitespace only."""


class MessageTooLongError(InputError):
    """The customer message exceeds the configured size limit."""


class KnowledgeBaseError(AssistantError):
    """The knowledge base store cannot be used."""


class KnowledgeBaseMissingError(KnowledgeBaseError):
    """Nothing has been ingested yet (or the store is empty)."""

    hint = "Run `assistant ingest knowledge_base` first."


class EmbeddingMismatchError(KnowledgeBaseError):
    """The store was built with another embedding model or dimension."""


class StoreLockedError(KnowledgeBaseError):
    """Another process is writing to the same embedded store."""


class IngestError(AssistantError):
    """An ingest could not complete (e.g. a skipped file under --strict)."""


class TemplateError(AssistantError):
    """A prompt template is missing, invalid, unsafe, or failed to render."""


class BackendError(AssistantError):
    """The drafting backend failed."""

    exit_code = 3


class BackendUnavailableError(BackendError):
    """The backend is not installed, not configured, or its server is unreachable."""


class BackendTimeoutError(BackendError):
    """The backend did not answer in time."""


class RateLimitedError(BackendError):
    """The backend refused with a rate limit (HTTP 429) after the allowed retries."""


class IncompleteDraftError(BackendError):
    """The backend's output stopped mid-way; the partial text must never be shown as a finished draft."""

    def __init__(self, message: str, *, partial: str = "", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.partial = partial


class ConcurrentEditError(AssistantError):
    """Someone else saved a newer version of the same template first."""


class RateLimitExceededError(InputError):
    """Too many requests in a short time from one session."""
