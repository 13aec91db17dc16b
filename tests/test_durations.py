"""Duration parsing: English, German, French, Spanish phrasings become hour ranges."""

from __future__ import annotations

import pytest

from assistant.backends.base import Timeframe
from assistant.durations import Duration, parse_durations, timeframe_consistent


def only(text: str) -> Duration:
    found = parse_durations(text)
    assert len(found) == 1, f"expected one duration in {text!r}, got {found}"
    return found[0]


@pytest.mark.parametrize(
    ("text", "lo", "hi"),
    [
        ("within 24 hours", 0, 24),
        ("in 2 business days", 0, 48),
        ("3-5 business days", 72, 120),
        ("3 to 5 working days", 72, 120),
        ("48h", 0, 48),
        ("one week", 0, 168),
        ("two weeks", 0, 336),
        ("within a day", 0, 24),
        ("by tomorrow", 0, 24),
        ("next business day", 0, 24),
        ("within 4 business hours", 0, 4),
        ("in 30 minutes", 0, 0.5),
        ("within 1 month", 0, 720),
        ("fourteen days", 0, 336),
        ("within 5 to 10 business days", 120, 240),
        ("in 2 days", 0, 48),
        # German
        ("innerhalb von 2 Werktagen", 0, 48),
        ("24 Stunden", 0, 24),
        ("3 bis 5 Werktage", 72, 120),
        ("in zwei Wochen", 0, 336),
        # French
        ("sous 2 jours ouvrés", 0, 48),
        ("48 heures", 0, 48),
        ("dans 3 à 5 jours", 72, 120),
        ("sous trois jours", 0, 72),
        # Spanish
        ("en 2 días hábiles", 0, 48),
        ("24 horas", 0, 24),
        ("de 3 a 5 días", 72, 120),
        ("en una semana", 0, 168),
    ],
)
def test_phrasings(text, lo, hi):
    d = only(text)
    assert (d.min_hours, d.max_hours) == pytest.approx((lo, hi))


def test_span_and_offsets_point_into_the_text():
    text = "Thanks! We will reply within 2 business days, promise."
    d = only(text)
    assert d.span == "within 2 business days"
    assert text[d.start : d.end] == d.span


def test_several_durations_in_order():
    text = "Dispatch takes 1-2 days and delivery 3 to 5 working days."
    spans = [d.span for d in parse_durations(text)]
    assert spans == ["1-2 days", "3 to 5 working days"]


@pytest.mark.parametrize(
    "text",
    [
        "I ordered it 3 days ago.",
        "Ich habe vor 3 Tagen bestellt.",
        "J'ai commandé il y a 3 jours.",
        "Lo pedí hace 3 días.",
        "Support hours: 08:00-18:00 CET.",
        "We are here for you 24/7.",
        "Order 2026-03-12 arrived",
        "Your parcel is 2 days late.",
        "I have waited for the past 2 weeks.",
        "Thanks and have a nice day!",
        "",
    ],
)
def test_no_promise_is_found(text):
    assert parse_durations(text) == []


def test_rates_are_not_promises():
    # "7 days a week" describes availability; only the real promise is kept.
    spans = [d.span for d in parse_durations("We are open 7 days a week and reply within 2 days.")]
    assert spans == ["within 2 days"]


POLICY = Timeframe("within 2 business days", 0, 48)
RANGE_POLICY = Timeframe("within 5 to 10 business days", 120, 240)


def test_consistent_when_no_slower_than_policy():
    assert timeframe_consistent(only("within 2 business days"), POLICY)
    assert timeframe_consistent(only("within 24 hours"), POLICY)


def test_too_slow_is_inconsistent():
    assert not timeframe_consistent(only("within 3 business days"), POLICY)
    assert not timeframe_consistent(only("two weeks"), RANGE_POLICY)


def test_faster_than_the_guaranteed_minimum_is_inconsistent():
    # Policy can only promise 5-10 business days; "within 2 days" is a promise we cannot back.
    assert not timeframe_consistent(only("within 2 days"), RANGE_POLICY)
    assert timeframe_consistent(only("within 7 business days"), RANGE_POLICY)
    assert timeframe_consistent(only("within 5 to 10 business days"), RANGE_POLICY)
