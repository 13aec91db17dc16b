"""Drafting backends by name, and the "auto" choice between them.

Every factory imports its module on first call only, so importing this package (and `assistant --help`)
does not pay for `openai` or llama.cpp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from assistant.backends.base import (
    Backend,
    BackendFactory,
    DraftContext,
    Evidence,
    GenerationRequest,
    Timeframe,
    register_backend,
    registered_backends,
)
from assistant.errors import BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    from assistant.settings import Settings

__all__ = [
    "Backend",
    "DraftContext",
    "Evidence",
    "GenerationRequest",
    "Timeframe",
    "get_backend",
    "register_backend",
    "resolve_backend_name",
]


def _lazy(target: str) -> BackendFactory:
    """A factory for "package.module:Class" that imports the module only when called."""
    module_name, _, class_name = target.partition(":")

    def factory(settings: Settings) -> Backend:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # a dependency of the module is missing, not the module: show the real cause
            raise BackendUnavailableError(f"The backend module {module_name} is not installed.") from exc
        return getattr(module, class_name)(settings)

    return factory


def _fake(settings: Settings) -> Backend:
    from assistant.backends.fake import FakeBackend

    return FakeBackend()


register_backend("openai", _lazy("assistant.backends.openai_backend:OpenAIBackend"))
register_backend("local", _lazy("assistant.backends.local:LocalBackend"))
register_backend("composer", _lazy("assistant.backends.composer:ComposerBackend"))
register_backend("fake", _fake)


def resolve_backend_name(settings: Settings, requested: str = "auto") -> str:
    """The backend to use: `requested` itself, or for "auto" openai, then local, then composer.

    openai wins when a server is configured (OPENAI_BASE_URL or OPENAI_API_KEY); local when
    llama.cpp and its model file are there; the deterministic composer always works.
    """
    if requested != "auto":
        return requested
    from assistant.backends.openai_backend import OpenAIBackend

    if OpenAIBackend.configured(settings):
        return "openai"
    from assistant.backends.local import LocalBackend

    if LocalBackend.available(settings):
        return "local"
    return "composer"


def get_backend(name: str, settings: Settings) -> Backend:
    """Build the backend registered as `name` ("auto" is resolved first)."""
    name = resolve_backend_name(settings, name)
    factories = registered_backends()
    if name not in factories:
        known = ", ".join(sorted(factories))
        raise ConfigError(f"Unknown backend {name!r}; the registered backends are: {known}, and auto.")
    return factories[name](settings)
