"""The summary seam: what a provider gets, what it must return, and how that is rendered.

Every provider (offline, Groq, OpenAI, any OpenAI-compatible server) returns the same
`StructuredSummary`. Rendering to dashboard text and to speech happens once, here, so a provider
can never smuggle markup into what Twilio reads aloud.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

SPEECH_MAX_CHARS = 1500
TEXT_MAX_CHARS = 4000


@dataclass(frozen=True)
class ContextLine:
    author: str  # agent id, "customer" or "system"
    source: str  # note | transcript | system
    text: str  # already redacted


@dataclass(frozen=True)
class TeamRef:
    """A team a call could be transferred to: what a summarizer may suggest (`suggested_team`)."""

    id: str
    name: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class SummaryInput:
    customer_name: str
    entries: tuple[ContextLine, ...]
    teams: tuple[TeamRef, ...] = ()


class StructuredSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_name: str = Field(max_length=120)
    reason: str = Field(max_length=600)
    details: list[str] = Field(default_factory=list, max_length=12)
    steps_taken: list[str] = Field(default_factory=list, max_length=12)
    next_steps: str = Field(default="", max_length=600)
    sentiment: Literal["positive", "neutral", "frustrated", "angry", "unknown"] = "unknown"
    urgency: Literal["low", "medium", "high"] = "medium"
    # One of the teams' ids (SummaryInput.teams), or None; checked against them by
    # app.summaries.team_match, so whatever a provider answers only a real team id is kept.
    suggested_team: str | None = Field(default=None, max_length=64)

    @field_validator("suggested_team", mode="before")
    @classmethod
    def _team_or_none(cls, value):
        # A wrong suggestion is not worth losing the summary over: anything but a short string is none.
        return value.strip() or None if isinstance(value, str) and len(value.strip()) <= 64 else None

    @field_validator("details", "steps_taken")
    @classmethod
    def _bounded_items(cls, items: list[str]) -> list[str]:
        return [i.strip()[:300] for i in items if i and i.strip()]


@dataclass(frozen=True)
class SummaryResult:
    structured: StructuredSummary
    text: str
    speech: str
    provider: str
    model: str | None
    degraded: bool = False
    degraded_reason: str | None = None


class SummaryProvider(Protocol):
    """Turn redacted context into a StructuredSummary, or raise. Must honour `timeout`."""

    name: str
    model: str | None

    def summarize(self, data: SummaryInput, *, timeout: float) -> StructuredSummary: ...


class ProviderError(Exception):
    """A provider could not produce a usable summary (network, auth, quota, bad output)."""


# -- rendering ---------------------------------------------------------------------------------
def render_text(s: StructuredSummary) -> str:
    lines = [f"Customer: {s.customer_name}", f"Reason: {s.reason}"]
    if s.details:
        lines.append("Details:")
        lines.extend(f"- {d}" for d in s.details)
    if s.steps_taken:
        lines.append("Steps taken:")
        lines.extend(f"- {d}" for d in s.steps_taken)
    if s.next_steps:
        lines.append(f"Next steps: {s.next_steps}")
    lines.append(f"Sentiment: {s.sentiment}. Urgency: {s.urgency}.")
    return "\n".join(lines)[:TEXT_MAX_CHARS]


_SPEAKABLE = re.compile(r"[^\w\s.,;:!?'%$€£@+/-]", re.UNICODE)
_LONG_NUMBER = re.compile(r"(?<![\w.-])(#?)([A-Za-z]{0,4}-?\d[\dA-Za-z-]{3,})(?![\w])")


def _spell(match: re.Match) -> str:
    token = match.group(2)
    if re.fullmatch(r"\d{1,3}(,\d{3})*(\.\d+)?", token):
        return match.group(0)
    # Words, not identifiers: "22nd", "3-seater", "5-year" are read as they are written.
    if re.fullmatch(r"\d+(?:st|nd|rd|th)|\d+-[a-z]+", token):
        return match.group(0)
    spelled = " ".join(ch for ch in token if ch != "-")
    return ("number " if match.group(1) else "") + spelled


def speakable(text: str) -> str:
    """Plain words a TTS engine reads well: no markup, identifiers spelled out character by character."""
    text = text.replace("&", " and ").replace("#", " #")
    text = _LONG_NUMBER.sub(_spell, text)
    text = _SPEAKABLE.sub(" ", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)  # where brackets were: "(pickup) ." → "pickup."
    return re.sub(r"\s+", " ", text).strip()


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".;:")
    return f"{text}." if text else ""


_CALLING = re.compile(
    r"^(?:(?:the )?(?:customer|caller)(?: is|'s)?|they(?: are|'re)|he(?: is|'s)|she(?: is|'s)|i(?: am|'m))?\s*"
    r"(?:is |are )?(?:calling|phoning|ringing|here)\s+(?:again\s+)?(?:about|regarding|for)\s+",
    re.I,
)
# A reason that is a clause ("The customer wants a refund") follows "because"; a noun phrase
# ("Refund request for order 12345") follows "about", with the article a listener expects.
_CLAUSE = re.compile(
    r"^(?:the customer|customer|the caller|caller|they|he|she|we|i|it|their|his|her)\b"
    r"|\b(?:is|are|was|were|has|have|had|wants?|needs?|can'?t|cannot|won'?t|didn'?t|doesn'?t|did not|does not)\b",
    re.I,
)
_DETERMINED = re.compile(r"^(?:a|an|the|their|his|her|our|some|two|three|several|multiple|\d)\b", re.I)
_COUNTABLE = re.compile(
    r"^(?:refund|request|question|problem|complaint|charge|claim|dispute|damaged|broken|missing|late|wrong|"
    r"duplicate|double|cracked|new|lost|billing question|delivery|return|replacement|cancellation)\b",
    re.I,
)


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    # Acronyms and identifiers keep their capitals ("SIM card", "VPN", "QX7P2L").
    if (len(first) > 1 and first.isupper()) or any(ch.isdigit() for ch in first) or first[1:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def reason_speech(reason: str) -> str:
    """ "They are calling about a refund request for order 12345", whatever shape the reason has."""
    reason = reason.strip().rstrip(".;:")
    bare = _CALLING.sub("", reason, count=1)
    if bare != reason:
        reason = bare
    elif _CLAUSE.search(reason):
        clause = re.sub(r"^(customer|caller)\b", r"the \1", _lower_first(reason), flags=re.I)
        return f"They are calling because {clause}"
    reason = _lower_first(reason)
    if _COUNTABLE.match(reason) and not _DETERMINED.match(reason):
        article = "an" if reason[:1].lower() in "aeiou" else "a"
        reason = f"{article} {reason}"
    return f"They are calling about {reason}"


def render_speech(s: StructuredSummary, limit: int = SPEECH_MAX_CHARS) -> str:
    parts = [
        _sentence(f"The customer is {s.customer_name}"),
        _sentence(reason_speech(s.reason)),
        *(_sentence(d) for d in s.details),
    ]
    if s.steps_taken:
        parts.append(_sentence("Already tried: " + "; ".join(s.steps_taken)))
    if s.next_steps:
        parts.append(_sentence(f"Next step: {s.next_steps}"))
    parts.append(_sentence(f"Urgency is {s.urgency}, and the customer seems {s.sentiment}"))
    speech = ""
    for part in (speakable(p) for p in parts if p):
        candidate = f"{speech} {part}".strip()
        if len(candidate) > limit:
            break
        speech = candidate
    return speech or speakable(_sentence(f"The customer is {s.customer_name}"))[:limit]


def render_speech_from_text(text: str, limit: int = SPEECH_MAX_CHARS) -> str:
    """Speech for a summary Agent A wrote by hand: the same words, made speakable, cut at a
    sentence boundary within the bound."""
    speech = speakable(text)
    if len(speech) <= limit:
        return speech
    cut = speech[:limit]
    end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
    return cut[: end + 1] if end > limit // 2 else cut.rsplit(" ", 1)[0]


def finish(structured: StructuredSummary, provider: str, model: str | None, *, degraded: bool = False, reason: str | None = None) -> SummaryResult:
    return SummaryResult(structured, render_text(structured), render_speech(structured), provider, model, degraded, reason)
