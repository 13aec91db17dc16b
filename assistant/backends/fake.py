"""A scripted, deterministic LLM stand-in, so tests run the real drafting path without a model.

It claims `is_llm = True` on purpose: the drafter then treats its output like a model's (checks,
regeneration with feedback), which is exactly what tests need to exercise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from assistant.backends.base import DraftContext, GenerationRequest


class FakeBackend:
    """Replies from a script, in order; the last reply repeats once the script runs out.

    Without a script it writes a generic, well-formed reply from `request.context`. Every request is
    kept in `.requests`. With `fail_with`, each call streams `fail_after` chunks, then raises it.
    """

    name = "fake"
    model = "fake-1"
    is_llm = True

    def __init__(
        self,
        replies: Sequence[str] | None = None,
        fail_with: Exception | None = None,
        chunk_size: int = 8,
        *,
        fail_after: int = 0,
    ):
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.replies = list(replies or [])
        self.fail_with = fail_with
        self.fail_after = fail_after
        self.chunk_size = chunk_size
        self.requests: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> Iterator[str]:
        """Stream the next scripted (or default) reply in `chunk_size` pieces."""
        # Recorded before the first chunk: a test may inspect requests of a draft that then failed.
        self.requests.append(request)
        return self._stream(self._reply_for(request, len(self.requests) - 1))

    def _reply_for(self, request: GenerationRequest, call: int) -> str:
        if not self.replies:
            return default_reply(request.context)
        return self.replies[min(call, len(self.replies) - 1)]

    def _stream(self, reply: str) -> Iterator[str]:
        chunks = [reply[i : i + self.chunk_size] for i in range(0, len(reply), self.chunk_size)]
        for n, chunk in enumerate(chunks):
            if self.fail_with is not None and n >= self.fail_after:
                raise self.fail_with
            yield chunk
        if self.fail_with is not None:
            raise self.fail_with


def default_reply(context: DraftContext) -> str:
    """Acknowledge, apologise, state the policy timeframe, invite questions, sign off."""
    business = context.business.get("name") or "our team"
    contact = context.business.get("support_email") or context.business.get("contact_url")
    topic = context.category_label.lower() if context.category_label else "your request"
    questions = "If you have any questions in the meantime, just reply to this message"
    questions += f" or write to {contact}." if contact else "."
    from assistant.backends.composer import restate_topic

    ack = restate_topic(f"I understand you are writing to {business} about {topic}.", context.message, "en")
    return (
        "Hi there,\n\n"
        f"{ack} "
        "I'm sorry for the trouble this has caused.\n\n"
        f"We will get back to you with an update {context.timeframe.text}.\n\n"
        f"{questions}\n\n"
        f"Best regards,\n{business} Support"
    )
