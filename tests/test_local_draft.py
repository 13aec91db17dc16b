"""`--backend local`: a labelled draft from the real Gemma 3 270M model through the whole pipeline."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_local_backend_drafts_with_gemma(kb_settings):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is installed by `make install`")
    env = {"ASSISTANT_DATA_DIR": str(kb_settings.data_dir), "ASSISTANT_MAX_TOKENS": "160"}
    r = run_cli("draft", "My jacket arrived with a torn sleeve, order 4521", "--backend", "local", "--json", env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["backend"] == "local" and d["llm"] is True
    assert d["model"].endswith(".gguf") and "gemma" in d["model"].lower()
    assert d["model"] in d["label"]
    assert len(d["text"].split()) >= 5
    assert d["attempts"] in (1, 2)
    # The checks ran on the model's text, whatever it wrote (a 270M base model may well fail some).
    assert set(d["checks"]) >= {"acknowledges", "apologizes", "timeframe", "unsupported"}
    assert d["timings_ms"]["first_token_ms"] > 0
