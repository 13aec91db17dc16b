"""Comparison and the --fail-if-worse gate: a genuinely worse run fails it, an equal run passes."""

from __future__ import annotations

import argparse
import json

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import InputError
from assistant.evaluation import compare_runs, run_eval
from assistant.evaluation.compare import compare_results

BAD_REPLY = "ok."


def cli(*argv: str) -> int:
    from assistant import cli_eval

    parser = argparse.ArgumentParser()
    cli_eval.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def _result(i: int, passed: bool, sim: float = 0.8, draft: str = "text") -> dict:
    return {"id": f"c{i}", "message": f"m{i}", "draft": draft,
            "metrics": {"error": False, "checks_passed": passed, "similarity": sim, "words": 10},
            "latency_ms": {"total_ms": 100.0 + i}}


def _summary(sha: str = "x") -> dict:
    return {"dataset": {"sha256": sha, "name": "d"}, "backend": "fake", "model": "m", "template": "reply@1"}


def test_crafted_runs_known_verdicts():
    base = [_result(i, True) for i in range(20)]
    worse = [_result(i, i >= 10, draft="other" if i < 10 else "text") for i in range(20)]
    c = compare_results(_summary(), base, _summary(), worse)
    row = next(r for r in c["metrics"] if r["metric"] == "checks_passed")
    assert row["base"] == 1.0 and row["new"] == 0.5 and row["delta"] == -0.5
    assert row["ci_high"] < 0 and row["verdict"] == "worse"
    assert c["gate"]["failed"] and "checks_passed" in c["gate"]["reasons"][0]
    assert [w["id"] for w in c["worse_cases"]] == [f"c{i}" for i in range(10)]
    assert c["worse_cases"][0]["worse"] == [{"metric": "checks_passed", "base": 1.0, "new": 0.0}]
    assert c["counts"] == {"worse": 10, "improved": 0, "changed": 10}
    assert c["same_dataset"] is True and c["paired_cases"] == 20


def test_one_flipped_case_in_thirty_is_not_significant():
    base = [_result(i, True) for i in range(30)]
    new = [_result(i, i != 0) for i in range(30)]
    c = compare_results(_summary(), base, _summary(), new)
    assert not c["gate"]["failed"]
    assert [w["id"] for w in c["worse_cases"]] == ["c0"]  # still listed as a case that got worse


def test_latency_and_length_never_gate_and_small_similarity_noise_is_ignored():
    base = [_result(i, True, sim=0.80) for i in range(10)]
    new = [dict(_result(i, True, sim=0.79), latency_ms={"total_ms": 5000.0}) for i in range(10)]
    c = compare_results(_summary(), base, _summary(), new)
    lat = next(r for r in c["metrics"] if r["metric"] == "total_ms")
    assert lat["verdict"] == "worse" and lat["gates"] is False
    sim = next(r for r in c["metrics"] if r["metric"] == "similarity")
    assert sim["verdict"] == "worse"  # a consistent drop of 0.01 is significant ...
    assert c["gate"]["failed"]  # ... and similarity gates
    assert c["worse_cases"] == []  # but no single case moved by more than the per-case tolerance


def test_new_errors_fail_the_gate():
    base = [_result(i, True) for i in range(8)]
    new = [{"id": f"c{i}", "message": "m", "error": "boom", "error_type": "BackendError",
            "metrics": {"error": True, "checks_passed": False}} for i in range(8)]
    c = compare_results(_summary(), base, _summary("y"), new)
    assert c["gate"]["failed"] and c["same_dataset"] is False
    assert any(r.startswith("error:") for r in c["gate"]["reasons"])
    assert c["worse_cases"][0]["new_error"] == "boom"


def test_no_common_cases_is_an_error():
    with pytest.raises(InputError, match="no case ids in common"):
        compare_results(_summary(), [_result(1, True)], _summary(), [_result(2, True)])


@pytest.fixture
def good_and_bad(eval_settings, small_dataset, tmp_path):
    good = run_eval(small_dataset, eval_settings, backend=FakeBackend(), out_dir=tmp_path / "good", progress=False)
    return good, small_dataset


def test_gate_fails_on_a_worse_run_and_passes_on_an_equal_one(eval_settings, good_and_bad, tmp_path, monkeypatch):
    good, ds = good_and_bad
    # the default fake reply apologises and states the policy timeframe; "ok." does neither
    assert good.summary["pass_rates"]["apologizes"]["mean"] == 1.0
    assert good.summary["pass_rates"]["timeframe_ok"]["mean"] == 1.0
    assert good.summary["cache"]["enabled"] is False  # scripted backends are never cached

    bad = run_eval(ds, eval_settings, backend=FakeBackend(replies=[BAD_REPLY]), out_dir=tmp_path / "bad",
                   baseline=good.out_dir, progress=False)
    assert bad.worse and bad.comparison["gate"]["failed"]
    assert bad.summary["pass_rates"]["apologizes"]["mean"] == 0.0
    assert bad.summary["pass_rates"]["checks_passed"]["mean"] == 0.0
    worse_ids = {w["id"] for w in bad.comparison["worse_cases"]}
    assert worse_ids >= {"damaged", "return", "late", "password"}
    summary = json.loads((bad.out_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["comparison"]["gate"]["failed"] is True
    report = (bad.out_dir / "report.html").read_text(encoding="utf-8")
    assert "significantly worse" in report and "Cases that got worse" in report

    same = run_eval(ds, eval_settings, backend=FakeBackend(), out_dir=tmp_path / "same", baseline=good.out_dir,
                    progress=False)
    assert not same.worse and same.comparison["counts"]["worse"] == 0

    # the CLI: eval-compare and eval --fail-if-worse exit 5 on the worse run only
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(eval_settings.data_dir))
    assert cli("eval-compare", str(good.out_dir), str(bad.out_dir), "--fail-if-worse",
               "--out", str(tmp_path / "cmp")) == 5
    assert (tmp_path / "cmp" / "report.html").is_file() and (tmp_path / "cmp" / "comparison.json").is_file()
    assert cli("eval-compare", str(good.out_dir), str(same.out_dir), "--fail-if-worse") == 0
    assert cli("eval-compare", str(good.out_dir), str(bad.out_dir)) == 0  # without the flag it only reports
    c = compare_runs(good.out_dir, bad.out_dir)
    assert c["base"]["backend"] == "fake" and c["gate"]["failed"]
