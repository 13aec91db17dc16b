"""Agent page: paste a customer message, get a checked, cited draft, edit it, accept or reject it.

Customer text and draft text are only ever shown through st.text_area / st.code / st.text (never
markdown, never HTML). Labels and alerts that include data go through `shared.md_escape`.
"""

from __future__ import annotations

import logging

import streamlit as st

from assistant.errors import AssistantError, InputError
from ui import shared

log = logging.getLogger("assistant.ui")
settings = shared.get_settings()
sid = shared.ensure_session_id()
ss = st.session_state
pending = shared.pending_drafts(settings)
feedback = shared.feedback_store(settings)
templates = shared.template_store(settings)
PERSIST = "session"  # widget values survive a page switch; the pending-draft table survives a refresh

# --- restore an unaccepted draft after a browser refresh ----------------------------------------------
if not ss.get("restored"):
    ss["restored"] = True
    saved = pending.load(sid)
    if saved and saved.get("draft"):
        ss["message"] = saved.get("message", "")
        ss["draft"] = saved["draft"]
        ss["draft_message"] = saved.get("draft_message", saved.get("message", ""))
        ss["draft_edit"] = saved.get("edited", saved["draft"].get("text", ""))
        ss["drafted_at"] = saved.get("drafted_at")
        ss["flash"] = ("info", "Restored your unaccepted draft from before the page was reloaded.")


def _persist() -> None:
    """Keep the current unaccepted draft (and its edits) for this browser session."""
    if ss.get("draft"):
        pending.save(sid, {
            "message": ss.get("message", ""),
            "draft_message": ss.get("draft_message", ""),
            "draft": ss["draft"],
            "edited": ss.get("draft_edit", ss["draft"].get("text", "")),
            "drafted_at": ss.get("drafted_at"),
        })


def _on_sample() -> None:
    choice = ss.get("sample")
    if choice and choice in shared.SAMPLES:
        ss["message"] = shared.SAMPLES[choice]


def _want_draft() -> None:
    ss["want_draft"] = True
    ss.pop("last_feedback", None)


def _finish(action: str) -> None:
    """Record the agent's decision, forget the pending draft, clear the page for the next message."""
    draft = ss.get("draft")
    if not draft:
        return
    final = ss.get("draft_edit", draft.get("text", ""))
    reason = (ss.get("reject_reason") or "").strip() if action == "rejected" else None
    try:
        if action == "rejected" and not reason:
            raise InputError("Please give a reason for rejecting the draft.",
                             hint="A short note (e.g. 'wrong policy', 'tone') helps improve the templates.")
        feedback_id = feedback.record(ss.get("draft_message", ""), draft, final, action, reason,
                                      drafted_at=ss.get("drafted_at"))
    except AssistantError as exc:
        ss["action_error"] = shared.error_payload(exc)
        return
    row = feedback.get(feedback_id)
    ss["last_feedback"] = {"id": feedback_id, "action": row["action"], "edit_distance": row["edit_distance"]}
    ss.pop("action_error", None)
    for key in ("draft", "draft_message", "draft_edit", "drafted_at", "reject_reason"):
        ss.pop(key, None)
    ss["message"] = ""
    pending.clear(sid)


def _add_to_kb() -> None:
    last = ss.get("last_feedback")
    if not last:
        return
    try:
        result = feedback.add_to_knowledge_base(last["id"], settings)
    except AssistantError as exc:
        ss["action_error"] = shared.error_payload(exc)
        return
    last["kb"] = result["ticket_id"]


# --- page ----------------------------------------------------------------------------------------------
st.title("Draft a reply")

with st.sidebar:
    st.subheader("Drafting options")
    backend_options = shared.backend_choices(settings)
    if "backend" not in ss:
        ss["backend"] = settings.backend if settings.backend in backend_options else "auto"
    st.selectbox("Backend", backend_options, key="backend", persist_state=PERSIST,
                 help="auto: an OpenAI-compatible server if configured, else the local model, else the composer.")
    reply_names = templates.reply_templates() or [settings.template]
    if ss.get("tpl_name") not in reply_names:
        ss["tpl_name"] = settings.template if settings.template in reply_names else reply_names[0]
    tpl_name = st.selectbox("Template", reply_names, key="tpl_name", persist_state=PERSIST)
    published = templates.published_version(tpl_name)
    version_options = ["published"] + [f"v{v.version}" for v in templates.versions(tpl_name)]
    if ss.get("tpl_version") not in version_options:
        ss["tpl_version"] = "published"
    st.selectbox(
        "Template version", version_options, key="tpl_version", persist_state=PERSIST,
        format_func=lambda v: f"published (v{published})" if v == "published" and published else v,
    )

