"""Server mode: the same ingest and search against a real `chroma run` on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from assistant.errors import KnowledgeBaseError
from tests.conftest import free_port, run_cli

pytestmark = pytest.mark.slow


def _chroma_bin() -> str:
    exe = Path(sys.executable).parent / "chroma"
    return str(exe) if exe.exists() else (shutil.which("chroma") or "chroma")


@pytest.fixture
def chroma_server(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [_chroma_bin(), "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("chroma run did not start within 60 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_ingest_and_search_through_server(chroma_server, tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "shipping.md").write_text("# Shipping\n\n## Late parcels\nWe open a carrier investigation after 5 business days.\n")
    (kb / "tickets.jsonl").write_text(
        '{"id": "S-1", "customer_message": "Where is my parcel? Mail me at a.b@mail.example", '
        '"agent_reply": "Sorry for the wait, we are checking with the carrier.", "category": "shipping_delivery"}\n'
    )
    env = {"ASSISTANT_CHROMA_URL": chroma_server, "ASSISTANT_DATA_DIR": str(tmp_path / "local")}
    r = run_cli("ingest", str(kb), "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert '"added": 2' in r.stdout
    r = run_cli("ingest", str(kb), "--json", env=env)
    assert '"embedded": 0' in r.stdout
    r = run_cli("search", "parcel late", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert "shipping.md" in r.stdout and "S-1" in r.stdout and "a.b@mail.example" not in r.stdout
    # Nothing was written to the embedded store.
    assert not (tmp_path / "local" / "chroma").exists()


def test_unreachable_server_is_a_clear_error(tmp_path):
    from assistant.embeddings import DIMENSION, MODEL_NAME
    from assistant.settings import Settings
    from assistant.store import KnowledgeStore

    s = Settings.from_env({"ASSISTANT_CHROMA_URL": f"http://127.0.0.1:{free_port()}", "ASSISTANT_DATA_DIR": str(tmp_path)})
    with pytest.raises(KnowledgeBaseError, match="Cannot reach the Chroma server"):
        KnowledgeStore(s, model_name=MODEL_NAME, dimension=DIMENSION).count("knowledge")
