"""Incremental ingestion: unchanged files are skipped, changed files replaced, deleted files removed."""

from __future__ import annotations

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
    from assistant.injection import scan_injection

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
            to_embed.extend(c for c in chunks if c.id not in old)
            to_retag[kind].extend((c.id, c.metadata) for c in chunks if c.id in old)
            to_delete[kind].extend(cid for cid in old if cid not in new_ids)
            if old:
                report.updated += 1
            else:
                report.added += 1
        # Sources under an ingested folder that are gone from disk were deleted by the user.
        for kind in KINDS:
            for source, ids in existing[kind].items():
                if source not in seen and any(source.startswith(prefix) for prefix, _ in roots):
                    to_delete[kind].extend(ids)
                    report.deleted += 1
        if strict and report.problems:
            raise IngestError(f"{len(report.problems)} problem(s); nothing ingested (--strict): " + "; ".join(map(str, report.problems)))

        _embed_and_store(to_embed, store, embedder, progress)
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


def _embed_and_store(chunks: list[Chunk], store, embedder, progress: bool) -> None:
    """Embed and write in slices, so a crash loses at most the slices in flight and memory stays flat.

    The store write of one slice runs in a background thread while the next slice is embedded (Chroma's
    upsert and torch both release the GIL), so ingest runs close to the speed of the embedding model alone.
    """
    if not chunks:
        return
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    encode = getattr(embedder, "embed_array", None) or embedder.embed
    step = 512
    bar = tqdm(total=len(chunks), desc="Embedding", unit="chunk", disable=not progress, leave=False)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-write") as writer:
            pending = None
            for i in range(0, len(chunks), step):
                part = chunks[i : i + step]
                vectors = encode([c.embed_text for c in part])
                if pending is not None:
                    pending.result()  # one write in flight at most; its error surfaces here
                    bar.update(step)
                pending = writer.submit(_store_slice, store, part, vectors)
            pending.result()
            bar.update(len(chunks) - bar.n)
    finally:
        bar.close()


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