c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
with c1:
    st.selectbox("Sample message", [""] + list(shared.SAMPLES), key="sample", on_change=_on_sample,
                 format_func=lambda s: s or "Pick a sample (optional)")
with c2:
    if "tone" not in ss:
        ss["tone"] = settings.tone
    st.selectbox("Tone", ["friendly", "formal", "concise"], key="tone", persist_state=PERSIST)
with c3:
    if "length" not in ss:
        ss["length"] = "medium"
    st.selectbox("Length", list(shared.LENGTHS), key="length", persist_state=PERSIST)
with c4:
    st.selectbox("Reply language", list(shared.LANGUAGES), key="language", persist_state=PERSIST,
                 format_func=lambda code: shared.LANGUAGES[code])

if "message" not in ss:
    ss["message"] = ""
st.text_area("Customer message", key="message", height=160, persist_state=PERSIST,
             placeholder="Paste the customer's message here.")
st.button("Draft reply", type="primary", on_click=_want_draft)

flash = ss.pop("flash", None)
if flash:
    st.info(shared.md_escape(flash[1]))

# --- drafting (streams into a placeholder) ---------------------------------------------------------------
if ss.pop("want_draft", False):
    message = ss.get("message", "")
    backend = ss.get("backend", "auto")
    spec = tpl_name if ss.get("tpl_version", "published") == "published" else f"{tpl_name}@{ss['tpl_version']}"
    status = st.empty()
    stream = st.empty()
    pieces: list[str] = []

    def on_token(piece: str) -> None:
        pieces.append(piece)
        stream.code("".join(pieces), language=None, wrap_lines=True)

    def on_restart(problems: list[str]) -> None:
        pieces.clear()
        status.info("The first attempt had problems; regenerating with feedback: " + shared.md_escape("; ".join(problems)))

    try:
        if not message.strip():
            raise InputError("The customer message is empty.", hint="Paste the customer's message or pick a sample.")
        shared.rate_limiter().check(sid, settings.ui_rate_limit_per_min)
        with st.spinner("Drafting…"):
            drafter = shared.drafter(settings, backend)
            lock = shared.backend_lock(drafter.backend.name)
            if lock:
                with lock:
                    result = drafter.draft(message, tone=ss.get("tone"), template=spec, length=ss.get("length", "medium"),
                                           language=ss.get("language") or None, on_token=on_token, on_restart=on_restart)
            else:
                result = drafter.draft(message, tone=ss.get("tone"), template=spec, length=ss.get("length", "medium"),
                                       language=ss.get("language") or None, on_token=on_token, on_restart=on_restart)
    except AssistantError as exc:
        stream.empty()
        status.empty()
        shared.show_error(exc)
    except Exception as exc:  # a bug, not a user error: a short message here, the traceback in the server log
        stream.empty()
        status.empty()
        log.exception("drafting failed")
        st.error("Drafting failed unexpectedly (" + shared.md_escape(type(exc).__name__) + "). "
                 "The details are in the server log; please report it.")
    else:
        stream.empty()
        status.empty()
        ss["draft"] = result.to_dict()
        ss["draft_message"] = message
        ss["draft_edit"] = result.text
        ss["drafted_at"] = shared.now_iso()
        ss.pop("reject_reason", None)
        _persist()

shared.show_saved_error(ss.pop("action_error", None))

# --- after accept / reject ---------------------------------------------------------------------------------
last = ss.get("last_feedback")
if last and not ss.get("draft"):
    label = {"accepted": "accepted", "accepted_with_edits": "accepted with edits", "rejected": "rejected"}[last["action"]]
    distance = last.get("edit_distance")
    st.success(
        f"Saved as feedback #{last['id']}: {label}"
        + (f" (edit distance {distance:.2f})" if distance is not None and last["action"] != "rejected" else "")
        + "."
    )
    if last["action"] != "rejected":
        if last.get("kb"):
            st.success(f"Added to the knowledge base as resolved ticket {shared.md_escape(last['kb'])}.")
        else:
            st.button("Add to knowledge base as a resolved ticket", on_click=_add_to_kb,
                      help="Appends the accepted reply (PII-redacted) to accepted_tickets/accepted.jsonl and ingests it.")

# --- the draft ------------------------------------------------------------------------------------------------


