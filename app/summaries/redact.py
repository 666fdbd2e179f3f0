"""PII redaction: applied to context before it is stored, summarised, or sent to an LLM.

Card numbers are recognised by shape *and* the Luhn checksum, so order numbers and phone numbers
of similar length survive. The last four digits stay (PCI DSS allows them) because agents use them
to confirm which card the customer means.

Numbers are read the way people give them, not the way a form would: digit groups joined by any
short run of punctuation or spaces ("4111.1111/1111  1111", "no:-4111…"), and digits spoken as
words, as a transcript of a phone call has them ("four one one one, double one…"). Both become
one run of digit groups, and the card, SSN and security-code rules look at the run as a whole.
The price: numbers listed with only punctuation between them ("orders 55210, 55211, 55212") are
one run too, and three of them that happen to pass Luhn (one time in ten) read as a card.
Redacting an order number by mistake is the lesser harm.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

# Keywords start after neither a word character nor "]" (rather than at \b): a marker that took
# the place of digits glued to a word ("4111…exp09/27") must not give a second pass a word
# boundary the first did not see, or redacting redacted text would change it.
_CVV = re.compile(r"(?<![\w\]])(cvv2?|cvc2?|csc|security code|card code)(\s*(?:is|was|:|=|number)?\s*)\d{3,4}\b", re.I)
_EXPIRY = re.compile(
    r"(?<![\w\]])(exp(?:iry|iration|ires)?(?:\s*date)?|valid thru|valid through)(\s*(?:is|was|:|=|on)?\s*)"
    r"(?:0?[1-9]|1[0-2])\s*[/-]\s*(?:\d{4}|\d{2})\b",
    re.I,
)
_NINO = re.compile(r"(?<![\w\]])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![\w\[])", re.I)
_SSN_CONTEXT = re.compile(r"\b(?:ssn|social security(?: number)?|social|tax id|tin)\b", re.I)
# A security code is only a security code right after the words that announce it; the written
# "cvv 123" is caught by _CVV, this catches it spoken or split from its keyword by a pause.
_CVV_BEFORE = re.compile(r"\b(?:cvv2?|cvc2?|csc|security code|card code)(?:\s+(?:is|was|number))*\s*[:=,.-]?\s*$", re.I)

# One digit group: written digits, or one spoken digit ("double"/"triple" repeat it). "o" and
# "oh" are zero only inside a run; alone they are one harmless digit. The apostrophe guard keeps
# "o'clock" a word; the bracket guards are the same idempotence rule as the keywords'.
_TOKEN = re.compile(
    r"\d+"
    r"|(?<![\w\[\]])(?:(double|triple)[ \t-]+)?(zero|oh|o|one|two|three|four|five|six|seven|eight|nine|\d)(?![\w\[\]'\u2019])",
    re.I,
)
_WORDS = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
          "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_TIMES = {"double": 2, "triple": 3}
# Groups are one number when at most this many characters of punctuation or space separate them:
# enough for "4111 - 1111" or ". " between transcribed chunks, too few to glue numbers that have
# words between them. Brackets never join, so a redaction marker ends a run (which keeps redact
# idempotent: "[card ending 1111] 2222" is not re-read as one number).
_SEP_MAX = 4
# An SSN written in its own format: three groups, 3-2-4 digits, one dash, dot or space apart.
_SSN_SEPS = frozenset("-.\u2010\u2011\u2012\u2013\u2014\u2212")
# How far back the words that make nine bare digits an SSN may be (as before: 40 characters).
_CONTEXT_CHARS = 40
_CARD_MIN, _CARD_MAX = 13, 19
_REDACTED = "[redacted]"


class _Group:
    __slots__ = ("start", "end", "digits", "spoken", "glued")

    def __init__(self, start: int, end: int, digits: str, spoken: bool, glued: bool):
        self.start, self.end, self.digits, self.spoken, self.glued = start, end, digits, spoken, glued


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


def mentions_digits(text: str) -> bool:
    """Whether the text has any digit, written or spoken: without one, nothing in it can be part
    of a number split across utterances."""
    return _TOKEN.search(text) is not None


def redact(text: str) -> str:
    """Replace card numbers, national ids, CVVs and expiry dates; leave everything else alone."""
    text = _keyword_numbers(text)
    text = _apply(text, _number_spans(text))
    return _NINO.sub("[national ID redacted]", text)


def redact_across(parts: Sequence[str]) -> list[str]:
    """Redact consecutive utterances of one speaker, oldest first, as if they were one: a number
    split between two of them ("my card is 4111 1111" / "1111 1111 1111") is redacted in both.
    The part where the number ends gets the usual marker ("[card ending 1111]"), the earlier
    parts "[redacted]" for their share. Every part returned is also redacted on its own."""
    pre = [_keyword_numbers(p) for p in parts]
    # One space joins the parts: a separator, so a run of digit groups carries on across it.
    bounds, at = [], 0
    for p in pre:
        bounds.append((at, at + len(p)))
        at += len(p) + 1
    joined = " ".join(pre)
    shares: list[list[tuple[int, int, str]]] = [[] for _ in pre]
    for start, end, marker in _number_spans(joined):
        for k, (lo, hi) in enumerate(bounds):
            a, b = max(start, lo), min(end, hi)
            # A number starts and ends on a digit or a word; a part's share does too, so the
            # punctuation around it ("4111 1111." / ". 1111") stays.
            while a < b and not joined[a].isalnum():
                a += 1
            while b > a and not joined[b - 1].isalnum():
                b -= 1
            if a < b:
                shares[k].append((a - lo, b - lo, marker if end <= hi else _REDACTED))
    return [redact(_apply(p, share)) for p, share in zip(pre, shares, strict=True)]


def _keyword_numbers(text: str) -> str:
    text = _CVV.sub(lambda m: f"{m.group(1)}{m.group(2)}{_REDACTED}", text)
    return _EXPIRY.sub(lambda m: f"{m.group(1)}{m.group(2)}{_REDACTED}", text)


def _apply(text: str, spans: list[tuple[int, int, str]]) -> str:
    if not spans:
        return text
    out, done = [], 0
    for start, end, marker in spans:
        out.append(text[done:start])
        out.append(marker)
        done = end
    out.append(text[done:])
    return "".join(out)


def _runs(text: str) -> list[list[_Group]]:
    runs: list[list[_Group]] = []
    prev: _Group | None = None
    for m in _TOKEN.finditer(text):
        start, end = m.span()
        word = m.group(2)
        if word is None:
            # Digits inside a word ("1Z999AA1012…", a UUID, "15th") are part of an identifier:
            # such a group is tested alone, never joined to its neighbours.
            glued = (start > 0 and text[start - 1].isalpha()) or (end < len(text) and text[end].isalpha())
            raw = m.group(0)
            digits = raw if raw.isascii() else "".join(str(int(c)) for c in raw)  # Arabic-Indic, full-width…
            group = _Group(start, end, digits, False, glued)
        else:
            digit = _WORDS.get(word.lower()) or str(int(word))
            group = _Group(start, end, digit * _TIMES.get((m.group(1) or "").lower(), 1), True, False)
        if prev is not None and not prev.glued and not group.glued and _joins(text[prev.end : start]):
            runs[-1].append(group)
        else:
            runs.append([group])
        prev = group
    return runs


def _joins(gap: str) -> bool:
    return len(gap) <= _SEP_MAX and not any(c.isalnum() or c in "[]" for c in gap)


def _number_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, marker) for every sensitive number, left to right, not overlapping.

    Within a run, each group in turn may start a card (the longest 13-19 digit stretch of whole
    groups that passes Luhn, so a card with an expiry or CVV typed after it is still found), an
    SSN, or a spoken security code. Testing only whole groups keeps written numbers as written: a
    16-digit order number fails Luhn and survives. Spoken digits carry no grouping, so any stretch
    of them is tested; a long spoken number may lose digits it did not need to, which is the side
    to err on. The words that make nine bare digits an SSN are looked for in the text as already
    redacted up to that point, so a second pass sees what the first did (redact is idempotent)."""
    spans: list[tuple[int, int, str]] = []
    out: list[str] = []  # the redacted text up to `done`
    done = 0

    def before(pos: int) -> str:
        rest = text[done:pos]
        if len(rest) >= _CONTEXT_CHARS:
            return rest[-_CONTEXT_CHARS:]
        pieces, size = [rest], len(rest)
        for piece in reversed(out):
            pieces.append(piece)
            size += len(piece)
            if size >= _CONTEXT_CHARS:
                break
        return "".join(reversed(pieces))[-_CONTEXT_CHARS:]

    for run in _runs(text):
        i = 0
        while i < len(run):
            hit = _card_at(run, i) or _ssn_at(text, run, i, before) or _cvv_at(run, i, before)
            if hit is None:
                i += 1
                continue
            last, marker = hit
            start, end = run[i].start, run[last].end
            spans.append((start, end, marker))
            out.append(text[done:start])
            out.append(marker)
            done = end
            i = last + 1
    return spans


