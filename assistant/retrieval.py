"""Retrieval over two separate pools, so past tickets never crowd out policy."""

from __future__ import annotations

import threading

from assistant.backends.base import Evidence
from assistant.errors import InputError

KINDS = ("knowledge", "tickets")
_executor = None
_executor_lock = threading.Lock()


def _pool():
    global _executor
    with _executor_lock:
        if _executor is None:
            from concurrent.futures import ThreadPoolExecutor

            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="retrieval")
        return _executor


class Retriever:
    """Dense retrieval (MiniLM + Chroma HNSW, cosine) per pool."""

    def __init__(self, store, embedder):
        self.store = store
        self.embedder = embedder

    def search(self, query: str, k: int = 5, kind: str | None = None) -> list[Evidence]:
        """Top `k` of one pool, or of each pool (knowledge first) when `kind` is None."""
        if not query or not query.strip():
            raise InputError("The search query is empty.")
        if kind is not None and kind not in KINDS:
            raise InputError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.store.ensure_ready()
        vector = self.embedder.embed_query(query)
        if kind:
            return self.store.query(kind, vector, k)
        # Both pools at once: Chroma searches outside the GIL (saves ~1.5 ms of ~5 at 100k chunks).
        knowledge = _pool().submit(self.store.query, "knowledge", vector, k)
        tickets = self.store.query("tickets", vector, k)
        return knowledge.result() + tickets

    def tickets(self, query: str, k: int) -> list[Evidence]:
        """Similar resolved tickets (the store must hold something)."""
        if not query or not query.strip():
            raise InputError("The search query is empty.")
        self.store.ensure_ready()
        return self.store.query("tickets", self.embedder.embed_query(query), k)

    def knowledge(self, query: str, k: int, *, topic: str | None = None, topic_weight: float = 0.5) -> list[Evidence]:
        """Knowledge chunks for drafting. With `topic` (the issue category's label and description) the
        query vector is pulled towards that policy area: customers describe symptoms ("torn sleeve"),
        policies are written about categories ("damaged items"), and the blend finds the policy."""
        vector = self.embedder.embed_query(query)
        if topic:
            t = self.embedder.embed_query(topic)
            mixed = [a + topic_weight * b for a, b in zip(vector, t, strict=True)]
            norm = sum(x * x for x in mixed) ** 0.5 or 1.0
            vector = [x / norm for x in mixed]
        return self.store.query("knowledge", vector, k)
