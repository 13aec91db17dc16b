"""The feedback store: records, redaction, edit distance, stats, and accepted replies into the knowledge base."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from assistant.errors import InputError
from assistant.feedback import (
    ACCEPTED_DIRNAME,
    ACCEPTED_FILE,
    FeedbackStore,
    _append_line,
    _levenshtein,
    check_failures,
    edit_distance,
)

DRAFT_TEXT = "Hello,\n\nI'm sorry your jacket arrived torn. We will resolve this within 3 business days.\n\nKind regards"


def draft_dict(text: str = DRAFT_TEXT, *, backend: str = "composer", version: str = "v1", passed: bool = True,
               unsupported: list | None = None, category: str = "damaged_defective") -> dict:
    return {
        "text": text,
        "backend": backend,
        "model": f"{backend}-model",
        "llm": backend != "composer",
        "label": "…",
        "template": {"name": "reply", "version": version},
        "category": category,
        "sources": [{"id": "k1", "kind": "knowledge", "title": "Damaged items", "score": 0.7, "source": "kb.md",
                     "snippet": "…"}],
        "checks": {
            "acknowledges": True,
            "apologizes": True,
            "timeframe": {"stated": "within 3 business days", "policy": "within 3 business days", "ok": passed},
            "unsupported": unsupported or [],
            "placeholders": [],
            "language_ok": True,
            "injection_suspected": False,
            "language": "en",
            "passed": passed and not unsupported,
        },
    }


@pytest.fixture
def fb(tmp_path) -> FeedbackStore:
    return FeedbackStore(tmp_path / "data" / "feedback.sqlite3")


def test_schema_is_created_idempotently_with_wal_and_version(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    FeedbackStore(path)
    store = FeedbackStore(path)  # a second open changes nothing
    store.record("hi", draft_dict(), DRAFT_TEXT, "accepted")
    FeedbackStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
        assert db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 1


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    FeedbackStore(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(InputError, match="newer version"):
        FeedbackStore(path)


def test_record_accepted_unchanged(fb):
    fid = fb.record("My jacket is torn", draft_dict(), DRAFT_TEXT, "accepted")
    row = fb.get(fid)
    assert row["action"] == "accepted"
    assert row["edit_distance"] == 0.0
    assert row["backend"] == "composer" and row["template_name"] == "reply" and row["template_version"] == "v1"
    assert row["checks"]["passed"] is True and row["checks_passed"] == 1
    assert row["draft"] == DRAFT_TEXT and row["final_text"] == DRAFT_TEXT
    assert row["created_at"] and row["day"] == row["created_at"][:10]
    assert row["sources"][0]["title"] == "Damaged items"


def test_record_accepted_with_edits_computes_normalised_edit_distance(fb):
    final = DRAFT_TEXT.replace("torn", "damaged")
    fid = fb.record("msg", draft_dict(), final, "accepted")  # edited text: recorded as accepted with edits
    row = fb.get(fid)
    assert row["action"] == "accepted_with_edits"
    expected = _levenshtein(DRAFT_TEXT, final) / max(len(DRAFT_TEXT), len(final))
    assert row["edit_distance"] == pytest.approx(expected, abs=1e-4)
    assert 0 < row["edit_distance"] < 0.2
    # "with edits" without edits is plain accepted
    assert fb.get(fb.record("msg", draft_dict(), DRAFT_TEXT, "accepted_with_edits"))["action"] == "accepted"


def test_edit_distance_bounds_and_fallback_agrees():
    assert edit_distance("", "") == 0.0
    assert edit_distance("abc", "") == 1.0
    assert edit_distance("kitten", "sitting") == pytest.approx(3 / 7, abs=1e-4)
    for a, b in [("flaw", "lawn"), ("", "abc"), ("Grüße", "Grüsse"), ("same", "same")]:
        assert _levenshtein(a, b) == round(edit_distance(a, b) * max(len(a), len(b), 1))


def test_message_is_pii_redacted(fb):
    message = "Hi, my name is Jana Novak, e-mail jana.novak@example.com, phone +44 20 7946 0958. Order #4521 is torn."
    row = fb.get(fb.record(message, draft_dict(), DRAFT_TEXT, "accepted"))
    assert "jana.novak@example.com" not in row["message"]
    assert "7946" not in row["message"]
    assert "Novak" not in row["message"]
    assert "[EMAIL]" in row["message"] and "#4521" in row["message"]  # order numbers are kept


def test_rejected_keeps_reason(fb):
    row = fb.get(fb.record("msg", draft_dict(), DRAFT_TEXT, "rejected", "promised a refund we do not give"))
    assert row["action"] == "rejected" and row["reason"] == "promised a refund we do not give"


@pytest.mark.parametrize("action", ["approved", "", "ACCEPTED"])
def test_unknown_action_is_refused(fb, action):
    with pytest.raises(InputError, match="unknown feedback action"):
        fb.record("msg", draft_dict(), DRAFT_TEXT, action)
    assert fb.count() == 0


def test_accepting_an_empty_reply_is_refused(fb):
    with pytest.raises(InputError, match="cannot be empty"):
        fb.record("msg", draft_dict(), "   ", "accepted")


def test_list_newest_first_with_limit(fb):
    ids = [fb.record(f"m{i}", draft_dict(), DRAFT_TEXT, "accepted") for i in range(5)]
    rows = fb.list(3)
    assert [r["id"] for r in rows] == ids[::-1][:3]


def test_concurrent_records_from_threads_all_land(fb):
    errors = []

    def work(n):
        try:
            for i in range(10):
                fb.record(f"t{n}-{i}", draft_dict(), DRAFT_TEXT + str(i), "accepted")
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert fb.count() == 60


def test_check_failures():
    assert not any(check_failures(draft_dict()["checks"]).values())
    failed = check_failures(draft_dict(passed=False, unsupported=[{"span": "x", "reason": "y"}])["checks"])
    assert failed["timeframe"] and failed["unsupported"] and failed["any"]
    assert not failed["acknowledges"]


def test_stats_group_by_template_version_and_backend(fb):
    fb.record("a", draft_dict(version="v1"), DRAFT_TEXT, "accepted")
    fb.record("b", draft_dict(version="v1"), DRAFT_TEXT + " Thanks!", "accepted")
    fb.record("c", draft_dict(version="v1", passed=False), DRAFT_TEXT, "rejected", "wrong timeframe")
    fb.record("d", draft_dict(version="v2", backend="openai"), DRAFT_TEXT, "accepted")
    s = fb.stats()
    assert s["total"] == 4
    assert s["acceptance_rate"] == pytest.approx(0.75)
    groups = {(g["template"], g["backend"]): g for g in s["by_version"]}
    v1 = groups[("reply v1", "composer")]
    assert v1["n"] == 3
    assert v1["acceptance_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert v1["unchanged_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert 0 < v1["mean_edit_distance"] < 0.1
    assert v1["failure_rates"]["timeframe"] == pytest.approx(1 / 3, abs=1e-3)
    assert v1["failure_rates"]["any"] == pytest.approx(1 / 3, abs=1e-3)
    v2 = groups[("reply v2", "openai")]
    assert v2["n"] == 1 and v2["acceptance_rate"] == 1.0 and v2["mean_edit_distance"] == 0.0
    assert {d["day"] for d in s["by_day"]} == {fb.list(1)[0]["day"]}
    assert sum(d["n"] for d in s["by_day"]) == 4


def test_stats_empty(fb):
    s = fb.stats()
    assert s["total"] == 0 and s["acceptance_rate"] is None and s["by_version"] == [] and s["by_day"] == []


def test_append_line_starts_a_fresh_line_after_a_partial_one(tmp_path):
    path = tmp_path / "accepted.jsonl"
    path.write_text('{"id": "partial"', encoding="utf-8")  # what a crash mid-write could leave
    _append_line(path, '{"id": "ACC-1"}\n')
    assert path.read_text(encoding="utf-8").splitlines() == ['{"id": "partial"', '{"id": "ACC-1"}']


def test_add_to_knowledge_base_appends_redacted_ticket_and_ingests(ui_settings):
    from assistant.wiring import build_retriever

    fb = FeedbackStore(ui_settings.feedback_db)
    final = ("Hello,\n\nI'm sorry your Skerry Rain Shell arrived with a torn zip pocket. Please send a photo; "
             "we will send a replacement within 3 business days. Call Jana back on +44 20 7946 0958.\n\nKind regards")
    fid = fb.record("My Skerry Rain Shell zip pocket is torn. jana@example.com", draft_dict(), final, "accepted")
    result = fb.add_to_knowledge_base(fid, ui_settings)
    path = ui_settings.data_dir / ACCEPTED_DIRNAME / ACCEPTED_FILE
    assert result["ticket_id"] == f"ACC-{fid}" and result["path"] == str(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    ticket = json.loads(lines[0])
    assert set(ticket) == {"id", "customer_message", "agent_reply", "category", "resolved_at"}
    assert ticket["category"] == "damaged_defective"
    assert "jana@example.com" not in ticket["customer_message"] and "7946" not in ticket["agent_reply"]
    assert result["ingest"]["added"] == 1 and result["ingest"]["embedded"] >= 1
    assert fb.get(fid)["kb_ticket_id"] == f"ACC-{fid}"

    hits = build_retriever(ui_settings).search("Skerry Rain Shell zip pocket torn", k=5, kind="tickets")
    assert any(f"ACC-{fid}" in h.title for h in hits), [h.title for h in hits]

    # Adding it again neither duplicates the line nor re-embeds anything.
    again = fb.add_to_knowledge_base(fid, ui_settings)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1
    assert again["ingest"]["embedded"] == 0

    # A second accepted reply is appended; only it is embedded (incremental ingest).
    fid2 = fb.record("Where is my parcel?", draft_dict(category="shipping_delay"), "It ships within 2 days.", "accepted")
    third = fb.add_to_knowledge_base(fid2, ui_settings)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert third["ingest"]["updated"] == 1 and third["ingest"]["embedded"] >= 1


def test_rejected_feedback_cannot_become_a_ticket(ui_settings):
    fb = FeedbackStore(ui_settings.feedback_db)
    fid = fb.record("msg", draft_dict(), DRAFT_TEXT, "rejected", "tone")
    with pytest.raises(InputError, match="only accepted replies"):
        fb.add_to_knowledge_base(fid, ui_settings)
    assert not (ui_settings.data_dir / ACCEPTED_DIRNAME / ACCEPTED_FILE).exists()


def test_unknown_feedback_id(fb):
    with pytest.raises(InputError, match="no feedback #42"):
        fb.get(42)
