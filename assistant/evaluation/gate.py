"""The evaluation gate for publishing a template version: `TemplateStore.publish(..., gate=...)`.

    from assistant.evaluation.gate import template_gate
    store.publish("reply", 4, gate=template_gate(settings, "evals/datasets/sample_kb.jsonl"))

The gate evaluates the currently published version (the baseline; cached after the first time) and
the candidate on the same dataset and backend, and vetoes the publish by raising `GateFailedError`
when a gating metric is significantly worse. Note that the offline composer ignores prompt templates,
so a meaningful gate needs an LLM backend (openai or local).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.errors import TemplateError
from assistant.settings import Settings


class GateFailedError(TemplateError):
    """The candidate template is significantly worse than the published one; nothing was published."""

    def __init__(self, message: str, *, comparison: dict[str, Any], report: Path):
        super().__init__(message, hint=f"See the comparison in {report}")
        self.comparison = comparison
        self.report = report


def template_gate(
    settings: Settings,
    dataset: str | Path,
    *,
    backend_name: str | None = None,
    backend=None,
    workers: int = 1,
    out_root: str | Path | None = None,
    limit: int | None = None,
) -> Callable[[Any, Any], Any]:
    """A `gate(candidate, current)` callable for `TemplateStore.publish`; returns the candidate's RunSummary."""
    from assistant.evaluation.runner import default_runs_dir, run_eval

    root = Path(out_root) if out_root else default_runs_dir(settings) / "gate"

    def gate(candidate, current):
        common = dict(backend_name=backend_name, backend=backend, workers=workers, limit=limit, progress=False)
        if current is None:  # nothing published yet: nothing to be worse than
            return run_eval(dataset, settings, template_spec=candidate.spec,
                            out_dir=root / candidate.spec.replace("@", "-v"), **common)
        base = run_eval(dataset, settings, template_spec=current.spec,
                        out_dir=root / current.spec.replace("@", "-v"), **common)
        new = run_eval(dataset, settings, template_spec=candidate.spec, baseline=base.out_dir,
                       out_dir=root / candidate.spec.replace("@", "-v"), **common)
        if new.worse:
            reasons = "; ".join(new.comparison["gate"]["reasons"])
            raise GateFailedError(
                f"{candidate.spec} is significantly worse than the published {current.spec}: {reasons}",
                comparison=new.comparison,
                report=new.out_dir / "report.html",
            )
        return new

    return gate
