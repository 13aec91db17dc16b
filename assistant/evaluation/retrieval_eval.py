"""Retrieval-only evaluation of the knowledge pool: dense vs BM25 vs hybrid (reciprocal rank fusion).

For each case with `expected_sources`, the top chunks of each method are reduced to their source files
(first occurrence wins) and scored with hit@1/3/5, MRR and nDCG@5. No drafts are written.

`pipeline` is what drafting actually retrieves (the Drafter's own context building: similar tickets
decide the category, which may steer the knowledge query), with k raised to the candidate count.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Any

from assistant.errors import InputError, KnowledgeBaseMissingError
from assistant.evaluation import metrics as M
from assistant.evaluation.dataset import load_dataset
from assistant.evaluation.runner import (
    REPORT_FILE,
    RESULTS_FILE,
    SUMMARY_FILE,
    RunSummary,
    default_runs_dir,
    write_json,
    write_results,
)
from assistant.settings import Settings

METHODS = ("dense", "bm25", "hybrid", "pipeline")
CANDIDATES = 30  # chunks fetched per method before fusion / de-duplication
RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al. 2009)


def rrf(rankings: list[list[str]], k: int = RRF_K) -> list[str]:
    """Reciprocal rank fusion: score(d) = sum over rankings of 1 / (k + rank(d)); ties keep first-seen order."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, 1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda d: -scores[d])


class KnowledgeIndex:
    """Every knowledge chunk of the store, with a BM25 index over title + section + text."""

    def __init__(self, store):
        import bm25s

        col = store.collection("knowledge")
        if col is None or col.count() == 0:
            raise KnowledgeBaseMissingError(f"The knowledge base at {store.location} has no knowledge articles.")
        self.ids: list[str] = []
        self.sources: dict[str, str] = {}
        texts: list[str] = []
        total, page = col.count(), 5000
        for offset in range(0, total, page):
            got = col.get(include=["documents", "metadatas"], limit=page, offset=offset)
            for cid, doc, md in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                md = md or {}
                self.ids.append(cid)
                self.sources[cid] = md.get("source", cid)
                texts.append(f"{md.get('title', '')}\n{md.get('section', '')}\n{doc or ''}")
        self.store = store
        self.bm25 = bm25s.BM25()
        self.bm25.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)

    def bm25_ranking(self, query: str, n: int) -> list[str]:
        import bm25s

        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.vocab:
            return []
        docs, scores = self.bm25.retrieve(tokens, k=min(n, len(self.ids)), show_progress=False)
        return [self.ids[int(i)] for i, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def dense_ranking(self, vector: list[float], n: int) -> list[str]:
        return [e.id for e in self.store.query("knowledge", vector, n)]


def run_retrieval_eval(
    dataset_path: str | Path,
    settings: Settings,
    *,
    out_dir: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> RunSummary:
    """Score dense, BM25 and hybrid (RRF of both) retrieval of knowledge articles on a labelled dataset."""
    from tqdm import tqdm

    from assistant.wiring import build_embedder, build_store

    started = time.perf_counter()
    dataset = load_dataset(dataset_path)
    cases = [c for c in (dataset.cases[:limit] if limit else dataset.cases) if c.expected_sources]
    if not cases:
        raise InputError(f"No case in {dataset.path} has `expected_sources`; retrieval-only needs them.")
    store = build_store(settings)
    store.ensure_ready()
    index = KnowledgeIndex(store)
    embedder = build_embedder(settings)
    vectors = embedder.embed([c.message for c in cases])
    pipeline = _pipeline_ranker(settings)
    results = []
    for case, vector in tqdm(list(zip(cases, vectors, strict=True)), desc="Retrieval", unit="case",
                             disable=not progress, leave=False):
        dense = index.dense_ranking(vector, CANDIDATES)
        bm25 = index.bm25_ranking(case.message, CANDIDATES)
        chunk_rankings = {"dense": dense, "bm25": bm25, "hybrid": rrf([dense, bm25])}
        if pipeline is not None:
            chunk_rankings["pipeline"] = pipeline(case.message)
        relevant = set(case.expected_sources)
        line: dict[str, Any] = {"id": case.id, "message": case.message, "expected_sources": list(case.expected_sources),
                                "metrics": {}, "ranks": {}, "top": {}}
        for method, chunks in chunk_rankings.items():
            ranked = M.dedupe(index.sources.get(c, c) for c in chunks)
            line["top"][method] = ranked[:5]
            line["ranks"][method] = next((i for i, s in enumerate(ranked, 1) if s in relevant), None)
            line["metrics"].update({
                f"{method}_hit@1": M.hit_at_k(ranked, relevant, 1),
                f"{method}_hit@3": M.hit_at_k(ranked, relevant, 3),
                f"{method}_hit@5": M.hit_at_k(ranked, relevant, 5),
                f"{method}_mrr": round(M.mrr(ranked, relevant), 4),
                f"{method}_ndcg@5": round(M.ndcg(ranked, relevant, 5), 4),
            })
        results.append(line)
    methods = {
        method: {name: round(M.mean(r["metrics"][f"{method}_{name}"] for r in results), 4)
                 for name in ("hit@1", "hit@3", "hit@5", "mrr", "ndcg@5")}
        for method in METHODS
        if f"{method}_mrr" in results[0]["metrics"]
    }
    summary = {
        "schema": 1,
        "mode": "retrieval",
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "dataset": {"path": str(dataset.path), "name": dataset.name, "sha256": dataset.sha256,
                    "cases": len(dataset), "evaluated": len(cases)},
        "backend": "retrieval-only",
        "model": getattr(embedder, "name", None) or "MiniLM",
        "template": None,
        "n": len(results),
        "errors": 0,
        "candidates": CANDIDATES,
        "rrf_k": RRF_K,
        "knowledge_chunks": len(index.ids),
        "methods": methods,
        "retrieval": {f"{m}_{n}": {"mean": v, "n": len(results)} for m, d in methods.items() for n, v in d.items()},
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(out_dir) if out_dir else default_runs_dir(settings) / f"{stamp}-{dataset.name}-retrieval"
    out.mkdir(parents=True, exist_ok=True)
    write_results(out / RESULTS_FILE, results)
    write_json(out / SUMMARY_FILE, summary)
    from assistant.evaluation.report import write_report

    write_report(out / REPORT_FILE, summary, results)
    return RunSummary(out_dir=out, summary=summary, results=results)


def _pipeline_ranker(settings: Settings):
    """message -> knowledge chunk ids as the drafting pipeline retrieves them, or None if unavailable."""
    from assistant.wiring import build_drafter

    try:
        drafter = build_drafter(settings.with_(k_knowledge=CANDIDATES), backend_name="composer")
        drafter.build_context("warm-up", tone=settings.tone, length="medium", language=None, timings={})
    except (TypeError, AttributeError):  # another Drafter version: skip this method rather than guess
        return None

    def rank(message: str) -> list[str]:
        context = drafter.build_context(message, tone=settings.tone, length="medium", language=None, timings={})
        return [e.id for e in context.knowledge]

    return rank
