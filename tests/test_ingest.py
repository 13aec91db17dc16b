"""Ingestion: loaders, chunking, incrementality, deletion, redaction, bad inputs, locking, model mismatch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from assistant.errors import EmbeddingMismatchError, IngestError, KnowledgeBaseMissingError, StoreLockedError
from assistant.ingest import ingest
from assistant.retrieval import Retriever
from tests.conftest import run_cli

SHIPPING = """# Shipping and delivery

## Delivery times
Parcels to Germany arrive in 2 to 4 business days with DHL. Tracking links are e-mailed at dispatch.

## Late parcels
If your parcel is late, check the tracking page first. We open an investigation with the carrier after 5 business days.
"""
RETURNS = """# Returns

## Return window
You can return unworn items within 30 days of delivery for a refund to the original payment method.
"""
HTML = """<html><head><title>Care guide</title><script>alert(1)</script></head>
<body><h1>Caring for your rain shell</h1><h2>Washing</h2><p>Wash at 30 degrees with technical detergent.</p>
<ol><li>Close all zips</li><li>Tumble dry low to restore the water repellency</li></ol></body></html>"""
TICKETS = [
    {"id": "T-1", "customer_message": "My parcel has not arrived after ten days, where is it?",
     "agent_reply": "I'm sorry your parcel is late. We have opened an investigation with the carrier.", "category": "shipping_delivery"},
    {"id": "T-2", "customer_message": "The zip on my jacket broke after one week. Contact me at jo.doe@mail.example "
     "or +49 151 2345 6789, card 4111 1111 1111 1111.",
     "agent_reply": "I'm sorry about the zip. We will repair or replace it under warranty.", "category": "warranty_repairs"},
]


@pytest.fixture
def kb(tmp_path):
    root = tmp_path / "kb"
    (root / "articles").mkdir(parents=True)
    (root / "tickets").mkdir()
    (root / "articles" / "shipping.md").write_text(SHIPPING)
    (root / "articles" / "returns.md").write_text(RETURNS)
    (root / "articles" / "care.html").write_text(HTML)
    (root / "articles" / "hours.txt").write_text("Store hours\n\nSupport answers Monday to Friday, 08:00-18:00 CET.\n")
    (root / "tickets" / "resolved.jsonl").write_text("\n".join(json.dumps(t) for t in TICKETS) + "\n")
    (root / "LICENSE.txt").write_text("not knowledge")
    return root


def _ingest(kb, store, embedder, **kw):
    return ingest([kb], store, embedder, progress=False, **kw)


def test_first_ingest_then_unchanged(kb, store, embedder):
    r1 = _ingest(kb, store, embedder)
    assert (r1.added, r1.updated, r1.unchanged, r1.deleted) == (5, 0, 0, 0)
    assert r1.embedded == store.count("knowledge") + store.count("tickets")
    assert store.count("tickets") == 2
    assert r1.problems == []
    r2 = _ingest(kb, store, embedder)
    assert (r2.added, r2.updated, r2.unchanged, r2.embedded) == (0, 0, 5, 0)


def test_headings_kept_as_metadata_and_html_cleaned(kb, store, embedder):
    _ingest(kb, store, embedder)
    hits = Retriever(store, embedder).search("How do I wash my rain shell?", k=1, kind="knowledge")
    assert hits[0].title == "Care guide"
    assert hits[0].metadata["h2"] == "Washing"
    assert "alert(1)" not in hits[0].text
    late = Retriever(store, embedder).search("my parcel is late", k=1, kind="knowledge")[0]
    assert late.source == "kb/articles/shipping.md"
    assert late.metadata["section"] == "Shipping and delivery › Late parcels"


def test_changed_file_replaced_only_changed_chunks_embedded(kb, store, embedder):
    _ingest(kb, store, embedder)
    before = store.count("knowledge")
    text = SHIPPING.replace("after 5 business days", "after 7 business days")
    (kb / "articles" / "shipping.md").write_text(text)
    r = _ingest(kb, store, embedder)
    assert (r.updated, r.unchanged) == (1, 4)
    assert r.embedded == 1  # only the edited section
    assert r.chunks_removed == 1
    assert store.count("knowledge") == before
    hit = Retriever(store, embedder).search("late parcel investigation", k=1, kind="knowledge")[0]
    assert "7 business days" in hit.text
    # A third run sees the new version as unchanged (kept chunks were re-tagged with the new file hash).
    assert _ingest(kb, store, embedder).embedded == 0


def test_deleted_file_removed(kb, store, embedder):
    _ingest(kb, store, embedder)
    (kb / "articles" / "returns.md").unlink()
    r = _ingest(kb, store, embedder)
    assert r.deleted == 1
    sources = {e.source for e in Retriever(store, embedder).search("return window refund", k=10, kind="knowledge")}
    assert "kb/articles/returns.md" not in sources


def test_ticket_pii_is_redacted_but_searchable(kb, store, embedder):
    _ingest(kb, store, embedder)
    hits = Retriever(store, embedder).search("zip broke on my jacket", k=1, kind="tickets")
    assert hits[0].metadata["ticket_id"] == "T-2"
    dumped = json.dumps([h.to_dict(full=True) for h in hits])
    for secret in ("jo.doe@mail.example", "4111 1111 1111 1111", "+49 151 2345 6789", "2345 6789"):
        assert secret not in dumped
    assert "[EMAIL]" in hits[0].text and "[CARD]" in hits[0].text and "[PHONE]" in hits[0].text
    # Nor is it anywhere in the store's files.
    raw = b"".join(p.read_bytes() for p in store.settings.chroma_dir.rglob("*") if p.is_file())
    assert b"jo.doe@mail.example" not in raw and b"4111 1111 1111 1111" not in raw


def test_bad_inputs_reported_and_rest_ingested(kb, store, embedder, tmp_path):
    (kb / "articles" / "empty.md").write_text("  \n")
    (kb / "articles" / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (kb / "articles" / "latin1.txt").write_bytes("Größe und Passform".encode("latin-1"))
    (kb / "articles" / "manual.pdf").write_bytes(b"%PDF-1.4")
    lines = [json.dumps(TICKETS[0] | {"id": "T-9"}), "{not json", json.dumps({"id": "T-10", "customer_message": "hi"})]
    (kb / "tickets" / "more.jsonl").write_text("\n".join(lines) + "\n")
    r = _ingest(kb, store, embedder)
    msgs = {str(p) for p in r.problems}
    assert any("empty.md" in m and "empty file" in m for m in msgs)
    assert any("binary.md" in m and "binary" in m for m in msgs)
    assert any("latin1.txt" in m and "UTF-8" in m for m in msgs)
    assert any("manual.pdf" in m and "unsupported file type" in m for m in msgs)
    assert any(m.startswith("kb/tickets/more.jsonl:2:") and "invalid JSON" in m for m in msgs)
    assert any(m.startswith("kb/tickets/more.jsonl:3:") and "agent_reply" in m for m in msgs)
    assert store.count("tickets") == 3  # T-1, T-2 and the good line T-9
    with pytest.raises(IngestError, match="strict"):
        _ingest(kb, store, embedder, strict=True)


def test_missing_path_is_reported(tmp_path, store, embedder, kb):
    r = ingest([kb, tmp_path / "nope"], store, embedder, progress=False)
    assert any("nope" in str(p) and "no such file" in str(p) for p in r.problems)
    assert r.added == 5
    with pytest.raises(IngestError):
        ingest([tmp_path / "nope"], store, embedder, progress=False)


def test_search_before_ingest_is_clear(store, embedder):
    with pytest.raises(KnowledgeBaseMissingError):
        Retriever(store, embedder).search("anything")


def test_store_built_with_another_model_is_refused(settings, embedder, kb):
    from assistant.store import KnowledgeStore

    other = KnowledgeStore(settings, model_name="other-model", dimension=768)
    other.collection("knowledge", create=True)
    mine = KnowledgeStore(settings, model_name="all-MiniLM-L6-v2", dimension=384)
    with pytest.raises(EmbeddingMismatchError) as e:
        ingest([kb], mine, embedder, progress=False)
    assert "other-model" in str(e.value) and "--rebuild" in e.value.hint
    # --rebuild recovers.
    r = ingest([kb], mine, embedder, progress=False, rebuild=True)
    assert r.added == 5


def test_second_writer_gets_clear_error(settings, store, embedder, kb):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from filelock import FileLock
            lock = FileLock({str(settings.data_dir / 'ingest.lock')!r}); lock.acquire()
            print('locked', flush=True); time.sleep(30)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError, match="Another process is writing"):
            ingest([kb], store, embedder, progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert ingest([kb], store, embedder, progress=False).added == 5


def test_cli_ingest_json_and_search(kb, tmp_path):
    env = {"ASSISTANT_DATA_DIR": str(tmp_path / "cli-data")}
    r = run_cli("ingest", str(kb), "--json", env=env)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(summary) >= {"added", "updated", "unchanged", "deleted", "embedded", "seconds"}
    assert summary["added"] == 5
    r = run_cli("search", "zip broke", "--kind", "tickets", "--json", "--k", "2", env=env)
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)
    assert results[0]["kind"] == "tickets" and {"id", "title", "source", "snippet", "score", "metadata"} <= set(results[0])
    assert "jo.doe@mail.example" not in r.stdout
    r = run_cli("ingest", str(tmp_path / "missing"), env=env)
    assert r.returncode != 0 and "missing" in r.stderr and "no such file" in r.stderr
    r = run_cli("search", "x", env={"ASSISTANT_DATA_DIR": str(tmp_path / "empty")})
    assert r.returncode != 0 and "nothing has been ingested" in r.stderr and "assistant ingest" in r.stderr


def test_incremental_reingest_is_fast(kb, store, embedder):
    _ingest(kb, store, embedder)
    t = time.perf_counter()
    r = _ingest(kb, store, embedder)
    assert r.embedded == 0 and time.perf_counter() - t < 30  # sanity only; speed targets live in make bench


def test_csv_tickets(tmp_path, store, embedder):
    import csv

    path = tmp_path / "tickets.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "customer_message", "agent_reply", "category", "product"])
        w.writeheader()
        w.writerow({"id": "C-1", "customer_message": "My boots leak, call me on +44 20 7946 0958",
                    "agent_reply": "Sorry about that, we will repair them.", "category": "warranty_repairs",
                    "product": "Cairn Hiking Boots"})
        w.writerow({"id": "C-2", "customer_message": "", "agent_reply": "x", "category": "general"})
    r = ingest([path], store, embedder, progress=False)
    assert r.added == 1 and store.count("tickets") == 1
    assert any(p.line == 3 and "customer_message" in p.message for p in r.problems)
    hit = Retriever(store, embedder).search("leaking boots", k=1, kind="tickets")[0]
    assert hit.metadata["product"] == "Cairn Hiking Boots" and "7946" not in hit.text
