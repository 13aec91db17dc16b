"""Pure metric functions for offline evaluation: no I/O, no models, deterministic.

Retrieval metrics take a ranked list of ids and the set of relevant ids (binary relevance).
Text metrics take two strings. All scores are in 0..1 unless stated otherwise.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Hashable, Iterable, Sequence

_WORD = re.compile(r"\w+", re.UNICODE)


# ----------------------------------------------------------------------------------------- retrieval


def dedupe(items: Iterable[Hashable]) -> list:
    """The items in order, each kept at its first position (e.g. chunks → their source files)."""
    seen: set = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def hit_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """1.0 if any of the first `k` ranked ids is relevant, else 0.0."""
    if k < 1:
        raise ValueError("k must be at least 1")
    return 1.0 if any(r in relevant for r in ranked[:k]) else 0.0


def mrr(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int | None = None) -> float:
    """Reciprocal rank of the first relevant id (within the first `k`, if given); 0.0 if none."""
    for i, r in enumerate(ranked[:k] if k else ranked, 1):
        if r in relevant:
            return 1.0 / i
    return 0.0


def ndcg(
    ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int, *, n_relevant: int | None = None
) -> float:
    """Binary-relevance nDCG@k: DCG = sum(1 / log2(rank + 1)) over relevant ranks <= k, divided by the
    DCG of the ideal ranking (all relevant items first). `n_relevant` is the number of relevant items
    in the whole collection when `relevant` lists only those that were retrieved."""
    if k < 1:
        raise ValueError("k must be at least 1")
    total = len(relevant) if n_relevant is None else n_relevant
    if total <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, r in enumerate(ranked[:k], 1) if r in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(total, k) + 1))
    return dcg / ideal


# --------------------------------------------------------------------------------------------- text


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (Unicode letters, digits, underscore)."""
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)) time, O(len(b)) memory)."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l_f1(candidate: str, reference: str) -> float:
    """ROUGE-L F1 on word tokens: LCS-based precision and recall, harmonic mean."""
    c, r = tokenize(candidate), tokenize(reference)
    if not c or not r:
        return 0.0
    lcs = lcs_length(c, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(c), lcs / len(r)
    return 2 * p * rec / (p + rec)


def _char_ngrams(text: str, n: int) -> Counter:
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def chrf(candidate: str, reference: str, n: int = 6, beta: float = 2.0) -> float:
    """chrF (Popović 2015), in 0..1: character n-gram (1..n, whitespace removed) precision and recall,
    each averaged over the n-gram orders that both texts are long enough for, combined as F-beta."""
    c = "".join(candidate.split())
    r = "".join(reference.split())
    precisions, recalls = [], []
    for order in range(1, n + 1):
        cg, rg = _char_ngrams(c, order), _char_ngrams(r, order)
        if not cg or not rg:
            continue
        match = sum((cg & rg).values())
        precisions.append(match / sum(cg.values()))
        recalls.append(match / sum(rg.values()))
    if not precisions:
        return 0.0
    p = sum(precisions) / len(precisions)
    rec = sum(recalls) / len(recalls)
    if p == 0 and rec == 0:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * p * rec / (b2 * p + rec)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 if either is all zeros)."""
    if len(a) != len(b):
        raise ValueError(f"vectors differ in length: {len(a)} and {len(b)}")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    if na == 0 or nb == 0:
        return 0.0
    return dot / (na * nb)


def contains_all(text: str, needles: Iterable[str]) -> tuple[float, list[str]]:
    """(share of `needles` found, case-insensitively, in `text`; the needles that are missing)."""
    needles = list(needles)
    if not needles:
        return 1.0, []
    low = text.lower()
    missing = [n for n in needles if n.lower() not in low]
    return 1 - len(missing) / len(needles), missing


def contains_any(text: str, needles: Iterable[str]) -> list[str]:
    """The `needles` found, case-insensitively, in `text`."""
    low = text.lower()
    return [n for n in needles if n.lower() in low]


# -------------------------------------------------------------------------------------- statistics


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None if there are none."""
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def percentile(values: Iterable[float], p: float) -> float | None:
    """The `p`-th percentile (0..100) with linear interpolation between ranks (numpy's default)."""
    vals = sorted(float(v) for v in values if v is not None)
    if not vals:
        return None
    if not 0 <= p <= 100:
        raise ValueError("p must be between 0 and 100")
    pos = (len(vals) - 1) * p / 100
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def paired_bootstrap(
    deltas: Sequence[float], *, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean of per-case paired deltas (new − old) and a percentile bootstrap
    confidence interval for it. Cases are resampled with replacement; deterministic for a given seed."""
    import numpy as np

    d = np.asarray([float(x) for x in deltas], dtype=float)
    if d.size == 0:
        raise ValueError("paired_bootstrap needs at least one delta")
    m = float(d.mean())
    if d.size == 1 or np.all(d == d[0]):
        return m, m, m
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_resamples, d.size))
    means = d[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return m, float(lo), float(hi)
