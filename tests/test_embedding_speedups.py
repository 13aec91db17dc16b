"""The eval's speed-ups keep their results: primed query vectors, bf16 similarity embeddings, the primer's window."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from assistant.embeddings import Embedder, bf16_native, resolve_precision
from assistant.errors import ConfigError
from assistant.settings import Settings

TEXTS = [
    "My Skerry Rain Shell arrived with a torn sleeve.",
    "Where is my parcel? Tracking has not moved for a week.",
    "I can't log in, the password reset e-mail never arrives.",
    "Can I return trousers that don't fit if the tags are still on?",
]


def cos(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_primed_queries_are_served_from_the_cache_with_the_same_vectors():
    primed = Embedder()
    assert primed.prime_queries(TEXTS + TEXTS[:1]) == len(TEXTS)  # duplicates are encoded once
    assert primed.prime_queries(TEXTS) == 0  # all cached now

    def no_single_encodes(text):
        raise AssertionError(f"embedded again: {text!r}")

    primed._encode_one = no_single_encodes
    single = Embedder()
    for text in TEXTS:
        assert cos(primed.embed_query(text), single.embed_query(text)) > 0.9999


def test_priming_never_grows_the_cache_past_its_size():
    e = Embedder(cache_size=3)
    e.prime_queries(TEXTS)
    assert len(e._cache) == 3 and TEXTS[-1] in e._cache and TEXTS[0] not in e._cache


def test_bf16_embeddings_stay_close_to_fp32():
    fp32 = Embedder().embed(TEXTS)
    bf16 = Embedder(precision="bf16")
    assert bf16.precision == "bf16"
    vectors = bf16.embed(TEXTS)
    assert len(vectors) == len(TEXTS) and len(vectors[0]) == 384
    for a, b in zip(fp32, vectors, strict=True):
        assert cos(a, b) > 0.99
    # the fp32 model (the store's) is untouched by the bf16 copy
    assert cos(Embedder().embed(TEXTS[:1])[0], fp32[0]) > 0.99999


def test_precision_settings():
    assert resolve_precision("fp32") == "fp32" and resolve_precision("BF16") == "bf16"
    assert resolve_precision("auto") == ("bf16" if bf16_native() else "fp32")
    with pytest.raises(ConfigError, match="fp32"):
        resolve_precision("fp16")
    assert Settings.from_env({}).eval_embedding_precision == "auto"
    assert Settings.from_env({"ASSISTANT_EVAL_EMBEDDING_PRECISION": "FP32"}).eval_embedding_precision == "fp32"
    with pytest.raises(ConfigError, match="ASSISTANT_EVAL_EMBEDDING_PRECISION"):
        Settings.from_env({"ASSISTANT_EVAL_EMBEDDING_PRECISION": "int4"})


class RecordingEmbedder:
    """Records the batches it is asked to prime."""

    cache_size = 256

    def __init__(self, fail: bool = False):
        self.batches: list[list[str]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def prime_queries(self, texts):
        if self.fail:
            raise RuntimeError("model exploded")
        with self.lock:
            self.batches.append(list(texts))
        return len(texts)


def wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_primer_stays_a_bounded_window_ahead_of_the_finished_cases():
    from assistant.evaluation.runner import _QueryPrimer

    texts = [f"message {i}" for i in range(300)]
    fake = RecordingEmbedder()
    primer = _QueryPrimer(fake, texts + [None])  # refused messages (None) are skipped
    assert primer.ahead == 64  # half the cache minus a window: nothing is evicted before it is used
    primer.start()
    assert fake.batches[0] == texts[:64]  # the first window is ready before any worker starts
    assert wait_for(lambda: len(fake.batches) == 2)
    time.sleep(0.2)
    assert len(fake.batches) == 2  # 128 would be more than 64 ahead of 0 finished cases
    for _ in range(64):
        primer.advance()
    assert wait_for(lambda: len(fake.batches) == 3)
    for _ in range(300):
        primer.advance()
    assert wait_for(lambda: len(fake.batches) == 5)
    primer.stop()
    assert [t for b in fake.batches for t in b] == texts


def test_primer_failure_is_silent_because_the_drafts_embed_their_own_messages():
    from assistant.evaluation.runner import _QueryPrimer

    primer = _QueryPrimer(RecordingEmbedder(fail=True), [f"m{i}" for i in range(200)])
    primer.start()
    primer.stop()  # returns: the thread saw the failure and ended
    assert primer._thread is None or not primer._thread.is_alive()
    # an embedder without prime_queries (a test double) simply means no priming
    _QueryPrimer(object(), ["x"]).start()
