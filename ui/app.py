"""The review UI: `assistant ui` (or `streamlit run ui/app.py`). Pages: Agent, Templates, Insights, Evaluations."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run ui/app.py` puts ui/ itself on the path, not the project
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from ui import shared  # noqa: E402

st.set_page_config(page_title="Support Reply Assistant", page_icon="✉️", layout="wide")
shared.ensure_session_id()

HERE = Path(__file__).resolve().parent
pages = [
    st.Page(HERE / "agent.py", title="Agent", icon=":material/mail:", url_path="agent", default=True),
    st.Page(HERE / "templates_page.py", title="Templates", icon=":material/edit_note:", url_path="templates"),
    st.Page(HERE / "insights.py", title="Insights", icon=":material/insights:", url_path="insights"),
    st.Page(HERE / "evals_page.py", title="Evaluations", icon=":material/science:", url_path="evaluations"),
]
st.navigation(pages).run()
