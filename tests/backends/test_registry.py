"""Backend registry: names, the "auto" order, lazy imports, and the scripted FakeBackend."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.backends import (
    Backend,
    DraftContext,
    GenerationRequest,
    Timeframe,
    get_backend,
    resolve_backend_name,
)
from assistant.backends import base as backends_base
from assistant.backends.fake import FakeBackend
from assistant.backends.openai_backend import OpenAIBackend
from assistant.errors import BackendUnavailableError, ConfigError, IncompleteDraftError
from assistant.settings import PROJECT_ROOT, Settings

HAS_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None


def make_request() -> GenerationRequest:
    context = DraftContext(
        message="I was charged twice.",
        knowledge=[],
        tickets=[],
        category="billing",
        category_label="Billing",
        timeframe=Timeframe("within 3 business days", 0, 72),
        first_response=None,
        may_offer=[],
        business={"name": "Acme", "support_email": "help@acme.test"},
    )
    return GenerationRequest(system="s", prompt="p", completion_prompt="c", context=context)


@pytest.fixture
def fake_gguf(tmp_path: Path) -> Path:
    """A file that looks like a GGUF model (the magic bytes) without being one."""
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + bytes(28))
    return path


def test_unknown_backend_lists_the_registered_ones():
    with pytest.raises(ConfigError) as caught:
        get_backend("gpt-17", Settings())
    message = str(caught.value)
    assert "'gpt-17'" in message
    for name in ("composer", "fake", "local", "openai"):
        assert name in message


def test_auto_prefers_a_configured_openai_server(fake_gguf: Path):
    # Even with a usable local model, a configured server wins.
    assert (
        resolve_backend_name(Settings(openai_base_url="http://127.0.0.1:9/v1", local_model_path=fake_gguf))
        == "openai"
    )
    assert resolve_backend_name(Settings(openai_api_key="sk-test")) == "openai"


@pytest.mark.skipif(not HAS_LLAMA_CPP, reason="llama-cpp-python is not installed")
def test_auto_falls_back_to_local_when_its_model_file_is_there(fake_gguf: Path):
    assert resolve_backend_name(Settings(local_model_path=fake_gguf)) == "local"


def test_auto_falls_back_to_composer_without_a_usable_model(tmp_path: Path):
    missing = tmp_path / "missing.gguf"
    assert resolve_backend_name(Settings(local_model_path=missing)) == "composer"
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("not a model")
    assert resolve_backend_name(Settings(local_model_path=not_gguf)) == "composer"


def test_explicit_names_are_kept():
    assert resolve_backend_name(Settings(openai_api_key="sk-test"), "fake") == "fake"


def test_get_backend_builds_by_name_and_auto():
    fake = get_backend("fake", Settings())
    assert isinstance(fake, FakeBackend) and isinstance(fake, Backend)
    chosen = get_backend("auto", Settings(openai_base_url="http://127.0.0.1:9/v1", model="m"))
    assert isinstance(chosen, OpenAIBackend)


def test_local_backend_with_a_missing_file_names_the_path(tmp_path: Path):
    missing = tmp_path / "nowhere.gguf"
    with pytest.raises(BackendUnavailableError, match="nowhere.gguf"):
        get_backend("local", Settings(local_model_path=missing))


def test_lazy_backend_whose_module_is_missing(monkeypatch: pytest.MonkeyPatch):
    import assistant.backends as backends

    monkeypatch.setitem(backends_base._REGISTRY, "ghost", backends._lazy("assistant.backends.ghost:Ghost"))
    with pytest.raises(BackendUnavailableError, match="assistant.backends.ghost"):
        get_backend("ghost", Settings())


def test_importing_the_registry_stays_light():
    code = (
        "import sys, assistant.backends; print(sorted({'openai', 'llama_cpp', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_fake_backend_plays_its_script_and_records_requests():
    fake = FakeBackend(replies=["First draft.", "Second draft."], chunk_size=4)
    first, second, third = make_request(), make_request(), make_request()
    assert list(fake.generate(first)) == ["Firs", "t dr", "aft."]
    assert "".join(fake.generate(second)) == "Second draft."
    assert "".join(fake.generate(third)) == "Second draft."  # the last reply repeats
    assert fake.requests == [first, second, third]


def test_fake_backend_default_reply_uses_the_context():
    reply = "".join(FakeBackend().generate(make_request()))
    assert "within 3 business days" in reply
    assert "sorry" in reply.lower() and "questions" in reply.lower()
    assert "help@acme.test" in reply


def test_fake_backend_fails_on_request():
    failing = FakeBackend(
        replies=["Hello there, friend."], fail_with=IncompleteDraftError("cut", partial="x"), fail_after=1
    )
    pieces: list[str] = []
    with pytest.raises(IncompleteDraftError):
        for piece in failing.generate(make_request()):
            pieces.append(piece)
    assert pieces == ["Hello th"]
    assert len(failing.requests) == 1
