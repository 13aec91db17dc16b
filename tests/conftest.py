"""Shared fixtures: an isolated data dir per test, and one ingested copy of the sample knowledge base."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# Tests never read the developer's own configuration.
for _name in [n for n in os.environ if n.startswith("ASSISTANT_") or n in ("OPENAI_BASE_URL", "OPENAI_API_KEY")]:
    del os.environ[_name]


@pytest.fixture
def settings(tmp_path):
    from assistant.settings import Settings

    return Settings.from_env({"ASSISTANT_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
def embedder():
    from assistant.embeddings import Embedder

    return Embedder()


@pytest.fixture
def store(settings):
    from assistant.embeddings import DIMENSION, MODEL_NAME
    from assistant.store import KnowledgeStore

    return KnowledgeStore(settings, model_name=MODEL_NAME, dimension=DIMENSION)


@pytest.fixture(scope="session")
def kb_data_dir(tmp_path_factory):
    """A data dir holding the whole sample knowledge base, ingested once per test session."""
    from assistant.embeddings import DIMENSION, MODEL_NAME, Embedder
    from assistant.ingest import ingest
    from assistant.settings import Settings
    from assistant.store import KnowledgeStore

    data = tmp_path_factory.mktemp("kb") / "data"
    s = Settings.from_env({"ASSISTANT_DATA_DIR": str(data)})
    store = KnowledgeStore(s, model_name=MODEL_NAME, dimension=DIMENSION)
    report = ingest([ROOT / "knowledge_base"], store, Embedder(), progress=False)
    assert report.embedded > 100, report.to_dict()
    return data


@pytest.fixture(scope="session")
def small_kb(tmp_path_factory):
    """The small sample knowledge base of tests/security and tests/faults, ingested once per session
    (read-only: copy it before writing)."""
    from tests.security.helpers import small_kb_data_dir

    return small_kb_data_dir(tmp_path_factory)


@pytest.fixture
def kb_settings(kb_data_dir, tmp_path):
    """Settings on a private copy of the ingested sample knowledge base (tests may write to it)."""
    from assistant.settings import Settings

    data = tmp_path / "data"
    shutil.copytree(kb_data_dir, data)
    return Settings.from_env({"ASSISTANT_DATA_DIR": str(data)})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real `assistant` command in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args],
        cwd=ROOT,
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
pytest_plugins = ["tests._netguard"]  # sockets may reach loopback / AF_UNIX only (SECURITY.md)
