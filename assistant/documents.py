"""Loading source files and cutting them into chunks with stable content-hash ids.

Knowledge files (.md, .txt, .html) become heading-aware chunks; ticket files (.jsonl, .csv) become one
chunk per resolved ticket, PII-redacted before anything is embedded or stored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from assistant.pii import redact

KNOWLEDGE_EXTENSIONS = {".md", ".markdown", ".txt", ".html", ".htm"}
TICKET_EXTENSIONS = {".jsonl", ".csv"}
SUPPORTED_EXTENSIONS = KNOWLEDGE_EXTENSIONS | TICKET_EXTENSIONS
# Files a directory walk passes over without complaint: licences, attributions and readmes describe the
# data rather than the business, and policy YAML is read by the SLA loader, not embedded.
IGNORED_NAMES = re.compile(r"(?i)^(readme|license|licence|attribution|notice)([._-].*)?$")
IGNORED_EXTENSIONS = {".yaml", ".yml", ".json", ".py", ".pyc"}
TICKET_REQUIRED = ("id", "customer_message", "agent_reply", "category")
CHUNK_SIZE = 1000
CHUNK_OVERLAP = 120
MAX_TICKET_CHARS = 8000


@dataclass
class Problem:
    """A file (or one line of it) that could not be ingested."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"

    def to_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "message": self.message}


@dataclass
class Chunk:
    """One unit of evidence as stored in the vector store."""

    id: str
    kind: str  # "knowledge" | "tickets"
    source: str
    title: str
    text: str  # stored document text
    embed_text: str  # what is embedded (may add the title for context)
    metadata: dict = field(default_factory=dict)


def content_id(*parts: str) -> str:
    """A stable id from content: the same chunk of the same source always gets the same id."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:32]


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def kind_of(path: Path) -> str | None:
    ext = path.suffix.lower()
    if ext in KNOWLEDGE_EXTENSIONS:
        return "knowledge"
    if ext in TICKET_EXTENSIONS:
        return "tickets"
    return None


def is_ignored(path: Path) -> bool:
    return path.name.startswith(".") or bool(IGNORED_NAMES.match(path.name)) or path.suffix.lower() in IGNORED_EXTENSIONS


def decode(data: bytes, path: str) -> tuple[str | None, Problem | None]:
    """Bytes to text, refusing binary and non-UTF-8 files with a precise reason."""
    if b"\x00" in data[:8192]:
        return None, Problem(path, "binary file (contains NUL bytes); expected UTF-8 text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        return None, Problem(path, f"not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); re-save it as UTF-8", line)
    if not text.strip():
        return None, Problem(path, "empty file")
    return text, None


class _HTMLToMarkdown(HTMLParser):
    """Just enough HTML → Markdown to keep headings, paragraphs and list items; drops scripts and styles."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "noscript", "template"):
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in ("h1", "h2", "h3", "h4"):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("p", "div", "br", "tr", "section", "article", "ul", "ol", "table"):
            self.out.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "noscript", "template"):
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in ("h1", "h2", "h3", "h4", "p"):
            self.out.append("\n\n")

    def handle_data(self, data):
        if self._skip:
            return
        if self._in_title:
            self.title += data.strip()
            return
        self.out.append(re.sub(r"\s+", " ", data))


def html_to_markdown(html: str) -> tuple[str, str]:
    parser = _HTMLToMarkdown()
    parser.feed(html)
    parser.close()
    text = re.sub(r"[ \t]+\n", "\n", "".join(parser.out))
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text, parser.title


def _splitters():
    from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

    headers = MarkdownHeaderTextSplitter(
        headers_to_split_on=[("#", "h1"), ("##", "h2"), ("###", "h3")], strip_headers=False
    )
    chars = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    return headers, chars


