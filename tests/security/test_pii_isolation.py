"""Row "PII across customers": a canary e-mail, card, phone (and name, IBAN) in one customer's ticket.

They are redacted before anything is embedded or stored, so they are never in another customer's
evidence, prompt or draft; and the output scan flags contact and payment data that the knowledge base
does not hold, so a model that makes such data up (or remembers it) is caught.
"""

from __future__ import annotations

import json

import pytest

from assistant.backends.fake import FakeBackend
from assistant.feedback import FeedbackStore
from assistant.ingest import ingest
from assistant.wiring import build_drafter, build_embedder, build_store
from tests.security.helpers import copy_data_dir

EMAIL = "zora.quill.7731@example.org"
CARD = "4539 1488 0343 6467"  # Luhn-valid test number
PHONE = "+44 7700 900123"
IBAN = "DE89 3704 0044 0532 0130 00"
NAME = "Zora Quill"
CANARIES = [EMAIL, CARD, CARD.replace(" ", ""), PHONE, "7700 900123", IBAN, NAME, "Quill"]
TICKET = {
    "id": "T-PII-1",
    "customer_message": f"I was charged twice for order 5521! My card {CARD} shows two payments. "
    f"Refund one to {IBAN} please. Email me at {EMAIL} or call {PHONE}.\nRegards,\n{NAME}",
    "agent_reply": f"Hi {NAME}, I'm sorry about the double charge. I have asked our payments team to refund the "
    f"duplicate to the card ending 6467; we will write to {EMAIL} once it is done.",
    "category": "payments_billing",
}
OTHER_CUSTOMER = "Hello, I think I was charged twice for my last order, two payments show on my card. Can you refund one?"


def _contains_canary(text: str) -> list[str]:
    flat = " ".join(str(text).split())
    return [c for c in CANARIES if c.lower() in flat.lower()]


@pytest.fixture(scope="module")
def pii_kb(small_kb, tmp_path_factory):
    base = tmp_path_factory.mktemp("pii")
    settings = copy_data_dir(small_kb, base / "data")
    tickets = base / "customer_a"
    tickets.mkdir()
    (tickets / "tickets.jsonl").write_text(json.dumps(TICKET) + "\n", encoding="utf-8")
    ingest([tickets], build_store(settings), build_embedder(settings), progress=False)
    return settings


def test_nothing_stored_holds_the_canaries(pii_kb):
    store = build_store(pii_kb)
    total = 0
    for kind in ("knowledge", "tickets"):
        got = store.collection(kind).get(include=["documents", "metadatas"])
        total += len(got["ids"])
        for doc, md in zip(got["documents"], got["metadatas"], strict=True):
            assert not _contains_canary(doc) and not _contains_canary(json.dumps(md, ensure_ascii=False))
    mine = store.collection("tickets").get(where={"source": "customer_a/tickets.jsonl"}, include=["documents", "metadatas"])
    assert mine["ids"], "the ticket was ingested"
    assert "[CARD]" in mine["documents"][0] and "[EMAIL]" in mine["documents"][0] and "[PHONE]" in mine["documents"][0]
    assert "[NAME]" in mine["metadatas"][0]["agent_reply"]
    assert total > 100


def test_another_customers_evidence_prompt_and_draft_never_hold_them(pii_kb):
    fake = FakeBackend()
    result = build_drafter(pii_kb, backend=fake).draft(OTHER_CUSTOMER)
    assert any(s.source == "customer_a/tickets.jsonl" for s in result.sources), "the ticket was retrieved"
    for s in result.sources:
        assert not _contains_canary(s.text) and not _contains_canary(s.snippet)
        assert not _contains_canary(json.dumps(s.metadata, ensure_ascii=False))
    for r in fake.requests:
        assert not _contains_canary(r.system + r.prompt + r.completion_prompt)
    assert not _contains_canary(json.dumps(result.to_dict(), ensure_ascii=False))
    composed = build_drafter(pii_kb, backend_name="composer").draft(OTHER_CUSTOMER)
    assert not _contains_canary(composed.text), composed.text


def test_the_output_scan_flags_contact_and_payment_data_not_in_the_knowledge_base(pii_kb):
    leaked = (f"Hello, I'm sorry you were charged twice. We have refunded the payment to card {CARD} and IBAN {IBAN}; "
              f"for questions call {PHONE} or write to {EMAIL}. We will resolve this within 5 business days.\n\n"
              "Kind regards,\nFernway Outfitters Support")
    result = build_drafter(pii_kb, backend=FakeBackend([leaked]), ).draft(OTHER_CUSTOMER)
    spans = " | ".join(u.span for u in result.checks.unsupported)
    for canary in (CARD, IBAN, PHONE, EMAIL):
        assert canary in spans, (canary, result.checks.unsupported)
    assert not result.checks.passed
    # The business's own contacts are fine.
    own = leaked.replace(f"call {PHONE} or write to {EMAIL}", "write to support@fernway.example")
    own = own.replace(f"to card {CARD} and IBAN {IBAN}", "to your card")
    ok = build_drafter(pii_kb, backend=FakeBackend([own])).draft(OTHER_CUSTOMER)
    assert not [u for u in ok.checks.unsupported if "knowledge base" in u.reason or "card" in u.reason], ok.checks.unsupported


def test_the_customers_own_card_is_never_echoed_back(pii_kb):
    """Even the customer's own card number (it is in their message) is flagged in a reply."""
    message = f"Please refund my card {CARD}, I was charged twice."
    reply = (f"Hello, I'm sorry you were charged twice. We will refund card {CARD} within 5 business days.\n\n"
             "Kind regards,\nFernway Outfitters Support")
    result = build_drafter(pii_kb, backend=FakeBackend([reply])).draft(message)
    assert any(CARD in u.span and "card" in u.reason for u in result.checks.unsupported)


def test_feedback_and_accepted_replies_added_to_the_knowledge_base_are_redacted(pii_kb, tmp_path):
    settings = copy_data_dir(pii_kb.data_dir, tmp_path / "data")
    fb = FeedbackStore.for_settings(settings)
    draft = build_drafter(settings, backend_name="composer").draft(TICKET["customer_message"]).to_dict()
    fid = fb.record(TICKET["customer_message"], draft, TICKET["agent_reply"], "accepted")
    assert not _contains_canary(fb.get(fid)["message"])
    added = fb.add_to_knowledge_base(fid, settings, store=build_store(settings), embedder=build_embedder(settings))
    from pathlib import Path

    assert not _contains_canary(Path(added["path"]).read_text(encoding="utf-8"))
    store = build_store(settings)
    got = store.collection("tickets").get(include=["documents", "metadatas"])
    for doc, md in zip(got["documents"], got["metadatas"], strict=True):
        assert not _contains_canary(doc) and not _contains_canary(json.dumps(md, ensure_ascii=False))
