"""SLA loader: a valid file loads, and every kind of mistake is a precise ConfigError."""

from __future__ import annotations

import os
import textwrap

import pytest

from assistant.errors import ConfigError
from assistant.sla import CategoryPolicy, SlaPolicy, load_sla

VALID = """
business:
  name: Test Outfitters
  support_email: help@test.example
  contact_url: https://test.example/contact
  support_hours: "Monday to Friday, 09:00-17:00 CET"
default_category: general
categories:
  shipping:
    label: Shipping
    description: Late parcels.
    first_response: {text: "within 4 business hours", max_hours: 4}
    resolution: {text: "within 2 business days", min_hours: 0, max_hours: 48}
    may_offer: [discount_code, free_shipping]
    keywords: [parcel, delivery, Tracking]
  lost:
    label: Lost parcel
    resolution: {text: "within 5 to 10 business days", min_hours: 120, max_hours: 240}
    may_offer: [refund, replacement]
    keywords: [lost, missing, stolen]
  general:
    label: General
    description: Anything else.
    resolution: {text: "within 1 business day", max_hours: 24}
"""


def write(tmp_path, text: str, name: str = "sla.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_valid_file_loads(tmp_path):
    sla = load_sla(write(tmp_path, VALID))
    assert isinstance(sla, SlaPolicy)
    assert sla.business["support_email"] == "help@test.example"
    assert sla.default_category == "general"
    assert list(sla.categories) == ["shipping", "lost", "general"]
    shipping = sla.categories["shipping"]
    assert isinstance(shipping, CategoryPolicy)
    assert shipping.key == "shipping"
    assert shipping.first_response is not None and shipping.first_response.max_hours == 4
    assert shipping.first_response.min_hours == 0  # defaults to 0 when omitted
    assert (shipping.resolution.text, shipping.resolution.max_hours) == ("within 2 business days", 48)
    assert shipping.may_offer == ["discount_code", "free_shipping"]
    assert shipping.keywords == ["parcel", "delivery", "tracking"]  # lowercased for matching
    lost = sla.categories["lost"]
    assert (lost.resolution.min_hours, lost.resolution.max_hours) == (120, 240)
    assert lost.first_response is None and lost.description == ""
    assert sla.categories["general"].may_offer == [] and sla.categories["general"].keywords == []


def test_get_falls_back_to_default(tmp_path):
    sla = load_sla(write(tmp_path, VALID))
    assert sla.get("lost").key == "lost"
    assert sla.get("no_such_category").key == "general"
    assert sla.get(None).key == "general"


def test_keyword_scores(tmp_path):
    sla = load_sla(write(tmp_path, VALID))
    scores = sla.keyword_scores("My PARCEL is missing, the tracking page says it was lost.")
    assert set(scores) == {"shipping", "lost", "general"}
    assert scores["shipping"] == 2.0  # parcel, tracking
    assert scores["lost"] == 2.0  # missing, lost
    assert scores["general"] == 0.0
    # A keyword matches at a word start plus up to 3 letters: "parcels" counts, "parcelling" does not.
    assert sla.keyword_scores("two parcels")["shipping"] == 1.0
    assert sla.keyword_scores("the parcelling machine")["shipping"] == 0.0
    assert sla.keyword_scores("lostparcel")["lost"] == 0.0


def test_cache_returns_same_object_until_file_changes(tmp_path):
    path = write(tmp_path, VALID)
    first = load_sla(path)
    assert load_sla(path) is first
    path.write_text(textwrap.dedent(VALID).replace("Test Outfitters", "Other Shop"), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = load_sla(path)
    assert second is not first
    assert second.business["name"] == "Other Shop"


def test_sample_policy_file_loads_if_present():
    """The shipped sample must pass the same validation (its exact contents are not tested)."""
    from assistant.settings import PROJECT_ROOT

    path = PROJECT_ROOT / "knowledge_base" / "policies" / "sla.yaml"
    if not path.exists():
        pytest.skip("sample SLA file not written yet")
    sla = load_sla(path)
    assert sla.default_category in sla.categories


def expect_error(tmp_path, text: str, *fragments: str) -> str:
    path = write(tmp_path, text, name="broken_sla.yaml")
    with pytest.raises(ConfigError) as info:
        load_sla(path)
    message = str(info.value)
    assert "broken_sla.yaml" in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_sla(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value) and "not found" in str(info.value)
    assert info.value.hint


def test_invalid_yaml_names_the_line(tmp_path):
    expect_error(tmp_path, "business: {name: [unclosed\ncategories: x\n", "invalid YAML", "line")


def test_not_a_mapping(tmp_path):
    expect_error(tmp_path, "- just\n- a list\n", "must contain a mapping")


def test_missing_business_field(tmp_path):
    expect_error(
        tmp_path,
        VALID.replace("  support_email: help@test.example\n", ""),
        "business.support_email",
        "missing",
    )


def test_missing_categories(tmp_path):
    text = VALID.split("categories:")[0]
    expect_error(tmp_path, text, "categories", "missing")


def test_default_category_must_exist(tmp_path):
    expect_error(
        tmp_path,
        VALID.replace("default_category: general", "default_category: other"),
        "default_category",
        "'other'",
    )


def test_missing_label(tmp_path):
    expect_error(tmp_path, VALID.replace("    label: Shipping\n", ""), "categories.shipping.label", "missing")


def test_missing_resolution(tmp_path):
    text = VALID.replace('    resolution: {text: "within 1 business day", max_hours: 24}\n', "")
    expect_error(tmp_path, text, "categories.general.resolution", "missing")


def test_missing_max_hours(tmp_path):
    text = VALID.replace('{text: "within 1 business day", max_hours: 24}', '{text: "within 1 business day"}')
    expect_error(tmp_path, text, "categories.general.resolution.max_hours", "missing")


def test_unknown_may_offer_value(tmp_path):
    message = expect_error(
        tmp_path,
        VALID.replace("[refund, replacement]", "[refund, cashback]"),
        "categories.lost.may_offer",
        "'cashback'",
    )
    assert "allowed:" in message and "gift_card" in message


def test_min_greater_than_max(tmp_path):
    text = VALID.replace("min_hours: 120, max_hours: 240", "min_hours: 300, max_hours: 240")
    expect_error(
        tmp_path, text, "categories.lost.resolution", "min_hours (300) is greater than max_hours (240)"
    )


def test_text_disagreeing_with_numbers(tmp_path):
    text = VALID.replace(
        '{text: "within 2 business days", min_hours: 0, max_hours: 48}',
        '{text: "within 3 business days", min_hours: 0, max_hours: 48}',
    )
    expect_error(tmp_path, text, "categories.shipping.resolution.text", "'within 3 business days'", "72")


def test_text_faster_than_its_max_disagrees(tmp_path):
    # The text is what replies quote; a looser max_hours would let drafts promise more than the text says.
    text = VALID.replace(
        '{text: "within 1 business day", max_hours: 24}', '{text: "within 1 business day", max_hours: 72}'
    )
    expect_error(tmp_path, text, "categories.general.resolution.text", "disagrees")


def test_text_without_a_duration(tmp_path):
    text = VALID.replace('"within 1 business day"', '"as soon as possible"')
    expect_error(tmp_path, text, "categories.general.resolution.text", "does not state a duration")


def test_non_numeric_hours(tmp_path):
    text = VALID.replace("max_hours: 24}", "max_hours: soon}")
    expect_error(tmp_path, text, "categories.general.resolution.max_hours", "number of hours")


def test_negative_hours(tmp_path):
    text = VALID.replace(
        '{text: "within 1 business day", max_hours: 24}',
        '{text: "within 1 business day", min_hours: -1, max_hours: 24}',
    )
    expect_error(tmp_path, text, "categories.general.resolution.min_hours", "negative")


def test_unknown_category_field_catches_typos(tmp_path):
    text = VALID.replace("may_offer: [refund, replacement]", "may_ofer: [refund, replacement]")
    expect_error(tmp_path, text, "categories.lost", "'may_ofer'")


def test_may_offer_must_be_a_list(tmp_path):
    text = VALID.replace("may_offer: [refund, replacement]", "may_offer: refund")
    expect_error(tmp_path, text, "categories.lost.may_offer", "list of strings")
