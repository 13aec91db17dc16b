"""Prompt templates: a bounded Jinja2 sandbox, the variable contract, validation and rendering.

Templates are edited by team leads and therefore treated as untrusted code: they run in an
immutable sandbox (no access to private attributes, no mutation of data), cannot include files,
and every render is bounded in time, loop iterations, value sizes and output size. The customer
message and the evidence reach a template only as variables (never as template source), and the
`fence` filter keeps that data from closing its fence or faking a chat role.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from assistant.backends.base import DraftContext
from assistant.errors import TemplateError

# --- the variable contract ------------------------------------------------------------------------

CONTRACT: dict[str, str] = {
    "customer_message": "str - the customer's message; UNTRUSTED data, always render it through `fence`",
    "knowledge": "list of {id, title, source, text, score} - knowledge article chunks, best first",
    "tickets": "list of {id, title, customer_message, agent_reply, category, score} - similar resolved tickets",
    "category": "str - the issue category key, e.g. damaged_defective",
    "category_label": "str - the category's human label, e.g. 'Damaged, defective or wrong item on arrival'",
    "timeframe": "str - the policy resolution phrase to state verbatim, e.g. 'within 2 business days'",
    "first_response": "str - the first-response promise, e.g. 'within 4 business hours', or ''",
    "may_offer": "list of str - remedies policy allows for this category, e.g. ['replacement', 'refund']",
    "business": "{name, support_email, contact_url, support_hours} - the business's own contact data",
    "tone": "str - friendly | formal | concise",
    "language": "str - ISO 639-1 code of the reply language, e.g. 'de'",
    "language_name": "str - English name of the reply language, e.g. 'German'",
    "length": "str - short | medium | long",
    "feedback": "list of str - problems found in the previous attempt; empty on the first attempt",
}

#: Variables every reply template must reference, so a draft is always grounded in the message,
#: the evidence and the policy timeframe.
REQUIRED_VARIABLES: frozenset[str] = frozenset({"customer_message", "knowledge", "timeframe"})

#: Files in the prompts dir that are not reply templates.
SPECIAL_TEMPLATES: frozenset[str] = frozenset({"system", "fewshot"})

#: Stop sequences for the few-shot completion prompt: a base model keeps inventing further
#: "Customer:" turns unless it is stopped at the example separator.
FEWSHOT_STOP: tuple[str, ...] = ("\n###", "\nCustomer:")

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
    "nl": "Dutch", "pt": "Portuguese", "pl": "Polish", "sv": "Swedish", "da": "Danish",
    "fi": "Finnish", "no": "Norwegian", "nb": "Norwegian", "cs": "Czech", "ja": "Japanese",
    "zh": "Chinese", "ko": "Korean", "tr": "Turkish", "el": "Greek", "ru": "Russian",
}

OFFER_LABELS: dict[str, str] = {
    "discount_code": "a discount code",
    "free_shipping": "free shipping",
    "prepaid_label": "a prepaid return label",
    "gift_card": "a gift card",
    "replacement": "a replacement",
    "refund": "a refund",
    "exchange": "an exchange",
    "repair": "a free repair",
}

# --- limits ---------------------------------------------------------------------------------------

MAX_SOURCE_CHARS = 50_000  # a prompt template is a page or two; more is a mistake or an attack
MAX_OUTPUT_CHARS = 100_000  # ~100 kB: far above any useful prompt, far below a memory problem
MAX_EMITTED_CHARS = 1_000_000  # all text produced in one render, incl. macro / set-block buffers
MAX_RANGE = 1_000
MAX_LOOP_ITERATIONS = 10_000
MAX_NUMBER = 100_000  # largest number a call or filter accepts (widths, counts, repeats)
MAX_INT_BITS = 4_096
RENDER_TIME_LIMIT_S = 2.0

_FILENAME_PREFIX = "prompt-template:"


class RenderLimitError(TemplateError):
    """A render exceeded one of the limits above."""


# --- untrusted-text helpers (also used by the composer) --------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A "<" that starts something tag-like: </x>, <x ...>, <|im_start|>, <!...>, <?...>.
_TAG_OPEN = re.compile(r"<(?=\s*/|[A-Za-z_|!?])")
_ENTITY_LT = re.compile(r"&(?:lt|#0*60|#x0*3c);", re.IGNORECASE)
_BRACKET_ROLE = re.compile(r"\[(\s*/?\s*(?:INST|SYS|SYSTEM|ASSISTANT|USER)\s*)\]", re.IGNORECASE)
_LINE_ROLE = re.compile(
    r"^(\s*)(system|assistant|user|human|ai|bot|model|customer|support agent|agent|instructions?|response)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_SEPARATOR = re.compile(r"#{3,}")
PLACEHOLDER_PATTERN = re.compile(r"\{\{\s*([^{}]{1,60}?)\s*\}\}")
_PLACEHOLDER_PHRASES: dict[str, str] = {
    "order number": "your order",
    "order id": "your order",
    "tracking number": "your tracking number",
    "customer name": "there",
    "name": "there",
    "website url": "our website",
    "online company portal info": "your account on our website",
    "online order interaction": "the order page in your account",
}


def fence(value: Any) -> str:
    """Neutralise markup in untrusted text so it cannot close its fence or pose as a chat role.

    Tag openers become "‹" (so `</customer_message>` and `<|im_start|>` lose their meaning),
    `[INST]`-style markers become `(INST)`, line-leading role labels lose their colon, and
    `###` (the few-shot example separator) shrinks to `##`.
    """
    text = "" if value is None else str(value)
    text = _CONTROL.sub("", text)
    text = _ENTITY_LT.sub("‹", text)
    text = _TAG_OPEN.sub("‹", text)
    text = _BRACKET_ROLE.sub(r"(\1)", text)
    text = _LINE_ROLE.sub(r"\1\2 -", text)
    return _SEPARATOR.sub("##", text)


def clip(value: Any, limit: int = 600) -> str:
    """Shorten text to at most `limit` characters, at a sentence end when one is near, else a word.

    Ending on a whole sentence matters for few-shot prompts: a small model imitates cut-off examples.
    """
    text = " ".join(("" if value is None else str(value)).split())
    limit = max(20, min(int(limit), MAX_NUMBER))
    if len(text) <= limit:
        return text
    cut = text[:limit]
    sentence_end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    if sentence_end >= limit // 2:
        return cut[: sentence_end + 1]
    cut = cut[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:-") + "…"


_MARKDOWN = re.compile(r"^\s{0,3}(#{1,6}\s+|[-*•]\s+|\d+[.)]\s+|>\s*)|\*\*|__|`", re.MULTILINE)


def plain(value: Any) -> str:
    """Strip markdown markers (headings, bullets, bold, code) so evidence reads as plain prose."""
    return _MARKDOWN.sub("", "" if value is None else str(value))


def oneline(value: Any) -> str:
    """Collapse all whitespace (newlines included) into single spaces."""
    return " ".join(("" if value is None else str(value)).split())


#: Markers the PII redaction leaves in stored tickets, e.g. "[EMAIL]".
REDACTION_PATTERN = re.compile(r"\[(NAME|EMAIL|PHONE|ADDRESS|CARD|IBAN|[A-Z]{2,}(?:_[A-Z]+)*)\]")
_REDACTION_PHRASES: dict[str, str] = {
    "EMAIL": "your e-mail address",
    "PHONE": "your phone number",
    "ADDRESS": "your address",
    "CARD": "your card",
    "IBAN": "your bank account",
}


def neutralize_placeholders(value: Any) -> str:
    """Replace dataset placeholders and redaction markers with neutral words.

    `{{Order Number}}` becomes "your order", `[EMAIL]` "your e-mail address", `[NAME]` disappears;
    unknown placeholders become "the <label>" in lower case, which never states a fact.
    """

    def repl(match: re.Match[str]) -> str:
        label = " ".join(match.group(1).replace("_", " ").split()).lower()
        return _PLACEHOLDER_PHRASES.get(label, f"the {label}")

    text = PLACEHOLDER_PATTERN.sub(repl, "" if value is None else str(value))
    text = REDACTION_PATTERN.sub(lambda m: _REDACTION_PHRASES.get(m.group(1), ""), text)
    text = re.sub(r"[ \t]+([,.!?])|[ \t]{2,}", lambda m: m.group(1) or " ", text)
    return re.sub(r"[ \t]+$", "", text, flags=re.MULTILINE)


def humanize(value: Any) -> str:
    """A may_offer key as words: "prepaid_label" -> "a prepaid return label"."""
    key = "" if value is None else str(value)
    return OFFER_LABELS.get(key, key.replace("_", " "))


def tag_attr(value: Any) -> str:
    """A value made safe for a fence attribute: only word characters and a little punctuation."""
    return re.sub(r"[^\w .:#/@+-]", "", "" if value is None else str(value))[:120]


# --- the bounded sandbox --------------------------------------------------------------------------


@dataclass
class _Budget:
    deadline: float
    iterations: int = 0
    emitted: int = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitError(f"rendering took longer than {RENDER_TIME_LIMIT_S:g} s")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("prompt_budget", default=None)


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.tick()


def _check_size(value: Any, what: str = "a value") -> Any:
    if isinstance(value, str | list | tuple | dict) and len(value) > MAX_OUTPUT_CHARS:
        raise RenderLimitError(f"{what} grew beyond {MAX_OUTPUT_CHARS} characters/items")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise RenderLimitError(f"a number grew beyond {MAX_INT_BITS} bits")
    return value


def _check_numbers(args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> None:
    # Widths, counts and repeats are the lever of every amplification trick (center(10**9), ...).
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, int | float) and not isinstance(arg, bool) and abs(arg) > MAX_NUMBER:
            raise RenderLimitError(f"{what}: number {arg!r} is larger than the allowed {MAX_NUMBER}")


_PRINTF_WIDTH = re.compile(r"%[-+ #0]*(\d{6,}|\*)|%[-+ #0]*\d*\.(\d{6,}|\*)")
_FORMAT_WIDTH = re.compile(r"\{[^{}]*:[^{}]*\d{6,}[^{}]*\}")


def _sized(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


def _safe_range(*args: int) -> range:
    """`range` capped at MAX_RANGE items."""
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise RenderLimitError(f"range() is limited to {MAX_RANGE} items, got {len(rng)}")
    return rng


def _limit_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter with the call limits and a size estimate for the amplifying ones."""

    @functools.wraps(func)  # keeps jinja_pass_arg, so context-taking filters still get it
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        _check_numbers(args, kwargs, f"filter '{name}'")
        value = next((a for a in args if isinstance(a, str | list | tuple)), None)
        if name == "join" and len(args) > 1:
            items = list(args[1])  # join(eval_ctx, value, d=""): materialise to size the result first
            sep = kwargs.get("d", args[2] if len(args) > 2 else "")
            if len(str(sep)) * len(items) + sum(len(str(i)) for i in items) > MAX_OUTPUT_CHARS:
                raise RenderLimitError("filter 'join' would exceed the size limit")
            args = (args[0], items, *args[2:])
        if name == "replace" and isinstance(value, str):
            strs = [a for a in args if isinstance(a, str)]
            if len(strs) >= 3:
                old, new = strs[-2], strs[-1]
                hits = len(value) + 1 if old == "" else value.count(old)
                if len(value) + hits * max(0, len(new) - len(old)) > MAX_OUTPUT_CHARS:
                    raise RenderLimitError("filter 'replace' would exceed the size limit")
        if name == "indent" and isinstance(value, str):
            width = kwargs.get("width", args[1] if len(args) > 1 else 4)  # indent(s, width=4, ...)
            pad = len(width) if isinstance(width, str) else int(width)
            if len(value) + pad * (value.count("\n") + 1) > MAX_OUTPUT_CHARS:
                raise RenderLimitError("filter 'indent' would exceed the size limit")
        if name == "wordwrap" and isinstance(value, str):
            wrap = kwargs.get("wrapstring") or next((a for a in args[3:] if isinstance(a, str)), "\n")
            if len(value) * max(1, len(wrap)) > MAX_OUTPUT_CHARS * 4:
                raise RenderLimitError("filter 'wordwrap' would exceed the size limit")
        return _check_size(func(*args, **kwargs), f"the result of filter '{name}'")

    return guarded


