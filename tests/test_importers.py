"""Tests for the third-party data importers (Bitext tickets, ABCD guidelines)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import importers
from assistant.errors import InputError

REPLY = "Your order {{Order Number}} ships soon. Call {{Customer Support Phone Number}} on {{Website Name}}."


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    """A small shared-data folder: 3 Bitext lines (one malformed, one unknown intent) and tiny ABCD files."""
    src = tmp_path / "shared"
    src.mkdir()
    rows = [
        json.dumps(
            {
                "id": "bitext-00002",
                "instruction": "where is my order 12345",
                "response": REPLY,
                "intent": "track_order",
                "category": "ORDER",
                "tags": "BL",
                "entity_type": "order_id",
                "entity_value": "12345",
            },
            ensure_ascii=False,
        ),
        '{"id": "bitext-00003", "instruction": "broken',
        json.dumps(
            {
                "id": "bitext-00004",
                "instruction": "quiero un café",
                "response": "Claro — {{Live Chat}}",
                "intent": "teleport",
            },
            ensure_ascii=False,
        ),
    ]
    (src / importers.BITEXT_FILE).write_text("\n".join(rows) + "\n", encoding="utf-8")
    (src / importers.BITEXT_LICENSE).write_text("CDLA-Sharing-1.0 text\n", encoding="utf-8")

    guidelines = {
        "Account Access": {
            "description": "username, password, and two-factor authentication",
            "subflows": {
                "Reset Two-Factor Auth": {
                    "actions": [
                        {
                            "type": "interaction",
                            "button": "Pull up Account",
                            "text": "Get Full Name for [Pull up Account]",
                            "subtext": ["Loads the account", "Then continue"],
                        },
                        {"type": "communication", "button": "N/A", "text": "Say goodbye", "subtext": []},
                    ],
                    "instructions": ["The customer lost their 2FA device.", "Be kind."],
                },
                "Recover Username": {"actions": [], "instructions": ["Make up a username."]},
            },
        },
        "Single-Item Query": {
            "description": "FAQ questions about boots",
            "subflows": {"Boots FAQ": {"actions": [], "instructions": ["Search the FAQ."]}},
        },
    }
    kb = {
        "reset_2fa": ["pull-up-account", "send-link"],
        "recover_username": ["pull-up-account", "verify-identity"],
        "boots": ["search-faq", "search-boots"],
        "orphan": ["x"],
    }
    (src / importers.ABCD_GUIDELINES_FILE).write_text(json.dumps(guidelines), encoding="utf-8")
    (src / importers.ABCD_KB_FILE).write_text(json.dumps(kb), encoding="utf-8")
    (src / importers.ABCD_LICENSE).write_text(
        "MIT License\nCopyright (c) 2021 ASAPP Research\n", encoding="utf-8"
    )
    return src


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_listed_intent_maps_to_a_known_category():
    allowed = {
        "order_changes",
        "shipping_delivery",
        "refunds",
        "returns_exchanges",
        "payments_billing",
        "account_access",
        "privacy_data",
        "feedback_complaint",
        "general",
    }
    assert len(importers.INTENT_CATEGORIES) == 27
    assert set(importers.INTENT_CATEGORIES.values()) <= allowed
    assert importers.map_intent("delete_account") == "privacy_data"
    assert importers.map_intent("change_shipping_address") == "order_changes"
    assert importers.map_intent("check_refund_policy") == "returns_exchanges"
    assert importers.map_intent("nope") is None


def test_import_bitext_fields_mapping_and_placeholders(source: Path, tmp_path: Path, capsys):
    out = tmp_path / "imported"
    path = importers.import_bitext(source / importers.BITEXT_FILE, out)

    assert path == out / "bitext" / "bitext_tickets.jsonl"
    tickets = _read_jsonl(path)
    assert [t["id"] for t in tickets] == ["bitext-00002", "bitext-00004"]
    first, second = tickets
    assert first == {
        "id": "bitext-00002",
        "customer_message": "where is my order 12345",
        "agent_reply": REPLY,
        "category": "shipping_delivery",
        "intent": "track_order",
        "source": "bitext",
        "product": None,
        "resolved_at": None,
    }
    assert "{{Order Number}}" in first["agent_reply"]
    assert second["category"] == "general" and second["intent"] == "teleport"
    assert "café" in path.read_text(encoding="utf-8")  # ensure_ascii=False

    err = capsys.readouterr().err
    assert f"{source / importers.BITEXT_FILE}:2: malformed JSON" in err
    assert "unknown intent 'teleport'" in err and ":3:" in err
    assert (out / "bitext" / "LICENSE.bitext.txt").read_text() == "CDLA-Sharing-1.0 text\n"
    attribution = (out / "bitext" / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert (
        "CDLA-Sharing-1.0" in attribution
        and "Bitext Customer Support LLM Chatbot Training Dataset" in attribution
    )


def test_import_bitext_summary_reports_skipped_count(source: Path, tmp_path: Path, capsys):
    importers.import_bitext(source / importers.BITEXT_FILE, tmp_path / "imported")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert (
        "2 tickets" in out[0] and "1 malformed line(s) skipped" in out[0] and "1 unknown intent(s)" in out[0]
    )


def test_import_bitext_is_deterministic(source: Path, tmp_path: Path):
    first = importers.import_bitext(source / importers.BITEXT_FILE, tmp_path / "a").read_bytes()
    second = importers.import_bitext(source / importers.BITEXT_FILE, tmp_path / "b").read_bytes()
    assert first == second


def test_import_abcd_articles(source: Path, tmp_path: Path, capsys):
    out = tmp_path / "imported"
    paths = importers.import_abcd(
        source / importers.ABCD_GUIDELINES_FILE, source / importers.ABCD_KB_FILE, out
    )

    assert [p.name for p in paths] == ["account-access.md", "single-item-query.md"]
    text = paths[0].read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# Account Access (ABCD agent guidelines)"
    assert lines[2] == importers.ABCD_DISCLAIMER
    assert "username, password, and two-factor authentication" in text
    assert "## Reset Two-Factor Auth" in lines and "## Recover Username" in lines
    assert "The customer lost their 2FA device." in lines and "Be kind." in lines
    assert "1. **Pull up Account** — Get Full Name for [Pull up Account]" in lines
    assert "   - Loads the account" in lines
    assert "2. Say goodbye" in lines  # "N/A" buttons are not shown
    assert lines.index("## Required actions by subflow") > lines.index("## Recover Username")
    assert "- **Reset Two-Factor Auth** (`reset_2fa`): `pull-up-account`, `send-link`" in lines
    assert "- **Boots FAQ** (`boots`): `search-faq`, `search-boots`" in paths[1].read_text(encoding="utf-8")

    assert "'orphan' matches no subflow" in capsys.readouterr().err
    assert (out / "abcd" / "LICENSE.abcd.txt").read_text().startswith("MIT License")
    attribution = (out / "abcd" / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "ABCD: Action-Based Conversations Dataset" in attribution and "ASAPP Research" in attribution
    assert "MIT" in attribution


def test_import_abcd_removes_stale_articles(source: Path, tmp_path: Path):
    out = tmp_path / "imported"
    (out / "abcd").mkdir(parents=True)
    (out / "abcd" / "old-flow.md").write_text("# old\n")
    importers.import_abcd(source / importers.ABCD_GUIDELINES_FILE, source / importers.ABCD_KB_FILE, out)
    assert not (out / "abcd" / "old-flow.md").exists()


def test_missing_file_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="bitext_support_pairs.jsonl"):
        importers.import_bitext(tmp_path / "bitext_support_pairs.jsonl", tmp_path / "out")


def test_cli_missing_file_exits_2_and_names_it(source: Path, tmp_path: Path, capsys):
    (source / importers.ABCD_KB_FILE).unlink()
    code = importers.main(["--source", str(source), "--out", str(tmp_path / "out"), "--only", "abcd"])
    assert code == 2
    assert "abcd_kb.json" in capsys.readouterr().err


def test_cli_runs_both_importers(source: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert importers.main(["--source", str(source), "--out", str(out)]) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in summary] == ["bitext", "abcd"]
    assert (out / "bitext" / "bitext_tickets.jsonl").is_file()
    assert (out / "abcd" / "account-access.md").is_file()


def test_malformed_guidelines_json_names_file_and_line(source: Path, tmp_path: Path):
    (source / importers.ABCD_GUIDELINES_FILE).write_text('{\n  "Flow": {\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"abcd_guidelines\.json:3: malformed JSON"):
        importers.import_abcd(
            source / importers.ABCD_GUIDELINES_FILE, source / importers.ABCD_KB_FILE, tmp_path
        )


def test_module_exit_code_for_missing_source(tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "assistant.importers",
            "--source",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=Path(importers.__file__).resolve().parent.parent,
    )
    assert result.returncode == 2
    assert "nowhere" in result.stderr
