"""Row "concurrent writers": two `assistant ingest` processes on one embedded store.

While the first is writing, a second is refused at once with a clear message (or, with
ASSISTANT_LOCK_TIMEOUT_S, waits for the lock and then finds nothing left to do); the store ends
with exactly the chunks of one clean ingest.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.faults.procs import Proc, expected_ids, generate_kb, stored_ids

pytestmark = pytest.mark.slow


def test_a_second_ingest_is_refused_or_waits_and_nothing_is_corrupted(tmp_path):
    kb = generate_kb(tmp_path / "care_notes", files=300)
    want = expected_ids(kb)
    data = tmp_path / "data"
    release = tmp_path / "release"

    # A: holds the lock, paused right after its first batch landed (until `release` exists).
    first = Proc.runner(data, "ingest", "--json", "--no-progress", str(kb), FAULT_HOLD_FILE=str(release))
    first.wait_for("BATCH-STORED", timeout=240)
    # B: refused at once, one clear error line with a hint, nothing written.
    refused = Proc.cli(data, "ingest", "--no-progress", str(kb))
    # C: configured to wait; it announces itself before taking the lock.
    waiting = Proc.runner(data, "ingest", "--json", "--no-progress", str(kb), FAULT_ANNOUNCE="1",
                          ASSISTANT_LOCK_TIMEOUT_S="240")
    assert refused.finish(240) == 1, refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Another process is writing to the knowledge base at" in errors[0], refused.stderr
    assert "hint: " in refused.stderr and "ASSISTANT_LOCK_TIMEOUT_S" in refused.stderr
    assert refused.stdout == ""

    waiting.wait_for("WRITER-WAIT", timeout=240)
    time.sleep(1.5)
    assert waiting.proc.poll() is None and "WRITER-HELD" not in waiting.lines  # blocked on the lock

    release.touch()
    assert first.finish(240) == 0, first.stderr
    assert json.loads(first.lines[-1])["chunks_total"] == len(want)
    assert waiting.finish(240) == 0, waiting.stderr
    second = json.loads(waiting.lines[-1])
    assert second["embedded"] == 0 and second["added"] == 0 and second["unchanged"] == 300
    assert second["chunks_total"] == len(want)

    ids = stored_ids(data)
    assert len(ids) == len(set(ids)) and set(ids) == want