# Filters a prompt can reasonably need. Left out: random (breaks reproducibility), format and
# center/batch/slice (amplifiers), urlize/xmlattr/pprint/escape (HTML or debugging only).
_ALLOWED_FILTERS = (
    "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "first", "float", "groupby",
    "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
    "reject", "rejectattr", "replace", "reverse", "round", "select", "selectattr", "sort", "string",
    "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "wordcount", "wordwrap",
)

_CUSTOM_FILTERS: dict[str, Callable[..., Any]] = {
    "fence": fence,
    "clip": clip,
    "oneline": oneline,
    "plain": plain,
    "neutral": neutralize_placeholders,
    "humanize": humanize,
    "tag_attr": tag_attr,
}


class PromptSandbox(ImmutableSandboxedEnvironment):
    """The Jinja2 environment for prompt templates: immutable sandbox + resource limits."""

    # Intercept the operators that can build huge values ("ab" * 10**9, 9**9**9, "%9999999s" % x).
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,  # prompts are plain text, HTML escaping would corrupt them
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            loader=None,  # no {% include %} / {% extends %}: a template is one self-contained file
            auto_reload=False,
        )
        self.globals.pop("lipsum", None)  # generates arbitrary amounts of text
        self.globals["range"] = _safe_range
        builtin = dict(self.filters)
        self.filters = {name: _limit_filter(name, builtin[name]) for name in _ALLOWED_FILTERS}
        self.filters.update({name: _limit_filter(name, f) for name, f in _CUSTOM_FILTERS.items()})
        self._guards = {self.guard_emit, self.guard_iter, self.guard_value}

    # Guards injected into every compiled template (see _Instrument). They are reached through
    # `environment.<name>`, which template code cannot name or shadow.

    def guard_emit(self, value: Any) -> Any:
        """Count every piece of output, including output captured by macros and set-blocks."""
        budget = _BUDGET.get()
        if budget is not None:
            budget.tick()
            budget.emitted += len(str(value)) if not isinstance(value, str) else len(value)
            if budget.emitted > MAX_EMITTED_CHARS:
                raise RenderLimitError(f"the template produced more than {MAX_EMITTED_CHARS} characters")
        return value

    def guard_iter(self, iterable: Any) -> Iterator[Any]:
        """Count loop iterations and check the deadline on each one."""
        budget = _BUDGET.get()
        for item in iterable:
            if budget is not None:
                budget.iterations += 1
                if budget.iterations > MAX_LOOP_ITERATIONS:
                    raise RenderLimitError(f"loops ran more than {MAX_LOOP_ITERATIONS} iterations")
                budget.tick()
            yield item

    def guard_value(self, value: Any) -> Any:
        """Bound values built by `~` and filters (e.g. a string doubled in a loop)."""
        return _check_size(value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        num = (int, float)
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if max(1, abs(left).bit_length()) * right > MAX_INT_BITS and abs(left) > 1:
                raise RenderLimitError(f"{left} ** {right} is too large")
        elif operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise RenderLimitError("a multiplication result is too large")
            else:
                size = _sized(left) if isinstance(right, int) else _sized(right)
                times = right if isinstance(right, int) else left if isinstance(left, int) else 1
                if size is not None and isinstance(times, num) and size * times > MAX_OUTPUT_CHARS:
                    raise RenderLimitError(f"repeating a value {times} times exceeds the size limit")
        elif operator == "+":
            if (a := _sized(left)) is not None and (b := _sized(right)) is not None and a + b > MAX_OUTPUT_CHARS:
                raise RenderLimitError("a concatenation exceeds the size limit")
        elif operator == "%" and isinstance(left, str) and _PRINTF_WIDTH.search(left):
            raise RenderLimitError("printf-style widths over 99999 (or '*') are not allowed")
        return _check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if __obj in __self._guards:  # our own instrumentation: no limits on the limiter
            return __obj(*args)  # (drops the _loop_vars/_block_vars bookkeeping Jinja passes along)
        _tick()
        plain_kwargs = {k: v for k, v in kwargs.items() if k not in ("_loop_vars", "_block_vars")}
        if __obj is not _safe_range:  # range reports its own, clearer, error
            _check_numbers(args, plain_kwargs, f"calling {getattr(__obj, '__name__', 'a function')}()")
        # str.format arrives wrapped by the sandbox; the string it belongs to is on the original.
        owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        method = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if method in ("format", "format_map") and _FORMAT_WIDTH.search(owner):
                raise RenderLimitError("format widths over 99999 are not allowed")
            if method == "join" and args and isinstance(args[0], list | tuple):
                total = len(owner) * len(args[0]) + sum(len(str(a)) for a in args[0])
                if total > MAX_OUTPUT_CHARS:
                    raise RenderLimitError("str.join() would exceed the size limit")
            if method == "replace" and len(args) >= 2 and isinstance(args[0], str):
                hits = len(owner) + 1 if args[0] == "" else owner.count(args[0])
                if len(owner) + hits * max(0, len(str(args[1])) - len(args[0])) > MAX_OUTPUT_CHARS:
                    raise RenderLimitError("str.replace() would exceed the size limit")
        return _check_size(super().call(__context, __obj, *args, **kwargs), "a call result")


_ENV = PromptSandbox()


def _guard(name: str, node: nodes.Expr) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(name), [node], [], None, None, lineno=node.lineno)