def _card_at(run: list[_Group], i: int) -> tuple[int, str] | None:
    # No payment card number starts with 0 (ISO/IEC 7812 gives that first digit to ISO/TC 68,
    # not to card issuers), and leading zeros never change a Luhn sum: without this rule
    # "oh, four one one…" would lose its "oh" to the card marker.
    if run[i].digits.startswith("0"):
        return None
    ends, count = [], 0
    for j in range(i, len(run)):
        count += len(run[j].digits)
        if count > _CARD_MAX:
            break
        if count >= _CARD_MIN:
            ends.append(j)
    for j in reversed(ends):
        digits = "".join(g.digits for g in run[i : j + 1])
        if luhn_ok(digits):
            return j, f"[card ending {digits[-4:]}]"
    return None


def _ssn_plausible(digits: str) -> bool:
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return not (area in {"000", "666"} or area.startswith("9") or group == "00" or serial == "0000")


def _ssn_at(text: str, run: list[_Group], i: int, before) -> tuple[int, str] | None:
    three = run[i : i + 3]
    if (
        len(three) == 3
        and [len(g.digits) for g in three] == [3, 2, 4]
        and not any(g.spoken for g in three)
        and all(_ssn_sep(text[a.end : b.start]) for a, b in pairwise(three))
    ):
        digits = "".join(g.digits for g in three)
        return (i + 2, "[SSN redacted]") if _ssn_plausible(digits) else None
    # Nine digits grouped any other way (or not at all, or spoken) are only an SSN when the
    # words before them say so.
    count, j = 0, i
    while j < len(run) and count < 9:
        count += len(run[j].digits)
        j += 1
    if count != 9:
        return None
    digits = "".join(g.digits for g in run[i:j])
    if _ssn_plausible(digits) and _SSN_CONTEXT.search(before(run[i].start)):
        return j - 1, "[SSN redacted]"
    return None


