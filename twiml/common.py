"""Values shared by every builder: the TTS voice, URL checks, and Twilio's document size limits.

Everything here is configuration handed in by the caller (the webhook layer reads the
environment once and passes these in), so the builders stay pure and trivially testable.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

# Twilio error 32018: TwiML passed inline (the `Twiml` parameter of calls.create/update) may be at
# most 4000 characters. Complete-transfer redirects Agent B's call this way, so it is checked.
INLINE_TWIML_MAX_CHARS = 4000

# Twilio error 11750: a TwiML response body larger than 64 kB is rejected. The briefing builder
# budgets the summary so that even hostile input stays well below this.
TWIML_RESPONSE_MAX_BYTES = 64 * 1024

# Voice names look like "alice", "Polly.Joanna", "Polly.Joanna-Neural", "Google.en-US-Chirp3-HD-Aoede".
_VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
# BCP-47-ish tags Twilio accepts for <Say language>: "en-US", "cmn-CN", "es-419", "fr-FR".
_LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*\Z")
# Absolute http(s) URL or an absolute path (Twilio resolves it against the requesting URL).
_URL = re.compile(r"^(?:https?://[^\s/?#]+[^\s]*|/[^\s]*)\Z")


@dataclass(frozen=True)
class Voice:
    """The `<Say>` voice and language. Validated at construction so a misconfigured
    TWILIO_VOICE/TWILIO_LANGUAGE fails at start-up rather than on a live call."""

    voice: str = "Polly.Joanna"
    language: str = "en-US"

    def __post_init__(self) -> None:
        if not isinstance(self.voice, str) or not _VOICE_NAME.match(self.voice):
            raise ValueError(f"invalid TTS voice name: {self.voice!r}")
        if not isinstance(self.language, str) or not _LANGUAGE_TAG.match(self.language):
            raise ValueError(f"invalid TTS language tag: {self.language!r}")


DEFAULT_VOICE = Voice()


def check_url(url: str, what: str = "url") -> str:
    """Return `url` if it is an http(s) URL or an absolute path, else raise ValueError.

    The library escapes attribute values, so this is not about XML safety: it catches a
    missing PUBLIC_BASE_URL or a stray space early, instead of as a Twilio 11200 on a live call.
    """
    if not isinstance(url, str) or not _URL.match(url) or any(ord(c) < 32 for c in url):
        raise ValueError(f"invalid {what}: {url!r}")
    return url


def inline_twiml(response: VoiceResponse) -> str:
    """Serialize `response` for the `twiml=` parameter of the Calls API.

    Omits the XML declaration (Twilio does not need it and it costs 38 of the 4000 characters),
    and raises ValueError rather than letting Twilio fail the update with error 32018.
    """
    document = response.to_xml(xml_declaration=False)
    if len(document) > INLINE_TWIML_MAX_CHARS:
        raise ValueError(
            f"inline TwiML is {len(document)} characters; Twilio allows {INLINE_TWIML_MAX_CHARS}"
        )
    return document