class _Instrument(NodeTransformer):
    """Route loops, output and value-building expressions of a parsed template through the guards."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _guard("guard_iter", node.iter)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [
            _guard("guard_emit", nodes.Const(n.data, lineno=n.lineno) if isinstance(n, nodes.TemplateData) else n)
            for n in node.nodes
        ]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _guard("guard_value", node)

    def visit_Filter(self, node: nodes.Filter) -> nodes.Node:
        self.generic_visit(node)
        # A Filter without an operand belongs to {% filter %} / {% set x | f %} and must stay one.
        return node if node.node is None else _guard("guard_value", node)


# --- compile, static checks -----------------------------------------------------------------------

_FORBIDDEN = {
    nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
}


@dataclass(frozen=True)
class _Compiled:
    template: Any  # jinja2.Template
    variables: frozenset[str]  # names the template reads from its context
    first_use: dict[str, int]  # variable -> first line it is used on


def _syntax_message(name: str, exc: TemplateSyntaxError) -> str:
    return f"template '{name}': syntax error at line {exc.lineno}: {exc.message}"


def _static_safety(ast: nodes.Template, name: str) -> list[str]:
    problems = []
    for node in ast.find_all(tuple(_FORBIDDEN)):
        problems.append(
            f"template '{name}': {_FORBIDDEN[type(node)]} at line {node.lineno} is not supported "
            "- a prompt template must be self-contained"
        )
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(attr, str) and attr.startswith("_"):
            problems.append(
                f"template '{name}': access to the private attribute '{attr}' at line {node.lineno} "
                "is not allowed (sandbox)"
            )
    return problems


@functools.lru_cache(maxsize=128)
def _compile(source: str, name: str) -> _Compiled:
    """Parse, check, instrument and compile a template (cached by source; errors are not cached)."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(f"template '{name}' is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}")
    try:
        ast = _ENV.parse(source, name=name)
        variables = frozenset(meta.find_undeclared_variables(ast))
    except TemplateSyntaxError as exc:
        raise TemplateError(_syntax_message(name, exc)) from None
    if problems := _static_safety(ast, name):
        raise TemplateError(problems[0])
    first_use: dict[str, int] = {}
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name in variables:
            first_use[node.name] = min(first_use.get(node.name, node.lineno), node.lineno)
    _Instrument().visit(ast)
    try:
        code = _ENV.compile(ast, name=name, filename=_FILENAME_PREFIX + name)
    except TemplateSyntaxError as exc:  # e.g. an unknown filter, found while generating code
        raise TemplateError(_syntax_message(name, exc)) from None
    template = _ENV.template_class.from_code(_ENV, code, _ENV.make_globals(None))
    return _Compiled(template, variables, first_use)


