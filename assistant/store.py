"""The vector store: two Chroma collections (knowledge, tickets) with our own embeddings.

Embedded (`PersistentClient` under the data dir) by default; a Chroma server through `HttpClient` when
`ASSISTANT_CHROMA_URL` is set. Collections record the embedding model and dimension so a store built
with another model fails loudly instead of returning garbage.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from assistant.backends.base import Evidence
from assistant.errors import (
    EmbeddingMismatchError,
    KnowledgeBaseError,
    KnowledgeBaseMissingError,
    StoreLockedError,
)
from assistant.settings import Settings

KINDS = ("knowledge", "tickets")
# How long a non-empty store is taken to stay non-empty without asking Chroma again (a count costs a
# round trip to the server, or ~1-10 ms embedded, on every search). This process's own writes reset it.
READY_TTL_S = 10.0
# Cosine HNSW. ef_search 64 keeps recall@5 near exact at 100k chunks (scripts/bench.py measures both).
HNSW_CONFIG = {"space": "cosine", "ef_search": 64}
REBUILD_HINT = "Rebuild the store with: assistant ingest --rebuild knowledge_base"

# Chroma must never phone home nor fall back to its default (downloading) embedding function.
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def _chroma_settings():
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=True)


class KnowledgeStore:
    """Thin wrapper over Chroma that speaks Evidence and knows about our metadata."""

    def __init__(self, settings: Settings, *, model_name: str, dimension: int):
        self.settings = settings
        self.model_name = model_name
        self.dimension = dimension
        self._client = None
        self._collections: dict[str, object] = {}
        self._ready_until = 0.0
        self._max_batch: int | None = None
        # Chroma fails when two threads create the first client at once (UI sessions, eval workers).
        self._lock = threading.RLock()

    @property
    def location(self) -> str:
        return self.settings.chroma_url or str(self.settings.chroma_dir)

    @property
    def client(self):
        with self._lock:
            return self._connect()

    def _connect(self):
        if self._client is None:
            import chromadb

            if self.settings.chroma_url:
                url = urlparse(self.settings.chroma_url)
                try:
                    self._client = chromadb.HttpClient(
                        host=url.hostname or "127.0.0.1",
                        port=url.port or (443 if url.scheme == "https" else 8000),
                        ssl=url.scheme == "https",
                        settings=_chroma_settings(),
                    )
                    self._client.heartbeat()
                except Exception as e:  # chromadb raises several types for an unreachable server
                    self._client = None
                    raise KnowledgeBaseError(
                        f"Cannot reach the Chroma server at {self.settings.chroma_url}: {e}",
                        hint="Start it (chroma run --host 127.0.0.1 --port 8000) or unset ASSISTANT_CHROMA_URL.",
                    ) from None
            else:
                self.settings.chroma_dir.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(self.settings.chroma_dir), settings=_chroma_settings())
        return self._client

    def _check_model(self, collection) -> None:
        md = collection.metadata or {}
        model, dim = md.get("embedding_model"), md.get("dimension")
        if model != self.model_name or dim != self.dimension:
            raise EmbeddingMismatchError(
                f"The knowledge base at {self.location} was built with embedding model {model!r} "
                f"(dimension {dim}); this version uses {self.model_name!r} (dimension {self.dimension}).",
                hint=REBUILD_HINT,
            )

    def collection(self, kind: str, *, create: bool = False):
        """The collection for `kind`; None if it does not exist and `create` is False."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        with self._lock:
            return self._collection(kind, create)

    def _collection(self, kind: str, create: bool):
        if kind in self._collections:
            return self._collections[kind]
        if create:
            col = self.client.get_or_create_collection(
                kind,
                embedding_function=None,
                configuration={"hnsw": dict(HNSW_CONFIG)},
                metadata={"embedding_model": self.model_name, "dimension": self.dimension},
            )
        else:
            client = self.client  # connection errors must surface, not read as "no collection"
            try:
                col = client.get_collection(kind, embedding_function=None)
            except Exception:  # NotFoundError / ValueError depending on the chromadb version
                return None
        self._check_model(col)
        self._collections[kind] = col
        return col

    def count(self, kind: str) -> int:
        col = self.collection(kind)
        return col.count() if col is not None else 0

    def existing(self, kind: str) -> dict[str, dict[str, str]]:
        """source → {chunk id → file hash} for everything stored of this kind (one call, no embeddings)."""
        return self.existing_with_counts(kind)[0]

    def existing_with_counts(self, kind: str) -> tuple[dict[str, dict[str, str]], dict[str, int | None]]:
        """`existing(kind)` and, per source, how many chunks its file had when it was ingested (None when
        the chunks do not say, e.g. a store written by an older version). A source with fewer stored
        chunks than that was cut short (a crash between two write batches) and must be ingested again."""
        col = self.collection(kind)
        out: dict[str, dict[str, str]] = {}
        counts: dict[str, int | None] = {}
        if col is None:
            return out, counts
        total = col.count()
        page = 5000
        for offset in range(0, total, page):
            got = col.get(include=["metadatas"], limit=page, offset=offset)
            for cid, md in zip(got["ids"], got["metadatas"], strict=True):
                md = md or {}
                source = md.get("source", "")
                out.setdefault(source, {})[cid] = md.get("file_hash", "")
                n = md.get("file_chunks")
                counts[source] = n if isinstance(n, int) and counts.get(source, n) == n else counts.get(source)
        return out, counts

    def _batch(self) -> int:
        if self._max_batch is None:
            try:
                self._max_batch = max(1, min(4000, self.client.get_max_batch_size()))
            except Exception:
                return 1000
        return self._max_batch

    def add(self, kind: str, ids, documents, metadatas, embeddings) -> None:
        """Upsert chunks; `embeddings` is a list of vectors or a float32 numpy array (n × dimension)."""
        col = self.collection(kind, create=True)
        step = self._batch()
        for i in range(0, len(ids), step):
            col.upsert(
                ids=ids[i : i + step],
                documents=documents[i : i + step],
                metadatas=metadatas[i : i + step],
                embeddings=embeddings[i : i + step],
            )

    def update_metadata(self, kind: str, ids, metadatas) -> None:
        col = self.collection(kind, create=True)
        step = self._batch()
        for i in range(0, len(ids), step):
            col.update(ids=ids[i : i + step], metadatas=metadatas[i : i + step])

    def get_metadatas(self, kind: str, ids: list[str]) -> dict[str, dict]:
        col = self.collection(kind)
        if col is None or not ids:
            return {}
        got = col.get(ids=ids, include=["metadatas"])
        return dict(zip(got["ids"], got["metadatas"], strict=True))

    def delete(self, kind: str, ids: list[str]) -> None:
        col = self.collection(kind)
        if col is None or not ids:
            return
        self._ready_until = 0.0
        step = self._batch()
        for i in range(0, len(ids), step):
            col.delete(ids=ids[i : i + step])

    def reset(self) -> None:
        """Drop both collections (for --rebuild)."""
        for kind in KINDS:
            with contextlib.suppress(Exception):
                self.client.delete_collection(kind)
        self._collections.clear()
        self._ready_until = 0.0

    def ensure_ready(self) -> None:
        """Raise KnowledgeBaseMissingError unless something has been ingested."""
        if time.monotonic() < self._ready_until:
            return
        if any(self.count(k) for k in KINDS):
            self._ready_until = time.monotonic() + READY_TTL_S
            return
        raise KnowledgeBaseMissingError(f"The knowledge base at {self.location} is empty: nothing has been ingested yet.")

    def query(self, kind: str, vector: list[float], k: int, where: dict | None = None) -> list[Evidence]:
        col = self.collection(kind)
        if col is None or k <= 0:
            return []
        import numpy as np

        # No count() first: Chroma returns fewer results (none for an empty collection) when k exceeds it.
        # A float32 array, not a list of floats: Chroma validates a list element by element (~1.5 ms).
        res = col.query(
            query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
            n_results=k,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        out = []
        for cid, doc, md, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True):
            md = dict(md or {})
            out.append(
                Evidence(
                    id=cid,
                    kind=kind,
                    title=md.get("title", ""),
                    source=md.get("source", ""),
                    text=doc or "",
                    score=1.0 - float(dist),
                    metadata=md,
                )
            )
        return out

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Exclusive write access to an embedded store; a second writer is refused (or waits, if configured)."""
        if self.settings.chroma_url:
            yield  # the server serialises writes itself
            return
        from filelock import FileLock, Timeout

        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        lock_path = Path(self.settings.data_dir) / "ingest.lock"
        lock = FileLock(str(lock_path), timeout=self.settings.lock_timeout_s)
        try:
            lock.acquire()
        except Timeout:
            raise StoreLockedError(
                f"Another process is writing to the knowledge base at {self.location}.",
                hint="Wait for the other ingest to finish (or set ASSISTANT_LOCK_TIMEOUT_S to wait for it).",
            ) from None
        try:
            yield
        finally:
            lock.release()
