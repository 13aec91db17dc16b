"""What agents did with each draft: accepted, accepted with edits, or rejected (SQLite, under the data dir).

Each row keeps the customer message (PII-redacted), the draft, the text the agent accepted, which
backend and template version wrote the draft, its checks, the action and the normalised edit
distance draft -> final text. `stats()` aggregates them for the Insights page; an accepted reply
can be added to the knowledge base as a resolved ticket (`add_to_knowledge_base`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from assistant import sqlite_util
from assistant.errors import InputError
from assistant.pii import redact

SCHEMA_VERSION = 1
ACTIONS = ("accepted", "accepted_with_edits", "rejected")
ACCEPTED = ("accepted", "accepted_with_edits")
ACCEPTED_DIRNAME = "accepted_tickets"
ACCEPTED_FILE = "accepted.jsonl"
#: Check name -> how to tell from a draft's checks dict that it failed.
CHECKS = ("acknowledges", "apologizes", "timeframe", "unsupported", "placeholders", "language", "injection", "any")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    drafted_at TEXT,
    day TEXT NOT NULL,
    message TEXT NOT NULL,
    draft TEXT NOT NULL,
    final_text TEXT,
    backend TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    llm INTEGER NOT NULL DEFAULT 0,
    template_name TEXT NOT NULL DEFAULT '',
    template_version TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '',
    checks TEXT NOT NULL DEFAULT '{}',
    checks_passed INTEGER,
    action TEXT NOT NULL CHECK (action IN ('accepted', 'accepted_with_edits', 'rejected')),
    reason TEXT,
    edit_distance REAL,
    sources TEXT NOT NULL DEFAULT '[]',
    kb_ticket_id TEXT,
    kb_added_at TEXT
);
CREATE INDEX IF NOT EXISTS feedback_day ON feedback (day);
CREATE INDEX IF NOT EXISTS feedback_version ON feedback (template_name, template_version, backend)
"""


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _levenshtein(a: str, b: str) -> int:
    """Plain dynamic-programming Levenshtein distance (fallback when rapidfuzz is missing)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def edit_distance(draft: str, final: str) -> float:
    """Normalised Levenshtein distance in [0, 1]: edits / length of the longer text (0 = unchanged)."""
    draft, final = draft or "", final or ""
    if draft == final:
        return 0.0
    longest = max(len(draft), len(final))
    try:
        from rapidfuzz.distance import Levenshtein

        distance = Levenshtein.distance(draft, final)
    except ImportError:  # pragma: no cover - rapidfuzz is installed with streamlit's extras
        distance = _levenshtein(draft, final)
    return round(distance / longest, 4)


def check_failures(checks: dict[str, Any] | None) -> dict[str, bool]:
    """Which checks a draft failed, by name (see CHECKS); `any` means the checklist did not pass."""
    c = checks or {}
    timeframe = c.get("timeframe") or {}
    return {
        "acknowledges": not c.get("acknowledges", True),
        "apologizes": not c.get("apologizes", True),
        "timeframe": not (timeframe.get("ok", True) if isinstance(timeframe, dict) else bool(timeframe)),
        "unsupported": bool(c.get("unsupported")),
        "placeholders": bool(c.get("placeholders")),
        "language": not c.get("language_ok", True),
        "injection": bool(c.get("injection_suspected")),
        "any": not c.get("passed", True),
    }


class FeedbackStore:
    """The feedback database; one short-lived connection per call, so it is safe across threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._tx() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise InputError(
                    f"{self.path} was written by a newer version of the assistant (schema {row[0]})",
                    hint="Upgrade the assistant, or point ASSISTANT_DATA_DIR elsewhere.",
                )

    @classmethod
    def for_settings(cls, settings) -> FeedbackStore:
        return cls(settings.feedback_db)

    def _connect(self) -> sqlite3.Connection:
        return sqlite_util.connect(self.path)

    def _tx(self):
        return sqlite_util.transaction(self.path)

    def _read(self):
        return sqlite_util.reading(self.path)

    # --- writing -----------------------------------------------------------------------------------

    def record(
        self,
        message: str,
        draft_result: dict[str, Any],
        final_text: str | None,
        action: str,
        reason: str | None = None,
        *,
        drafted_at: str | None = None,
    ) -> int:
        """Store what the agent did with a draft; returns the feedback id.

        `draft_result` is `DraftResult.to_dict()`. For the two accept actions the recorded action
        follows the text: unchanged -> "accepted", changed -> "accepted_with_edits".
        """
        if action not in ACTIONS:
            raise InputError(f"unknown feedback action {action!r}", hint=f"Use one of: {', '.join(ACTIONS)}.")
        draft = str(draft_result.get("text") or "")
        if action in ACCEPTED and (final_text is None or not final_text.strip()):
            raise InputError("An accepted reply cannot be empty.", hint="Write the reply, or reject the draft.")
        distance = edit_distance(draft, final_text) if final_text is not None else None
        if action in ACCEPTED:
            action = "accepted" if distance == 0 else "accepted_with_edits"
        template = draft_result.get("template") or {}
        checks = draft_result.get("checks") or {}
        now = _now()
        sources = [
            {k: s.get(k) for k in ("id", "kind", "title", "score", "source")} for s in draft_result.get("sources") or []
        ]
        with self._tx() as db:
            cur = db.execute(
                """INSERT INTO feedback (created_at, drafted_at, day, message, draft, final_text, backend, model, llm,
                   template_name, template_version, category, checks, checks_passed, action, reason, edit_distance,
                   sources) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    now.isoformat(timespec="seconds"),
                    drafted_at,
                    now.date().isoformat(),
                    redact(message or ""),
                    draft,
                    final_text,
                    str(draft_result.get("backend") or ""),
                    str(draft_result.get("model") or ""),
                    int(bool(draft_result.get("llm"))),
                    str(template.get("name") or ""),
                    str(template.get("version") or ""),
                    str(draft_result.get("category") or ""),
                    json.dumps(checks, ensure_ascii=False, default=str),
                    None if "passed" not in checks else int(bool(checks["passed"])),
                    action,
                    (reason or "").strip() or None,
                    distance,
                    json.dumps(sources, ensure_ascii=False, default=str),
                ),
            )
            return int(cur.lastrowid)

    # --- reading -----------------------------------------------------------------------------------

    @staticmethod
    def _as_dict(row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        d["checks"] = json.loads(d["checks"] or "{}")
        d["sources"] = json.loads(d["sources"] or "[]")
        d["llm"] = bool(d["llm"])
        return d

    def get(self, feedback_id: int) -> dict[str, Any]:
        with self._read() as db:
            row = db.execute("SELECT * FROM feedback WHERE id = ?", (int(feedback_id),)).fetchone()
        if row is None:
            raise InputError(f"There is no feedback #{feedback_id}.")
        return self._as_dict(row)

    def list(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` rows, newest first."""
        with self._read() as db:
            rows = db.execute("SELECT * FROM feedback ORDER BY id DESC LIMIT ?", (max(0, int(limit)),)).fetchall()
        return [self._as_dict(r) for r in rows]

    def count(self) -> int:
        with self._read() as db:
            return int(db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Acceptance rate, mean edit distance and check failure rates, overall, per template
        version and backend, and per day (rows of plain dicts, ready for a DataFrame)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT day, backend, template_name, template_version, action, edit_distance, checks FROM feedback"
            ).fetchall()
        overall = _Group()
        groups: dict[tuple[str, str], _Group] = {}
        days: dict[tuple[str, str, str], _Group] = {}
        for r in rows:
            failures = check_failures(json.loads(r["checks"] or "{}"))
            version = f"{r['template_name']} {r['template_version']}".strip() or "(unknown)"
            for g in (
                overall,
                groups.setdefault((version, r["backend"]), _Group()),
                days.setdefault((r["day"], version, r["backend"]), _Group()),
            ):
                g.add(r["action"], r["edit_distance"], failures)
        return {
            "total": overall.n,
            **overall.summary(),
            "by_version": [
                {"template": v, "backend": b, **g.summary()} for (v, b), g in sorted(groups.items())
            ],
            "by_day": [
                {"day": d, "template": v, "backend": b, **g.summary()} for (d, v, b), g in sorted(days.items())
            ],
        }

    # --- knowledge base ----------------------------------------------------------------------------

    def add_to_knowledge_base(self, feedback_id: int, settings, *, store=None, embedder=None) -> dict[str, Any]:
        """Append an accepted reply to `<data_dir>/accepted_tickets/accepted.jsonl` as a resolved ticket
        (PII-redacted) and ingest that file incrementally. Adding the same feedback twice is a no-op
        for the file. Returns {ticket_id, path, ingest}."""
        from filelock import FileLock

        from assistant.ingest import ingest

        row = self.get(feedback_id)
        if row["action"] not in ACCEPTED:
            raise InputError(
                f"Feedback #{feedback_id} was {row['action']}; only accepted replies can become resolved tickets."
            )
        ticket_id = f"ACC-{int(feedback_id)}"
        ticket = {
            "id": ticket_id,
            "customer_message": redact(row["message"]),
            "agent_reply": redact(row["final_text"] or row["draft"]),
            "category": row["category"] or "general",
            "resolved_at": row["created_at"][:10],
        }
        path = Path(settings.data_dir) / ACCEPTED_DIRNAME / ACCEPTED_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=30):
            if not _has_ticket(path, ticket_id):
                _append_line(path, json.dumps(ticket, ensure_ascii=False) + "\n")
            if store is None or embedder is None:
                from assistant.wiring import build_embedder, build_store

                store = store or build_store(settings)
                embedder = embedder or build_embedder(settings)
            report = ingest([path], store, embedder, progress=False)
        with self._tx() as db:
            db.execute(
                "UPDATE feedback SET kb_ticket_id = ?, kb_added_at = COALESCE(kb_added_at, ?) WHERE id = ?",
                (ticket_id, _now().isoformat(timespec="seconds"), int(feedback_id)),
            )
        return {"ticket_id": ticket_id, "path": str(path), "ingest": report.to_dict()}