def _template_line(tb: TracebackType | None, name: str) -> int | None:
    """The template line of the innermost frame that belongs to the template (Jinja maps it)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _FILENAME_PREFIX + name:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


def _render_error(exc: BaseException, name: str, variables: dict[str, Any]) -> TemplateError:
    line = _template_line(exc.__traceback__, name)
    where = f" at line {line}" if line else ""
    if isinstance(exc, UndefinedError):
        if match := _UNDEFINED_NAME.match(str(exc)):
            available = ", ".join(sorted(variables)) or "(none)"
            return TemplateError(
                f"template '{name}': unknown variable '{match.group(1)}'{where} — available: {available}"
            )
        return TemplateError(f"template '{name}': undefined value{where}: {exc}")
    if isinstance(exc, SecurityError):
        return TemplateError(f"template '{name}': unsafe operation{where} refused by the sandbox: {exc}")
    if isinstance(exc, TemplateError):
        return type(exc)(f"template '{name}': {exc}{where}")
    if isinstance(exc, RecursionError):
        return RenderLimitError(f"template '{name}': recursion too deep{where}")
    return TemplateError(f"template '{name}': rendering failed{where}: {type(exc).__name__}: {exc}")


# --- public API -----------------------------------------------------------------------------------


def render_source(source: str, variables: dict[str, Any], *, name: str) -> str:
    """Render template `source` with `variables` inside the bounded sandbox.

    Raises TemplateError (with the template name and line) on syntax errors, unknown variables,
    sandbox violations and exceeded limits.
    """
    compiled = _compile(source, name)
    token = _BUDGET.set(_Budget(deadline=time.monotonic() + RENDER_TIME_LIMIT_S))
    parts: list[str] = []
    size = 0
    try:
        for chunk in compiled.template.generate(variables):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise RenderLimitError(f"output exceeds {MAX_OUTPUT_CHARS} characters")
            parts.append(chunk)
    except Exception as exc:  # any failure inside a template (RecursionError, MemoryError too) is its problem
        raise _render_error(exc, name, variables) from None
    finally:
        _BUDGET.reset(token)
    return "".join(parts)


def validate_template(
    source: str, *, name: str, required: frozenset[str] | set[str] = REQUIRED_VARIABLES
) -> list[str]:
    """Everything wrong with a template, as readable problems (an empty list means it is fine).

    Checks syntax, sandbox-unsafe constructs, variables outside the contract, required
    variables that are never used, and test renders against the sample context (with and
    without evidence) within the render limits.
    """
    if len(source) > MAX_SOURCE_CHARS:
        return [f"template '{name}' is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}"]
    try:
        ast = _ENV.parse(source, name=name)
        variables = meta.find_undeclared_variables(ast)
    except TemplateSyntaxError as exc:
        return [_syntax_message(name, exc)]
    problems = _static_safety(ast, name)
    known = set(CONTRACT) | set(_ENV.globals)
    for var in sorted(variables - known):
        line = min((n.lineno for n in ast.find_all(nodes.Name) if n.name == var), default=None)
        where = f" at line {line}" if line else ""
        problems.append(
            f"template '{name}': unknown variable '{var}'{where} — available: {', '.join(sorted(CONTRACT))}"
        )
    for var in sorted(set(required) - variables):
        problems.append(f"template '{name}': required variable '{var}' is never used")
    if problems:
        return problems  # a test render would only repeat these
    for label, sample in (("sample context", sample_variables()), ("empty-evidence context", _empty_sample())):
        try:
            render_source(source, sample, name=name)
        except TemplateError as exc:
            problems.append(f"{exc} (test render with the {label})")
    return problems


def template_version(source: str) -> str:
    """The default version label of a template: the first 10 hex digits of its sha256."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:10]


