"""Insights page: how drafts fare per template version and backend, and over time."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from assistant.feedback import CHECKS
from ui import shared

settings = shared.get_settings()
shared.ensure_session_id()
feedback = shared.feedback_store(settings)

st.title("Insights")
stats = feedback.stats()
if not stats["total"]:
    st.info("No feedback yet. Accept or reject drafts on the Agent page and the numbers appear here.")
    st.stop()


def pct(value) -> str:
    return "–" if value is None else f"{value:.0%}"


m1, m2, m3, m4 = st.columns(4)
m1.metric("Drafts reviewed", stats["total"])
m2.metric("Acceptance rate", pct(stats["acceptance_rate"]))
m3.metric("Accepted unchanged", pct(stats["unchanged_rate"]))
m4.metric("Mean edit distance", "–" if stats["mean_edit_distance"] is None else f"{stats['mean_edit_distance']:.3f}",
          help="Normalised Levenshtein distance from draft to sent reply, over accepted drafts (0 = unchanged).")

CHECK_LABELS = {
    "acknowledges": "acknowledgement missing",
    "apologizes": "apology missing",
    "timeframe": "timeframe wrong/missing",
    "unsupported": "unsupported claims",
    "placeholders": "placeholders left",
    "language": "wrong language",
    "injection": "injection suspected",
    "any": "checklist failed",
}

rows = []
for g in stats["by_version"]:
    row = {"template": g["template"], "backend": g["backend"], "drafts": g["n"],
           "acceptance": g["acceptance_rate"], "unchanged": g["unchanged_rate"],
           "mean edit distance": g["mean_edit_distance"]}
    row.update({CHECK_LABELS[k]: g["failure_rates"][k] for k in CHECKS})
    rows.append(row)
by_version = pd.DataFrame(rows)
by_version["series"] = by_version["template"] + " · " + by_version["backend"]

st.subheader("By template version and backend")
percent = st.column_config.NumberColumn(format="percent")
st.dataframe(
    by_version.drop(columns=["series"]),
    hide_index=True,
    width="stretch",
    column_config={c: percent for c in ["acceptance", "unchanged", *CHECK_LABELS.values()]}
    | {"mean edit distance": st.column_config.NumberColumn(format="%.3f")},
)
c1, c2 = st.columns(2)
with c1:
    st.markdown("**Acceptance rate**")
    st.bar_chart(by_version, x="series", y="acceptance", x_label="template · backend", y_label="acceptance rate")
with c2:
    st.markdown("**Check failure rates**")
    failures = by_version.melt(id_vars=["series"], value_vars=[CHECK_LABELS[k] for k in CHECKS],
                               var_name="check", value_name="failure rate")
    st.bar_chart(failures, x="check", y="failure rate", color="series", stack=False, horizontal=True)

st.subheader("Over time")
days = pd.DataFrame([
    {"day": d["day"], "series": f"{d['template']} · {d['backend']}", "acceptance": d["acceptance_rate"],
     "mean edit distance": d["mean_edit_distance"], "checklist failed": d["failure_rates"]["any"], "drafts": d["n"]}
    for d in stats["by_day"]
])
days["day"] = pd.to_datetime(days["day"])


def over_time(column: str, title: str, fmt: str = ".0%") -> None:
    """A line per template version · backend, with points (a single day still shows)."""
    data = days.dropna(subset=[column])
    st.markdown(f"**{title}**")
    if data.empty:
        st.caption("No data yet.")
        return
    chart = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("day:T", title="day", axis=alt.Axis(format="%b %d")),
            y=alt.Y(f"{column}:Q", title=column, axis=alt.Axis(format=fmt)),
            color=alt.Color("series:N", title="template · backend"),
            tooltip=["day:T", "series:N", alt.Tooltip(f"{column}:Q", format=fmt), "drafts:Q"],
        )
    )
    st.altair_chart(chart, width="stretch")


t1, t2 = st.columns(2)
with t1:
    over_time("acceptance", "Acceptance rate per day")
    over_time("drafts", "Drafts reviewed per day", fmt="d")
with t2:
    over_time("mean edit distance", "Mean edit distance per day", fmt=".3f")
    over_time("checklist failed", "Checklist failure rate per day")

st.subheader("Recent feedback")
recent = feedback.list(50)
st.dataframe(
    pd.DataFrame([
        {"id": r["id"], "when": r["created_at"], "action": r["action"], "reason": r["reason"] or "",
         "template": f"{r['template_name']} {r['template_version']}", "backend": r["backend"],
         "edit distance": r["edit_distance"], "checks passed": bool(r["checks_passed"]),
         "in knowledge base": r["kb_ticket_id"] or "", "message (redacted)": r["message"][:200]}
        for r in recent
    ]),
    hide_index=True,
    width="stretch",
)
