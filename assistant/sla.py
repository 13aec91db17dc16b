"""The SLA policy: per issue category, the promised timeframes, the allowed remedies and routing keywords.

`load_sla` validates the whole file up front so a typo surfaces as one precise `ConfigError` at start-up
instead of a wrong promise in a customer reply later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.backends.base import Timeframe
from assistant.durations import parse_durations
from assistant.errors import ConfigError

#: The remedies a category may allow; `checks.py` maps reply wording onto the same vocabulary.
REMEDIES = (
    "refund",
    "replacement",
    "exchange",
    "repair",
    "discount_code",
    "gift_card",
    "prepaid_label",
    "free_shipping",
)
BUSINESS_FIELDS = ("name", "support_email", "contact_url", "support_hours")
_CATEGORY_FIELDS = {"label", "description", "first_response", "resolution", "may_offer", "keywords"}
_TIMEFRAME_FIELDS = {"text", "min_hours", "max_hours"}
_EPS = 1e-6


@dataclass
class CategoryPolicy:
    """The service level of one issue category."""

    key: str
    label: str
    description: str
    first_response: Timeframe | None
    resolution: Timeframe
    may_offer: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)


@dataclass
class SlaPolicy:
    """The whole SLA file. Instances are cached and shared: treat them as read-only."""

    business: dict[str, str]
    default_category: str
    categories: dict[str, CategoryPolicy]

    def get(self, category: str | None) -> CategoryPolicy:
        """The policy of `category`, or of the default category when it is unknown or None."""
        if category and category in self.categories:
            return self.categories[category]
        return self.categories[self.default_category]

    def keyword_scores(self, text: str) -> dict[str, float]:
        """Per category, how many distinct keywords occur in `text` (every category is present).

        A keyword matches at a word start and may carry up to three more letters, so "return" also
        finds "returned"; a multi-word keyword matches as a phrase.
        """
        lowered = text.lower()
        return {
            key: float(sum(1 for kw in cat.keywords if _keyword_re(kw).search(lowered)))
            for key, cat in self.categories.items()
        }


_KEYWORD_CACHE: dict[str, re.Pattern[str]] = {}


def _keyword_re(keyword: str) -> re.Pattern[str]:
    pattern = _KEYWORD_CACHE.get(keyword)
    if pattern is None:
        body = r"\s+".join(re.escape(part) for part in keyword.split())
        pattern = re.compile(rf"(?<!\w){body}\w{{0,3}}(?!\w)")
        _KEYWORD_CACHE[keyword] = pattern
    return pattern


_CACHE: dict[tuple[str, int, int], SlaPolicy] = {}


def load_sla(path: str | Path) -> SlaPolicy:
    """Load and validate an SLA YAML file; cached until the file's mtime or size changes."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ConfigError(
            f"SLA policy file not found: {path}",
            hint="Set ASSISTANT_SLA_PATH or create <knowledge_dir>/policies/sla.yaml.",
        ) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read SLA policy file {path}: {exc.strerror or exc}") from None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    policy = _parse(path)
    # Drop stale versions of the same file so an edited policy does not pin old copies in memory.
    for old in [k for k in _CACHE if k[0] == key[0]]:
        del _CACHE[old]
    _CACHE[key] = policy
    return policy


def _parse(path: Path) -> SlaPolicy:
    import yaml  # lazy: keeps `assistant --help` fast

    name = path.name

    def fail(where: str, reason: str) -> ConfigError:
        return ConfigError(f"{name}: {where}: {reason}" if where else f"{name}: {reason}")

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{name}: invalid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read the file: {exc}") from None
    if not isinstance(raw, dict):
        raise fail("", "the file must contain a mapping with business, default_category and categories")

    business = raw.get("business")
    if not isinstance(business, dict):
        raise fail("business", "missing or not a mapping")
    for fld in BUSINESS_FIELDS:
        value = business.get(fld)
        if not isinstance(value, str) or not value.strip():
            raise fail(f"business.{fld}", "missing or empty")

    categories_raw = raw.get("categories")
    if not isinstance(categories_raw, dict) or not categories_raw:
        raise fail("categories", "missing, empty or not a mapping")
    categories = {str(key): _parse_category(str(key), value, fail) for key, value in categories_raw.items()}

    default = raw.get("default_category")
    if not isinstance(default, str) or not default:
        raise fail("default_category", "missing")
    if default not in categories:
        raise fail("default_category", f"{default!r} is not one of the categories ({', '.join(categories)})")

    return SlaPolicy(
        business={k: str(v) for k, v in business.items()},
        default_category=default,
        categories=categories,
    )