def language_name(code: str) -> str:
    """English name of an ISO 639-1 code ("de" -> "German"); unknown codes are returned as given."""
    base = (code or "en").split("-")[0].split("_")[0].lower()
    return LANGUAGE_NAMES.get(base, code)


def context_variables(context: DraftContext) -> dict[str, Any]:
    """Map a DraftContext to the contract's variables (plain dicts and lists only)."""
    business = {key: "" for key in ("name", "support_email", "contact_url", "support_hours")}
    business.update({k: str(v) for k, v in (context.business or {}).items()})
    return {
        "customer_message": context.message,
        "knowledge": [
            {"id": e.id, "title": e.title, "source": e.source, "text": e.text, "score": float(e.score)}
            for e in context.knowledge
        ],
        "tickets": [
            {
                "id": e.id,
                "title": e.title,
                "customer_message": e.text,
                "agent_reply": e.reply or "",
                "category": str(e.metadata.get("category", "")),
                "score": float(e.score),
            }
            for e in context.tickets
        ],
        "category": context.category,
        "category_label": context.category_label,
        "timeframe": context.timeframe.text,
        "first_response": context.first_response.text if context.first_response else "",
        "may_offer": list(context.may_offer),
        "business": business,
        "tone": context.tone,
        "language": context.language,
        "language_name": language_name(context.language),
        "length": context.length,
        "feedback": list(context.feedback),
    }


