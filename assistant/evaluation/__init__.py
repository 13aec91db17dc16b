"""Offline evaluation: datasets, metrics, runs of the real drafting pipeline, reports, comparisons.

Entry points: `run_eval` (drafting runs), `run_retrieval_eval` (knowledge retrieval only),
`compare_runs` (two run directories), `list_runs` (for the UI's Evals page). Heavy imports happen
inside those functions, so importing this package is cheap.
"""

from __future__ import annotations

from assistant.evaluation.dataset import Dataset, EvalCase, load_dataset
from assistant.evaluation.runner import RunSummary, default_runs_dir, list_runs, read_run, run_eval


def run_retrieval_eval(*args, **kwargs):
    from assistant.evaluation.retrieval_eval import run_retrieval_eval as impl

    return impl(*args, **kwargs)


def compare_runs(*args, **kwargs):
    from assistant.evaluation.compare import compare_runs as impl

    return impl(*args, **kwargs)


__all__ = [
    "Dataset",
    "EvalCase",
    "RunSummary",
    "compare_runs",
    "default_runs_dir",
    "list_runs",
    "load_dataset",
    "read_run",
    "run_eval",
    "run_retrieval_eval",
]
