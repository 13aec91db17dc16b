"""Run `assistant <args>` in this process with hooks a fault test can synchronise on (stdout markers).

    python tests/faults/ingest_runner.py ingest PATH ...

Environment:
  FAULT_ANNOUNCE=1          print "WRITER-WAIT" before taking the ingest lock and "WRITER-HELD" after
  FAULT_HOLD_FILE=PATH      after the first write batch lands, print "BATCH-STORED <n>" and wait until
                            PATH exists (a test SIGKILLs the process meanwhile, or creates PATH)
  FAULT_PARTIAL_SECOND=1    on the second write batch store only its first half, print
                            "PARTIAL-STORED <n>" and wait forever (a crash in the middle of a batch)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def install_hooks() -> None:
    import contextlib

    from assistant.store import KnowledgeStore

    hold = os.environ.get("FAULT_HOLD_FILE")
    partial = os.environ.get("FAULT_PARTIAL_SECOND") == "1"
    calls = {"n": 0}
    original_add = KnowledgeStore.add
    original_writer = KnowledgeStore.writer

    def add(self, kind, ids, documents, metadatas, embeddings):
        calls["n"] += 1
        if partial and calls["n"] == 2:
            half = max(1, len(ids) // 2)
            original_add(self, kind, ids[:half], documents[:half], metadatas[:half], embeddings[:half])
            say(f"PARTIAL-STORED {half}")
            while True:
                time.sleep(0.05)
        original_add(self, kind, ids, documents, metadatas, embeddings)
        if hold and calls["n"] == 1:
            say(f"BATCH-STORED {len(ids)}")
            while not Path(hold).exists():
                time.sleep(0.05)

    @contextlib.contextmanager
    def writer(self):
        if os.environ.get("FAULT_ANNOUNCE") == "1":
            say("WRITER-WAIT")
        with original_writer(self):
            if os.environ.get("FAULT_ANNOUNCE") == "1":
                say("WRITER-HELD")
            yield

    KnowledgeStore.add = add
    KnowledgeStore.writer = writer


if __name__ == "__main__":
    install_hooks()
    from assistant.cli import main

    sys.exit(main(sys.argv[1:]))