def sample_variables() -> dict[str, Any]:
    """A realistic contract context (a damaged rain shell) for previews, validation and tests."""
    return {
        "customer_message": (
            "Hi, my Skerry Rain Shell from order #4521 arrived yesterday and there is a tear next to "
            "the front zip. I wanted to wear it on a hike this weekend. What can you do?\nThanks, Jana"
        ),
        "knowledge": [
            {
                "id": "policies-returns#damaged",
                "title": "Returns and refunds > Damaged or faulty items",
                "source": "knowledge_base/policies/returns.md",
                "text": (
                    "If an item arrives damaged or faulty, send us a photo of the damage and your order "
                    "number within 14 days of delivery. We send a replacement or refund the item in full, "
                    "including the original shipping cost, and provide a prepaid return label."
                ),
                "score": 0.71,
            },
            {
                "id": "products-jackets-and-insulation#skerry-rain-shell",
                "title": "Products: Rain Jackets > Skerry Rain Shell",
                "source": "knowledge_base/articles/products-jackets-and-insulation.md",
                "text": (
                    "The Skerry Rain Shell is our everyday waterproof jacket for hiking, travel and city "
                    "rain. Price: €189. Fully taped seams, two-way front zip, pit zips."
                ),
                "score": 0.58,
            },
        ],
        "tickets": [
            {
                "id": "T-1042",
                "title": "Torn seam on new Lumen Down Jacket",
                "customer_message": "The Lumen jacket I got has a torn seam on the sleeve. Can I get a new one?",
                "agent_reply": (
                    "Hello, thank you for letting us know and I'm sorry the jacket arrived like this. "
                    "Please reply with a photo of the damage so we can confirm it. Once we have it, we "
                    "will send you a prepaid return label and ship a replacement as soon as the "
                    "damaged jacket is on its way back.\nKind regards,\nFernway Outfitters Support"
                ),
                "category": "damaged_defective",
                "score": 0.66,
            },
            {
                "id": "T-0877",
                "title": "Wrong colour delivered",
                "customer_message": "I ordered the Moss colour but received Ember.",
                "agent_reply": (
                    "Hi, I'm sorry we sent the wrong colour. Please keep the item in its packaging; we "
                    "will e-mail you a prepaid return label and send the Moss jacket right away.\n"
                    "Best regards,\nFernway Outfitters Support"
                ),
                "category": "damaged_defective",
                "score": 0.52,
            },
        ],
        "category": "damaged_defective",
        "category_label": "Damaged, defective or wrong item on arrival",
        "timeframe": "within 3 business days",
        "first_response": "within 4 business hours",
        "may_offer": ["replacement", "refund", "prepaid_label"],
        "business": {
            "name": "Fernway Outfitters",
            "support_email": "support@fernway.example",
            "contact_url": "https://fernway.example/help/contact",
            "support_hours": "Monday to Friday, 08:00-18:00 CET",
        },
        "tone": "friendly",
        "language": "en",
        "language_name": "English",
        "length": "medium",
        "feedback": [],
    }