class _Group:
    def __init__(self) -> None:
        self.n = 0
        self.accepted = 0
        self.accepted_unchanged = 0
        self.distances: list[float] = []
        self.failures = dict.fromkeys(CHECKS, 0)

    def add(self, action: str, distance: float | None, failures: dict[str, bool]) -> None:
        self.n += 1
        if action in ACCEPTED:
            self.accepted += 1
            self.accepted_unchanged += action == "accepted"
            if distance is not None:
                self.distances.append(float(distance))
        for k, failed in failures.items():
            self.failures[k] += bool(failed)

    def summary(self) -> dict[str, Any]:
        n = self.n or 1
        return {
            "n": self.n,
            "acceptance_rate": round(self.accepted / n, 4) if self.n else None,
            "unchanged_rate": round(self.accepted_unchanged / n, 4) if self.n else None,
            "mean_edit_distance": round(sum(self.distances) / len(self.distances), 4) if self.distances else None,
            "failure_rates": {k: round(v / n, 4) if self.n else None for k, v in self.failures.items()},
        }


def _has_ticket(path: Path, ticket_id: str) -> bool:
    if not path.is_file():
        return False
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                if json.loads(line).get("id") == ticket_id:
                    return True
            except ValueError:
                continue
    return False


def _append_line(path: Path, line: str) -> None:
    """Append one whole line with a single write, then fsync the file (and, when created, its folder)."""
    data = line.encode("utf-8")
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        # A previous crash may have left a partial last line: start on a fresh line so it cannot swallow ours.
        size = os.fstat(fd).st_size
        if size:
            with path.open("rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    data = b"\n" + data
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
