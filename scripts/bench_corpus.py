"""Synthetic benchmark corpus: support-article-like and ticket-like chunks built from the sample knowledge base.

Everything is generated locally and deterministically (seeded). The real knowledge base chunks come first
(so drafting on the benchmark store still finds the real policy articles), then synthetic chunks up to the
requested size:

* knowledge: article sections that recombine sentences of the real articles (mostly of one article, some
  borrowed from others), with another product, colour, number, country or heading swapped in;
* tickets: customer messages mutated from the real resolved tickets (3,700 of them): product and number
  swaps, added context, a second request merged in, word drops, casing noise; each keeps its category,
  intent and (redacted) agent reply.

That gives a varied, clustered distribution (topics repeat, wording does not), so HNSW has real work to do.
Queries are generated from the same process with another seed stream and are never in the corpus.

The generated corpus and its vectors are cached under ~/.cache/support-reply-assistant/bench/<key>/,
keyed by a hash of the generator version, the size, the seed, the knowledge base and the embedding model.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

GENERATOR_VERSION = "3"
ROOT = Path(__file__).resolve().parent.parent
KB = ROOT / "knowledge_base"
CACHE_ROOT = Path.home() / ".cache" / "support-reply-assistant" / "bench"

PREFIXES = ["Skerry", "Tarn", "Lumen", "Fjell", "Cairn", "Corrie", "Scree", "Bothy", "Ridge", "Moraine", "Kestrel",
            "Gully", "Sorrel", "Storr", "Lichen", "Drift", "Grid", "Haar", "Bealach", "Tor", "Eskdale", "Vinter",
            "Nord", "Alder", "Birk", "Heide", "Kelda", "Rannoch", "Quiraing", "Sgurr"]
NOUNS = ["Rain Shell", "Fleece", "Down Jacket", "Down Vest", "Hiking Boots", "Insulated Parka", "Hiking Trousers",
         "Merino Tee", "Hiking Socks", "Rain Pants", "Convertible Trousers", "Merino Beanie", "Daypack 28",
         "Trekking Pack 45", "Base Layer Top", "Softshell", "Gaiters", "Liner Gloves", "Trail Shoes", "Hoodie"]
COLOURS = ["Slate", "Moss", "Ember", "Black", "Fjord Blue", "Rust", "Sand", "Heather", "Pine", "Navy", "Ochre",
           "Storm Grey", "Plum", "Glacier"]
COUNTRIES = ["Germany", "Austria", "France", "Spain", "Italy", "the Netherlands", "Belgium", "Poland", "Sweden",
             "Denmark", "Ireland", "Portugal", "Czechia", "Switzerland", "Norway", "the UK"]
CARRIERS = ["DHL", "DPD", "GLS", "UPS", "Hermes", "PostNL", "La Poste"]
ASPECTS = ["Sizing and fit", "Care and washing", "Warranty cover", "Delivery times", "Returns", "Materials",
           "Repairs", "Exchanges", "Availability", "Price adjustments", "Known issues", "Technical details",
           "Accessories", "Frequently asked questions", "Troubleshooting", "Shipping restrictions"]
OPENERS = ["Hi,", "Hello,", "Hello there.", "Good morning,", "Hey!", "Dear Fernway team,", "Hi team,", "", "", ""]
CLOSERS = ["Thanks.", "Thank you!", "Regards, a frustrated customer.", "Please help.", "Cheers", "Any update?",
           "This is the second time I write.", "I need this sorted before my trip.", "", "", ""]
CONTEXT = [
    "I ordered the {p} in {c} {n} days ago.",
    "My order number is {o}.",
    "It was a gift for my partner.",
    "I live in {k} and the parcel came with {r}.",
    "The {p} is size {s}.",
    "I paid with PayPal and was charged twice, about €{m}.",
    "Tracking says delivered but nothing is here.",
    "The box was wet and the {p} smells musty.",
    "I've worn the {p} only {n} times.",
    "The zip on the {p} broke after {n} weeks.",
    "I need a bigger size, {s} instead of {s2}.",
    "The discount code didn't work at checkout.",
    "I can't log in to my account since yesterday.",
    "Please delete my data and unsubscribe me.",
]
SIZES = ["XS", "S", "M", "L", "XL", "XXL", "38", "40", "42", "44", "46"]


def _sentences(text: str) -> list[str]:
    text = re.sub(r"\*\*|__|`", "", text)
    out = []
    for line in text.splitlines():
        line = line.strip().lstrip("-*0123456789. ").strip()
        if not line or line.startswith("#"):
            continue
        out.extend(s.strip() for s in re.split(r"(?<=[.!?])\s+", line) if len(s.strip()) > 12)
    return out


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        p=f"{rng.choice(PREFIXES)} {rng.choice(NOUNS)}", c=rng.choice(COLOURS), n=rng.randint(2, 40),
        o=rng.randint(10000, 99999), k=rng.choice(COUNTRIES), r=rng.choice(CARRIERS), s=rng.choice(SIZES),
        s2=rng.choice(SIZES), m=rng.randint(9, 400),
    )


_PRODUCT = re.compile(r"\b(" + "|".join(PREFIXES) + r")\b")
_NUMBER = re.compile(r"\b\d{2,}\b")


def _perturb(rng: random.Random, text: str) -> str:
    if rng.random() < 0.6:
        text = _PRODUCT.sub(lambda m: rng.choice(PREFIXES), text)
    if rng.random() < 0.6:
        text = _NUMBER.sub(lambda m: str(rng.randint(10 ** (len(m.group()) - 1), 10 ** len(m.group()) - 1)), text)
    for colour in COLOURS:
        if colour in text and rng.random() < 0.5:
            text = text.replace(colour, rng.choice(COLOURS))
    return text


def real_chunks():
    """The sample knowledge base as the product chunks it (ids, texts, metadata as `assistant ingest` stores)."""
    from assistant.documents import load_chunks
    from assistant.ingest import collect_files

    files, _, _ = collect_files([KB])
    chunks = []
    for path, source in files:
        got, _ = load_chunks(path, source, path.read_bytes())
        chunks.extend(got)
    return chunks


class Generator:
    def __init__(self, seed: int = 7):
        self.rng = random.Random(seed)
        self.real = real_chunks()
        know = [c for c in self.real if c.kind == "knowledge"]
        self.articles: dict[str, list[str]] = {}
        self.titles: dict[str, str] = {}
        self.headings: list[str] = []
        for c in know:
            self.articles.setdefault(c.source, []).extend(_sentences(c.text))
            self.titles[c.source] = c.title
            for h in ("h2", "h3"):
                if c.metadata.get(h):
                    self.headings.append(c.metadata[h])
        self.sources = sorted(self.articles)
        self.all_sentences = [s for ss in self.articles.values() for s in ss]
        self.tickets = [c for c in self.real if c.kind == "tickets"]
        self.by_category: dict[str, list] = {}
        for t in self.tickets:
            self.by_category.setdefault(t.metadata["category"], []).append(t)

    def knowledge(self, i: int) -> dict:
        rng = self.rng
        src = rng.choice(self.sources)
        own = self.articles[src]
        product = f"{rng.choice(PREFIXES)} {rng.choice(NOUNS)}"
        heading = rng.choice([rng.choice(self.headings), f"{product}: {rng.choice(ASPECTS)}", rng.choice(ASPECTS)])
        title = rng.choice([self.titles[src], f"{product} — {rng.choice(ASPECTS).lower()}",
                            f"{self.titles[src]} ({rng.choice(COUNTRIES)})"])
        n = rng.choice([2, 3, 4, 5, 6, 8, 10])
        body = []
        for _ in range(n):
            r = rng.random()
            if r < 0.65:
                body.append(_perturb(rng, rng.choice(own)))
            elif r < 0.85:
                body.append(_perturb(rng, rng.choice(self.all_sentences)))
            else:
                body.append(_fill(rng, rng.choice(CONTEXT)).replace("I ", "Customers ").replace("My ", "Their "))
        text = f"## {heading}\n\n" + " ".join(body)
        text = text[:1000]
        source = f"bench/articles/{Path(src).stem}-{i % 997:03d}.md"
        md = {"source": source, "path": source, "title": title, "section": f"{title} › {heading}",
              "file_hash": "bench", "format": "md", "chunk_index": i, "h1": title, "h2": heading}
        return {"kind": "knowledge", "text": text, "embed_text": f"{title}: {heading}\n{text}", "metadata": md}

    def message(self, base) -> str:
        rng = self.rng
        msg = _perturb(rng, base.text)
        if rng.random() < 0.25:
            other = rng.choice(self.by_category[base.metadata["category"]])
            msg = msg.rstrip(".!? ") + ". Also, " + _perturb(rng, other.text)
        parts = [rng.choice(OPENERS)]
        if rng.random() < 0.5:
            parts.append(_fill(rng, rng.choice(CONTEXT)))
        parts.append(msg)
        if rng.random() < 0.3:
            parts.append(_fill(rng, rng.choice(CONTEXT)))
        parts.append(rng.choice(CLOSERS))
        words = " ".join(p for p in parts if p).split()
        if rng.random() < 0.3 and len(words) > 8:
            words = [w for w in words if rng.random() > 0.08]
        out = " ".join(words)
        return out.lower() if rng.random() < 0.15 else out

    def ticket(self, i: int) -> dict:
        rng = self.rng
        base = rng.choice(self.tickets)
        text = self.message(base)
        md = dict(base.metadata)
        tid = f"BENCH-{i:06d}"
        source = f"bench/tickets/tickets-{i // 5000:03d}.jsonl"
        md.update(source=source, path=source, ticket_id=tid, title=f"Resolved ticket {tid}", file_hash="bench",
                  line=i % 5000 + 1, agent_reply=_perturb(rng, md.get("agent_reply", "")))
        return {"kind": "tickets", "text": text, "embed_text": text, "metadata": md}

    def corpus(self, n_total: int, knowledge_share: float = 0.4) -> list[dict]:
        out = [{"id": c.id, "kind": c.kind, "text": c.text, "embed_text": c.embed_text, "metadata": c.metadata}
               for c in self.real]
        seen = {c.text for c in self.real}
        i = 0
        while len(out) < n_total:
            i += 1
            rec = self.knowledge(i) if self.rng.random() < knowledge_share else self.ticket(i)
            if rec["text"] in seen:
                continue
            seen.add(rec["text"])
            rec["id"] = hashlib.sha256(f"{rec['kind']}\x1f{i}\x1f{rec['text']}".encode()).hexdigest()[:32]
            out.append(rec)
        return out

    def queries(self, n: int) -> list[str]:
        """Held-out customer messages: the eval datasets' messages, then fresh mutations of tickets."""
        out: list[str] = []
        for name in ("sample_kb.jsonl", "bitext_sample.jsonl"):
            for line in (ROOT / "evals" / "datasets" / name).read_text(encoding="utf-8").splitlines():
                if line.strip():
                    out.append(json.loads(line)["message"])
        q_rng = random.Random(12345)
        saved, self.rng = self.rng, q_rng
        try:
            while len(out) < n:
                out.append(self.message(q_rng.choice(self.tickets)))
        finally:
            self.rng = saved
        random.Random(99).shuffle(out)
        return out[:n]


