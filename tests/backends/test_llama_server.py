"""OpenAIBackend against a real OpenAI-compatible server: llama.cpp's, serving Gemma 3 270M on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.backends import DraftContext, GenerationRequest, Timeframe
from assistant.backends.local import resolve_model_path
from assistant.backends.openai_backend import OpenAIBackend
from assistant.errors import IncompleteDraftError
from assistant.settings import Settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed (pip install 'support-reply-assistant[local]')",
    ),
]

START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base_url, model id) of a llama.cpp server, killed after the module whatever happens."""
    model = resolve_model_path(Settings())
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log_path.open("wb") as log:  # a file, not a pipe: a full pipe would block the server
        server = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
            + ["--port", str(port), "--n_ctx", "2048"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base_url = f"http://127.0.0.1:{port}/v1"
            model_id = wait_for_models(server, base_url, log_path)
            yield base_url, model_id
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def wait_for_models(server: subprocess.Popen, base_url: str, log_path: Path) -> str:
    """Poll /models until the server answers; return the first model id."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"llama.cpp server exited with {server.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            response = httpx.get(f"{base_url}/models", timeout=2.0)
            if response.status_code == 200:
                return response.json()["data"][0]["id"]
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.25)
    pytest.fail(
        f"llama.cpp server did not answer within {START_TIMEOUT_S:g} s:\n{log_path.read_text()[-2000:]}"
    )


def test_openai_backend_drafts_through_llama_server(llama_server: tuple[str, str]):
    base_url, model_id = llama_server
    settings = Settings(openai_base_url=base_url, model=model_id, timeout_s=60.0, max_retries=0)
    backend = OpenAIBackend(settings)
    context = DraftContext(
        message="My parcel is a week late.",
        knowledge=[],
        tickets=[],
        category="shipping",
        category_label="Shipping",
        timeframe=Timeframe("within 2 business days", 0, 48),
        first_response=None,
        may_offer=[],
        business={"name": "Acme Store"},
    )
    request = GenerationRequest(
        system="You are a friendly support agent for Acme Store. Reply to the customer in two sentences.",
        prompt="Customer message: My parcel is a week late. Where is it?",
        completion_prompt="",
        context=context,
        max_tokens=48,
        temperature=0.0,
    )

    pieces: list[str] = []
    try:
        for piece in backend.generate(request):
            pieces.append(piece)
    except IncompleteDraftError as exc:
        # A 270M base model may well talk until max_tokens; the stream itself is what is tested here.
        assert exc.partial == "".join(pieces)
    finally:
        backend.close()

    assert len(pieces) > 1, "expected a streamed reply in several pieces"
    assert "".join(pieces).strip()
