"""End to end: the real drafting pipeline (composer) on a small ingested knowledge base."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from assistant.errors import ConfigError, InputError
from assistant.evaluation import list_runs, run_eval, run_retrieval_eval
from tests.evals.conftest import SMALL_CASES, A, write_dataset

RESULT_KEYS = {"id", "message", "draft", "backend", "model", "template", "checks", "metrics", "latency_ms"}


def cli(*argv: str) -> int:
    """`assistant eval ...` in-process, through cli_eval's own parser."""
    from assistant import cli_eval

    parser = argparse.ArgumentParser()
    cli_eval.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def read(out):
    results = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return results, summary, (out / "report.html").read_text(encoding="utf-8")


def test_eval_writes_results_summary_and_report(eval_settings, small_dataset, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(eval_settings.data_dir))
    assert cli("eval", str(small_dataset), "--backend", "composer", "--out", str(out), "--workers", "2",
               "--no-progress") == 0
    printed = capsys.readouterr().out
    assert "5 cases, 0 errors" in printed and "report.html" in printed

    results, summary, report = read(out)
    assert [r["id"] for r in results] == [c["id"] for c in SMALL_CASES]  # dataset order, whatever the threads did
    for r in results:
        assert set(r) >= RESULT_KEYS, set(r)
        assert r["backend"] == "composer" and r["draft"]
        assert r["template"]["name"] and r["template"]["version"]
        assert {"acknowledges", "apologizes", "timeframe", "passed"} <= set(r["checks"])
        assert r["latency_ms"]["total_ms"] > 0
        assert "error" not in r
    by_id = {r["id"]: r for r in results}
    # metrics follow from the draft: recompute a few of them here
    dmg = by_id["damaged"]
    assert dmg["metrics"]["expected_timeframe_ok"] == ("within 3 business days" in dmg["draft"].lower())
    assert dmg["metrics"]["category_ok"] == (dmg["category"] == "damaged_defective")
    assert dmg["metrics"]["checks_passed"] == dmg["checks"]["passed"]
    knowledge = [s["source"] for s in dmg["sources"] if s["kind"] == "knowledge"]
    assert dmg["metrics"]["knowledge_hit@1"] == float(knowledge[0] == A + "damaged-or-defective-items.md")
    assert 0 <= by_id["return"]["metrics"]["similarity"] <= 1 and 0 <= by_id["return"]["metrics"]["rouge_l"] <= 1
    assert by_id["markup"]["metrics"]["injection_ok"] is True  # the injection check fired, as expected

    assert summary["n"] == 5 and summary["errors"] == 0
    assert summary["backend"] == "composer" and summary["model"] and summary["template"]
    assert len(summary["dataset"]["sha256"]) == 64 and summary["created_at"]
    assert {"p50", "p95"} <= set(summary["latency_ms"]["total_ms"])
    assert summary["pass_rates"]["checks_passed"]["n"] == 5
    assert {"knowledge_hit@1", "knowledge_hit@3", "knowledge_mrr", "knowledge_ndcg@k"} <= set(summary["retrieval"])
    assert summary["retrieval"]["knowledge_hit@1"]["n"] == 4
    assert "similarity" in summary["metrics"] and "chrf" in summary["metrics"]
    assert summary["similarity_precision"] in ("fp32", "bf16")

    # self-contained and escaped
    assert report.startswith("<!DOCTYPE html>") and "<svg" in report
    assert "<script" not in report.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in report
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report, re.I)
    assert "<link" not in report and "@import" not in report and "url(" not in report


def test_dataset_with_only_id_and_message_runs(eval_settings, tmp_path):
    ds = write_dataset(tmp_path / "bare.jsonl", [{"id": "1", "message": "Where is my parcel?"},
                                                 {"id": "2", "message": "Can I return a worn jacket?"}])
    run = run_eval(ds, eval_settings, backend_name="composer", out_dir=tmp_path / "bare", progress=False)
    results, summary, report = read(run.out_dir)
    assert summary["n"] == 2 and summary["errors"] == 0
    assert summary["retrieval"] == {} and "similarity" not in summary["metrics"]
    assert set(summary["pass_rates"]) >= {"checks_passed", "acknowledges", "timeframe_ok"}
    assert all(r["draft"] and "expected" not in r for r in results)
    assert "Cases" in report


def test_a_failing_case_is_an_error_record_not_a_crash(eval_settings, tmp_path):
    ds = write_dataset(tmp_path / "long.jsonl", [{"id": "ok", "message": "Where is my parcel?"},
                                                 {"id": "huge", "message": "word " * 50, "category": "general"}])
    run = run_eval(ds, eval_settings.with_(max_message_chars=100), backend_name="composer",
                   out_dir=tmp_path / "o", progress=False)
    huge = run.results[1]
    assert huge["error_type"] == "MessageTooLongError" and "limit" in huge["error"]
    assert huge["metrics"]["error"] is True and huge["metrics"]["checks_passed"] is False
    assert huge["metrics"]["category_ok"] is False  # an error fails every expectation that applies
    assert run.summary["errors"] == 1 and run.summary["error_types"] == {"MessageTooLongError": 1}


