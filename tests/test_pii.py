"""PII redaction of ticket text."""

from assistant.pii import find_contact_data, luhn_ok, redact


def test_redacts_contact_and_payment_data():
    text = (
        "Hi, my name is Anna Berg. Write to anna.berg@mail.example or call +49 151 2345 6789 / 0151 2345 6789. "
        "Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00. I live at Lindenstraße 12, 10115 Berlin "
        "and my old address was 221B Baker Street.\nThanks,\nAnna"
    )
    out = redact(text)
    for secret in ("anna.berg@mail.example", "+49 151", "0151 2345", "4111 1111", "DE89", "Lindenstraße 12", "10115 Berlin",
                   "221B Baker Street", "Anna Berg", "Thanks,\nAnna"):
        assert secret not in out, secret
    for marker in ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[ADDRESS]", "[NAME]"):
        assert marker in out


def test_keeps_order_numbers_dates_and_ordinary_words():
    text = "Order #4521 (ref 732201349959) placed on 12.03.2026, size 42-44. I am very upset. This is ridiculous."
    assert redact(text) == text


def test_non_luhn_digit_runs_are_not_cards():
    assert not luhn_ok("4111111111111112")
    assert "[CARD]" not in redact("tracking 4111 1111 1111 1112")


def test_phone_after_keyword_and_names_in_other_languages():
    assert redact("my phone number is 5551234567") == "my phone number is [PHONE]"
    assert redact("Ich heiße Jürgen Müller") == "Ich heiße [NAME]"
    assert redact("Je m'appelle Jean-Luc") == "Je m'appelle [NAME]"


def test_find_contact_data():
    found = find_contact_data("Call +1 415 555 0100 or mail help@shop.example; order 4521")
    assert "help@shop.example" in found and any("415" in f for f in found)
    assert not any(f == "4521" for f in found)
