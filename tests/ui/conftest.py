"""Fixtures for the UI, feedback and template tests: a SMALL ingested knowledge base (fast to build)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KB = ROOT / "knowledge_base"
ARTICLES = (
    "damaged-or-defective-items.md",
    "shipping-and-delivery.md",
    "refunds.md",
    "returns-policy.md",
    "contact-and-support-hours.md",
)
TICKET_LINES = 200
#: A knowledge article whose title and text carry HTML/JS; the UI must show it as inert text.
HOSTILE_ARTICLE = """# Torn jacket repairs <img src=x onerror="window.__xss=3">

If a jacket arrives torn at a seam, send a photo <script>window.__xss=4</script> and we replace it.
Torn sleeves and broken zips on arrival count as damaged items.
"""


def make_small_kb(dest: Path) -> Path:
    """A few articles, the first lines of the resolved tickets and one hostile article, under `dest`."""
    (dest / "articles").mkdir(parents=True)
    (dest / "tickets").mkdir()
    for name in ARTICLES:
        shutil.copy(KB / "articles" / name, dest / "articles" / name)
    (dest / "articles" / "torn-jacket-repairs.md").write_text(HOSTILE_ARTICLE, encoding="utf-8")
    lines = (KB / "tickets" / "resolved_tickets.jsonl").read_text(encoding="utf-8").splitlines()[:TICKET_LINES]
    (dest / "tickets" / "resolved_tickets.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


@pytest.fixture(scope="session")
def small_kb_data_dir(tmp_path_factory) -> Path:
    """A data dir with the small knowledge base ingested once per test session."""
    from assistant.embeddings import DIMENSION, MODEL_NAME
    from assistant.ingest import ingest
    from assistant.settings import Settings
    from assistant.store import KnowledgeStore
    from assistant.wiring import build_embedder

    base = tmp_path_factory.mktemp("ui-kb")
    kb = make_small_kb(base / "knowledge_base")
    data = base / "data"
    settings = Settings.from_env({"ASSISTANT_DATA_DIR": str(data)})
    store = KnowledgeStore(settings, model_name=MODEL_NAME, dimension=DIMENSION)
    report = ingest([kb], store, build_embedder(settings), progress=False)
    assert report.embedded > 20 and not report.problems, report.to_dict()
    del store
    return data


@pytest.fixture
def ui_data_dir(small_kb_data_dir, tmp_path) -> Path:
    """A private copy of the small ingested knowledge base (tests may write to it)."""
    data = tmp_path / "data"
    shutil.copytree(small_kb_data_dir, data)
    return data


@pytest.fixture
def ui_env(ui_data_dir, monkeypatch):
    """Environment for the app: the private data dir and the deterministic composer backend."""
    from assistant.wiring import reset_cache

    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(ui_data_dir))
    monkeypatch.setenv("ASSISTANT_BACKEND", "composer")
    yield ui_data_dir
    reset_cache()


@pytest.fixture
def ui_settings(ui_data_dir):
    from assistant.settings import Settings

    return Settings.from_env({"ASSISTANT_DATA_DIR": str(ui_data_dir), "ASSISTANT_BACKEND": "composer"})
