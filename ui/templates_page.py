"""Templates page (team leads): versions, edit with validation, preview, diff, save, publish, roll back."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from assistant.errors import AssistantError, TemplateError
from assistant.prompts import sample_variables
from assistant.settings import PROJECT_ROOT
from assistant.templates import diff_sources
from ui import shared

settings = shared.get_settings()
shared.ensure_session_id()
ss = st.session_state
store = shared.template_store(settings)

st.title("Prompt templates")
st.caption(
    "Every save is a new version; nothing is ever deleted. Drafts use the published version of a "
    "template unless a version is pinned (e.g. reply@3)."
)

flash = ss.pop("tpl_flash", None)
if flash:
    st.success(shared.md_escape(flash))

listing = store.list_templates()
if not listing:
    st.warning("No templates found. Check ASSISTANT_PROMPTS_DIR.")
    st.stop()
names = [t["name"] for t in listing]
info = {t["name"]: t for t in listing}
if ss.get("tpl_edit_name") not in names:
    ss["tpl_edit_name"] = "reply" if "reply" in names else names[0]
name = st.selectbox(
    "Template",
    names,
    key="tpl_edit_name",
    format_func=lambda n: f"{n} ({'reply template' if info[n]['kind'] == 'reply' else info[n]['kind'] + ' prompt'}"
    f" · published v{info[n]['published']} · latest v{info[n]['latest']})",
)
versions = store.versions(name)
latest = versions[0].version if versions else None
published = next((v for v in versions if v.published), None)

st.dataframe(
    pd.DataFrame([
        {"version": v.label, "published": "✔" if v.published else "", "author": v.author, "note": v.note,
         "saved": v.created_at}
        for v in versions
    ]),
    hide_index=True,
    width="stretch",
)

# --- the editor -------------------------------------------------------------------------------------------
src_key, base_key, loaded_key = f"tpl_src_{name}", f"tpl_base_{name}", f"tpl_loaded_{name}"


def load_version(number: int | None = None) -> None:
    """Put a version's source in the editor; edits are based on the latest version at this moment."""
    version = store.get(name, number if number is not None else store.latest_version(name))
    ss[src_key] = version.source
    ss[base_key] = store.latest_version(name)
    ss[loaded_key] = version.version


if src_key not in ss:
    load_version()

st.subheader("Edit")
cl1, cl2 = st.columns([3, 1], vertical_alignment="bottom")
with cl1:
    start_from = st.selectbox(
        "Load a version into the editor", [v.version for v in versions], key=f"tpl_start_{name}",
        format_func=lambda n: f"v{n}" + (" (published)" if published and n == published.version else ""),
    )
with cl2:
    st.button("Load", on_click=load_version, args=(start_from,), help="Replaces the editor's text.")
st.caption(f"Editing text loaded from v{ss.get(loaded_key)}; a save creates v{(ss.get(base_key) or 0) + 1} "
           f"(refused if someone saves another version first).")
st.text_area("Template source (Jinja2)", key=src_key, height=420, persist_state="session")
source = ss.get(src_key, "")
a1, a2 = st.columns(2)
author = a1.text_input("Your name", key="tpl_author", placeholder="shown in the version history")
note = a2.text_input("What changed", key=f"tpl_note_{name}", placeholder="e.g. shorter opening")

problems = store.validate(name, source)
if problems:
    st.error(f"{len(problems)} problem(s); this text cannot be saved:")
    for p in problems:
        st.code(p, language=None, wrap_lines=True)
else:
    st.success("Valid: syntax, variables, sandbox and a test render are fine.")



def save() -> None:
    try:
        saved = store.save(name, ss.get(src_key, ""), base_version=ss.get(base_key),
                           author=ss.get("tpl_author") or "team lead", note=ss.get(f"tpl_note_{name}", ""))
    except AssistantError as exc:
        ss["tpl_error"] = shared.error_payload(exc)
        return
    ss["tpl_flash"] = f"Saved {name} {saved.label}. Publish it to use it for drafts."
    ss[base_key] = saved.version
    ss[loaded_key] = saved.version
    ss[f"tpl_pub_{name}"] = saved.version  # offer the new version for publishing
    ss[f"tpl_start_{name}"] = saved.version


b1, b2, b3 = st.columns(3)
b1.button("Save as new version", type="primary", disabled=bool(problems), on_click=save)
b2.button("Reload latest", on_click=load_version, help="Discard the editor's text and load the latest version.")
shared.show_saved_error(ss.pop("tpl_error", None))
# --- preview, diff ---------------------------------------------------------------------------------------------
tab_prompt, tab_draft, tab_diff = st.tabs(["Rendered prompt (sample)", "Draft for a sample message", "Diff"])
with tab_prompt:
    if problems:
        st.caption("Fix the problems above to see the rendered prompt.")
    else:
        try:
            parts = store.render_variables(sample_variables(), name, source)
        except AssistantError as exc:
            shared.show_error(exc)
        else:
            for part, text in parts.items():
                st.markdown(f"**{shared.md_escape(part)}**")
                st.code(text, language=None, wrap_lines=True)
