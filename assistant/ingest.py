"""Incremental ingestion: unchanged files are skipped, changed files replaced, deleted files removed."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from assistant.documents import Chunk, Problem, file_hash, is_ignored, kind_of, load_chunks
from assistant.errors import IngestError

KINDS = ("knowledge", "tickets")


@dataclass
class IngestReport:
    """What an ingest did. Counts of files, except `embedded` and the chunk counts."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    embedded: int = 0
    seconds: float = 0.0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_total: int = 0
    problems: list[Problem] = field(default_factory=list)
    suspicious: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "embedded": self.embedded,
            "seconds": round(self.seconds, 3),
            "chunks_added": self.chunks_added,
            "chunks_removed": self.chunks_removed,
            "chunks_total": self.chunks_total,
            "skipped": [p.to_dict() for p in self.problems],
            "suspicious": self.suspicious,
        }


def collect_files(paths: list[Path]) -> tuple[list[tuple[Path, str]], list[tuple[str, str]], list[Problem]]:
    """(file, source id) pairs, (root prefix, kind-agnostic) roots whose stale sources may be deleted, problems.

    Source ids are relative to the *parent* of each given path (`knowledge_base/articles/x.md`), so the
    same knowledge base ingested from another checkout maps onto the same ids.
    """
    files: list[tuple[Path, str]] = []
    roots: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            problems.append(Problem(str(raw), "no such file or directory"))
            continue
        if p.is_dir():
            base = p.resolve()
            prefix = base.name + "/"
            roots.append((prefix, str(raw)))
            for f in sorted(base.rglob("*")):
                if not f.is_file() or any(part.startswith(".") for part in f.relative_to(base).parts):
                    continue
                rel = prefix + f.relative_to(base).as_posix()
                if is_ignored(f):
                    continue
                if kind_of(f) is None:
                    problems.append(Problem(rel, f"unsupported file type '{f.suffix or '(none)'}'; skipped"))
                    continue
                files.append((f, rel))
        else:
            files.append((p.resolve(), p.name))
    return files, roots, problems


def ingest(
    paths: list[Path],
    store,
    embedder,
    *,
    strict: bool = False,
    rebuild: bool = False,
    progress: bool = True,
) -> IngestReport:
    """Ingest files and folders into the store. Problems are reported; `strict` makes any of them fatal."""
    start = time.perf_counter()
    report = IngestReport()
    files, roots, problems = collect_files(paths)
    report.problems.extend(problems)
    if strict and report.problems:
        raise IngestError(f"{len(report.problems)} problem(s); nothing ingested (--strict): " + "; ".join(map(str, report.problems)))
    if not files and not roots:
        raise IngestError("Nothing to ingest: " + "; ".join(map(str, report.problems)) if report.problems else "Nothing to ingest.")

    with store.writer():
        if rebuild:
            store.reset()
        scanned = {k: store.existing_with_counts(k) for k in KINDS}
        existing = {k: scanned[k][0] for k in KINDS}
        expected = {k: scanned[k][1] for k in KINDS}
        to_embed: list[Chunk] = []
        to_delete: dict[str, list[str]] = {k: [] for k in KINDS}
        to_retag: dict[str, list[tuple[str, dict]]] = {k: [] for k in KINDS}
        seen: set[str] = set()
        # New chunks are embedded (and, unless --strict, written) while later files are still being read.
        pipeline = _EmbedPipeline(store, embedder, progress, hold=strict)
        try:
            _scan_files(files, existing, expected, report, pipeline, to_embed, to_retag, to_delete, seen)
            # Sources under an ingested folder that are gone from disk were deleted by the user.
            for kind in KINDS:
                for source, ids in existing[kind].items():
                    if source not in seen and any(source.startswith(prefix) for prefix, _ in roots):
                        to_delete[kind].extend(ids)
                        report.deleted += 1
            if strict and report.problems:
                raise IngestError(f"{len(report.problems)} problem(s); nothing ingested (--strict): " + "; ".join(map(str, report.problems)))
        except BaseException:
            pipeline.cancel()
            raise
        pipeline.finish()
        report.embedded = len(to_embed)
        report.chunks_added = len(to_embed)
        for kind in KINDS:
            if to_retag[kind]:
                ids, mds = zip(*to_retag[kind], strict=True)
                store.update_metadata(kind, list(ids), list(mds))
            store.delete(kind, to_delete[kind])
            report.chunks_removed += len(to_delete[kind])
        report.chunks_total = sum(store.count(k) for k in KINDS)
    report.seconds = time.perf_counter() - start
    return report


