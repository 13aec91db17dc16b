"""Row "no network": during the suite, sockets reach nothing but loopback, and the product still works."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests import _netguard


def test_the_guard_is_active_for_the_whole_session():
    assert _netguard.installed()


@pytest.mark.parametrize(
    "address",
    [("10.255.255.1", 80), ("8.8.8.8", 53), ("93.184.216.34", 443), ("::ffff:10.0.0.1", 80)],
)
def test_connecting_outside_is_refused_before_any_packet(address, monkeypatch):
    calls = []
    monkeypatch.setattr(_netguard, "_real_connect", lambda *a: calls.append(a))
    monkeypatch.setattr(_netguard, "_real_connect_ex", lambda *a: calls.append(a) or 0)
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    start = time.monotonic()
    with socket.socket(family, socket.SOCK_STREAM) as s:
        with pytest.raises(_netguard.NetworkBlockedError, match="not loopback"):
            s.connect(address)
        assert s.connect_ex(address) != 0
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=5)
    assert calls == []  # the real connect() was never reached: nothing was sent
    assert time.monotonic() - start < 1  # refused at once, not after a network timeout


def test_dns_lookups_of_outside_names_are_refused():
    with pytest.raises(_netguard.NetworkBlockedError):
        socket.getaddrinfo("example.com", 443)
    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo("127.0.0.1", 80)


def test_loopback_and_unix_sockets_still_work(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        accepted = []
        t = threading.Thread(target=lambda: accepted.append(server.accept()[0].recv(5)))
        t.start()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"hello")
        t.join(5)
        assert accepted == [b"hello"]
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen(1)
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(str(path))


def test_the_openai_backend_fails_clearly_without_network(settings):
    """The default endpoint (api.openai.com) is unreachable here: a clear error, no hang."""
    from assistant.backends.base import GenerationRequest
    from assistant.backends.openai_backend import OpenAIBackend
    from assistant.errors import BackendUnavailableError
    from tests.security.helpers import make_context

    backend = OpenAIBackend(settings.with_(openai_api_key="sk-test", model="gpt-test", max_retries=0, timeout_s=5))
    request = GenerationRequest(system="s", prompt="p", completion_prompt="c", context=make_context("hi"))
    start = time.monotonic()
    with pytest.raises(BackendUnavailableError, match="Cannot reach"):
        list(backend.generate(request))
    assert time.monotonic() - start < 5