def kb_fingerprint() -> str:
    h = hashlib.sha256()
    for p in sorted(KB.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(KB).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def corpus_key(n_total: int, seed: int) -> str:
    from assistant.embeddings import MODEL_NAME

    raw = f"v{GENERATOR_VERSION}|n={n_total}|seed={seed}|kb={kb_fingerprint()}|model={MODEL_NAME}"
    return f"n{n_total}-" + hashlib.sha256(raw.encode()).hexdigest()[:12]


def load_or_build(n_total: int, n_queries: int, seed: int = 7, *, log=print, need_records: bool = True):
    """(cache dir, records or None, vectors or None, queries). Builds and embeds once; later runs only read."""
    d = CACHE_ROOT / corpus_key(n_total, seed)
    done = d / "complete"
    qpath = d / f"queries-{n_queries}.json"
    if done.exists():
        if not qpath.exists():
            qpath.write_text(json.dumps(Generator(seed).queries(n_queries)), encoding="utf-8")
        queries = json.loads(qpath.read_text(encoding="utf-8"))
        if not need_records:
            return d, None, None, queries
        with (d / "corpus.jsonl").open(encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh]
        return d, records, np.load(d / "vectors.npy", mmap_mode="r"), queries
    d.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    gen = Generator(seed)
    records = gen.corpus(n_total)
    queries = gen.queries(n_queries)
    log(f"generated {len(records):,} chunks in {time.perf_counter() - t:.1f} s; embedding them once "
        f"(about {len(records) / 370 / 60:.0f} min on 2 cores; cached in {d})")
    from assistant.embeddings import Embedder

    emb = Embedder(batch_size=64)
    texts = [r["embed_text"] for r in records]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = np.zeros((len(texts), 384), dtype=np.float32)
    step = 4096
    t = time.perf_counter()
    for s in range(0, len(order), step):
        idx = order[s : s + step]
        vectors[idx] = np.asarray(emb.embed([texts[i] for i in idx]), dtype=np.float32)
        done_n = min(s + step, len(order))
        rate = done_n / (time.perf_counter() - t)
        log(f"  embedded {done_n:,}/{len(order):,} ({rate:.0f}/s, ~{(len(order) - done_n) / rate:.0f} s left)")
    with (d / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    np.save(d / "vectors.npy", vectors)
    qpath.write_text(json.dumps(queries), encoding="utf-8")
    done.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
    return d, records, vectors, queries


if __name__ == "__main__":  # python scripts/bench_corpus.py N [N_QUERIES]: build (and cache) one corpus
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    q = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    sys.path.insert(0, str(ROOT))
    d, recs, vecs, qs = load_or_build(n, q, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(d, len(recs), vecs.shape, len(qs))