def _parse_category(key: str, raw: Any, fail) -> CategoryPolicy:
    where = f"categories.{key}"
    if not isinstance(raw, dict):
        raise fail(where, "not a mapping")
    unknown = sorted(set(raw) - _CATEGORY_FIELDS)
    if unknown:  # a typo such as "may_ofer" would otherwise silently allow nothing
        raise fail(where, f"unknown field(s) {', '.join(map(repr, unknown))}")
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        raise fail(f"{where}.label", "missing or empty")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise fail(f"{where}.description", "must be text")
    if "resolution" not in raw:
        raise fail(f"{where}.resolution", "missing")
    resolution = _parse_timeframe(f"{where}.resolution", raw["resolution"], fail)
    first = raw.get("first_response")
    first_response = None if first is None else _parse_timeframe(f"{where}.first_response", first, fail)
    may_offer = _string_list(f"{where}.may_offer", raw.get("may_offer"), fail)
    bad = [m for m in may_offer if m not in REMEDIES]
    if bad:
        raise fail(
            f"{where}.may_offer",
            f"unknown value(s) {', '.join(map(repr, bad))} (allowed: {', '.join(REMEDIES)})",
        )
    keywords = [k.lower() for k in _string_list(f"{where}.keywords", raw.get("keywords"), fail)]
    return CategoryPolicy(key, label, description, first_response, resolution, may_offer, keywords)


def _string_list(where: str, raw: Any, fail) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise fail(where, "must be a list of strings")
    return list(raw)


def _parse_timeframe(where: str, raw: Any, fail) -> Timeframe:
    if not isinstance(raw, dict):
        raise fail(where, "must be a mapping with text, min_hours and max_hours")
    unknown = sorted(set(raw) - _TIMEFRAME_FIELDS)
    if unknown:
        raise fail(where, f"unknown field(s) {', '.join(map(repr, unknown))}")
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        raise fail(f"{where}.text", "missing or empty")
    if "max_hours" not in raw:
        raise fail(f"{where}.max_hours", "missing")
    max_hours = _hours(f"{where}.max_hours", raw["max_hours"], fail)
    min_hours = _hours(f"{where}.min_hours", raw.get("min_hours", 0), fail)
    if min_hours > max_hours:
        raise fail(where, f"min_hours ({min_hours:g}) is greater than max_hours ({max_hours:g})")
    durations = parse_durations(text)
    if not durations:
        raise fail(f"{where}.text", f"{text!r} does not state a duration the checker can read")
    stated = durations[0]
    # The text is what replies quote, so it must say exactly the promise the numbers encode: inside
    # [min_hours, max_hours] and with the same upper bound (else drafts would be held to another limit).
    inside = stated.min_hours >= min_hours - _EPS and stated.max_hours <= max_hours + _EPS
    if not inside or abs(stated.max_hours - max_hours) > _EPS:
        raise fail(
            f"{where}.text",
            f"{text!r} means {stated.min_hours:g}-{stated.max_hours:g} hours, which disagrees with "
            f"min_hours {min_hours:g} / max_hours {max_hours:g}",
        )
    return Timeframe(text=text, min_hours=min_hours, max_hours=max_hours)


def _hours(where: str, raw: Any, fail) -> float:
    # bool is an int subclass; "max_hours: yes" is a typo, not 1 hour.
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise fail(where, f"must be a number of hours, got {raw!r}")
    if raw < 0:
        raise fail(where, f"must not be negative, got {raw!r}")
    return float(raw)
