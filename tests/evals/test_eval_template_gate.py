"""`--template NAME@VERSION` and the publish gate, with a backend whose output follows the template."""

from __future__ import annotations

import pytest

from assistant.evaluation import run_eval
from assistant.evaluation.gate import GateFailedError, template_gate

GOOD = """{% set _m = customer_message|fence %}{% set _k = knowledge|length %}Hi there,

Thank you for your message about {{ category_label|lower }}. I'm sorry for the trouble this has caused.

We will get back to you {{ timeframe }}.

Best regards,
{{ business.name }} Support
"""
WORSE = """{% set _m = customer_message|fence %}{% set _k = knowledge|length %}{% set _t = timeframe %}ok."""


class TemplateFollower:
    """A stand-in model that answers with exactly what the reply template rendered."""

    name = "template-follower"
    model = "echo-1"
    is_llm = True
    cacheable = False

    def generate(self, request):
        yield request.prompt


@pytest.fixture
def store(eval_settings):
    from assistant.templates import TemplateStore

    s = TemplateStore(eval_settings)
    latest = s.latest_version("reply")
    good = s.save("reply", GOOD, base_version=latest, author="test")
    s.publish("reply", good.version)
    worse = s.save("reply", WORSE, base_version=good.version, author="test")
    return s, good, worse


def test_pinned_template_versions_are_evaluated(eval_settings, small_dataset, store, tmp_path):
    _, good, worse = store
    a = run_eval(small_dataset, eval_settings, backend=TemplateFollower(), template_spec=f"reply@{good.version}",
                 out_dir=tmp_path / "a", progress=False)
    assert a.summary["template"] == f"reply@{good.version}"
    assert {r["template"]["version"] for r in a.results} == {f"v{good.version}"}
    assert a.summary["pass_rates"]["timeframe_ok"]["mean"] == 1.0
    b = run_eval(small_dataset, eval_settings, backend=TemplateFollower(), template_spec=f"reply@v{worse.version}",
                 out_dir=tmp_path / "b", baseline=a.out_dir, progress=False)
    assert b.results[0]["draft"] == "ok."
    assert b.worse
    rows = {r["metric"]: r for r in b.comparison["metrics"]}
    assert rows["timeframe_ok"]["delta"] == -1.0 and rows["timeframe_ok"]["verdict"] == "worse"
    assert b.comparison["counts"]["changed"] == 5


def test_publish_gate_vetoes_a_worse_template_and_allows_an_equal_one(eval_settings, small_dataset, store, tmp_path):
    s, good, worse = store
    gate = template_gate(eval_settings, small_dataset, backend=TemplateFollower(), out_root=tmp_path / "gate")
    with pytest.raises(GateFailedError, match="significantly worse") as exc:
        s.publish("reply", worse.version, gate=gate)
    assert exc.value.report.is_file()
    assert s.published_version("reply") == good.version  # nothing was published
    same = s.save("reply", GOOD + "\n", base_version=worse.version, author="test")
    published = s.publish("reply", same.version, gate=gate)
    assert published.version == same.version and s.published_version("reply") == same.version
