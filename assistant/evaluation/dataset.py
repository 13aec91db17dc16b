"""Evaluation datasets: JSONL, one case per line.

Validation is strict: any malformed line (bad JSON or UTF-8, a missing or mistyped field, a duplicate
id) rejects the whole dataset with an `InputError` that names the file and the line of every problem.
A silently shortened dataset would make two runs incomparable, so a bad line is never skipped.
Problems that only show when drafting (a message over the size limit, a backend failure) are not
dataset errors: they become a per-case error record in the run's results.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import InputError

#: Accepted names for a field (first is canonical).
_ALIASES = {
    "category": ("category", "expected_category"),
    "intent": ("intent", "expected_intent"),
    "expected_timeframe": ("expected_timeframe", "timeframe"),
}
_STR_FIELDS = ("category", "intent", "reference_reply", "expected_timeframe", "notes")
_LIST_FIELDS = ("expected_sources", "must_include", "must_not_include", "exclude_ticket_ids", "tags")
KNOWN_FIELDS = {"id", "message", "expect_injection", "attack", *_STR_FIELDS, *_LIST_FIELDS} | {
    a for names in _ALIASES.values() for a in names
}
MAX_PROBLEMS_SHOWN = 10


@dataclass(frozen=True)
class EvalCase:
    """One evaluation case. Only `id` and `message` are required."""

    id: str
    message: str
    category: str | None = None  # expected SLA category key (e.g. "refunds")
    intent: str | None = None  # expected intent (Bitext label); tickets of this intent count as relevant
    expected_sources: tuple[str, ...] = ()  # knowledge source ids, e.g. knowledge_base/articles/refunds.md
    reference_reply: str | None = None
    must_include: tuple[str, ...] = ()  # case-insensitive substrings the draft must contain
    must_not_include: tuple[str, ...] = ()  # ... and must not contain
    expected_timeframe: str | None = None  # the SLA resolution text, e.g. "within 5 business days"
    expect_injection: bool | None = None  # should the injection check fire?
    attack: bool | None = None  # a red-team case (see `is_attack`)
    exclude_ticket_ids: tuple[str, ...] = ()  # resolved tickets hidden from retrieval (leakage)
    tags: tuple[str, ...] = ()
    notes: str | None = None
    line: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_attack(self) -> bool:
        """A red-team case (`attack: true` or the tag "attack"): the eval reports whether the attack succeeded."""
        return bool(self.attack) or "attack" in self.tags

    @property
    def hidden_ticket_ids(self) -> frozenset[str]:
        """Tickets never shown to the drafter for this case: its own id (a dataset built from the
        resolved tickets would otherwise retrieve its own answer) and `exclude_ticket_ids`."""
        return frozenset({self.id, *self.exclude_ticket_ids})

    def draft_hash(self) -> str:
        """Hash of everything that can change the draft (not the expectations, which only change metrics)."""
        payload = json.dumps({"message": self.message, "hidden": sorted(self.hidden_ticket_ids)}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("line")
        d.pop("extra")
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items() if v not in (None, (), [])}


@dataclass
class Dataset:
    path: Path
    cases: list[EvalCase]
    sha256: str

    @property
    def name(self) -> str:
        return self.path.stem

    def __len__(self) -> int:
        return len(self.cases)


def _pick(row: dict, canonical: str):
    for name in _ALIASES.get(canonical, (canonical,)):
        if name in row:
            return row[name]
    return None


def _parse_case(row: Any, where: str, line: int) -> tuple[EvalCase | None, list[str]]:
    problems: list[str] = []
    if not isinstance(row, dict):
        return None, [f"{where}: expected a JSON object, got {type(row).__name__}"]
    cid = row.get("id")
    if isinstance(cid, int) and not isinstance(cid, bool):
        cid = str(cid)
    if not isinstance(cid, str) or not cid.strip():
        problems.append(f"{where}: missing `id` (a non-empty string)")
    message = row.get("message")
    if not isinstance(message, str) or not message.strip():
        problems.append(f"{where}: missing `message` (a non-empty string)")
    values: dict[str, Any] = {}
    for name in _STR_FIELDS:
        v = _pick(row, name)
        if v is None:
            continue
        if not isinstance(v, str):
            problems.append(f"{where}: `{name}` must be a string, got {type(v).__name__}")
        else:
            values[name] = v
    for name in _LIST_FIELDS:
        v = row.get(name)
        if v is None:
            continue
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            problems.append(f"{where}: `{name}` must be a list of non-empty strings")
        else:
            values[name] = tuple(v)
    for name in ("expect_injection", "attack"):
        flag = row.get(name)
        if flag is not None:
            if not isinstance(flag, bool):
                problems.append(f"{where}: `{name}` must be true or false")
            else:
                values[name] = flag
    if problems:
        return None, problems
    extra = {k: v for k, v in row.items() if k not in KNOWN_FIELDS}
    return EvalCase(id=cid.strip(), message=message, line=line, extra=extra, **values), []


def parse_lines(data: bytes, where: str) -> list[EvalCase]:
    """Parse and validate dataset bytes; `where` names the file in errors."""
    cases: list[EvalCase] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(data.splitlines(), 1):
        loc = f"{where}:{n}"
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as e:
            problems.append(f"{loc}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})")
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(f"{loc}: invalid JSON ({e.msg} at column {e.colno})")
            continue
        case, errs = _parse_case(row, loc, n)
        problems.extend(errs)
        if case is None:
            continue
        if case.id in seen:
            problems.append(f"{loc}: duplicate id {case.id!r} (first on line {seen[case.id]})")
            continue
        seen[case.id] = n
        cases.append(case)
    if problems:
        shown = "\n  ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        raise InputError(
            f"The dataset {where} has {len(problems)} problem(s); nothing was run:\n  {shown}{more}",
            hint="Each line must be a JSON object with at least a string `id` and `message` (see evals/README.md).",
        )
    if not cases:
        raise InputError(f"The dataset {where} has no cases.", hint="Add one JSON object per line.")
    return cases


def load_dataset(path: str | Path) -> Dataset:
    """Load and validate a JSONL dataset; raises InputError naming the file and line of each problem."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"Dataset not found: {p}")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(f"Cannot read the dataset {p}: {e.strerror or e}") from None
    cases = parse_lines(data, str(p))
    return Dataset(path=p, cases=cases, sha256=hashlib.sha256(data).hexdigest())
