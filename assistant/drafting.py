"""The drafting pipeline: validate → retrieve → categorise → render prompts → generate → check (→ regenerate once)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assistant.backends.base import Backend, DraftContext, Evidence, GenerationRequest
from assistant.errors import EmptyMessageError, IncompleteDraftError, MessageTooLongError
from assistant.settings import Settings

# Control characters other than tab/newline are never meaningful in a customer message.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Labels a completion model may echo at the start, and markers where it starts a new turn.
_LEADING_LABEL = re.compile(r"^\s*(support agent|agent|assistant|reply|response)\s*:\s*", re.I)
_TURN_END = re.compile(r"\n\s*(customer|support agent|agent|user|###)\s*:?", re.I)
LLM_LABEL = "Written by {model} via the {backend} backend. Review before sending."
COMPOSER_LABEL = "Assembled by the offline composer from your knowledge base: NOT written by an LLM. Review before sending."


@dataclass
class DraftResult:
    """A draft and everything an agent (or an evaluation) needs to judge it."""

    text: str
    backend: str
    model: str
    is_llm: bool
    template: dict[str, str]
    category: str
    category_label: str
    timeframe: str
    sources: list[Evidence]
    checks: Any  # assistant.checks.DraftChecks
    language: str
    timings_ms: dict[str, float]
    attempts: int = 1
    first_attempt_problems: list[str] = field(default_factory=list)
    injection_patterns: list[str] = field(default_factory=list)
    may_offer: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.is_llm:
            return LLM_LABEL.format(model=self.model, backend=self.backend)
        return COMPOSER_LABEL

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "backend": self.backend,
            "model": self.model,
            "llm": self.is_llm,
            "label": self.label,
            "template": self.template,
            "category": self.category,
            "category_label": self.category_label,
            "timeframe_policy": self.timeframe,
            "may_offer": self.may_offer,
            "sources": [
                {"id": e.id, "kind": e.kind, "title": e.title, "score": round(e.score, 4), "source": e.source, "snippet": e.snippet}
                for e in self.sources
            ],
            "checks": self.checks.to_dict(),
            "language": self.language,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            "attempts": self.attempts,
            "regenerated": self.attempts > 1,
            "first_attempt_problems": self.first_attempt_problems,
            "injection_patterns": self.injection_patterns,
        }


def clean_output(text: str) -> str:
    """Trim what completion models add around a reply: role labels, the start of a next turn."""
    text = _LEADING_LABEL.sub("", text.strip())
    m = _TURN_END.search(text)
    if m:
        text = text[: m.start()]
    return text.strip()


def validate_message(message: str | None, max_chars: int) -> str:
    """The message as it will be used, or a clear InputError."""
    if message is None or not message.strip():
        raise EmptyMessageError("The customer message is empty.", hint="Paste the customer's message (or pass it with -).")
    if len(message) > max_chars:
        raise MessageTooLongError(
            f"The customer message is {len(message):,} characters; the limit is {max_chars:,}.",
            hint="Trim quoted history or signatures, or raise ASSISTANT_MAX_MESSAGE_CHARS.",
        )
    return _CONTROL.sub("", message).strip()


class Drafter:
    """Builds drafts; one instance serves many requests (models and indexes load once)."""

    def __init__(self, settings: Settings, retriever, sla, backend: Backend, *, templates=None):
        self.settings = settings
        self.retriever = retriever
        self.sla = sla
        self.backend = backend
        self.templates = templates  # optional versioned template store (UI); None = files in prompts/

    def categorize(self, message: str, tickets: list[Evidence]) -> str:
        """Vote of the closest resolved tickets (by similarity) plus the policy's keywords."""
        scores: dict[str, float] = {}
        for t in tickets:
            cat = t.metadata.get("category")
            if cat in self.sla.categories:
                scores[cat] = scores.get(cat, 0.0) + max(t.score, 0.0)
        for cat, s in self.sla.keyword_scores(message).items():
            scores[cat] = scores.get(cat, 0.0) + 0.5 * s
        if not scores:
            return self.sla.default_category
        best = max(scores, key=scores.get)
        return best if scores[best] > 0.3 else self.sla.default_category

    def build_context(self, message: str, *, tone: str, length: str, language: str | None, timings: dict) -> DraftContext:
        from assistant.language import detect_language

        t = time.perf_counter()
        # Tickets first: their categories decide the policy area, which then steers the knowledge query.
        tickets = self.retriever.tickets(message, max(self.settings.k_tickets, 1))
        category = self.categorize(message, tickets)
        tickets = tickets[: self.settings.k_tickets]
        policy = self.sla.get(category)
        topic = f"{policy.label}: {policy.description}" if category != self.sla.default_category else None
        knowledge = self.retriever.knowledge(message, self.settings.k_knowledge, topic=topic)
        timings["retrieve_ms"] = (time.perf_counter() - t) * 1000
        detected = detect_language(message)
        lang = language or (detected if detected != "unknown" else "en")
        return DraftContext(
            message=message,
            knowledge=knowledge,
            tickets=tickets,
            category=policy.key,
            category_label=policy.label,
            timeframe=policy.resolution,
            first_response=policy.first_response,
            may_offer=list(policy.may_offer),
            business=dict(self.sla.business),
            tone=tone,
            language=lang,
            length=length,
        )

    def _render(self, context: DraftContext, template: str):
        from assistant.prompts import render_prompts

        if self.templates is not None:
            return self.templates.render(context, template)
        return render_prompts(context, template=template, prompts_dir=self.settings.prompts_dir)

    def _generate(self, context: DraftContext, template: str, on_token, timings: dict, attempt: int):
        t = time.perf_counter()
        rendered = self._render(context, template)
        timings[f"render_ms{'' if attempt == 1 else '_2'}"] = (time.perf_counter() - t) * 1000
        request = GenerationRequest(
            system=rendered.system,
            prompt=rendered.prompt,
            completion_prompt=rendered.completion_prompt,
            context=context,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
        )
        t = time.perf_counter()
        pieces: list[str] = []
        first = None
        try:
            for piece in self.backend.generate(request):
                if first is None:
                    first = (time.perf_counter() - t) * 1000
                pieces.append(piece)
                if on_token:
                    on_token(piece)
        except IncompleteDraftError:
            raise
        suffix = "" if attempt == 1 else "_2"
        timings[f"generate_ms{suffix}"] = (time.perf_counter() - t) * 1000
        timings[f"first_token_ms{suffix}"] = first if first is not None else timings[f"generate_ms{suffix}"]
        text = clean_output("".join(pieces))
        if not text:
            raise IncompleteDraftError(f"The {self.backend.name} backend returned an empty reply.")
        return text, rendered

    def draft(
        self,
        message: str,
        *,
        tone: str | None = None,
        template: str | None = None,
        length: str = "medium",
        language: str | None = None,
        on_token: Callable[[str], None] | None = None,
        on_restart: Callable[[list[str]], None] | None = None,
    ) -> DraftResult:
        """Draft a reply to `message`. Raises an AssistantError subclass on any failure; never returns a partial draft."""
        from assistant.checks import check_draft, mask_spans
        from assistant.injection import scan_injection

        start = time.perf_counter()
        timings: dict[str, float] = {}
        message = validate_message(message, self.settings.max_message_chars)
        tone = tone or self.settings.tone
        template = template or self.settings.template
        context = self.build_context(message, tone=tone, length=length, language=language, timings=timings)
        injection = scan_injection(message)

        text, rendered = self._generate(context, template, on_token, timings, attempt=1)
        t = time.perf_counter()
        checks = check_draft(text, context, customer_language=context.language, system_prompt=rendered.system)
        timings["checks_ms"] = (time.perf_counter() - t) * 1000
        attempts, first_problems = 1, []
        if self.backend.is_llm and self.settings.regenerate and not checks.passed:
            # One retry with the problems fed back; keep whichever attempt has fewer problems.
            first_problems = checks.problems()
            if on_restart:
                on_restart(first_problems)
            context.feedback = first_problems
            text2, rendered2 = self._generate(context, template, on_token, timings, attempt=2)
            checks2 = check_draft(text2, context, customer_language=context.language, system_prompt=rendered2.system)
            attempts = 2
            if len(checks2.problems()) <= len(first_problems):
                text, rendered, checks = text2, rendered2, checks2
        if checks.prompt_leak:
            # Output guard: text of the system prompt (e.g. a planted canary) never reaches the agent or
            # the customer. The draft is kept, with the quoted text masked, and fails the checklist.
            text = mask_spans(text, checks.leak_spans)
        timings["total_ms"] = (time.perf_counter() - start) * 1000
        return DraftResult(
            text=text,
            backend=self.backend.name,
            model=self.backend.model,
            is_llm=self.backend.is_llm,
            template={"name": rendered.template_name, "version": rendered.template_version},
            category=context.category,
            category_label=context.category_label,
            timeframe=context.timeframe.text,
            sources=context.knowledge + context.tickets,
            checks=checks,
            language=context.language,
            timings_ms=timings,
            attempts=attempts,
            first_attempt_problems=first_problems,
            injection_patterns=injection,
            may_offer=context.may_offer,
        )
