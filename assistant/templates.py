"""A versioned store of the prompt templates, in SQLite under the data dir.

Team leads edit templates in the UI; every save is a new, numbered version and nothing is ever
deleted. One version per template is *published*: that is what drafts use unless a version is
pinned ("reply@3"). The store is seeded from the files in prompts/ (each file becomes version 1,
author "file"); when a file changes later, its new content is imported as a new version and, if
the published version was the previous file version, published (so editing the files keeps
working as before). Once a version saved in the UI is published, file changes are imported but
not published.

Rendering reuses the bounded sandbox of `assistant.prompts` (`render_source`, `validate_template`);
this module never compiles a template itself.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant import sqlite_util
from assistant.errors import ConcurrentEditError, TemplateError
from assistant.settings import Settings

SCHEMA_VERSION = 1
DB_NAME = "templates.sqlite3"
#: Templates that are not reply templates but are rendered for every draft.
SYSTEM, FEWSHOT = "system", "fewshot"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_-]{0,63})(?:@v?(?P<version>\d{1,9}))?$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    author TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS publish_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('publish', 'rollback')),
    by TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS publish_log_name ON publish_log (name, id);
"""


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _sha(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def version_label(version: int) -> str:
    """How a version is shown to users and recorded with drafts: "v3"."""
    return f"v{version}"


def parse_version(version: int | str | None) -> int | None:
    """3, "3" and "v3" -> 3; None stays None (the published version)."""
    if version is None or isinstance(version, int):
        return version
    text = str(version).strip().lower().removeprefix("v")
    if not text.isdigit():
        raise TemplateError(f"invalid template version {version!r}", hint="Use a number such as 3 or v3.")
    return int(text)


def parse_spec(spec: str) -> tuple[str, int | None]:
    """"reply" -> ("reply", None) (published); "reply@3" / "reply@v3" -> ("reply", 3)."""
    m = _SPEC.match((spec or "").strip())
    if not m:
        raise TemplateError(
            f"invalid template {spec!r}", hint="Use a template name such as reply, or name@version such as reply@3."
        )
    version = m.group("version")
    return m.group("name"), int(version) if version else None


@dataclass
class TemplateVersion:
    """One saved version of a template."""

    name: str
    version: int
    source: str
    sha256: str
    author: str
    note: str
    created_at: str
    published: bool = False

    @property
    def label(self) -> str:
        return version_label(self.version)

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


def _required_for(name: str) -> frozenset[str]:
    from assistant.prompts import REQUIRED_VARIABLES, is_reply_template

    return REQUIRED_VARIABLES if is_reply_template(name) else frozenset()


def _is_stored_kind(name: str) -> bool:
    """Reply templates plus system and fewshot (judge_* prompts belong to the evaluations)."""
    from assistant.prompts import is_reply_template

    return name in (SYSTEM, FEWSHOT) or is_reply_template(name)


class TemplateStore:
    """Versioned prompt templates with publish / rollback; safe for several processes at once."""

    def __init__(self, settings: Settings, *, path: Path | None = None, seed: bool = True):
        self.settings = settings
        self.prompts_dir = Path(settings.prompts_dir)
        self.path = Path(path) if path else Path(settings.data_dir) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._tx() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise TemplateError(
                    f"{self.path} was written by a newer version of the assistant (schema {row[0]})",
                    hint="Upgrade the assistant, or point ASSISTANT_DATA_DIR elsewhere.",
                )
        if seed:
            self.import_files()

    # --- SQLite plumbing ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        return sqlite_util.connect(self.path)

    def _tx(self):
        return sqlite_util.transaction(self.path)

    def _read(self):
        return sqlite_util.reading(self.path)

    @staticmethod
    def _latest(db: sqlite3.Connection, name: str) -> int | None:
        return db.execute("SELECT MAX(version) FROM versions WHERE name = ?", (name,)).fetchone()[0]

    @staticmethod
    def _publish_stack(db: sqlite3.Connection, name: str) -> list[int]:
        """Published versions in order; a publish pushes, a rollback pops."""
        stack: list[int] = []
        for row in db.execute("SELECT version, action FROM publish_log WHERE name = ? ORDER BY id", (name,)):
            if row["action"] == "rollback":
                if stack:
                    stack.pop()
                if not stack or stack[-1] != row["version"]:  # defensive: the log says what was published
                    stack.append(row["version"])
            elif not stack or stack[-1] != row["version"]:
                stack.append(row["version"])
        return stack

    def _published(self, db: sqlite3.Connection, name: str) -> int | None:
        stack = self._publish_stack(db, name)
        return stack[-1] if stack else None

    def _insert(self, db: sqlite3.Connection, name: str, source: str, author: str, note: str) -> int:
        version = (self._latest(db, name) or 0) + 1
        db.execute(
            "INSERT INTO versions (name, version, source, sha256, author, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, version, source, _sha(source), author, note, _now()),
        )
        return version

    @staticmethod
    def _log(db: sqlite3.Connection, name: str, version: int, action: str, by: str) -> None:
        db.execute(
            "INSERT INTO publish_log (name, version, action, by, at) VALUES (?, ?, ?, ?, ?)",
            (name, version, action, by, _now()),
        )

    def _row(self, row: sqlite3.Row, published: int | None) -> TemplateVersion:
        return TemplateVersion(
            name=row["name"],
            version=row["version"],
            source=row["source"],
            sha256=row["sha256"],
            author=row["author"],
            note=row["note"],
            created_at=row["created_at"],
            published=row["version"] == published,
        )

    # --- seeding from prompts/ ---------------------------------------------------------------------

    def import_files(self) -> list[TemplateVersion]:
        """Import new or changed files from the prompts dir as new versions (author "file")."""
        if not self.prompts_dir.is_dir():
            return []
        files = {}
        for p in sorted(self.prompts_dir.glob("*.j2")):
            if p.is_file() and _NAME.match(p.stem) and _is_stored_kind(p.stem):
                try:
                    files[p.stem] = p.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue  # an unreadable file is reported when it is rendered from the file
        imported = []
        with self._tx() as db:
            for name, source in files.items():
                last_file = db.execute(
                    "SELECT version, sha256 FROM versions WHERE name = ? AND author = 'file' ORDER BY version DESC LIMIT 1",
                    (name,),
                ).fetchone()
                if last_file is not None and last_file["sha256"] == _sha(source):
                    continue
                published = self._published(db, name)
                version = self._insert(db, name, source, "file", f"imported from {name}.j2")
                # Publish a file's new content only while the published version came from the file too.
                if published is None or (last_file is not None and published == last_file["version"]):
                    self._log(db, name, version, "publish", "file")
                imported.append((name, version))
        return [self.get(name, version) for name, version in imported]

    # --- reading -----------------------------------------------------------------------------------

    def list_templates(self, *, include_special: bool = True) -> list[dict[str, Any]]:
        """Every template: name, kind ("reply" or "system"/"fewshot"), latest and published version."""
        from assistant.prompts import is_reply_template

        with self._read() as db:
            names = [r[0] for r in db.execute("SELECT DISTINCT name FROM versions ORDER BY name")]
            out = []
            for name in names:
                kind = "reply" if is_reply_template(name) else name
                if kind != "reply" and not include_special:
                    continue
                out.append({
                    "name": name,
                    "kind": kind,
                    "latest": self._latest(db, name),
                    "published": self._published(db, name),
                })
        out.sort(key=lambda t: (t["kind"] != "reply", t["name"]))
        return out

    def reply_templates(self) -> list[str]:
        return [t["name"] for t in self.list_templates(include_special=False)]

    def versions(self, name: str) -> list[TemplateVersion]:
        """All versions of `name`, newest first (empty if unknown)."""
        with self._read() as db:
            published = self._published(db, name)
            rows = db.execute("SELECT * FROM versions WHERE name = ? ORDER BY version DESC", (name,)).fetchall()
        return [self._row(r, published) for r in rows]

    def latest_version(self, name: str) -> int | None:
        with self._read() as db:
            return self._latest(db, name)

    def published_version(self, name: str) -> int | None:
        with self._read() as db:
            return self._published(db, name)

    def get(self, name: str, version: int | str | None = None) -> TemplateVersion:
        """A version of `name`; None means the published one. TemplateError if there is none."""
        number = parse_version(version)
        with self._read() as db:
            published = self._published(db, name)
            if number is None:
                number = published
            row = None
            if number is not None:
                row = db.execute("SELECT * FROM versions WHERE name = ? AND version = ?", (name, number)).fetchone()
            known = [r[0] for r in db.execute("SELECT DISTINCT name FROM versions ORDER BY name")]
        if row is None:
            if name not in known:
                raise TemplateError(
                    f"template '{name}' not found", hint=f"Templates: {', '.join(known) or '(none)'}"
                )
            if number is None:
                raise TemplateError(f"template '{name}' has no published version", hint="Publish a version first.")
            raise TemplateError(
                f"template '{name}' has no version {version_label(number)}",
                hint=f"Versions: v1 to v{self.latest_version(name)}.",
            )
        return self._row(row, published)

    def history(self, name: str) -> list[dict[str, Any]]:
        """The publish log of `name`, newest first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT version, action, by, at FROM publish_log WHERE name = ? ORDER BY id DESC", (name,)
            ).fetchall()
        return [dict(r) for r in rows]

    def diff(self, name: str, a: int | str | None, b: int | str | None) -> str:
        """Unified diff from version `a` to version `b` (None = the published version)."""
        va, vb = self.get(name, a), self.get(name, b)
        return diff_sources(va.source, vb.source, f"{name}@{va.label}", f"{name}@{vb.label}")

    # --- writing -----------------------------------------------------------------------------------

    def validate(self, name: str, source: str) -> list[str]:
        """Problems with `source` as template `name` (empty = fine), from `assistant.prompts`."""
        from assistant.prompts import validate_template

        if not _NAME.match(name or ""):
            return [f"invalid template name {name!r} (letters, digits, '_' and '-' only)"]
        if not _is_stored_kind(name):
            return [f"'{name}' cannot be stored here (judge_* and _* templates are not drafting templates)"]
        return validate_template(source, name=name, required=_required_for(name))

    def save(
        self, name: str, source: str, *, base_version: int | str | None, author: str, note: str = ""
    ) -> TemplateVersion:
        """Save `source` as the next version of `name` (not published).

        `base_version` is the version the editor started from (None for a new template). If
        someone saved a newer version since, ConcurrentEditError is raised and nothing is written.
        An invalid template is refused with a TemplateError listing the problems.
        """
        base = parse_version(base_version)
        problems = self.validate(name, source)
        if problems:
            err = TemplateError(
                f"template '{name}' was not saved: " + "; ".join(problems),
                hint="Fix the problems listed and save again; the published version is unchanged.",
            )
            err.problems = problems  # type: ignore[attr-defined]
            raise err
        author = (author or "").strip() or "unknown"
        with self._tx() as db:
            latest = self._latest(db, name)
            if latest != base:
                if latest is None:
                    raise ConcurrentEditError(
                        f"template '{name}' does not exist, so there is no version {base} to base an edit on",
                        hint="Reload the templates page.",
                    )
                by = db.execute("SELECT author, created_at FROM versions WHERE name = ? AND version = ?",
                                (name, latest)).fetchone()
                started = f"v{base}" if base is not None else "a new template"
                raise ConcurrentEditError(
                    f"template '{name}' changed while you were editing: you started from {started}, "
                    f"but v{latest} was saved by {by['author']} at {by['created_at']}",
                    hint="Your text was not saved. Copy it, reload the latest version, compare (diff) and re-apply your change.",
                )
            if latest is not None:
                current = db.execute("SELECT sha256 FROM versions WHERE name = ? AND version = ?", (name, latest)).fetchone()
                if current["sha256"] == _sha(source):
                    raise TemplateError(f"template '{name}' is unchanged from v{latest}; nothing to save")
            version = self._insert(db, name, source, author, (note or "").strip())
            if latest is None and name in (SYSTEM, FEWSHOT):
                self._log(db, name, version, "publish", author)  # drafts cannot run without them
        return self.get(name, version)

    def publish(
        self,
        name: str,
        version: int | str,
        *,
        gate: Callable[[TemplateVersion, TemplateVersion | None], Any] | None = None,
        by: str = "",
    ) -> TemplateVersion:
        """Make `version` the one drafts use.

        `gate(candidate, current)` may veto by raising (e.g. an evaluation run that is worse than
        the published version's); it runs before anything is written.
        """
        number = parse_version(version)
        candidate = self.get(name, number)
        if candidate.published:
            return candidate
        if gate is not None:
            try:
                current = self.get(name)
            except TemplateError:
                current = None
            gate(candidate, current)
        with self._tx() as db:
            if self._published(db, name) != number:
                self._log(db, name, number, "publish", by)
        return self.get(name, number)

    def rollback(self, name: str, *, by: str = "") -> TemplateVersion:
        """Re-publish the version that was published before the current one (history is kept)."""
        with self._tx() as db:
            stack = self._publish_stack(db, name)
            if len(stack) < 2:
                raise TemplateError(
                    f"template '{name}' has no earlier published version to roll back to",
                    hint="Publish a specific version instead.",
                )
            previous = stack[-2]
            self._log(db, name, previous, "rollback", by)
        return self.get(name, previous)

    # --- rendering ---------------------------------------------------------------------------------

    def resolve(self, template_spec: str | None) -> TemplateVersion:
        """The version a spec ("reply", "reply@3") refers to."""
        from assistant.prompts import is_reply_template

        name, version = parse_spec(template_spec or self.settings.template)
        if not is_reply_template(name):
            raise TemplateError(f"'{name}' is not a reply template")
        return self.get(name, version)

    def render(self, context, template_spec: str | None = None):
        """Render system + the reply template + fewshot (published versions unless pinned).

        Returns `assistant.prompts.RenderedPrompts`; `template_version` is "v3" (with
        " (system v2, fewshot v4)" appended when those were edited after their first version).
        """
        reply = self.resolve(template_spec)
        return self._render(context, reply.name, reply.source, reply.label)

    def _render(self, context, name: str, source: str, label: str):
        from assistant.prompts import RenderedPrompts, context_variables, render_source

        system, fewshot = self.get(SYSTEM), self.get(FEWSHOT)
        variables = context_variables(context)
        extra = [f"{t.name} {t.label}" for t in (system, fewshot) if t.version != 1]
        return RenderedPrompts(
            system=render_source(system.source, variables, name=SYSTEM),
            prompt=render_source(source, variables, name=name),
            completion_prompt=render_source(fewshot.source, variables, name=FEWSHOT),
            template_name=name,
            template_version=label + (f" ({', '.join(extra)})" if extra else ""),
        )

    def render_variables(self, variables: dict[str, Any], name: str, source: str | None = None) -> dict[str, str]:
        """Render system, `name` (its published version, or `source`) and fewshot with plain variables.

        Used by previews (`assistant.prompts.sample_variables()`); `name` may be system or fewshot.
        """
        from assistant.prompts import render_source

        parts = {}
        for part in (SYSTEM, name if name not in (SYSTEM, FEWSHOT) else None, FEWSHOT):
            if part is None:
                continue
            text = source if (part == name and source is not None) else self.get(part).source
            parts[part] = render_source(text, variables, name=part)
        return parts

    def with_draft(self, name: str, source: str) -> DraftTemplates:
        """A view of this store in which `name` renders an unsaved `source` (previews in the editor)."""
        return DraftTemplates(self, name, source)


class DraftTemplates:
    """Renders like its TemplateStore, except that template `name` uses an unsaved source."""

    def __init__(self, store: TemplateStore, name: str, source: str):
        self.store, self.name, self.source = store, name, source

    def render(self, context, template_spec: str | None = None):
        from assistant.prompts import RenderedPrompts, context_variables, render_source

        if self.name in (SYSTEM, FEWSHOT):
            rendered = self.store.render(context, template_spec)
            text = render_source(self.source, context_variables(context), name=self.name)
            field = "system" if self.name == SYSTEM else "completion_prompt"
            return RenderedPrompts(**{**vars(rendered), field: text,
                                      "template_version": rendered.template_version + f" ({self.name} unsaved)"})
        return self.store._render(context, self.name, self.source, "unsaved")


def diff_sources(a: str, b: str, a_label: str, b_label: str) -> str:
    """A unified diff of two template sources ("" when they are equal)."""
    return "".join(
        difflib.unified_diff(
            a.splitlines(keepends=True), b.splitlines(keepends=True), fromfile=a_label, tofile=b_label
        )
    )
