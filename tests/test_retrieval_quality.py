"""Retrieval quality on the labelled set evals/datasets/retrieval_kb.jsonl, over the full sample knowledge base."""

from __future__ import annotations

import json

from tests.conftest import ROOT, run_cli


def test_labelled_retrieval_quality(kb_settings, tmp_path):
    from assistant.evaluation.retrieval_eval import run_retrieval_eval

    run = run_retrieval_eval(ROOT / "evals/datasets/retrieval_kb.jsonl", kb_settings, out_dir=tmp_path / "r", progress=False)
    m = run.summary["methods"]
    print(json.dumps(m, indent=1))  # the numbers behind the closing note (pytest -s shows them)
    assert run.summary["n"] >= 40
    # Dense retrieval is what search uses; the pipeline adds the policy-area steer used for drafting.
    assert m["dense"]["hit@3"] >= 0.85 and m["dense"]["mrr"] >= 0.8
    assert m["pipeline"]["hit@3"] >= m["dense"]["hit@3"] - 0.02
    for name in ("dense", "bm25", "hybrid", "pipeline"):
        assert 0 <= m[name]["hit@1"] <= m[name]["hit@3"] <= m[name]["hit@5"] <= 1


def test_done_criteria_late_parcel(kb_settings):
    env = {"ASSISTANT_DATA_DIR": str(kb_settings.data_dir)}
    r = run_cli("search", "my parcel is late, where is it?", "--kind", "knowledge", "--json", env=env)
    assert r.returncode == 0, r.stderr
    top = json.loads(r.stdout)[0]
    assert top["source"] == "knowledge_base/articles/shipping-and-delivery.md"
    r = run_cli("search", "my parcel is late, where is it?", "--kind", "tickets", "--json", env=env)
    tickets = json.loads(r.stdout)
    assert len(tickets) == 5 and all(t["kind"] == "tickets" for t in tickets)
    assert sum(t["metadata"]["category"] in ("shipping_delivery", "lost_parcel") for t in tickets) >= 4
    assert all(t["metadata"].get("agent_reply") for t in tickets)