def _scan_files(files, existing, expected, report, pipeline, to_embed, to_retag, to_delete, seen) -> None:
    """Read, compare, chunk and scan every file; new chunks go to `pipeline` as soon as they are known."""
    from assistant.injection import scan_injection

    for path, source in files:
        kind = kind_of(path)
        seen.add(source)
        try:
            data = path.read_bytes()
        except OSError as e:
            report.problems.append(Problem(source, f"cannot read: {e.strerror or e}"))
            continue
        old = existing[kind].get(source, {})
        fhash = file_hash(data)
        complete = expected[kind].get(source) in (None, len(old))  # a crash may have cut a file short
        if old and set(old.values()) == {fhash} and complete:
            report.unchanged += 1
            continue
        chunks, file_problems = load_chunks(path, source, data)
        report.problems.extend(file_problems)
        if not chunks:
            continue  # keep what was stored before: a broken new version must not erase good evidence
        for c in chunks:
            c.metadata["file_chunks"] = len(chunks)
            hits = scan_injection(c.text + "\n" + c.metadata.get("agent_reply", ""))
            if hits:
                report.suspicious.append({"source": source, "id": c.id, "patterns": hits})
                c.metadata["suspicious"] = ",".join(hits)
        new_ids = {c.id for c in chunks}
        fresh = [c for c in chunks if c.id not in old]
        to_embed.extend(fresh)
        pipeline.feed(fresh)
        to_retag[kind].extend((c.id, c.metadata) for c in chunks if c.id in old)
        to_delete[kind].extend(cid for cid in old if cid not in new_ids)
        if old:
            report.updated += 1
        else:
            report.added += 1


STEP = 512  # chunks per embedding slice and per write batch


class _EmbedPipeline:
    """Embeds chunks on a background thread while the caller reads and chunks the next files, and writes
    each embedded slice on a second thread while the next slice is embedded. torch, the tokenizer and
    Chroma's upsert all run outside the GIL, so ingest runs close to the speed of the embedding model alone.

    Slices of `STEP` chunks in file order: a crash loses at most the slices in flight (files cut short are
    ingested again next time) and memory stays flat. With `hold` (--strict) nothing is written until
    `finish`, after every file has been checked.
    """

    def __init__(self, store, embedder, progress: bool, *, hold: bool = False):
        self.store = store
        self.embedder = embedder
        self.hold = hold
        self._buffer: list[Chunk] = []
        self._held: list[tuple[list[Chunk], object]] = []
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._cancelled = False
        self._progress = progress
        self._bar = None
        self._thread: threading.Thread | None = None

    def feed(self, chunks: list[Chunk]) -> None:
        self._buffer.extend(chunks)
        while len(self._buffer) >= STEP:
            self._put(self._buffer[:STEP])
            self._buffer = self._buffer[STEP:]

    def _put(self, part: list[Chunk]) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            from tqdm import tqdm

            self._bar = tqdm(total=0, desc="Embedding", unit="chunk", disable=not self._progress, leave=False)
            self._thread = threading.Thread(target=self._run, name="ingest-embed", daemon=True)
            self._thread.start()
        self._bar.total += len(part)
        self._bar.refresh()
        self._queue.put(part)

    def _run(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        encode = getattr(self.embedder, "embed_array", None) or self.embedder.embed
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-write") as writer:
            pending = None
            while True:
                part = self._queue.get()
                if part is None:
                    break
                if self._error is not None or self._cancelled:
                    continue  # drain the queue so the feeding thread never blocks
                try:
                    vectors = encode([c.embed_text for c in part])
                    if self.hold:
                        self._held.append((part, vectors))
                        self._bar.update(len(part))
                        continue
                    if pending is not None:
                        pending.result()  # one write in flight at most; its error surfaces here
                    pending = writer.submit(self._write, part, vectors)
                except BaseException as e:
                    self._error = e
            if pending is not None:
                try:
                    pending.result()
                except BaseException as e:
                    self._error = self._error or e

    def _write(self, part: list[Chunk], vectors) -> None:
        _store_slice(self.store, part, vectors)
        self._bar.update(len(part))

    def _stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        if self._bar is not None:
            self._bar.close()

    def finish(self) -> None:
        """Embed and write what is left; raise the first error of the background threads."""
        if self._buffer:
            self._put(self._buffer)
            self._buffer = []
        self._stop()
        if self._error is not None:
            raise self._error
        for part, vectors in self._held:
            _store_slice(self.store, part, vectors)
        self._held = []

    def cancel(self) -> None:
        """Stop after the slice in progress; nothing more is written."""
        self._cancelled = True
        self._buffer = []
        self._held = []
        self._stop()


def _store_slice(store, part: list[Chunk], vectors) -> None:
    for kind in KINDS:
        sel = [i for i, c in enumerate(part) if c.kind == kind]
        if sel:
            store.add(
                kind,
                [part[i].id for i in sel],
                [part[i].text for i in sel],
                [part[i].metadata for i in sel],
                vectors[sel] if hasattr(vectors, "shape") else [vectors[i] for i in sel],
            )
