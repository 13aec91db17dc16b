"""Dataset loading and validation: every problem names the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.errors import InputError
from assistant.evaluation.dataset import load_dataset

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, lines: list, name: str = "ds.jsonl") -> Path:
    p = tmp_path / name
    p.write_bytes(b"\n".join(x if isinstance(x, bytes) else json.dumps(x).encode() for x in lines) + b"\n")
    return p


def test_minimal_dataset_loads(tmp_path):
    ds = load_dataset(write(tmp_path, [{"id": "a", "message": "hi"}, b"", {"id": 7, "message": "yo"}]))
    assert [c.id for c in ds.cases] == ["a", "7"]
    assert ds.cases[0].expected_sources == () and ds.cases[0].reference_reply is None
    assert ds.cases[1].line == 3
    assert len(ds.sha256) == 64 and ds.name == "ds"


def test_all_fields_and_aliases(tmp_path):
    row = {
        "id": "x", "message": "m", "expected_category": "refunds", "expected_intent": "get_refund",
        "expected_sources": "knowledge_base/articles/refunds.md", "reference_reply": "r",
        "must_include": ["a"], "must_not_include": ["b"], "timeframe": "within 5 business days",
        "expect_injection": False, "exclude_ticket_ids": ["T-1"], "tags": ["t"], "custom": 1,
    }
    c = load_dataset(write(tmp_path, [row])).cases[0]
    assert c.category == "refunds" and c.intent == "get_refund"
    assert c.expected_sources == ("knowledge_base/articles/refunds.md",)
    assert c.expected_timeframe == "within 5 business days"
    assert c.expect_injection is False
    assert c.hidden_ticket_ids == {"x", "T-1"}
    assert c.extra == {"custom": 1}


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (json.dumps({"message": "m"}).encode(), "missing `id`"),
        (json.dumps({"id": "a"}).encode(), "missing `message`"),
        (json.dumps({"id": "a", "message": "   "}).encode(), "missing `message`"),
        (json.dumps({"id": "a", "message": "m", "must_include": [1]}).encode(), "`must_include` must be a list"),
        (json.dumps({"id": "a", "message": "m", "category": 3}).encode(), "`category` must be a string"),
        (json.dumps({"id": "a", "message": "m", "expect_injection": "yes"}).encode(), "`expect_injection`"),
        (b'{"id": "a", "message": "caf\xe9"}', "not valid UTF-8"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, fragment):
    p = write(tmp_path, [{"id": "ok", "message": "fine"}, line])
    with pytest.raises(InputError) as exc:
        load_dataset(p)
    msg = str(exc.value)
    assert f"{p}:2:" in msg and fragment in msg
    assert "nothing was run" in msg


def test_every_problem_is_listed(tmp_path):
    p = write(tmp_path, [{"id": "a", "message": "m"}, b"{", {"id": "a", "message": "again"}, {"id": "b"}])
    with pytest.raises(InputError) as exc:
        load_dataset(p)
    msg = str(exc.value)
    assert "3 problem(s)" in msg
    assert f"{p}:2:" in msg and f"{p}:3: duplicate id 'a' (first on line 1)" in msg and f"{p}:4:" in msg


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_dataset(tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(InputError, match="no cases"):
        load_dataset(empty)


@pytest.mark.parametrize("name", ["sample_kb", "bitext_sample", "retrieval_kb"])
def test_shipped_datasets_are_valid(name):
    ds = load_dataset(ROOT / "evals" / "datasets" / f"{name}.jsonl")
    for c in ds.cases:
        for src in c.expected_sources:
            assert (ROOT / src).is_file(), (c.id, src)
    if name == "sample_kb":
        assert len(ds) >= 30
        tags = {t for c in ds.cases for t in c.tags}
        for hard in ("angry", "customer-mistaken", "out-of-policy", "not-in-kb", "non-english", "injection",
                     "very-long", "multi-turn"):
            assert f"hard:{hard}" in tags
        assert all(c.category for c in ds.cases)
    if name == "bitext_sample":
        assert 90 <= len(ds) <= 110
        assert all(c.intent and c.reference_reply for c in ds.cases)
    if name == "retrieval_kb":
        assert len(ds) >= 40 and all(c.expected_sources for c in ds.cases)