def chunk_knowledge(text: str, *, source: str, path: Path, fhash: str, fmt: str) -> list[Chunk]:
    """Heading-aware chunks: split at #/##/### first, then by size; headings go into metadata."""
    title = ""
    if fmt == "html":
        text, title = html_to_markdown(text)
    headers, chars = _splitters()
    if fmt in ("md", "html"):
        sections = [(d.page_content, d.metadata) for d in headers.split_text(text)]
    else:
        sections = [(text, {})]
    if not title:
        first = next((m.get("h1") for _, m in sections if m.get("h1")), None)
        if first:
            title = first
        elif fmt == "txt":
            line = text.strip().splitlines()[0].strip()
            title = line if len(line) <= 80 else ""
    title = title or path.stem.replace("-", " ").replace("_", " ").capitalize()
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for body, meta in sections:
        section = " › ".join(meta[h] for h in ("h1", "h2", "h3") if meta.get(h))
        for piece in chars.split_text(body):
            piece = piece.strip()
            if not piece:
                continue
            # Identical text twice in one file still needs two ids: count occurrences.
            n = seen.get(piece, 0)
            seen[piece] = n + 1
            cid = content_id("knowledge", source, piece, str(n))
            heading = meta.get("h2") or meta.get("h1") or ""
            md = {
                "source": source,
                "title": title,
                "section": section,
                "file_hash": fhash,
                "format": fmt,
                "chunk_index": len(chunks),
            }
            md.update({k: v for k, v in meta.items() if k in ("h1", "h2", "h3")})
            embed_text = f"{title}: {heading}\n{piece}" if heading and heading != title else f"{title}\n{piece}"
            chunks.append(Chunk(cid, "knowledge", source, title, piece, embed_text, md))
    return chunks


def _ticket_rows(text: str, fmt: str, source: str):
    """Yield (line number, row dict or None, problem or None) for JSONL or CSV ticket files."""
    if fmt == "jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield n, None, Problem(source, f"invalid JSON ({e.msg} at column {e.colno})", n)
                continue
            if not isinstance(row, dict):
                yield n, None, Problem(source, "expected a JSON object per line", n)
                continue
            yield n, row, None
    else:
        reader = csv.DictReader(io.StringIO(text))
        for row in reader:
            yield reader.line_num, row, None


def chunk_tickets(text: str, *, source: str, path: Path, fhash: str, fmt: str) -> tuple[list[Chunk], list[Problem]]:
    """One chunk per resolved ticket; the customer message is embedded, the reply rides in metadata."""
    chunks: list[Chunk] = []
    problems: list[Problem] = []
    ids: set[str] = set()
    for line, row, problem in _ticket_rows(text, fmt, source):
        if problem:
            problems.append(problem)
            continue
        missing = [f for f in TICKET_REQUIRED if not str(row.get(f) or "").strip()]
        if missing:
            problems.append(Problem(source, f"missing required field(s): {', '.join(missing)}", line))
            continue
        tid = str(row["id"]).strip()
        if tid in ids:
            problems.append(Problem(source, f"duplicate ticket id {tid!r}; later copy skipped", line))
            continue
        ids.add(tid)
        message = redact(str(row["customer_message"]).strip())[:MAX_TICKET_CHARS]
        reply = redact(str(row["agent_reply"]).strip())[:MAX_TICKET_CHARS]
        category = str(row["category"]).strip()
        md = {
            "source": source,
            "ticket_id": tid,
            "title": f"Resolved ticket {tid}",
            "category": category,
            "agent_reply": reply,
            "file_hash": fhash,
            "format": fmt,
            "line": line,
        }
        for opt in ("product", "resolved_at", "intent"):
            if row.get(opt) not in (None, ""):
                md[opt] = str(row[opt])
        cid = content_id("tickets", source, tid, message, reply, category)
        chunks.append(Chunk(cid, "tickets", source, md["title"], message, message, md))
    return chunks, problems


def load_chunks(path: Path, source: str, data: bytes) -> tuple[list[Chunk], list[Problem]]:
    """Parse one file's bytes into chunks; problems name the file and, where known, the line."""
    kind = kind_of(path)
    if kind is None:
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        return [], [Problem(source, f"unsupported file type '{path.suffix or '(none)'}' (supported: {supported})")]
    text, problem = decode(data, source)
    if problem:
        return [], [problem]
    fhash = file_hash(data)
    ext = path.suffix.lower()
    if kind == "tickets":
        return chunk_tickets(text, source=source, path=path, fhash=fhash, fmt=ext.lstrip("."))
    fmt = {".md": "md", ".markdown": "md", ".txt": "txt"}.get(ext, "html")
    chunks = chunk_knowledge(text, source=source, path=path, fhash=fhash, fmt=fmt)
    if not chunks:
        return [], [Problem(source, "no text found")]
    return chunks, []
