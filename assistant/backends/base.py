"""The backend seam: one required method, `generate`, that streams the draft text.

A backend gets a `GenerationRequest` holding both the rendered prompts (for LLMs) and the structured
context they were rendered from (for the deterministic composer), and yields text pieces as they come.
A backend that cannot finish must raise an `IncompleteDraftError` (or another `BackendError`), never
return silently: partial text is never shown as a finished draft.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from assistant.settings import Settings


@dataclass
class Evidence:
    """One retrieved piece of evidence: a knowledge chunk or a resolved ticket."""

    id: str
    kind: str  # "knowledge" | "tickets"
    title: str
    source: str
    text: str  # the chunk text (knowledge) or the redacted customer message (tickets)
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def snippet(self) -> str:
        flat = " ".join(self.text.split())
        return flat if len(flat) <= 240 else flat[:237].rstrip() + "..."

    @property
    def reply(self) -> str | None:
        """The agent's reply, for resolved tickets."""
        return self.metadata.get("agent_reply")

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        out = {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "source": self.source,
            "snippet": self.snippet,
            "score": round(self.score, 4),
            "metadata": self.metadata,
        }
        if full:
            out["text"] = self.text
        return out


@dataclass
class Timeframe:
    """A policy timeframe for one issue category, e.g. "within 2 business days" = 0..48 hours."""

    text: str
    min_hours: float
    max_hours: float


@dataclass
class DraftContext:
    """What a draft is built from; the same data the prompt templates receive."""

    message: str  # the customer's message (untrusted data)
    knowledge: list[Evidence]
    tickets: list[Evidence]
    category: str
    category_label: str
    timeframe: Timeframe
    first_response: Timeframe | None
    may_offer: list[str]
    business: dict[str, str]  # name, support_email, contact_url, support_hours
    tone: str = "friendly"
    language: str = "en"
    length: str = "medium"  # short | medium | long
    feedback: list[str] = field(default_factory=list)  # problems of a previous attempt, for regeneration


@dataclass
class GenerationRequest:
    """Input of `Backend.generate`."""

    system: str  # rendered system prompt (chat backends)
    prompt: str  # rendered user prompt (chat backends)
    completion_prompt: str  # rendered few-shot completion prompt (base models such as Gemma 270M)
    context: DraftContext
    max_tokens: int = 400
    temperature: float = 0.3
    stop: list[str] = field(default_factory=list)


@runtime_checkable
class Backend(Protocol):
    """A drafting backend. `name` and `model` label every draft; `generate` streams its text."""

    name: str
    model: str
    is_llm: bool

    def generate(self, request: GenerationRequest) -> Iterator[str]: ...


BackendFactory = Callable[["Settings"], Backend]
_REGISTRY: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make a backend available by name (to `--backend` and `ASSISTANT_BACKEND`)."""
    _REGISTRY[name] = factory


def registered_backends() -> dict[str, BackendFactory]:
    return dict(_REGISTRY)
