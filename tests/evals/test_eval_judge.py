"""The optional LLM judge, with a scripted backend standing in for the model."""

from __future__ import annotations

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import ConfigError
from assistant.evaluation import run_eval
from assistant.evaluation.judge import RUBRICS, Judge, parse_verdict


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ('{"score": 4, "reason": "warm"}', 4),
        ('Sure! ```json\n{"score": 2, "reason": "cold"}\n```', 2),
        ("Score: 5 - excellent", 5),
        ('{"score": 9}', None),
        ("no idea", None),
    ],
)
def test_parse_verdict(answer, score):
    assert parse_verdict(answer)["score"] == score


def test_judge_needs_a_configured_model(settings):
    with pytest.raises(ConfigError, match="--judge needs an OpenAI-compatible model"):
        Judge(settings)
    with pytest.raises(ConfigError, match="model name"):
        Judge(settings.with_(openai_base_url="http://127.0.0.1:9/v1"))


def test_judge_scores_every_rubric_and_fences_the_data(eval_settings, small_dataset, tmp_path):
    backend = FakeBackend(replies=['{"score": 4, "reason": "fine"}'])
    judge = Judge(eval_settings, backend=backend)
    run = run_eval(small_dataset, eval_settings, backend_name="composer", judge=judge, out_dir=tmp_path / "j",
                   progress=False, limit=2)
    for r in run.results:
        assert {k: v["score"] for k, v in r["judge"].items()} == dict.fromkeys(RUBRICS, 4)
        assert r["metrics"]["judge_empathy"] == 4
    assert run.summary["judge"]["judge_correctness"]["mean"] == 4.0
    assert len(backend.requests) == 2 * len(RUBRICS)
    prompt = backend.requests[0].prompt
    assert "<customer_message>" in prompt and "<draft>" in prompt
    # verdicts are cached: a second run asks the judge nothing
    run_eval(small_dataset, eval_settings, backend_name="composer", judge=judge, out_dir=tmp_path / "k",
             progress=False, limit=2)
    assert len(backend.requests) == 2 * len(RUBRICS)
