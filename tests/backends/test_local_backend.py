"""LocalBackend: the real Gemma 3 270M through llama.cpp (slow), plus its stream handling on scripted
completions (fast)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.backends import DraftContext, GenerationRequest, Timeframe
from assistant.backends.local import LocalBackend, load_count
from assistant.errors import BackendUnavailableError, IncompleteDraftError
from assistant.settings import Settings

needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"
)

FEW_SHOT = """Below are replies written by the Acme Store support team to customer messages.

Customer: Hi, my order #4411 was supposed to arrive on Monday and it still hasn't come. Can you check?
Agent: Hi Dana, thank you for letting us know, and I'm sorry your order is late. I have asked the carrier to trace it and we will update you within 2 business days. If you have any questions in the meantime, just reply to this email.
###
Customer: I was charged twice for my last order. Please fix this.
Agent: Hi Omar, I'm sorry about the double charge. I can confirm the duplicate payment and we will refund it within 5 business days. Let us know if you have any other questions.
###
Customer: My parcel arrived but the mug inside was broken.
Agent:"""


def make_request(prompt: str = FEW_SHOT, **overrides) -> GenerationRequest:
    context = DraftContext(
        message="My parcel arrived but the mug inside was broken.",
        knowledge=[],
        tickets=[],
        category="damaged",
        category_label="Damaged item",
        timeframe=Timeframe("within 2 business days", 0, 48),
        first_response=None,
        may_offer=["replacement"],
        business={"name": "Acme Store"},
    )
    fields = {
        "system": "",
        "prompt": "",
        "completion_prompt": prompt,
        "context": context,
        "max_tokens": 120,
        "temperature": 0.0,
    }
    fields.update(overrides)
    return GenerationRequest(**fields)


def test_bogus_model_path_names_the_path(tmp_path: Path):
    bogus = tmp_path / "no-such-model.gguf"
    with pytest.raises(BackendUnavailableError, match="no-such-model.gguf"):
        LocalBackend(Settings(local_model_path=bogus))
    assert not LocalBackend.available(Settings(local_model_path=bogus))


@pytest.mark.slow
@needs_llama
def test_gemma_completes_a_few_shot_prompt_and_loads_once():
    # A context size no other test uses, so this test owns the cached model and can count loads.
    settings = Settings(local_context=1536)
    before = load_count()
    backend = LocalBackend(settings)
    assert backend.name == "local" and backend.is_llm
    assert backend.model.endswith(".gguf") and "gemma" in backend.model

    first = "".join(backend.generate(make_request()))
    second = "".join(LocalBackend(settings).generate(make_request(max_tokens=60)))

    assert first.strip() and second.strip()
    assert "\nCustomer:" not in first  # the default stop sequences end the reply
    assert load_count() - before == 1


@pytest.mark.slow
@needs_llama
def test_gemma_cut_by_max_tokens_ends_on_a_sentence():
    try:
        text = "".join(LocalBackend(Settings()).generate(make_request(max_tokens=40)))
    except IncompleteDraftError:
        return  # not one whole sentence in 40 tokens: correctly refused
    assert text.rstrip()[-1] in ".!?)\"'" or text.endswith("\n"), text


class ScriptedLlama:
    """Stands in for `llama_cpp.Llama.create_completion` with a fixed stream of chunks."""

    def __init__(self, pieces: list[str], finish_reason: str | None, error: Exception | None = None):
        self.pieces, self.finish_reason, self.error = pieces, finish_reason, error
        self.calls: list[dict] = []

    def create_completion(self, prompt: str, **kwargs) -> Iterator[dict]:
        self.calls.append({"prompt": prompt, **kwargs})
        return self._chunks()

    def _chunks(self) -> Iterator[dict]:
        for n, piece in enumerate(self.pieces):
            last = n == len(self.pieces) - 1
            yield {"choices": [{"text": piece, "finish_reason": self.finish_reason if last else None}]}
            if self.error is not None and last:
                raise self.error


@pytest.fixture
def stream(tmp_path: Path) -> Callable[[ScriptedLlama], str]:
    """Runs LocalBackend's stream handling on a scripted completion; no model is loaded."""
    placeholder = tmp_path / "placeholder.gguf"
    placeholder.write_bytes(b"GGUF" + bytes(28))  # passes the file check, never loaded
    backend = LocalBackend(Settings(local_model_path=placeholder))
    return lambda llm: "".join(backend._stream(llm, make_request()))


def test_finished_reply_is_passed_through_with_default_stops(stream: Callable[[ScriptedLlama], str]):
    llm = ScriptedLlama([" Hi Sam,", " sorry about", " the mug. We will", " send a new one"], "stop")
    assert stream(llm) == "Hi Sam, sorry about the mug. We will send a new one"
    assert llm.calls[0]["stop"] == ["\nCustomer:", "\n###", "<end_of_turn>"]
    assert llm.calls[0]["stream"] is True and llm.calls[0]["max_tokens"] == 120


def test_reply_cut_by_max_tokens_is_trimmed_to_the_last_sentence(stream: Callable[[ScriptedLlama], str]):
    llm = ScriptedLlama([" Hi Sam, sorry", " about the mug. We", " will send a new one and"], "length")
    assert stream(llm) == "Hi Sam, sorry about the mug."


def test_reply_cut_before_one_sentence_is_incomplete(stream: Callable[[ScriptedLlama], str]):
    llm = ScriptedLlama([" Hi Sam,\n\nsorry about the"], "length")
    with pytest.raises(IncompleteDraftError) as caught:
        stream(llm)
    assert caught.value.partial == "Hi Sam,\n\nsorry about the"


def test_stream_broken_by_an_exception_is_incomplete(stream: Callable[[ScriptedLlama], str]):
    llm = ScriptedLlama([" Hi Sam. Sorry", " about"], None, error=RuntimeError("llama_decode returned -1"))
    with pytest.raises(IncompleteDraftError, match="llama_decode") as caught:
        stream(llm)
    assert caught.value.partial == "Hi Sam. Sorry about"