with tab_draft:
    sample_name = st.selectbox("Sample message", list(shared.SAMPLES), key="tpl_sample")
    backend = st.selectbox("Backend", shared.backend_choices(settings), key="tpl_backend",
                           index=shared.backend_choices(settings).index(settings.backend)
                           if settings.backend in shared.backend_choices(settings) else 0)
    st.text(shared.SAMPLES[sample_name])
    if st.button("Draft with the editor's text", disabled=bool(problems)):
        try:
            shared.rate_limiter().check(ss["sid"], settings.ui_rate_limit_per_min)
            with st.spinner("Drafting…"):
                base = shared.drafter(settings, backend)
                d = shared.preview_drafter(base, store.with_draft(name, source))
                reply_spec = name if info[name]["kind"] == "reply" else settings.template
                result = d.draft(shared.SAMPLES[sample_name], template=reply_spec)
        except AssistantError as exc:
            shared.show_error(exc)
        else:
            st.caption("Backend: " + shared.md_escape(result.backend) + " · template "
                       + shared.md_escape(f"{result.template['name']} {result.template['version']}")
                       + (" · checks passed" if result.checks.passed else " · checks: "
                          + shared.md_escape("; ".join(result.checks.problems()))))
            st.code(result.text, language=None, wrap_lines=True)
with tab_diff:
    options = ["editor"] + [v.version for v in versions]
    fmt = {"editor": "the editor's text"}
    d1, d2 = st.columns(2)
    a = d1.selectbox("From", options, index=options.index(published.version) if published else 1,
                     key=f"tpl_diff_a_{name}", format_func=lambda o: fmt.get(o, f"v{o}"))
    b = d2.selectbox("To", options, index=0, key=f"tpl_diff_b_{name}", format_func=lambda o: fmt.get(o, f"v{o}"))

    def _text(o):
        return source if o == "editor" else store.get(name, o).source

    def _label(o):
        return f"{name}@editor" if o == "editor" else f"{name}@v{o}"

    diff = diff_sources(_text(a), _text(b), _label(a), _label(b))
    if diff:
        st.code(diff, language="diff")
    else:
        st.caption("No differences.")

# --- publish, roll back -------------------------------------------------------------------------------------------
st.subheader("Publish")
st.caption("Publishing makes a version the one every draft uses. Versions are never deleted; Roll back "
           "re-publishes the previously published version.")
datasets = sorted((PROJECT_ROOT / "evals" / "datasets").glob("*.jsonl"))
g1, g2, g3, g4 = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
require_gate = g1.checkbox(
    "Require an evaluation run not worse than the published version", key="tpl_gate",
    help="Evaluates the published version and the candidate on the same dataset and backend; "
    "publishing is refused if the candidate is significantly worse.",
)
default_dataset = next((i for i, p in enumerate(datasets) if p.name == "sample_kb.jsonl"), 0)
gate_dataset = g2.selectbox("Evaluation dataset", datasets, index=default_dataset, key="tpl_gate_dataset",
                            format_func=lambda p: p.name, disabled=not require_gate)
gate_backend = g3.selectbox("Evaluation backend", shared.backend_choices(settings), key="tpl_gate_backend",
                            disabled=not require_gate)
gate_limit = g4.number_input("Cases (0 = all)", min_value=0, value=0, step=5, key="tpl_gate_limit",
                             disabled=not require_gate)
if require_gate and gate_backend == "composer":
    st.caption("Note: the offline composer ignores prompt templates, so a gate run with it cannot tell versions "
               "apart; use the local or openai backend for a meaningful gate.")
p1, p2, p3 = st.columns([2, 1, 1], vertical_alignment="bottom")
to_publish = p1.selectbox("Version to publish", [v.version for v in versions], key=f"tpl_pub_{name}",
                          format_func=lambda n: f"v{n}" + (" (published)" if published and n == published.version else ""))
with p2:
    publish_clicked = st.button("Publish", type="primary")
with p3:
    rollback_clicked = st.button("Roll back", help="Re-publish the version that was published before the current one.")
if publish_clicked:
    try:
        gate = None
        if require_gate:
            if gate_dataset is None:
                raise TemplateError("No evaluation dataset found in evals/datasets/.",
                                    hint="Add a dataset, or publish without the evaluation gate.")
            from assistant.evaluation.gate import template_gate

            gate = template_gate(settings, gate_dataset, backend_name=gate_backend, limit=int(gate_limit) or None)
        with st.spinner("Running the evaluation gate…" if gate else "Publishing…"):
            v = store.publish(name, to_publish, gate=gate, by=author or "team lead")
    except AssistantError as exc:
        shared.show_error(exc)
    else:
        ss["tpl_flash"] = f"Published {name} {v.label}; new drafts use it." + (
            " The evaluation run was not worse than the published version." if gate else "")
        st.rerun()
if rollback_clicked:
    try:
        v = store.rollback(name, by=author or "team lead")
    except TemplateError as exc:
        shared.show_error(exc)
    else:
        ss["tpl_flash"] = f"Rolled back: {name} {v.label} is published again."
        st.rerun()

history = store.history(name)
if history:
    with st.expander("Publish history"):
        st.dataframe(pd.DataFrame([{"version": f"v{h['version']}", "action": h["action"], "by": h["by"], "at": h["at"]}
                                   for h in history]), hide_index=True, width="stretch")
