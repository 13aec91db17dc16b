"""Retrieval over two separate pools, so past tickets never crowd out policy."""

from __future__ import annotations

from assistant.backends.base import Evidence
from assistant.errors import InputError

KINDS = ("knowledge", "tickets")


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
        kinds = [kind] if kind else list(KINDS)
        out: list[Evidence] = []
        for kd in kinds:
            out.extend(self.store.query(kd, vector, k))
        return out

    def evidence(self, query: str, k_knowledge: int, k_tickets: int) -> tuple[list[Evidence], list[Evidence]]:
        """Both pools for drafting, embedding the query once."""
        if not query or not query.strip():
            raise InputError("The search query is empty.")
        self.store.ensure_ready()
        vector = self.embedder.embed_query(query)
        return self.store.query("knowledge", vector, k_knowledge), self.store.query("tickets", vector, k_tickets)
