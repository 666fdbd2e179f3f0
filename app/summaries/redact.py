"""PII redaction: applied to context before it is stored, summarised, or sent to an LLM.

Card numbers are recognised by shape *and* the Luhn checksum, so order numbers and phone numbers
of similar length survive. The last four digits stay (PCI DSS allows them) because agents use them
to confirm which card the customer means.
"""
from __future__ import annotations

import re

_CARD_CANDIDATE = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_SSN = re.compile(r"(?<!\d)(\d{3})([- ]?)(\d{2})\2(\d{4})(?!\d)")
_SSN_CONTEXT = re.compile(r"\b(?:ssn|social security(?: number)?|social|tax id|tin)\b", re.I)
_NINO = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", re.I)
_CVV = re.compile(r"\b(cvv2?|cvc2?|csc|security code|card code)(\s*(?:is|was|:|=|number)?\s*)\d{3,4}\b", re.I)
_EXPIRY = re.compile(
    r"\b(exp(?:iry|iration|ires)?(?:\s*date)?|valid thru|valid through)(\s*(?:is|was|:|=|on)?\s*)"
    r"(?:0?[1-9]|1[0-2])\s*[/-]\s*(?:\d{4}|\d{2})\b",
    re.I,
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return f"[card ending {digits[-4:]}]"
    return match.group(0)


def _ssn(match: re.Match, text: str) -> str:
    area, sep, group, serial = match.group(1), match.group(2), match.group(3), match.group(4)
    if area in {"000", "666"} or area.startswith("9") or group == "00" or serial == "0000":
        return match.group(0)
    # Nine bare digits are only an SSN when the words around them say so.
    if not sep:
        window = text[max(0, match.start() - 40) : match.start()]
        if not _SSN_CONTEXT.search(window):
            return match.group(0)
    return "[SSN redacted]"


def redact(text: str) -> str:
    """Replace card numbers, national ids, CVVs and expiry dates; leave everything else alone."""
    text = _CVV.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    text = _EXPIRY.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    text = _CARD_CANDIDATE.sub(_card, text)
    text = _SSN.sub(lambda m: _ssn(m, text), text)
    text = _NINO.sub("[national ID redacted]", text)
    return text
