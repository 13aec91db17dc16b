"""Row "LLM faults": a local OpenAI-compatible server that hangs, answers 429 with retry-after, answers 5xx,
or cuts a stream mid-way (tests/faults/fault_server.py, on 127.0.0.1).

Each fault is a timeout or a clear error after a bounded number of retries (counted at the server);
a cut stream is an IncompleteDraftError and never a finished draft, through the backend, the Drafter
and the `assistant draft --backend openai` command. Every request body carries max_tokens.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from assistant.backends.base import GenerationRequest
from assistant.backends.openai_backend import OpenAIBackend
from assistant.errors import (
    BackendError,
    BackendTimeoutError,
    IncompleteDraftError,
    RateLimitedError,
)
from assistant.wiring import build_drafter, reset_cache
from tests.faults.fault_server import PARTIAL
from tests.security.helpers import ROOT, make_context

pytestmark = pytest.mark.slow

MESSAGE = "My jacket arrived with a torn sleeve, order 4521"
TIMEOUT_S, RETRIES = 1.0, 1


def settings_for(base, server, mode: str):
    return base.with_(openai_base_url=server.url(mode), model="fault-model", timeout_s=TIMEOUT_S,
                      max_retries=RETRIES, backend="openai")


def generate(settings) -> str:
    request = GenerationRequest(system="system", prompt="prompt", completion_prompt="", context=make_context(MESSAGE),
                                max_tokens=settings.max_tokens)
    backend = OpenAIBackend(settings)
    try:
        return "".join(backend.generate(request))
    finally:
        backend.close()


def test_the_fault_server_speaks_the_protocol(fault_kb, fault_server):
    settings = settings_for(fault_kb, fault_server, "ok")
    result = build_drafter(settings).draft(MESSAGE)
    assert result.backend == "openai" and "Fernway Outfitters Support" in result.text
    for r in fault_server.of("ok"):
        assert r["body"]["max_tokens"] == settings.max_tokens and r["body"]["stream"] is True


def test_a_hanging_server_times_out_with_a_clear_error(fault_kb, fault_server):
    start = time.monotonic()
    with pytest.raises(BackendTimeoutError) as err:
        generate(settings_for(fault_kb, fault_server, "hang"))
    assert f"did not answer within 1 s (after {RETRIES} retry)" in str(err.value)
    assert "ASSISTANT_TIMEOUT_S" in err.value.hint
    assert fault_server.count("hang") == 1 + RETRIES
    assert time.monotonic() - start < (1 + RETRIES) * TIMEOUT_S + 5


def test_a_stream_that_stalls_is_incomplete_not_retried(fault_kb, fault_server):
    with pytest.raises(IncompleteDraftError) as err:
        generate(settings_for(fault_kb, fault_server, "stall"))
    assert "broke off mid-reply" in str(err.value) and err.value.partial.startswith(PARTIAL)
    assert fault_server.count("stall") == 1  # text was already streamed: a retry could repeat it


def test_429_is_retried_after_retry_after_then_reported(fault_kb, fault_server):
    with pytest.raises(RateLimitedError) as err:
        generate(settings_for(fault_kb, fault_server, "429"))
    message = str(err.value)
    assert "HTTP 429" in message and f"after {RETRIES} retry" in message and "retry after 1 s" in message
    hits = fault_server.of("429")
    assert len(hits) == 1 + RETRIES
    assert hits[1]["t"] - hits[0]["t"] >= 0.9  # retry-after was honoured


def test_5xx_is_retried_a_bounded_number_of_times(fault_kb, fault_server):
    with pytest.raises(BackendError, match=rf"HTTP 500 \(after {RETRIES} retry\)"):
        generate(settings_for(fault_kb, fault_server, "500"))
    assert fault_server.count("500") == 1 + RETRIES


@pytest.mark.parametrize("mode", ["cut", "cut-abort"])
def test_a_cut_stream_is_incomplete(fault_kb, fault_server, mode):
    with pytest.raises(IncompleteDraftError) as err:
        generate(settings_for(fault_kb, fault_server, mode))
    assert err.value.partial.startswith(PARTIAL)
    assert fault_server.count(mode) == 1


@pytest.mark.parametrize("mode", ["cut", "cut-abort", "stall"])
def test_a_cut_stream_never_becomes_a_draft(fault_kb, fault_server, mode):
    streamed: list[str] = []
    drafter = build_drafter(settings_for(fault_kb, fault_server, mode))
    with pytest.raises(IncompleteDraftError):
        drafter.draft(MESSAGE, on_token=streamed.append)
    assert "".join(streamed).startswith(PARTIAL)  # the UI had shown it as *streaming*, then gets the error


def test_every_request_body_sets_max_tokens(fault_kb, fault_server):
    settings = settings_for(fault_kb, fault_server, "ok").with_(max_tokens=123)
    build_drafter(settings).draft(MESSAGE)
    for mode in ("500", "cut"):
        with pytest.raises(BackendError):
            generate(settings_for(fault_kb, fault_server, mode).with_(max_tokens=123))
    assert fault_server.requests
    assert all(r["body"].get("max_tokens") == 123 for r in fault_server.requests), fault_server.requests


# --- through the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(fault_kb, fault_server, monkeypatch):
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(fault_kb.data_dir))
    monkeypatch.setenv("ASSISTANT_MODEL", "fault-model")
    monkeypatch.setenv("ASSISTANT_TIMEOUT_S", str(TIMEOUT_S))
    monkeypatch.setenv("ASSISTANT_MAX_RETRIES", str(RETRIES))
    yield monkeypatch
    reset_cache()


EXPECTED = {
    "hang": "did not answer within 1 s",
    "stall": "stream broke off mid-reply",
    "429": "HTTP 429",
    "500": "HTTP 500",
    "cut": "stream ended before the reply was finished",
    "cut-abort": "stream broke off mid-reply",
}


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_the_draft_command_prints_one_error_and_no_draft(cli_env, fault_server, capsys, mode):
    from assistant.cli import main

    cli_env.setenv("OPENAI_BASE_URL", fault_server.url(mode))
    rc = main(["draft", "--backend", "openai", MESSAGE])
    out, err = capsys.readouterr()
    assert rc == 3
    assert out == ""  # nothing on stdout that could pass for a draft
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and EXPECTED[mode] in errors[0], err
    assert PARTIAL not in out + err
    assert 1 <= fault_server.count(mode) <= 1 + RETRIES


def test_the_real_command_in_a_subprocess(fault_kb, fault_server):
    """The installed command, as a user runs it: a cut stream and a hang, in parallel processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "OPENAI_"))}
    env.update({"ASSISTANT_DATA_DIR": str(fault_kb.data_dir), "ASSISTANT_MODEL": "fault-model",
                "ASSISTANT_TIMEOUT_S": "1", "ASSISTANT_MAX_RETRIES": "1"})
    procs = {
        mode: subprocess.Popen([sys.executable, "-m", "assistant.cli", "draft", "--backend", "openai", "--json", MESSAGE],
                               cwd=ROOT, env=env | {"OPENAI_BASE_URL": fault_server.url(mode)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for mode in ("cut", "hang")
    }
    for mode, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 3, (mode, err)
        assert out == "", out
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and EXPECTED[mode] in errors[0], err
        assert PARTIAL not in out + err
    assert fault_server.count("cut") == 1 and fault_server.count("hang") == 2