def test_second_run_hits_the_cache_and_no_cache_does_not(eval_settings, small_dataset, tmp_path):
    first = run_eval(small_dataset, eval_settings, backend_name="composer", out_dir=tmp_path / "a", progress=False)
    assert first.summary["cached"] == 0 and (eval_settings.data_dir / "eval_cache.sqlite3").is_file()
    second = run_eval(small_dataset, eval_settings, backend_name="composer", out_dir=tmp_path / "b", progress=False)
    assert second.summary["cached"] == 5 and all(r["cached"] for r in second.results)
    assert [r["draft"] for r in second.results] == [r["draft"] for r in first.results]
    assert [r["metrics"] for r in second.results] == [r["metrics"] for r in first.results]
    fresh = run_eval(small_dataset, eval_settings, backend_name="composer", out_dir=tmp_path / "c",
                     use_cache=False, progress=False)
    assert fresh.summary["cached"] == 0 and not any(r["cached"] for r in fresh.results)
    # another template (prompt files) is another cache key
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for f in eval_settings.prompts_dir.glob("*.j2"):
        (prompts / f.name).write_text(f.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    other = run_eval(small_dataset, eval_settings.with_(prompts_dir=prompts), backend_name="composer",
                     out_dir=tmp_path / "d", progress=False)
    assert other.summary["cached"] == 0


def test_own_ticket_is_hidden_from_retrieval(eval_settings, tmp_path):
    row = json.loads((eval_settings.knowledge_dir / "imported/bitext/bitext_tickets.jsonl").open().readline())
    ds = write_dataset(tmp_path / "b.jsonl", [{"id": row["id"], "message": row["customer_message"],
                                               "intent": row["intent"], "reference_reply": row["agent_reply"]}])
    run = run_eval(ds, eval_settings.with_(k_tickets=10), backend_name="composer", out_dir=tmp_path / "o",
                   progress=False)
    tickets = [s for s in run.results[0]["sources"] if s["kind"] == "tickets"]
    assert tickets and row["id"] not in {t.get("ticket_id") for t in tickets}
    assert len(tickets) == 10  # k is kept: one more ticket was fetched in place of the hidden one
    assert "tickets_intent_hit@1" in run.results[0]["metrics"]


def test_bad_inputs_are_clear_errors(eval_settings, small_dataset, tmp_path):
    with pytest.raises(InputError, match="NAME@VERSION"):
        run_eval(small_dataset, eval_settings, backend_name="composer", template_spec="reply@", progress=False)
    with pytest.raises(InputError, match="not an evaluation run"):
        run_eval(small_dataset, eval_settings, backend_name="composer", baseline=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="--judge"):
        run_eval(small_dataset, eval_settings, backend_name="composer", judge=True, progress=False)
    with pytest.raises(InputError, match="--fail-if-worse needs --baseline"):
        cli("eval", str(small_dataset), "--fail-if-worse")


def test_retrieval_only_compares_dense_and_hybrid(eval_settings, tmp_path, monkeypatch, capsys):
    ds = write_dataset(tmp_path / "r.jsonl", [
        {"id": "r1", "message": "how many days do I have to send something back", "expected_sources": [A + "returns-policy.md"]},
        {"id": "r2", "message": "the courier crushed the box", "expected_sources": [A + "damaged-or-defective-items.md"]},
        {"id": "r3", "message": "password reset link expired", "expected_sources": [A + "account-password-and-login.md"]},
        {"id": "r4", "message": "no expectation here"},
    ])
    run = run_retrieval_eval(ds, eval_settings, out_dir=tmp_path / "ret", progress=False)
    assert run.summary["mode"] == "retrieval" and run.summary["n"] == 3
    for method in ("dense", "bm25", "hybrid"):
        m = run.summary["methods"][method]
        assert 0 <= m["hit@1"] <= m["hit@3"] <= m["hit@5"] <= 1 and 0 <= m["mrr"] <= 1
    assert run.summary["methods"]["dense"]["hit@5"] == 1.0
    assert (run.out_dir / "report.html").read_text(encoding="utf-8").count("<svg") >= 1
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(eval_settings.data_dir))
    assert cli("eval", str(ds), "--retrieval-only", "--out", str(tmp_path / "ret2"), "--json") == 0
    assert json.loads(capsys.readouterr().out)["methods"]["hybrid"]


def test_list_runs_for_the_ui(eval_settings, small_dataset):
    run = run_eval(small_dataset, eval_settings, backend_name="composer", progress=False, limit=2)
    assert run.out_dir.parent == eval_settings.data_dir / "eval_runs"  # the default place
    runs = list_runs(eval_settings.data_dir / "eval_runs")
    assert [r["dir"] for r in runs] == [str(run.out_dir)]
    assert runs[0]["n"] == 2 and runs[0]["backend"] == "composer" and runs[0]["report"].endswith("report.html")