def _draft_height(text: str) -> int:
    """Tall enough to show a typical whole draft without scrolling (~80 characters a line in the column)."""
    lines = sum(1 + len(line) // 80 for line in text.splitlines()) or 1
    return max(300, min(640, 24 * lines + 40))


draft = ss.get("draft")
if draft:
    st.divider()
    if draft.get("llm"):
        st.info(shared.md_escape(draft.get("label", "")))
    else:
        # The label itself says so (COMPOSER_LABEL); make that phrase bold rather than repeat it.
        label = shared.md_escape(draft.get("label", ""))
        phrase = "NOT written by an LLM"
        st.warning(label.replace(phrase, f"**{phrase}**") if phrase in label else f"**{phrase}.** {label}",
                   icon=":material/warning:")
    tpl = draft.get("template") or {}
    st.caption(
        "Backend: " + shared.md_escape(draft.get("backend")) + " · model " + shared.md_escape(draft.get("model"))
        + " · template " + shared.md_escape(f"{tpl.get('name', '?')} {tpl.get('version', '?')}")
        + " · category " + shared.md_escape(draft.get("category_label") or draft.get("category"))
    )
    checks = draft.get("checks") or {}
    left, right = st.columns([3, 2])
    with left:
        st.text_area("Draft reply (edit before sending)", key="draft_edit", height=_draft_height(draft.get("text", "")),
                     on_change=_persist, persist_state=PERSIST)
        edited = ss.get("draft_edit", draft.get("text", ""))
        unsupported = checks.get("unsupported") or []
        if unsupported:
            st.markdown("**Unsupported claims, marked ⟦like this⟧ in the draft as written:**")
            st.code(shared.mark_spans(draft.get("text", ""), [u.get("span", "") for u in unsupported]),
                    language=None, wrap_lines=True)
        b1, b2, b3 = st.columns(3)
        b1.button("Accept", type="primary", on_click=_finish, args=("accepted",),
                  help="Record the reply as accepted (as 'accepted with edits' if you changed it).")
        b2.button("Accept with edits", on_click=_finish, args=("accepted_with_edits",))
        b3.button("Regenerate", on_click=_want_draft)
        with st.expander("Copy the reply"):
            st.caption("Use the copy button at the top right of the box.")
            st.code(edited, language=None, wrap_lines=True)
            st.download_button("Download as .txt", edited, file_name="reply.txt", mime="text/plain")
        r1, r2 = st.columns([3, 1], vertical_alignment="bottom")
        r1.text_input("Reason for rejecting", key="reject_reason", placeholder="e.g. wrong policy, made-up promise",
                      persist_state=PERSIST)
        r2.button("Reject", on_click=_finish, args=("rejected",))
    with right:
        st.subheader("Checklist")

        def item(ok: bool, text: str) -> None:
            # Material icons ship with Streamlit's own font: no dependence on the browser's emoji font.
            st.markdown((":green[:material/check_circle:] " if ok else ":red[:material/cancel:] ") + text)

        item(bool(checks.get("acknowledges")), "Acknowledges the customer's problem")
        item(bool(checks.get("apologizes")), "Apologizes")
        tf = checks.get("timeframe") or {}
        item(bool(tf.get("ok")), "Timeframe matches the policy")
        st.text(f"   stated: {tf.get('stated') or '(none)'}\n   policy: {tf.get('policy') or draft.get('timeframe_policy') or '?'}")
        item(not unsupported, f"No unsupported claims ({len(unsupported)} found)")
        for u in unsupported:
            st.text(f"   ⟦{u.get('span', '')}⟧ — {u.get('reason', '')}")
        placeholders = checks.get("placeholders") or []
        item(not placeholders, "No leftover placeholders")
        for p in placeholders:
            st.text(f"   {p}")
        item(bool(checks.get("language_ok", True)), f"Reply language: {shared.md_escape(checks.get('language') or draft.get('language'))}")
        leak = checks.get("prompt_leak")
        item(not leak, "Does not reveal the assistant's instructions")
        if leak:
            st.error("**The draft quoted the assistant's own instructions.** That text was removed; rewrite the reply "
                     "before sending.")
        if checks.get("injection_suspected") or draft.get("injection_patterns"):
            st.warning(
                "**Possible prompt injection in the customer message.** It was treated as data, but check the "
                "draft carefully. Patterns: " + shared.md_escape(", ".join(draft.get("injection_patterns") or []) or "?")
            )
        if draft.get("regenerated"):
            st.caption("The first attempt was regenerated because of: "
                       + shared.md_escape("; ".join(draft.get("first_attempt_problems") or [])))
        st.subheader("Sources")
        sources = draft.get("sources") or []
        if not sources:
            st.caption("No evidence was retrieved.")
        for i, s in enumerate(sources, 1):
            kind = "Knowledge" if s.get("kind") == "knowledge" else "Resolved ticket"
            with st.expander(shared.md_escape(f"{i}. {s.get('title')} · {kind} · {float(s.get('score') or 0):.2f}")):
                st.text(f"Source: {s.get('source', '')}")
                st.text(s.get("snippet", ""))
    with st.expander("Customer message this draft answers"):
        st.text(ss.get("draft_message", ""))
