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
    from assistant.evaluation.runner import default_runs_dir

    roots = [Path(default_runs_dir(settings)), Path(settings.data_dir) / "runs", PROJECT_ROOT / "runs"]
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
    """Run directories under `root`, as the evaluation module lists them."""
    from assistant.evaluation.runner import list_runs as core_list_runs

    return core_list_runs(root)


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
    html = Path(report).read_bytes()
    st.download_button("Download the HTML report", html, file_name=f"{run['name']}-report.html", mime="text/html")

# The report's headline figures, drawn natively (the UI never renders HTML, not even our own report).
for section, title in (("pass_rates", "Check pass rates"), ("retrieval", "Retrieval"), ("metrics", "Other metrics")):
    block = summary.get(section) or {}
    rows = [{"metric": k, "mean": (v.get("mean") if isinstance(v, dict) else v)} for k, v in block.items()]
    rows = [r for r in rows if isinstance(r["mean"], int | float)]
    if rows:
        st.subheader(title)
        frame = pd.DataFrame(rows).set_index("metric")
        if section == "pass_rates":
            st.bar_chart(frame)
        st.dataframe(frame, width="stretch")
comparison = summary.get("comparison")
if isinstance(comparison, dict):
    st.subheader("Against the baseline")
    rows = comparison.get("metrics") or []
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    worse = comparison.get("worse_cases") or []
    if worse:
        st.caption("Cases that got worse")
        st.dataframe(
            pd.DataFrame([
                {"id": w.get("id"), "message": w.get("message"),
                 "worse on": ", ".join(str(x.get("metric", x)) if isinstance(x, dict) else str(x) for x in w.get("worse", []))}
                for w in worse
            ]),
            hide_index=True,
            width="stretch",
        )
