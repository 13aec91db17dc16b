"""Row "input flood": a 2 MB message; many rapid requests.

An oversized message is refused before retrieval and before any model call (API, CLI argument, stdin
and batch); stdin is never read unbounded; every generation request carries max_tokens; the UI allows
a fixed number of drafts per minute per session and refuses the rest before drafting.
"""

from __future__ import annotations

import json

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import ConfigError, MessageTooLongError, RateLimitExceededError
from assistant.settings import Settings
from assistant.wiring import build_drafter, reset_cache
from tests.conftest import run_cli
from tests.faults.fault_server import FaultServer
from tests.security.helpers import ROOT

FLOOD = ("My jacket arrived torn. " * 90_000)[: 2 * 1024 * 1024]  # 2 MB


class CountingRetriever:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        self.calls += 1
        return getattr(self.inner, name)


def test_a_2mb_message_is_refused_before_retrieval_and_any_model_call(kb_module_settings):
    assert len(FLOOD.encode()) == 2 * 1024 * 1024
    fake = FakeBackend()
    drafter = build_drafter(kb_module_settings, backend=fake)
    drafter.retriever = spy = CountingRetriever(drafter.retriever)
    with pytest.raises(MessageTooLongError, match=r"2,097,152 characters; the limit is 20,000"):
        drafter.draft(FLOOD)
    assert fake.requests == [] and spy.calls == 0


@pytest.mark.slow
def test_the_cli_refuses_a_2mb_message_on_stdin_without_calling_the_model(kb_module_settings):
    with FaultServer() as server:
        r = run_cli("draft", "--backend", "openai", "-", input=FLOOD, env={
            "ASSISTANT_DATA_DIR": str(kb_module_settings.data_dir), "OPENAI_BASE_URL": server.url("ok"),
            "ASSISTANT_MODEL": "fault-model"})
        assert r.returncode == 2, r.stderr
        assert r.stdout == ""
        assert "error: The customer message on stdin is longer than the limit of 20,000 characters." in r.stderr
        assert server.requests == []


class _Stdin:
    def __init__(self):
        self.reads: list[int | None] = []
        self.buffer = self

    def isatty(self):
        return False

    def read(self, n=None):
        self.reads.append(n)
        if n is None or n < 0:
            raise AssertionError("stdin read without a bound")
        return b"a" * n


def test_stdin_is_never_read_without_a_bound(kb_module_settings, monkeypatch, capsys):
    from assistant.cli import main

    stdin = _Stdin()
    monkeypatch.setattr("sys.stdin", stdin)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(kb_module_settings.data_dir))
    monkeypatch.setenv("ASSISTANT_MAX_MESSAGE_CHARS", "1000")
    try:
        assert main(["draft", "--backend", "fake", "-"]) == 2
    finally:
        reset_cache()
    assert stdin.reads and all(n is not None and n <= 4 * 1000 + 1 for n in stdin.reads)
    assert "longer than the limit of 1,000 characters" in capsys.readouterr().err


def test_an_oversized_batch_line_fails_alone(kb_module_settings, tmp_path, monkeypatch, capsys):
    from assistant.backends import base
    from assistant.cli import main

    fake = FakeBackend()
    monkeypatch.setitem(base._REGISTRY, "fake", lambda s: fake)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(kb_module_settings.data_dir))
    batch = tmp_path / "batch.jsonl"
    batch.write_text(json.dumps({"id": "flood", "message": FLOOD}) + "\n"
                     + json.dumps({"id": "ok", "message": "My jacket arrived with a torn sleeve"}) + "\n")
    try:
        assert main(["draft", "--backend", "fake", "--batch", str(batch)]) == 4
    finally:
        reset_cache()
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["id"] == "flood" and lines[0]["error_type"] == "MessageTooLongError"
    assert lines[1]["id"] == "ok" and lines[1]["text"]
    assert all("torn." not in r.context.message or len(r.context.message) < 100 for r in fake.requests)
    assert len(fake.requests) == lines[1]["attempts"]


def test_max_tokens_is_set_on_every_generation_request(kb_module_settings):
    settings = kb_module_settings.with_(max_tokens=77)
    fake = FakeBackend(["ok"])  # fails the checks, so the draft is regenerated once
    build_drafter(settings, backend=fake).draft("My jacket arrived with a torn sleeve")
    assert len(fake.requests) == 2
    assert all(r.max_tokens == 77 for r in fake.requests)


@pytest.mark.parametrize("raw", ["0", "-5", "lots", "15"])
def test_max_tokens_cannot_be_unset_or_tiny(raw):
    with pytest.raises(ConfigError, match="ASSISTANT_MAX_TOKENS"):
        Settings.from_env({"ASSISTANT_MAX_TOKENS": raw})
    assert Settings.from_env({}).max_tokens == 400


def test_the_rate_limiter_counts_per_session_in_a_rolling_minute():
    from ui.shared import RateLimiter

    limiter = RateLimiter()
    for i in range(5):
        limiter.check("a", 5, now=100.0 + i)
    with pytest.raises(RateLimitExceededError, match="5 drafts in the last minute"):
        limiter.check("a", 5, now=110.0)
    limiter.check("b", 5, now=110.0)  # another session is not affected
    limiter.check("a", 5, now=160.5)  # the first hit left the window


def test_the_ui_refuses_drafts_over_the_rate_limit_before_any_model_call(kb_module_settings, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from assistant.backends import base

    fake = FakeBackend()
    monkeypatch.setitem(base._REGISTRY, "fake", lambda s: fake)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(kb_module_settings.data_dir))
    monkeypatch.setenv("ASSISTANT_BACKEND", "fake")
    monkeypatch.setenv("ASSISTANT_UI_RATE_LIMIT", "2")
    try:
        at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=180).run()
        at.text_area(key="message").set_value("My jacket arrived with a torn sleeve")
        calls = []
        for _ in range(3):
            [b for b in at.button if b.label in ("Draft reply",)][0].click().run()
            assert not at.exception, [e.value for e in at.exception]
            calls.append(len(fake.requests))
        assert calls[0] >= 1 and calls[1] > calls[0]
        assert calls[2] == calls[1]  # the third draft never reached the backend
        assert any("limit" in str(e.value) for e in at.error)
    finally:
        reset_cache()


def test_a_huge_message_is_also_refused_in_the_ui(kb_module_settings, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from assistant.backends import base

    fake = FakeBackend()
    monkeypatch.setitem(base._REGISTRY, "fake", lambda s: fake)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(kb_module_settings.data_dir))
    monkeypatch.setenv("ASSISTANT_BACKEND", "fake")
    try:
        at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=180).run()
        at.text_area(key="message").set_value(FLOOD[:200_000])
        [b for b in at.button if b.label == "Draft reply"][0].click().run()
        assert not at.exception
        errors = [str(e.value).replace("\\", "") for e in at.error]
        assert any("the limit is 20,000" in e for e in errors), errors
        assert fake.requests == []
    finally:
        reset_cache()

