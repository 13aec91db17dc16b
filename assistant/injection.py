"""Heuristic detection of prompt injection in a customer message.

A hit does not block anything by itself: the draft is flagged so a human looks before sending. The
patterns aim at instructions addressed to an AI (override, persona, prompt leaks, forced output, fake
chat roles) and avoid what an upset but ordinary customer writes ("I want a refund NOW").
"""

from __future__ import annotations

import re
import unicodedata

#: Pattern name -> what it catches (shown to reviewers next to the flag).
INJECTION_NAMES: dict[str, str] = {
    "ignore_instructions": "asks to ignore, disregard or forget previous/all/your instructions or rules",
    "ignore_instructions_de": "German: ignore/forget the previous instructions",
    "ignore_instructions_fr": "French: ignore/forget the previous instructions",
    "ignore_instructions_es": "Spanish: ignore/forget the previous instructions",
    "reveal_prompt": "asks to reveal, print, show or repeat the system prompt, instructions or rules",
    "role_override": "tries to give the assistant a new role: 'you are now', 'act as', 'pretend to be', "
    "'roleplay', 'new persona'",
    "developer_mode": "asks for a 'developer mode' or a similar unrestricted mode",
    "dan": "the 'DAN' / 'Do Anything Now' jailbreak",
    "jailbreak": "mentions jailbreaking the assistant",
    "forced_output": "dictates the reply: 'repeat after me', 'say exactly', 'include the code/phrase'",
    "grant_remedy_as_assistant": "instructs the assistant/AI/bot to approve or issue a refund, "
    "compensation or discount",
    "role_marker": "fake chat role markers such as 'system:' or 'assistant:' starting a line or sentence",
    "fake_delimiter": "fake prompt delimiters such as '### system', '<|im_start|>', "
    "'</customer_message>', 'END OF MESSAGE'",
    "ignore_knowledge_base": "asks to ignore the knowledge base, evidence or context",
}

_AI = r"(?:ai|assistant|bot|chatbot|language model|llm|support (?:ai|bot))"
_REMEDY = r"(?:refund|compensation|discount|voucher|gift card|credit|reimbursement)"
_GRANT = r"(?:approve|issue|grant|authori[sz]e|give|process|confirm|offer|send)"

# Patterns on the normalised text (lowercase; punctuation and spacing collapsed to one space), so
# "Ignore -- ALL previous\ninstructions!!" and "ignore all previous instructions" look the same.
_NORMALISED: dict[str, re.Pattern[str]] = {
    "ignore_instructions": re.compile(
        # Needs a word that points at the assistant's instructions ("all", "your", "previous"...):
        # "ignore my previous e-mail/instructions" is a customer correcting themselves.
        r"\b(?:ignore|disregard|forget|override|bypass) (?:about )?(?:(?:any|of|the|these|those) )*"
        r"(?:your|previous|prior|above|earlier|preceding|system|original|initial|all) "
        r"(?:(?:previous|prior|above|earlier|preceding|system|original|initial|the|of|your) )*"
        r"(?:instructions?|rules|prompts?|guidelines|directives|directions|programming|constraints)\b"
    ),
    "ignore_instructions_de": re.compile(
        r"\b(?:ignorier\w*|vergiss|vergessen sie|missachte\w*) "
        r"(?:(?:alle|alles|deine|ihre|die|bisherigen|vorherigen|vorigen|obigen|vorangegangenen|"
        r"früheren) ){1,3}(?:anweisungen|instruktionen|regeln|vorgaben|befehle)\b"
    ),
    "ignore_instructions_fr": re.compile(
        r"\b(?:ignore[sz]?|oublie[sz]?) (?:(?:toutes|tous|les|tes|vos) ){1,3}"
        r"(?:instructions|consignes|règles|directives)\b"
    ),
    "ignore_instructions_es": re.compile(
        r"\b(?:ignora|ignore|ignorar|ignoren|olvida|olvide|olviden|olvidar)(?: de)? "
        r"(?:(?:todas|todos|las|tus|sus|los) ){1,3}(?:instrucciones|reglas|indicaciones|órdenes)\b"
    ),
    "reveal_prompt": re.compile(
        r"\b(?:reveal|print|show|repeat|display|output|leak|dump|write out|tell me|give me|share|"
        r"what (?:is|are)) (?:me |us )?(?:your|the) (?:(?:system|initial|original|hidden|secret|full) )*"
        r"(?:prompt|instructions)\b"
        # "show me your rules on returns" is a fair customer question, so rules need a stronger verb.
        r"|\b(?:reveal|print|repeat|output|leak|dump) (?:me )?your (?:(?:system|hidden|secret|internal) )*"
        r"(?:rules|guidelines)\b"
        r"|\bsystem prompt\b"
    ),
    "role_override": re.compile(
        # "you are now a week late" is a complaint, not a persona.
        r"\byou are now (?:(?:a|an) (?!(?:day|days|week|weeks|month|months|hour|hours|year|couple|few|"
        r"full|whole|total|bit|little|lot)\b)|called|named|known as|free|unrestricted|unfiltered|"
        r"no longer|dan\b|acting)"
        r"|\bfrom now on (?:you are|you re|you will be|act|behave|respond|answer)\b"
        r"|\b(?:please|now|you (?:will|must|should|shall|now)|i want you to|from now on) act as "
        r"(?:a|an|my|the|if you)\b"
        # "don't pretend you didn't get my e-mail" is an angry customer, not a persona request.
        r"|(?<!don t )(?<!dont )(?<!do not )(?<!stop )(?<!never )\bpretend (?:to be|you are|you re|that you)\b"
        r"|\brole ?play\b"
        r"|\bnew persona\b|\badopt (?:a|the) persona\b"
    ),
    "developer_mode": re.compile(r"\b(?:developer|dev|god|admin|debug|unrestricted) mode\b"),
    "dan": re.compile(r"\bdo anything now\b"),
    "jailbreak": re.compile(r"\bjail ?break\w*\b"),
    "forced_output": re.compile(
        r"\brepeat after me\b|\bsay exactly\b|\bwrite exactly\b|\breply (?:only )?with exactly\b"
        r"|\b(?:include|append) (?:the|this|these|following) (?:(?:exact|secret|special|following) )*"
        r"(?:code|phrase|sentence|words?|text|string|token|password)\b"
    ),
    "ignore_knowledge_base": re.compile(
        r"\b(?:ignore|disregard|forget|bypass|don t use|do not use) (?:the |your |any |all )*"
        r"(?:knowledge ?base|kb|evidence|retrieved (?:documents|articles|context)|policy documents|"
        r"provided context|context)\b"
    ),
}

