"""Helpers of the process-level fault tests: a generated knowledge base and subprocesses read line by line."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parent / "ingest_runner.py"
WORDS = ("zip", "seam", "sleeve", "sole", "strap", "hood", "cuff", "lining", "buckle", "collar", "pocket", "hem")


def generate_kb(dest: Path, files: int = 300) -> Path:
    """`files` small markdown articles of 1, 2 or 3 sections (one chunk each): about 2 chunks per file."""
    dest.mkdir(parents=True)
    for i in range(files):
        sections = []
        for s in range(i % 3 + 1):
            w = WORDS[(i + s) % len(WORDS)]
            sections.append(f"## Part {s + 1}\n\nArticle {i} part {s + 1}: how to care for the {w} of item {i * 7 + s}. "
                            f"Check the {w} weekly and report damage to the {w} within 30 days.\n")
        (dest / f"doc-{i:03d}.md").write_text(f"# Care note {i}\n\n" + "\n".join(sections), encoding="utf-8")
    return dest


def expected_ids(kb: Path) -> set[str]:
    """The chunk ids a complete ingest of `kb` stores (parsed, not embedded)."""
    from assistant.documents import load_chunks
    from assistant.ingest import collect_files

    files, _, problems = collect_files([kb])
    assert not problems, problems
    ids: set[str] = set()
    for path, source in files:
        chunks, problems = load_chunks(path, source, path.read_bytes())
        assert not problems
        ids |= {c.id for c in chunks}
    return ids


def chunk_counts(kb: Path) -> list[int]:
    from assistant.documents import load_chunks
    from assistant.ingest import collect_files

    files, _, _ = collect_files([kb])
    return [len(load_chunks(p, s, p.read_bytes())[0]) for p, s in files]


def stored_ids(data_dir) -> list[str]:
    from assistant.embeddings import DIMENSION, MODEL_NAME
    from assistant.settings import Settings
    from assistant.store import KnowledgeStore

    store = KnowledgeStore(Settings.from_env({"ASSISTANT_DATA_DIR": str(data_dir)}), model_name=MODEL_NAME,
                           dimension=DIMENSION)
    col = store.collection("knowledge")
    ids = col.get(include=[])["ids"] if col is not None else []
    return ids


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "OPENAI_", "FAULT_"))}
    env.update({"ASSISTANT_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


class Proc:
    """A subprocess whose stdout lines are collected by a thread (so a test can wait for a marker)."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self._err: list[str] = []
        self._t_out = threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True)
        self._t_err = threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True)
        self._t_out.start()
        self._t_err.start()

    @staticmethod
    def _pump(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))

    @classmethod
    def runner(cls, data_dir: Path, *args: str, **env: str) -> Proc:
        return cls([sys.executable, str(RUNNER), *args], env_for(data_dir, **env))

    @classmethod
    def cli(cls, data_dir: Path, *args: str, **env: str) -> Proc:
        return cls([sys.executable, "-m", "assistant.cli", *args], env_for(data_dir, **env))

    def wait_for(self, prefix: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the pump threads drain
                for line in list(self.lines):
                    if line.startswith(prefix):
                        return line
                raise AssertionError(f"process ended ({self.proc.returncode}) before {prefix!r}:\n{self.stderr}")
            time.sleep(0.05)
        raise AssertionError(f"no {prefix!r} within {timeout} s; stdout={self.lines} stderr={self.stderr}")

    def finish(self, timeout: float = 180) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._t_out.join(5)
        self._t_err.join(5)
        return rc

    def kill9(self) -> None:
        self.proc.kill()  # SIGKILL
        self.finish(30)

    @property
    def stderr(self) -> str:
        return "\n".join(self._err)

    @property
    def stdout(self) -> str:
        return "\n".join(self.lines)
