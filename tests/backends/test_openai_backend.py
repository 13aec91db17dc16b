"""OpenAIBackend against a scripted HTTP server (httpx.MockTransport): the real `openai` client runs,
including its retries, streaming and error classes; only the network is replaced."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from assistant.backends import DraftContext, GenerationRequest, Timeframe
from assistant.backends.openai_backend import OpenAIBackend
from assistant.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigError,
    IncompleteDraftError,
    RateLimitedError,
)
from assistant.settings import Settings

BASE_URL = "http://model.test/v1"


def make_request(**overrides) -> GenerationRequest:
    context = DraftContext(
        message="My parcel is late.",
        knowledge=[],
        tickets=[],
        category="shipping",
        category_label="Shipping",
        timeframe=Timeframe("within 2 business days", 0, 48),
        first_response=None,
        may_offer=[],
        business={"name": "Acme", "support_email": "help@acme.test"},
    )
    fields = {
        "system": "You write support replies.",
        "prompt": "Customer: My parcel is late.",
        "completion_prompt": "Customer: My parcel is late.\nAgent:",
        "context": context,
        "max_tokens": 123,
    }
    fields.update(overrides)
    return GenerationRequest(**fields)


def chunk(content: str | None = None, finish: str | None = None) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "test-model",
        "choices": [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}],
    }


def sse(*chunks: dict, done: bool = True) -> bytes:
    events = [f"data: {json.dumps(c)}\n\n" for c in chunks]
    if done:
        events.append("data: [DONE]\n\n")
    return "".join(events).encode()


class BrokenStream(httpx.SyncByteStream):
    """A response body that sends `head`, then loses the connection."""

    def __init__(self, head: bytes):
        self.head = head

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


class Server:
    """Answers every request with `respond(request)` and keeps the requests it got."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]):
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)


def backend_for(server: Server, **settings) -> OpenAIBackend:
    values = {"openai_base_url": BASE_URL, "model": "test-model", "max_retries": 2, "timeout_s": 2.0}
    values.update(settings)
    client = httpx.Client(transport=httpx.MockTransport(server))
    return OpenAIBackend(Settings(**values), http_client=client)


def streaming(body: bytes | httpx.SyncByteStream, status: int = 200) -> httpx.Response:
    headers = {"content-type": "text/event-stream"}
    if isinstance(body, bytes):
        return httpx.Response(status, headers=headers, content=body)
    return httpx.Response(status, headers=headers, stream=body)


def test_streamed_answer_is_assembled_and_max_tokens_sent():
    body = sse(chunk("Hi Sam, "), chunk("sorry about "), chunk("the delay."), chunk(finish="stop"))
    server = Server(lambda request: streaming(body))
    backend = backend_for(server)

    pieces = list(backend.generate(make_request(stop=["\nCustomer:"])))

    assert pieces == ["Hi Sam, ", "sorry about ", "the delay."]
    sent = json.loads(server.requests[0].content)
    assert sent["max_tokens"] == 123
    assert sent["stream"] is True
    assert sent["model"] == "test-model"
    assert sent["stop"] == ["\nCustomer:"]
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert sent["messages"][1]["content"] == "Customer: My parcel is late."
    assert server.requests[0].url == BASE_URL + "/chat/completions"
    # No key configured with a local base URL: a placeholder is sent, not the environment's key.
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"
    assert (backend.name, backend.model, backend.is_llm) == ("openai", "test-model", True)


def test_rate_limit_is_retried_then_raised_with_retry_after():
    server = Server(lambda request: httpx.Response(429, headers={"retry-after": "0.01"}, json={}))
    backend = backend_for(server, max_retries=2)

    with pytest.raises(RateLimitedError, match="retry after 0.01 s"):
        list(backend.generate(make_request()))
    assert len(server.requests) == 3  # the first try and max_retries retries


def test_server_error_is_retried_then_raised():
    # retry-after-ms keeps the client's backoff at 1 ms instead of ~0.5 s per retry.
    server = Server(lambda request: httpx.Response(500, headers={"retry-after-ms": "1"}, json={}))
    backend = backend_for(server, max_retries=1)

    with pytest.raises(BackendError, match="HTTP 500") as caught:
        list(backend.generate(make_request()))
    assert type(caught.value) is BackendError
    assert len(server.requests) == 2


def test_bad_credentials_say_which_setting_to_check():
    server = Server(lambda request: httpx.Response(401, json={"error": {"message": "bad key"}}))
    backend = backend_for(server, openai_api_key="sk-wrong")

    with pytest.raises(BackendUnavailableError, match="HTTP 401") as caught:
        list(backend.generate(make_request()))
    assert "OPENAI_API_KEY" in (caught.value.hint or "")
    assert len(server.requests) == 1  # 4xx other than 408/409/429 is not retried


def test_connect_error_names_the_server():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    server = Server(refuse)
    backend = backend_for(server, max_retries=1)

    with pytest.raises(BackendUnavailableError, match="model.test"):
        list(backend.generate(make_request()))
    assert len(server.requests) == 2


def test_timeout_says_how_long_it_waited():
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    backend = backend_for(Server(hang), max_retries=0, timeout_s=0.5)

    with pytest.raises(BackendTimeoutError, match="did not answer within 0.5 s"):
        list(backend.generate(make_request()))


def test_stream_ending_without_finish_reason_is_incomplete():
    body = sse(chunk("Hi Sam, we "), chunk("will refund"), done=False)
    backend = backend_for(Server(lambda request: streaming(body)))

    pieces: list[str] = []
    with pytest.raises(IncompleteDraftError) as caught:
        for piece in backend.generate(make_request()):
            pieces.append(piece)
    assert caught.value.partial == "Hi Sam, we will refund"
    assert "".join(pieces) == caught.value.partial


def test_stream_cut_by_the_network_is_incomplete():
    head = sse(chunk("Hi Sam, "), chunk("your order"), done=False)
    backend = backend_for(Server(lambda request: streaming(BrokenStream(head))))

    with pytest.raises(IncompleteDraftError, match="broke off") as caught:
        list(backend.generate(make_request()))
    assert caught.value.partial == "Hi Sam, your order"


def test_reply_hitting_max_tokens_is_incomplete():
    body = sse(chunk("Hi Sam, thanks for"), chunk(finish="length"))
    backend = backend_for(Server(lambda request: streaming(body)))

    with pytest.raises(IncompleteDraftError, match="the reply hit max_tokens") as caught:
        list(backend.generate(make_request()))
    assert caught.value.partial == "Hi Sam, thanks for"


def test_settings_checks():
    assert OpenAIBackend.configured(Settings(openai_base_url=BASE_URL))
    assert OpenAIBackend.configured(Settings(openai_api_key="sk-test"))
    assert not OpenAIBackend.configured(Settings())
    with pytest.raises(ConfigError) as caught:
        OpenAIBackend(Settings(openai_base_url=BASE_URL))
    assert "ASSISTANT_MODEL" in (caught.value.hint or "")
    with pytest.raises(ConfigError):
        OpenAIBackend(Settings(model="gpt-4o-mini"))
