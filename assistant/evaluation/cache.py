"""The evaluation cache: one SQLite file, `<data_dir>/eval_cache.sqlite3`, safe to share between threads.

A draft is stored under a key made of the case's draft hash (message + hidden tickets), the template
identity, the backend, the model, the settings that shape a draft and a fingerprint of the knowledge
base. Metrics are always recomputed from the cached draft, so editing a case's expectations never
needs a new draft. Judge verdicts are cached the same way under their own keys.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def make_key(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).hexdigest()


class EvalCache:
    """Key → JSON value. `enabled=False` makes every lookup miss and every store a no-op."""

    def __init__(self, path: Path, *, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # A lost last entry after a power cut only costs a redraft; a sync per case costs ms each.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
            self._conn.commit()

    def get(self, key: str) -> Any | None:
        if not self.enabled or self._conn is None:
            return None
        with self._lock:
            row = self._conn.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return json.loads(row[0])

    def has(self, key: str) -> bool:
        """Whether `key` is stored (not counted as a hit or miss)."""
        if not self.enabled or self._conn is None:
            return False
        with self._lock:
            return self._conn.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is not None

    def put(self, key: str, kind: str, value: Any) -> None:
        if not self.enabled or self._conn is None:
            return
        data = json.dumps(value, ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO entries (key, kind, value, created_at) VALUES (?, ?, ?, ?)",
                (key, kind, data, time.time()),
            )
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> EvalCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
