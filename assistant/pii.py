"""PII redaction for ticket text before it is embedded or stored.

Redacts e-mail addresses, phone numbers, payment card numbers (Luhn-checked), IBANs, street addresses
and, where a pattern makes it likely, personal names ("my name is ...", sign-offs). Order numbers are
kept on purpose: they are not personal data on their own and agents need them.
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
# A card: 13-19 digits, optionally grouped by spaces or dashes; confirmed by the Luhn checksum.
CARD = re.compile(r"(?<![\w])(?:\d[ \-]?){12,18}\d(?![\w])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
# Phones: international (+CC ...), grouped national numbers, or bare digits right after a phone keyword.
PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}[\s\-.]?(?:\(?\d{1,5}\)?[\s\-.]?){2,5}\d{2,5}(?!\w)")
PHONE_GROUPED = re.compile(r"(?<![\w#])\(?\d{2,5}\)?[\s\-.]\d{2,5}[\s\-.]\d{2,6}(?:[\s\-.]\d{2,6})?(?!\w)")
PHONE_KEYWORD = re.compile(
    r"(?i)\b(phone|tel\.?|telephone|mobile|cell|call me(?: at| on)?|whatsapp|handy|telefon|t[ée]l[ée]phone|tel[ée]fono|m[óo]vil)"
    r"(\s*(?:number|no\.?|nr\.?|#)?\s*(?:is|:|at|on)?\s*)(\d[\d\s\-/.]{6,16}\d)"
)
STREET_SUFFIX = (
    r"(?:Street|St\.?|Road|Rd\.?|Avenue|Ave\.?|Lane|Ln\.?|Drive|Dr\.?|Boulevard|Blvd\.?|Way|Court|Ct\.?|Place|Pl\.?"
    r"|Terrace|Close|Square|Sq\.?)"
)
# "12 Baker Street", "221B Baker St." and German/Dutch/Nordic style "Lindenstraße 12", "Hauptstr. 5a".
STREET_EN = re.compile(rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][\w'\-]*\s+){{1,3}}{STREET_SUFFIX}(?!\w)")
STREET_DE = re.compile(
    r"\b[A-ZÄÖÜ][\wäöüß\-]*(?:stra(?:ss|ß)e|str\.|weg|gasse|allee|platz|ring|damm|ufer|gatan|vej|straat|laan)"
    r"\s+\d{1,4}\s?[a-zA-Z]?\b"
)
STREET_FR_ES = re.compile(
    r"(?i)\b\d{1,4},?\s+(?:rue|avenue|boulevard|chemin|calle|avenida|plaza|paseo|via|viale)\s+(?:[\w'\-]+\s?){1,4}"
)
POSTCODE_CITY = re.compile(r"(?<=\[ADDRESS\]),?\s+\d{4,5}\s+[A-ZÄÖÜ][\wäöüß\-]+")
NAME_WORD = r"[A-ZÄÖÜÉ][a-zäöüßéèáíóúñ']+(?:-[A-ZÄÖÜÉ][a-zäöüßéèáíóúñ']+)?"
_INTRO_PHRASES = ("my name is", "my name's", "this is", "i am", "i'm", "ich bin", "je m'appelle", "me llamo",
                  "mi nombre es")  # and "ich heiße", which is not ASCII
NAME_INTRO = re.compile(
    rf"(?i:\b((?:my name is|my name's|this is|i am|i'm|ich bin|ich heiße|je m'appelle|me llamo|mi nombre es)\s+))({NAME_WORD}(?:\s+{NAME_WORD})?)"
)
SIGN_OFF = re.compile(
    rf"(?im)^(\s*(?:thanks|thank you|regards|best regards|kind regards|best|cheers|sincerely|many thanks|"
    rf"viele grüße|mit freundlichen grüßen|liebe grüße|cordialement|merci|saludos|un saludo|atentamente)[,!.]?\s*[\n,\-–]?\s*)"
    rf"({NAME_WORD}(?:\s+{NAME_WORD})?)\s*$"
)
DASH_NAME = re.compile(rf"(?m)^(\s*[-–—]\s*)({NAME_WORD}(?:\s+{NAME_WORD})?)\s*$")
# "Hi Anna," / "Dear Mr Smith," / "Hallo Frau Weber," opening a message or an agent's reply.
GREETING_NAME = re.compile(
    rf"(?im)^(\s*(?:hi|hello|hey|dear|good\s+(?:morning|afternoon|evening)|hallo|liebe[rs]?|"
    rf"sehr\s+geehrte[rs]?|guten\s+tag|bonjour|cher|chère|hola|estimad[oa])\s+"
    rf"(?:(?:mr|mrs|ms|miss|dr|herr|frau|monsieur|madame|señor|señora|sr|sra)\.?\s+)?)"
    rf"(?-i:({NAME_WORD}(?:\s+{NAME_WORD})?))(?=\s*[,!.:;]|\s*$)"
)
# Words that follow "I'm"/"this is" but are not names.
_NOT_NAMES = {
    "very", "so", "really", "not", "still", "just", "writing", "sorry", "trying", "having", "looking", "unable",
    "getting", "the", "a", "an", "extremely", "quite", "afraid", "waiting", "asking", "contacting", "here",
    "ridiculous", "unacceptable", "frustrated", "disappointed", "angry", "happy", "about", "regarding", "your",
    "my", "urgent", "going", "done", "fed", "tired", "sure", "confused", "new", "interested", "planning",
    # greetings: "Hi there", "Dear Customer", "Hello Support Team"
    "there", "team", "all", "everyone", "customer", "customers", "sir", "madam", "support", "friend", "friends",
    "folks", "again", "guys", "colleagues", "service", "valued", "fernway",
}


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(m: re.Match) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else m.group(0)


_DIGIT = re.compile(r"\d")
DATE_LIKE = re.compile(r"^\d{1,4}[./\-]\d{1,2}[./\-]\d{1,4}$")


def _phone_grouped(m: re.Match) -> str:
    if DATE_LIKE.match(m.group(0)):
        return m.group(0)
    digits = re.sub(r"\D", "", m.group(0))
    # Grouped numbers shorter than 8 digits are more likely dates, sizes or order numbers.
    return "[PHONE]" if 8 <= len(digits) <= 15 else m.group(0)


def _name(m: re.Match) -> str:
    name = m.group(2)
    if name.split()[0].lower() in _NOT_NAMES:
        return m.group(0)
    return m.group(1) + "[NAME]"


def redact(text: str) -> str:
    """Replace personal data in `text` with typed markers such as [EMAIL] and [PHONE]."""
    if not text:
        return text
    # Shortcuts with the same result: every pattern below but the name ones needs an "@" or a digit, and
    # most tickets have neither (ingest redacts every ticket; this halves its share of the work).
    if "@" in text:
        text = EMAIL.sub("[EMAIL]", text)
    if _DIGIT.search(text):
        text = IBAN.sub("[IBAN]", text)
        text = CARD.sub(_card, text)
        text = PHONE_INTL.sub("[PHONE]", text)
        text = PHONE_KEYWORD.sub(lambda m: m.group(1) + m.group(2) + "[PHONE]", text)
        text = PHONE_GROUPED.sub(_phone_grouped, text)
        text = STREET_EN.sub("[ADDRESS]", text)
        text = STREET_DE.sub("[ADDRESS]", text)
        text = STREET_FR_ES.sub("[ADDRESS]", text)
        text = POSTCODE_CITY.sub("", text)
    # NAME_INTRO is the slowest pattern (a case-insensitive alternation tried at every position); ASCII
    # text can only match it if it contains one of its phrases, which `in` finds far faster.
    lowered = text.lower()
    if not text.isascii() or any(phrase in lowered for phrase in _INTRO_PHRASES):
        text = NAME_INTRO.sub(_name, text)
    text = SIGN_OFF.sub(_name, text)
    text = DASH_NAME.sub(_name, text)
    text = GREETING_NAME.sub(_name, text)
    return text


PII_PATTERNS = {"email": EMAIL, "card": CARD, "phone": PHONE_INTL, "iban": IBAN}


def find_contact_data(text: str) -> list[str]:
    """Spans that look like contact or payment data (used to scan outputs)."""
    found = [m.group(0) for m in EMAIL.finditer(text)]
    found += [m.group(0) for m in PHONE_INTL.finditer(text)]
    found += [m.group(0) for m in PHONE_GROUPED.finditer(text) if 8 <= len(re.sub(r"\D", "", m.group(0))) <= 15]
    found += [m.group(0) for m in CARD.finditer(text) if luhn_ok(re.sub(r"\D", "", m.group(0)))]
    return found
