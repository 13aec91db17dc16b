"""Find time promises ("within 2 business days", "3 bis 5 Werktage", "48h") in text, as hour ranges.

Every duration becomes an interval [min_hours, max_hours]. A single value is read as an upper bound
("in 2 days" = 0..48 h), because that is how a customer hears a promise; a range "3-5 days" is
72..120 h. Following the SLA file's convention, a day and a business day both count as 24 h, a week
as 168 h and a month as 720 h. Past references ("3 days ago", "vor 3 Tagen") are not promises and are
skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.backends.base import Timeframe

# Tolerance for float comparisons of hour values (minutes are stored as fractions of an hour).
_EPS = 1e-6


@dataclass(frozen=True)
class Duration:
    """One duration found in a text: the matched span, its offsets and its hour range."""

    span: str
    start: int
    end: int
    min_hours: float
    max_hours: float


# fmt: off
NUMBER_WORDS: dict[str, float] = {
    # English (one..fourteen, plus the few larger ones support replies actually use)
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "twenty": 20, "thirty": 30, "twenty-four": 24, "forty-eight": 48,
    "a couple of": 2, "a few": 3,
    # German
    "ein": 1, "eine": 1, "einem": 1, "einer": 1, "einen": 1, "eins": 1, "zwei": 2, "drei": 3,
    "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10,
    # French ("six" is shared with English)
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "sept": 7, "huit": 8,
    "neuf": 9, "dix": 10,
    # Spanish
    "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "nueve": 9, "diez": 10,
}
# fmt: on

# Unit patterns, most specific first so "business days" wins over "days" and "hours" over "h".
_UNITS: list[tuple[str, float]] = [
    (r"business[\s-]+hours?|working[\s-]+hours?|office[\s-]+hours?", 1.0),
    (
        r"business[\s-]+days?|working[\s-]+days?|work[\s-]*days?|weekdays?|"
        r"werktag(?:e|en)?|arbeitstag(?:e|en)?|geschäftstag(?:e|en)?|"
        r"jours?\s+ouvr\w+|jours?\s+de\s+travail|"
        r"d[ií]as?\s+(?:h[aá]biles|laborables)|d[ií]as?\s+de\s+trabajo",
        24.0,
    ),
    (r"minutes?|mins?|minuten?|minutos?", 1 / 60),
    (r"hours?|hrs?|stunden?|std\.?|heures?|horas?|h", 1.0),
    (r"days?|tag(?:e|en)?|jours?|d[ií]as?", 24.0),
    (r"weeks?|wochen?|semaines?|semanas?", 168.0),
    (r"months?|monat(?:e|en)?|mois|mes(?:es)?", 720.0),
    (r"years?|jahr(?:e|en)?|ans|années?|años?", 8760.0),
]
_UNIT_RE = "|".join(f"(?:{pattern})" for pattern, _ in _UNITS)
_UNIT_COMPILED = [(re.compile(rf"(?:{pattern})\Z", re.IGNORECASE), hours) for pattern, hours in _UNITS]

_WORDS_RE = "|".join(
    r"\s+".join(map(re.escape, w.split())) for w in sorted(NUMBER_WORDS, key=len, reverse=True)
)
# A number must not be glued to other digits, a time ("18:00"), a decimal or a date part.
_NUM = rf"(?:(?<![\d:.,/])\d+(?:[.,]\d+)?(?![\d:/])|\b(?:{_WORDS_RE})\b)"
_RANGE_SEP = r"\s*(?:-|–|—|to|or|and|bis|und|oder|à|a|et|ou|y|o)\s*"
_PREFIX = (
    r"(?:\b(?:within|in|up\s+to|no\s+later\s+than|under|less\s+than|about|around|approximately|"
    r"between|over\s+the\s+next|the\s+next|next|for|"
    r"innerhalb(?:\s+von)?|binnen|zwischen|ca\.?|etwa|"
    r"sous|dans|d'ici|en|entre|environ|"
    r"dentro\s+de|en\s+un\s+plazo\s+de|de|unos|unas)\s+)?"
)
_DURATION_RE = re.compile(
    rf"{_PREFIX}(?P<a>{_NUM})(?:{_RANGE_SEP}(?P<b>{_NUM}))?[\s-]*(?P<unit>{_UNIT_RE})\b",
    re.IGNORECASE,
)
# Fixed phrases that name a deadline instead of a count.
_FIXED: list[tuple[re.Pattern[str], float, float]] = [
    (
        re.compile(
            r"\b(?:(?:by|until|till|before)\s+)?(?:the\s+end\s+of\s+)?tomorrow\b|"
            r"\bbis\s+(?:spätestens\s+)?morgen\b|\b(?:d'ici\s+)?demain\b|"
            r"\b(?:para|hasta)\s+mañana\b",
            re.IGNORECASE,
        ),
        0.0,
        24.0,
    ),
    (
        re.compile(
            r"\b(?:the\s+)?next\s+(?:business|working)\s+day\b|"
            r"\bam\s+nächsten\s+(?:werktag|arbeitstag)\b|"
            r"\b(?:le\s+)?(?:prochain\s+jour\s+ouvr\w*|jour\s+ouvr\w*\s+suivant)\b|"
            r"\b(?:el\s+)?(?:próximo|siguiente)\s+día\s+hábil\b",
            re.IGNORECASE,
        ),
        0.0,
        24.0,
    ),
]
# Text right before/after a match that turns it into a past reference or a rate.
_PAST_BEFORE = re.compile(
    r"(?:\b(?:since|past|last|vor|seit|il\s+y\s+a|depuis|hace|desde)\s+(?:the\s+)?)\Z", re.IGNORECASE
)
_PAST_AFTER = re.compile(r"\A\s*(?:ago|late|overdue|earlier|before)\b", re.IGNORECASE)
_RATE_BEFORE = re.compile(r"(?:\b(?:hours?|days?|h|once|twice|per|every|each)|/)\s*\Z", re.IGNORECASE)


_RATE_AFTER = re.compile(
    r"\A\s*(?:a|an|per|each|every|pro|par|al|por)\s+(?:hour|day|week|month|year|tag|woche|jour|semaine|d[ií]a|semana)\b",
    re.IGNORECASE,
)


def _number(token: str) -> float:
    token = " ".join(token.lower().split())
    if token in NUMBER_WORDS:
        return NUMBER_WORDS[token]
    return float(token.replace(",", "."))


def _unit_hours(unit: str) -> float:
    for pattern, hours in _UNIT_COMPILED:
        if pattern.match(unit):
            return hours
    raise ValueError(f"unknown unit {unit!r}")  # unreachable: _UNIT_RE and _UNITS agree


def parse_durations(text: str) -> list[Duration]:
    """All forward-looking durations in `text`, in order of appearance (non-overlapping)."""
    found: list[Duration] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    for pattern, lo, hi in _FIXED:
        for m in pattern.finditer(text):
            if free(m.start(), m.end()):
                found.append(Duration(m.group(0), m.start(), m.end(), lo, hi))
                taken.append((m.start(), m.end()))

    for m in _DURATION_RE.finditer(text):
        if not free(m.start(), m.end()):
            continue
        # Only the words just before matter; slicing keeps the \Z-anchored searches linear overall.
        head = text[max(0, m.start() - 40) : m.start()]
        tail = text[m.end() :]
        if _PAST_BEFORE.search(head) or _PAST_AFTER.match(tail) or _RATE_AFTER.match(tail):
            continue
        a_token = m.group("a").strip().lower()
        # "7 days a week" / "24 hours a day" are rates, not promises.
        if a_token in ("a", "an") and _RATE_BEFORE.search(head):
            continue
        unit = _unit_hours(m.group("unit"))
        a = _number(m.group("a")) * unit
        if m.group("b"):
            b = _number(m.group("b")) * unit
            lo, hi = min(a, b), max(a, b)
        else:
            lo, hi = 0.0, a
        found.append(Duration(m.group(0), m.start(), m.end(), lo, hi))
        taken.append((m.start(), m.end()))

    found.sort(key=lambda d: d.start)
    return found


def timeframe_consistent(stated: Duration, policy: Timeframe) -> bool:
    """True iff the promise is no slower than the policy allows and no faster than it guarantees."""
    return policy.min_hours - _EPS <= stated.max_hours <= policy.max_hours + _EPS
