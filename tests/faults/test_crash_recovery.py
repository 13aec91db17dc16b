"""Row "crash": kill -9 during an ingest, during template saves, during feedback writes.

The next run completes; the store ends with exactly the chunks of a clean ingest (none lost, none
duplicated); no template version is truncated or invalid; both SQLite databases pass integrity_check
and keep every write that was acknowledged before the kill.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from tests.faults.procs import ROOT, Proc, chunk_counts, env_for, expected_ids, generate_kb, stored_ids

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_kb(tmp_path_factory):
    kb = generate_kb(tmp_path_factory.mktemp("gen") / "care_notes", files=300)
    counts = chunk_counts(kb)
    # Precondition: the 512-chunk write batches of ingest split a file across two batches.
    total, cut = 0, False
    for n in counts:
        cut |= total < 512 < total + n
        total += n
    assert cut and total > 512, (total, counts[:10])
    return kb


def test_kill_9_during_ingest_then_the_next_run_completes_without_lost_or_duplicate_chunks(big_kb, tmp_path):
    data = tmp_path / "data"
    want = expected_ids(big_kb)
    # The first 512-chunk batch lands, then the process dies in the middle of writing the second one.
    first = Proc.runner(data, "ingest", "--no-progress", str(big_kb), FAULT_PARTIAL_SECOND="1")
    first.wait_for("PARTIAL-STORED", timeout=240)
    first.kill9()
    assert first.proc.returncode == -signal.SIGKILL
    after_crash = stored_ids(data)
    assert 512 < len(after_crash) < len(want)  # it really died half way

    again = Proc.cli(data, "ingest", "--json", "--no-progress", str(big_kb))
    assert again.finish(240) == 0, again.stderr
    report = json.loads(again.lines[-1])
    assert report["chunks_total"] == len(want)

    ids = stored_ids(data)
    assert len(ids) == len(set(ids))  # no duplicates
    assert set(ids) == want  # nothing lost, nothing extra
    # The store answers searches.
    search = subprocess.run([sys.executable, "-m", "assistant.cli", "search", "--json", "--k", "3", "--kind",
                             "knowledge", "how to care for the buckle"], cwd=ROOT, capture_output=True, text=True,
                            timeout=240, env=env_for(data))
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)
    assert len(hits) == 3 and all(h["source"].startswith("care_notes/") for h in hits)


# --- template saves -----------------------------------------------------------------------------------

_SAVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from assistant.settings import Settings
    from assistant.templates import TemplateStore

    settings = Settings.from_env({"ASSISTANT_DATA_DIR": sys.argv[1]})
    store = TemplateStore(settings)
    base = store.get("reply")
    i = 0
    while True:
        i += 1
        source = base.source + "\\n{#- edit %d -#}\\n" % i + ("{#- " + "x" * (i * 97 % 20000) + " -#}\\n")
        v = store.save("reply", source, base_version=store.latest_version("reply"), author="writer-%d" % i)
        if i % 3 == 0:
            store.publish("reply", v.version, by="writer")
        print("SAVED", v.version, i, flush=True)
""")


def _intended_source(base: str, i: int) -> str:
    return base + f"\n{{#- edit {i} -#}}\n" + ("{#- " + "x" * (i * 97 % 20000) + " -#}\n")


def test_kill_9_during_template_saves_leaves_every_version_whole(settings, tmp_path):
    from assistant.prompts import sample_variables, validate_template
    from assistant.templates import DB_NAME, TemplateStore

    store = TemplateStore(settings)
    base = store.get("reply").source
    proc = Proc([sys.executable, "-c", _SAVER, str(settings.data_dir)], {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"})
    proc.wait_for("SAVED", timeout=120)
    while sum(1 for x in proc.lines if x.startswith("SAVED")) < 12:
        time.sleep(0.02)
    time.sleep(0.037)  # somewhere inside the next save
    proc.kill9()
    saved = [x.split() for x in proc.lines if x.startswith("SAVED")]
    acknowledged = {int(v): int(i) for _, v, i in saved}

    db = sqlite3.connect(settings.data_dir / DB_NAME)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT version, source, sha256, author FROM versions WHERE name = 'reply'").fetchall()
    finally:
        db.close()
    by_version = {v: (src, sha, author) for v, src, sha, author in rows}
    for version, i in acknowledged.items():  # every acknowledged save is there, whole
        src, sha, author = by_version[version]
        assert src == _intended_source(base, i) and author == f"writer-{i}"
    for version, (src, sha, _) in by_version.items():  # nothing truncated, nothing invalid
        assert hashlib.sha256(src.encode()).hexdigest() == sha
        assert validate_template(src, name="reply") == [], version
    reopened = TemplateStore(settings)
    published = reopened.get("reply")
    assert reopened.render_variables(sample_variables(), "reply")["reply"]
    assert published.version in by_version
    latest = reopened.latest_version("reply")
    assert reopened.save("reply", base + "\n{#- after the crash -#}\n", base_version=latest, author="next").version == latest + 1


# --- feedback writes ----------------------------------------------------------------------------------

_RECORDER = textwrap.dedent("""
    import sys
    from assistant.feedback import FeedbackStore

    fb = FeedbackStore(sys.argv[1])
    draft = {"text": "Hello, I'm sorry. We will resolve this within 3 business days.", "backend": "composer",
             "model": "composer-v1", "llm": False, "template": {"name": "reply", "version": "v1"},
             "category": "damaged_defective", "checks": {"passed": True}, "sources": [{"id": "k1", "kind": "knowledge",
             "title": "t", "score": 0.5, "source": "s"}]}
    i = 0
    while True:
        i += 1
        final = draft["text"] + " Edit %d." % i + " padding" * (i % 300)
        fid = fb.record("Message %d from jana@example.com, card 4539 1488 0343 6467" % i, draft, final,
                        "accepted" if i % 4 else "rejected", reason="r%d" % i)
        print("RECORDED", fid, i, flush=True)
""")


def test_kill_9_during_feedback_writes_keeps_sqlite_consistent(tmp_path):
    from assistant.feedback import FeedbackStore

    path = tmp_path / "feedback.sqlite3"
    proc = Proc([sys.executable, "-c", _RECORDER, str(path)], {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"})
    proc.wait_for("RECORDED", timeout=120)
    while sum(1 for x in proc.lines if x.startswith("RECORDED")) < 40:
        time.sleep(0.01)
    time.sleep(0.013)
    proc.kill9()
    acknowledged = {int(x.split()[1]): int(x.split()[2]) for x in proc.lines if x.startswith("RECORDED")}

    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()
    fb = FeedbackStore(path)
    rows = {r["id"]: r for r in fb.list(limit=100_000)}
    for fid, i in acknowledged.items():  # every acknowledged write survived, whole
        row = rows[fid]
        assert row["final_text"].startswith("Hello") and f" Edit {i}." in row["final_text"]
        assert "jana@example.com" not in row["message"] and "4539" not in row["message"]
    assert len(rows) - len(acknowledged) in (0, 1)  # at most the write in flight, whole or absent
    assert fb.stats()["total"] == len(rows) == fb.count()
    assert fb.record("after the crash", {"text": "x"}, None, "rejected", reason="r") > max(rows)