def _ssn_sep(gap: str) -> bool:
    return len(gap) == 1 and (gap.isspace() or gap in _SSN_SEPS)


def _cvv_at(run: list[_Group], i: int, before) -> tuple[int, str] | None:
    count, j = 0, i
    while j < len(run) and count + len(run[j].digits) <= 4:
        count += len(run[j].digits)
        j += 1
    if count >= 3 and _CVV_BEFORE.search(before(run[i].start)):
        return j - 1, _REDACTED
    return None


# -- contact details and secrets, for summaries ------------------------------------------------
# Stored context keeps phone numbers and email addresses (the agent on the call may need them, and
# redact() must not eat order numbers that look like them). A summary is different: it is copied
# into events, read aloud over another phone line and shown to someone who did not take the call,
# so it carries none of them. Dates of birth and access codes are verification secrets, likewise.
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}(?!\w)"  # international, +1 646 555 0133
    r"|(?<![\w-])\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?![\w-])"  # North American, 415-555-0142
    r"|(?<![\w-])0\d{3,4}\s?\d{6}(?![\w-])",  # UK style, 07700 900123
)
_BIRTH_DATE = re.compile(
    r"(?<![\w\]])((?:date of birth|birth ?date|d\.?o\.?b\.?|born(?: on)?)(?:\s+(?:is|was))?\s*[:=]?\s*)"
    r"(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\w+ \d{1,2}(?:st|nd|rd|th)?,? \d{4})",
    re.I,
)
_ACCESS_CODE = re.compile(
    r"(?<![\w\]])((?:gate|door|access|alarm|entry|garage|lockbox|pin|pass)\s*(?:code|number)?(?:[\s,]+(?:is|it'?s|was))?\s*[:=]?\s*)\d{3,8}\b",
    re.I,
)


_ASKS_BIRTH_DATE = re.compile(r"\b(?:date of birth|birth ?date|d\.?o\.?b\b|born)", re.I)
_ANY_DATE = re.compile(r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b")


def mask_contacts(text: str, *, answering: str = "") -> str:
    """Phone numbers, email addresses, dates of birth and access codes replaced by a marker.

    `answering` is the line just before, from the other speaker: "your date of birth?" makes the
    bare date in "It's 04/12/1968." a date of birth too."""
    text = _EMAIL.sub("[email]", text)
    if _ASKS_BIRTH_DATE.search(answering):
        text = _ANY_DATE.sub("[redacted]", text)
    text = _BIRTH_DATE.sub(lambda m: f"{m.group(1)}[redacted]", text)
    text = _ACCESS_CODE.sub(lambda m: f"{m.group(1)}[redacted]", text)
    return _PHONE.sub("[phone number]", text)
