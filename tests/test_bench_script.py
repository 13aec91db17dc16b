"""`make bench`'s output contract: the last stdout line is one JSON object with the issue's figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETED = {"retrieval_p95_ms_100k", "ingest_ratio_vs_raw_encode", "reingest_speedup", "composer_draft_p95_ms",
            "local_first_token_ms", "eval_1000_cases_seconds", "help_s"}


def test_bench_prints_one_json_line_with_every_target(tmp_path):
    out_file = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--only", "help",
                           "--out", str(out_file)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last == json.loads(out_file.read_text(encoding="utf-8"))
    assert last["mode"] == "quick" and last["section_s"].keys() == {"help"}
    assert set(last["targets"]) == TARGETED
    assert last["help_s"] > 0 and last["targets"]["help_s"]["value"] == last["help_s"]
    # sections that did not run are reported as not measured, never as passing
    assert last["targets"]["eval_1000_cases_seconds"] == {"value": None, "target": "<= 60 s", "pass": None}
    assert "PASS" in proc.stderr or "FAIL" in proc.stderr  # the human-readable table goes to stderr