# Patterns on the raw text: delimiters and role markers depend on exact punctuation and line starts,
# and the remedy pattern needs sentence ends to stay within one instruction.
_RAW: dict[str, re.Pattern[str]] = {
    # Case-sensitive on purpose: "Dan" is a name, "DAN" with these cues is the jailbreak.
    "dan": re.compile(r"\b(?:you are|you're|act as|as|become|enable|activate|now)\s+DAN\b|\bDAN\s+mode\b"),
    "grant_remedy_as_assistant": re.compile(
        rf"(?i)\bas (?:the|an|a|this) {_AI}\b[^.!?\n]{{0,80}}?\b{_GRANT}\b[^.!?\n]{{0,40}}?\b{_REMEDY}"
        rf"|\b{_GRANT}\b[^.!?\n]{{0,40}}?\b{_REMEDY}\w*[^.!?\n]{{0,60}}?\bas (?:the|an|a|this) {_AI}\b"
        rf"|\b(?:the |you,? the )?{_AI},? (?:you )?(?:must|should|will|has to|is required to|is authori[sz]ed to|"
        rf"is allowed to|are authori[sz]ed to|are allowed to) (?:now |immediately )?{_GRANT}\b"
    ),
    "role_marker": re.compile(
        r"(?im)(?:^|[.!?]\s+)[ \t>*_\-\[(]*(?:system|assistant|developer)[ \t]*[\])]?[ \t]*:(?!//)"
    ),
    "fake_delimiter": re.compile(
        r"(?i)#{2,}\s*(?:system|assistant|instructions?|new\s+instructions?|developer|user|end)\b"
        r"|<\|\s*(?:im_start|im_end|system|assistant|user|endoftext|end)\s*\|>"
        r"|</?\s*(?:system|assistant|instructions?|customer_message|customer|message|context|user|prompt|"
        r"evidence)\s*>"
        r"|\[/?\s*(?:INST|SYS|SYSTEM)\s*\]|<<\s*/?SYS\s*>>"
        r"|\bEND\s+OF\s+(?:THE\s+)?(?:CUSTOMER\s+)?(?:MESSAGE|INPUT|PROMPT|EMAIL|TICKET)\b"
        r"|\b(?:BEGIN|START)\s+(?:OF\s+)?(?:SYSTEM|NEW)\s+(?:PROMPT|INSTRUCTIONS?|MESSAGE)\b"
    ),
}
# Zero-width characters and soft hyphens are a cheap way to split trigger words; drop them first.
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH).lower()
    # Keep letters (accents and umlauts included) and digits; everything else separates words.
    return " " + " ".join(re.sub(r"[\W_]+", " ", text).split()) + " "


def scan_injection(text: str) -> list[str]:
    """Names (keys of INJECTION_NAMES) of the injection patterns found in `text`; empty when clean."""
    if not text:
        return []
    normalised = _normalise(text)
    raw = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    hits = {name for name, pattern in _NORMALISED.items() if pattern.search(normalised)}
    hits |= {name for name, pattern in _RAW.items() if pattern.search(raw)}
    return [name for name in INJECTION_NAMES if name in hits]