def _empty_sample() -> dict[str, Any]:
    sample = sample_variables()
    sample.update(knowledge=[], tickets=[], may_offer=[], first_response="")
    return sample


# --- files ----------------------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def read_template(prompts_dir: Path, name: str) -> str:
    """The source of `<prompts_dir>/<name>.j2`; never reads outside `prompts_dir`."""
    if not _NAME.match(name):
        raise TemplateError(f"invalid template name {name!r} (letters, digits, '_' and '-' only)")
    root = Path(prompts_dir).resolve()
    path = (root / f"{name}.j2").resolve()
    if not path.is_relative_to(root):  # a symlink pointing elsewhere
        raise TemplateError(f"template '{name}' resolves outside the prompts directory")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        available = ", ".join(list_templates(root)) or "(none)"
        raise TemplateError(
            f"template '{name}' not found in {root}", hint=f"Reply templates available: {available}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"template '{name}' cannot be read: {exc}") from None


def is_reply_template(name: str) -> bool:
    """Reply templates are every *.j2 except system, fewshot, judge_* and _partials."""
    return not (name in SPECIAL_TEMPLATES or name.startswith(("judge_", "_")))


def list_templates(prompts_dir: Path) -> list[str]:
    """Names (without .j2) of the reply templates in `prompts_dir`, sorted."""
    root = Path(prompts_dir)
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.j2") if p.is_file() and is_reply_template(p.stem))


@dataclass(frozen=True)
class RenderedPrompts:
    """The three prompts of one draft, and which reply template (and version) produced them."""

    system: str
    prompt: str
    completion_prompt: str
    template_name: str
    template_version: str


def render_prompts(
    context: DraftContext,
    *,
    template: str = "reply",
    prompts_dir: Path,
    source: str | None = None,
    version: str | None = None,
) -> RenderedPrompts:
    """Render system.j2, <template>.j2 and fewshot.j2 for one draft.

    `source`/`version` let a versioned template store supply the reply template instead of the
    file; the version defaults to `template_version(source)`.
    """
    if not is_reply_template(template):
        raise TemplateError(f"'{template}' is not a reply template")
    if source is None:
        source = read_template(prompts_dir, template)
    missing = REQUIRED_VARIABLES - _compile(source, template).variables
    if missing:
        raise TemplateError(
            f"template '{template}' never uses the required variable(s): {', '.join(sorted(missing))}"
        )
    variables = context_variables(context)
    return RenderedPrompts(
        system=render_source(read_template(prompts_dir, "system"), variables, name="system"),
        prompt=render_source(source, variables, name=template),
        completion_prompt=render_source(read_template(prompts_dir, "fewshot"), variables, name="fewshot"),
        template_name=template,
        template_version=version or template_version(source),
    )
