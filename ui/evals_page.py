"""Evaluations page: the offline evaluation runs found on disk (newest first) and their headline numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from assistant.settings import PROJECT_ROOT
from ui import shared

settings = shared.get_settings()
shared.ensure_session_id()

st.title("Evaluation runs")
st.caption("Runs written by `assistant eval` (newest first). Compare template versions and backends here.")


def run_roots() -> list[Path]:
    roots = [Path(settings.data_dir) / "eval_runs", Path(settings.data_dir) / "runs", PROJECT_ROOT / "runs"]
    try:
        from assistant.evaluation.runner import default_runs_dir

        roots.insert(0, Path(default_runs_dir(settings)))
    except ImportError:
        pass
    seen, out = set(), []
    for r in roots:
        key = r.resolve()
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _summary(d: Path) -> dict:
    try:
        return json.loads((d / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def list_runs(root: Path) -> list[dict]:
    """Run directories under `root`: the evaluation module's listing if present, else a plain one."""
    try:
        from assistant.evaluation.runner import list_runs as core_list_runs

        return core_list_runs(root)
    except ImportError:
        pass
    runs = []
    for d in sorted(p for p in root.glob("*/") if p.is_dir()) if root.is_dir() else []:
        s = _summary(d)
        runs.append({"dir": str(d), "name": d.name, "created_at": s.get("created_at"), "backend": s.get("backend"),
                     "template": s.get("template"), "n": s.get("n")})
    return runs


runs = []
for root in run_roots():
    runs.extend(list_runs(root))
runs.sort(key=lambda r: r.get("created_at") or "", reverse=True)

if not runs:
    st.info("No evaluation runs yet. Looked in: " + shared.md_escape(", ".join(str(r) for r in run_roots())))
    st.stop()

columns = ["name", "created_at", "mode", "dataset", "backend", "model", "template", "n", "errors", "checks_passed"]
st.dataframe(pd.DataFrame([{c: r.get(c) for c in columns} for r in runs]), hide_index=True, width="stretch")

names = [r["name"] for r in runs]
choice = st.selectbox("Run", names)
run = runs[names.index(choice)]
run_dir = Path(run["dir"])
st.text(f"Directory: {run_dir}")
summary = _summary(run_dir)
if summary:
    with st.expander("summary.json", expanded=False):
        st.json(summary, expanded=1)
report = run.get("report") or (str(run_dir / "report.html") if (run_dir / "report.html").is_file() else None)
if report:
    st.download_button("Download the HTML report", Path(report).read_bytes(), file_name=f"{run['name']}-report.html",
                       mime="text/html")
