"""The one place that builds the product from settings; the CLI, the UI and the evals all call these."""

from __future__ import annotations

import threading

from assistant.settings import Settings

_lock = threading.Lock()
_cache: dict[tuple, object] = {}


def _cached(key: tuple, build):
    with _lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]


def build_embedder(settings: Settings, *, precision: str = "fp32"):
    """The embedder for the store and its queries (fp32); `precision` is for throw-away comparisons only."""
    from assistant.embeddings import Embedder

    onnx_dir = settings.cache_dir if settings.onnx_queries and precision == "fp32" else None
    return _cached(
        ("embedder", settings.embedding_model_dir, settings.embedding_batch_size, precision, onnx_dir),
        lambda: Embedder(settings.embedding_model_dir, batch_size=settings.embedding_batch_size, precision=precision,
                         onnx_cache_dir=onnx_dir),
    )


def build_store(settings: Settings):
    from assistant.embeddings import model_signature
    from assistant.store import KnowledgeStore

    # The store records the model that embedded it: ASSISTANT_EMBEDDING_MODEL_DIR is part of the identity.
    name, dimension = model_signature(settings.embedding_model_dir)
    return _cached(
        ("store", settings.chroma_url, settings.data_dir, name, dimension),
        lambda: KnowledgeStore(settings, model_name=name, dimension=dimension),
    )


def build_retriever(settings: Settings):
    from assistant.retrieval import Retriever

    return Retriever(build_store(settings), build_embedder(settings))


def reset_cache() -> None:
    """Forget built components (tests that switch data dirs within one process)."""
    with _lock:
        _cache.clear()


def build_backend(settings: Settings, name: str | None = None):
    """The backend by name; `auto` picks openai if configured, else local if installed, else composer."""
    from assistant.backends import get_backend, resolve_backend_name

    return get_backend(resolve_backend_name(settings, name or settings.backend), settings)


def build_drafter(settings: Settings, *, backend=None, backend_name: str | None = None, templates=None):
    """The drafting pipeline wired from settings (used by the CLI, the UI and the evals)."""
    from assistant.drafting import Drafter
    from assistant.sla import load_sla

    sla = load_sla(settings.sla_file)
    return Drafter(
        settings,
        build_retriever(settings),
        sla,
        backend or build_backend(settings, backend_name),
        templates=templates,
    )
