"""Helpers shared by the pages: cached resources (no customer data), session id, pending drafts, rate limit.

The UI talks to the product only through the core API (`assistant.*`): no vector store, LLM client
or model imports here.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import re
import sqlite3
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import streamlit as st

from assistant.errors import AssistantError, RateLimitExceededError
from assistant.settings import Settings

SESSION_PARAM = "s"
_SID = re.compile(r"^[0-9a-f]{32}$")
PENDING_TTL_S = 24 * 3600
BACKEND_CHOICES = ("auto", "composer", "local", "openai")
LENGTHS = ("short", "medium", "long")
LANGUAGES = {
    "": "Same as the customer",
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "nl": "Dutch",
}
SAMPLES = {
    "Damaged item": (
        "Hi, my Skerry Rain Shell from order #4521 arrived yesterday with a tear next to the front zip. "
        "I wanted to wear it on a hike this weekend. What can you do?\nThanks, Jana"
    ),
    "Late delivery": (
        "Hello, I ordered a pair of Cairn boots ten days ago (order #5120) and the tracking has not moved "
        "for five days. Where is my parcel?"
    ),
    "Refund question": (
        "I sent back a fleece two weeks ago and still have not seen my refund. How long does a refund take?"
    ),
    "Size exchange": (
        "The Lumen Down Jacket I got is too small. Can I exchange it for a size M? Order #4788."
    ),
    "German: wrong colour": (
        "Hallo, ich habe die Tarn Fleece in Moss bestellt, aber in Ember bekommen. Was kann ich tun?"
    ),
}
# ASCII punctuation: backslash-escaping all of it makes any text literal in Streamlit markdown.
_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def md_escape(text: Any) -> str:
    """Text made literal for the places Streamlit renders markdown (labels, alerts): no links,
    images, HTML or emphasis can come from it."""
    value = "" if text is None else str(text)
    return _MD_SPECIAL.sub(r"\\\1", value).replace("\n", "  \n")


def show_error(exc: BaseException) -> None:
    """An AssistantError as a message and a hint; never a traceback."""
    if isinstance(exc, AssistantError):
        body = md_escape(str(exc))
        hint = getattr(exc, "hint", None)
        if hint:
            body += "\n\n**What to do:** " + md_escape(hint)
        st.error(body)
    else:  # pragma: no cover - the pages only catch AssistantError; this is a last resort
        st.error("Something went wrong: " + md_escape(f"{type(exc).__name__}: {exc}"))


def show_saved_error(payload: dict[str, str] | None) -> None:
    """Show an error kept from a callback (callbacks cannot draw where the page wants it)."""
    if payload:
        body = md_escape(payload["message"])
        if payload.get("hint"):
            body += "\n\n**What to do:** " + md_escape(payload["hint"])
        st.error(body)


def error_payload(exc: AssistantError) -> dict[str, str]:
    return {"message": str(exc), "hint": getattr(exc, "hint", None) or ""}


# --- settings and cached resources -------------------------------------------------------------------


def get_settings() -> Settings:
    """Settings from the environment (cheap; read on every run so tests can switch data dirs)."""
    try:
        return Settings.from_env()
    except AssistantError as exc:
        show_error(exc)
        st.stop()
        raise  # unreachable; st.stop() raises


def settings_key(settings: Settings) -> str:
    return json.dumps(settings.describe(), sort_keys=True, default=str)


@st.cache_resource(show_spinner=False)
def _template_store(_settings: Settings, key: str):
    from assistant.templates import TemplateStore

    return TemplateStore(_settings)


@st.cache_resource(show_spinner=False)
def _feedback_store(path: str):
    from assistant.feedback import FeedbackStore

    return FeedbackStore(path)


@st.cache_resource(show_spinner="Loading the drafting pipeline…")
def _drafter(_settings: Settings, key: str, backend: str):
    from assistant.wiring import build_drafter

    return build_drafter(_settings, backend_name=backend, templates=template_store(_settings))


@st.cache_resource(show_spinner=False)
def _backend_locks() -> dict[str, threading.Lock]:
    return {}


def template_store(settings: Settings):
    return _template_store(settings, settings_key(settings))


def feedback_store(settings: Settings):
    return _feedback_store(str(settings.feedback_db))


def drafter(settings: Settings, backend: str):
    """The shared Drafter for `backend` (models and indexes load once; it holds no customer data)."""
    return _drafter(settings, settings_key(settings), backend)


def backend_lock(name: str) -> threading.Lock | None:
    """llama.cpp is not safe to call from two sessions at once; other backends run concurrently."""
    if name != "local":
        return None
    locks = _backend_locks()
    return locks.setdefault(name, threading.Lock())


def backend_choices(settings: Settings) -> list[str]:
    choices = list(BACKEND_CHOICES)
    if settings.backend not in choices:  # e.g. "fake" in tests
        choices.append(settings.backend)
    return choices


# --- per-session id, pending drafts ------------------------------------------------------------------


def ensure_session_id() -> str:
    """A random id per browser session, kept in the URL (?s=…) so a refresh finds its pending draft."""
    sid = st.session_state.get("sid")
    if not sid:
        given = st.query_params.get(SESSION_PARAM)
        sid = given if isinstance(given, str) and _SID.match(given) else uuid.uuid4().hex
        st.session_state["sid"] = sid
    if st.query_params.get(SESSION_PARAM) != sid:
        st.query_params[SESSION_PARAM] = sid
    return sid


class PendingDrafts:
    """Unaccepted drafts per browser session, in `<data_dir>/ui_sessions.sqlite3`.

    Kept until the draft is accepted or rejected, or for 24 hours; nothing else is stored.
    """

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / "ui_sessions.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS pending (session_id TEXT PRIMARY KEY, updated_at REAL NOT NULL, "
                "payload TEXT NOT NULL)"
            )
            db.execute("DELETE FROM pending WHERE updated_at < ?", (time.time() - PENDING_TTL_S,))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA busy_timeout = 30000")
        db.execute("PRAGMA journal_mode = WAL")
        return db

    def save(self, session_id: str, payload: dict[str, Any]) -> None:
        db = self._connect()
        try:
            with db:
                db.execute(
                    "INSERT INTO pending (session_id, updated_at, payload) VALUES (?, ?, ?) "
                    "ON CONFLICT(session_id) DO UPDATE SET updated_at = excluded.updated_at, payload = excluded.payload",
                    (session_id, time.time(), json.dumps(payload, ensure_ascii=False)),
                )
        finally:
            db.close()

    def load(self, session_id: str) -> dict[str, Any] | None:
        db = self._connect()
        try:
            row = db.execute(
                "SELECT payload FROM pending WHERE session_id = ? AND updated_at >= ?",
                (session_id, time.time() - PENDING_TTL_S),
            ).fetchone()
        finally:
            db.close()
        return json.loads(row[0]) if row else None

    def clear(self, session_id: str) -> None:
        db = self._connect()
        try:
            with db:
                db.execute("DELETE FROM pending WHERE session_id = ?", (session_id,))
        finally:
            db.close()


# --- rate limit ----------------------------------------------------------------------------------------


class RateLimiter:
    """At most `limit` drafts per rolling minute per session id (timestamps only; no content)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def check(self, session_id: str, limit: int, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(session_id, deque())
            while hits and now - hits[0] >= 60:
                hits.popleft()
            if len(hits) >= limit:
                wait = max(1, int(60 - (now - hits[0])) + 1)
                raise RateLimitExceededError(
                    f"You have asked for {limit} drafts in the last minute, the limit for one session.",
                    hint=f"Wait about {wait} seconds and try again (ASSISTANT_UI_RATE_LIMIT sets the limit).",
                )
            hits.append(now)


@st.cache_resource(show_spinner=False)
def rate_limiter() -> RateLimiter:
    return RateLimiter()


# --- draft display helpers ---------------------------------------------------------------------------


def mark_spans(text: str, spans: list[str], left: str = "⟦", right: str = "⟧") -> str:
    """`text` with every occurrence of each span wrapped in ⟦…⟧ (overlaps merged; plain text)."""
    intervals = []
    for span in spans:
        if not span:
            continue
        start = text.find(span)
        while start != -1:
            intervals.append((start, start + len(span)))
            start = text.find(span, start + 1)
    if not intervals:
        return text
    intervals.sort()
    merged = [list(intervals[0])]
    for a, b in intervals[1:]:
        if a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, pos = [], 0
    for a, b in merged:
        out.append(text[pos:a] + left + text[a:b] + right)
        pos = b
    out.append(text[pos:])
    return "".join(out)


def preview_drafter(base, templates):
    """A copy of a shared Drafter that renders with `templates` (an unsaved template in the editor)."""
    clone = copy.copy(base)
    clone.templates = templates
    return clone


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@st.cache_resource(show_spinner=False)
def _pending(path: str) -> PendingDrafts:
    return PendingDrafts(Path(path))


def pending_drafts(settings: Settings) -> PendingDrafts:
    return _pending(str(settings.data_dir))
