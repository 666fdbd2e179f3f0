"""A deterministic, extractive summarizer that needs no network and no keys.

It is the default provider and the fallback whenever an LLM is slow or failing, so it must keep
what Agent B cannot do without: who the customer is, why they called, every identifier and amount
they gave, what has been tried, and what they need next. It selects sentences; it never invents.
"""
from __future__ import annotations

import re

from app.summaries.base import ContextLine, StructuredSummary, SummaryInput

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")

IDENTIFIER = re.compile(
    r"(#\s?\w*\d\w*)"
    r"|\b(?:order|account|acct|ticket|case|invoice|reference|ref|policy|tracking|booking|reservation|"
    r"confirmation|claim|serial|member|customer id|subscription|transaction|sku|model)\b\s*(?:number|no\.?|id|#)?\s*[:#]?\s*[A-Z0-9][A-Z0-9-]{2,}"
    r"|[$€£]\s?\d[\d,]*(?:\.\d{1,2})?"
    r"|\b\d[\d,]*(?:\.\d{1,2})?\s?(?:dollars|usd|eur|euros|gbp|pounds)\b"
    r"|\b(?:error|code|status)\s*[:#]?\s*[A-Z0-9_-]*\d[A-Z0-9_-]*\b"
    r"|\b\d{3}\s+error\b"
    r"|\[card ending \d{4}\]",
    re.I,
)
PROBLEM = re.compile(
    r"\b(issue|problem|error|broken|not working|doesn'?t work|won'?t|can'?t|cannot|unable|fail(?:s|ed|ing)?|"
    r"declined|refund|charged|overcharged|double[- ]charged|billing|bill|damaged|defective|wrong|missing|"
    r"late|lost|crash(?:es|ed|ing)?|outage|down|locked|stolen|fraud|cancel|complain|dispute|404|500|"
    r"help with|calling about|wants? to|need(?:s|ed)? (?:a|to|help))\b",
    re.I,
)
TRIED = re.compile(
    r"\b(tried|attempted|already|restarted|rebooted|reset|cleared|reinstalled|re-?installed|updated|checked|"
    r"verified|confirmed|walked (?:them|her|him) through|troubleshoot(?:ed|ing)?|issued|sent|escalated|"
    r"applied|credited|refunded|replaced|ran|tested|looked up|offered)\b",
    re.I,
)
NEXT = re.compile(
    r"\b(needs?|wants?|requires?|requests?|requesting|asking|asks|would like|should|must|next|"
    r"follow[- ]up|escalat\w*|specialist|supervisor|manager|approve|approval|callback|call back|"
    r"transfer(?:ring)? to)\b",
    re.I,
)
NEGATIVE = re.compile(r"\b(angry|furious|livid|yelling|shouting|threaten\w*|lawyer|legal action)\b", re.I)
FRUSTRATED = re.compile(
    r"\b(frustrat\w*|upset|annoyed|unhappy|disappointed|fed up|irritat\w*|impatient|third time|again and again|"
    r"waited|waiting for (?:weeks|days)|complain\w*)\b",
    re.I,
)
POSITIVE = re.compile(r"\b(happy|pleased|thank(?:s|ful| you)|appreciat\w*|great|satisfied|calm|friendly)\b", re.I)
URGENT = re.compile(
    r"\b(urgent\w*|asap|immediately|right away|today|tonight|emergency|outage|down for|production|"
    r"fraud|stolen|locked out|deadline|legal|cancel (?:my|the|their) account|medical)\b",
    re.I,
)
MONEY = re.compile(r"[$€£]|\b(refund|charge\w*|billing|bill|payment|invoice|dollars|credit)\b", re.I)

MAX_DETAILS = 8
MAX_STEPS = 6


def _sentences(lines: tuple[ContextLine, ...]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line.source == "system":
            continue
        for piece in _SENTENCE_SPLIT.split(line.text):
            piece = piece.strip(" -•\t")
            if len(piece) >= 2:
                out.append(piece)
    return out


def _dedupe(items: list[str]) -> list[str]:
    seen, out = set(), []
    for item in items:
        key = re.sub(r"\W+", " ", item.lower()).strip()
        if key and key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _sentiment(all_text: str) -> str:
    if NEGATIVE.search(all_text):
        return "angry"
    if FRUSTRATED.search(all_text):
        return "frustrated"
    if POSITIVE.search(all_text):
        return "positive"
    return "neutral" if all_text else "unknown"


def _urgency(all_text: str) -> str:
    if URGENT.search(all_text):
        return "high"
    if MONEY.search(all_text) or NEGATIVE.search(all_text) or FRUSTRATED.search(all_text):
        return "medium"
    return "low"


def summarize_offline(data: SummaryInput) -> StructuredSummary:
    sentences = _sentences(data.entries)
    name = data.customer_name.strip() or "Unknown caller"
    if not sentences:
        return StructuredSummary(
            customer_name=name,
            reason="No context was captured before the transfer.",
            next_steps="Ask the customer how we can help.",
            sentiment="unknown",
            urgency="medium",
        )

    reason = next((s for s in sentences if PROBLEM.search(s)), sentences[0])
    steps = [s for s in sentences if TRIED.search(s) and s != reason]
    # Identifiers matter more than anything else: every sentence carrying one is kept, even when
    # it is also a step or the reason, unless it is already shown verbatim.
    details = [s for s in sentences if IDENTIFIER.search(s) and s != reason and s not in steps]
    if len(details) < 3:
        details += [s for s in sentences if PROBLEM.search(s) and s not in details and s != reason and s not in steps]
    nexts = [s for s in sentences if NEXT.search(s) and s != reason and s not in steps]
    next_steps = nexts[-1] if nexts else "Continue with the customer from the details above."
    details = [d for d in details if d != next_steps]

    # Identifiers that only appear in the reason/steps/next are still listed, so none is lost.
    shown = " ".join([reason, next_steps, *steps[:MAX_STEPS], *details[:MAX_DETAILS]])
    for s in sentences:
        for m in IDENTIFIER.finditer(s):
            if m.group(0) not in shown:
                details.append(s)
                shown += " " + s
                break

    all_text = " ".join(sentences)
    return StructuredSummary(
        customer_name=_clip(name, 120),
        reason=_clip(reason, 600),
        details=[_clip(d, 300) for d in _dedupe(details)[:MAX_DETAILS + 4]],
        steps_taken=[_clip(s, 300) for s in _dedupe(steps)[:MAX_STEPS]],
        next_steps=_clip(next_steps, 600),
        sentiment=_sentiment(all_text),
        urgency=_urgency(all_text),
    )


class OfflineProvider:
    name = "offline"
    model = None

    def summarize(self, data: SummaryInput, *, timeout: float) -> StructuredSummary:
        return summarize_offline(data)
