"""Graceful endings: a short `<Say>` then `<Hangup/>`.

Every webhook that fails internally still answers with one of these (docs/architecture.md §9), so they take
nothing that could itself fail: just the voice and, optionally, replacement wording.
"""
from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from twiml.common import Voice
from twiml.speech import add_speech

CALLER_LEFT = "The caller has hung up, so the transfer has ended. Goodbye."
TRANSFER_CANCELLED = "The transfer has been cancelled. Goodbye."
TRANSFER_DECLINED = "You declined the transfer. Goodbye."
NO_SELECTION = "No key was pressed, so the transfer was declined. Goodbye."
INTERNAL_ERROR = "We are sorry, something went wrong on our side. Please try again later. Goodbye."
TRANSFER_UNAVAILABLE = "This transfer is no longer waiting for you. Goodbye."
CALL_ENDED = "Thank you for calling. Goodbye."
CONNECTION_LOST = "We are sorry, we lost the connection to your agent. Please call us again. Goodbye."


def hang_up() -> VoiceResponse:
    """`<Hangup/>` alone: for a machine that answered Agent B's phone (nothing is said to a
    voicemail box, so no customer detail is left on it) and for callbacks on calls already gone."""
    response = VoiceResponse()
    response.hangup()
    return response


def say_and_hang_up(voice: Voice, text: str) -> VoiceResponse:
    """`<Say>text</Say>…<Hangup/>`; the hang-up is explicit so nothing after it can run."""
    response = VoiceResponse()
    add_speech(response, text, voice)
    response.hangup()
    return response


def caller_left(voice: Voice) -> VoiceResponse:
    """For Agent B's leg when the customer hangs up during ringing or briefing."""
    return say_and_hang_up(voice, CALLER_LEFT)


def transfer_cancelled(voice: Voice) -> VoiceResponse:
    """For Agent B's leg when Agent A cancels."""
    return say_and_hang_up(voice, TRANSFER_CANCELLED)


def transfer_declined(voice: Voice) -> VoiceResponse:
    """For Agent B's leg after pressing 9."""
    return say_and_hang_up(voice, TRANSFER_DECLINED)


def no_selection(voice: Voice) -> VoiceResponse:
    """For Agent B's leg when the gather timed out with no key."""
    return say_and_hang_up(voice, NO_SELECTION)


def internal_error(voice: Voice) -> VoiceResponse:
    """The apology any Twilio webhook returns instead of a 500."""
    return say_and_hang_up(voice, INTERNAL_ERROR)


def transfer_unavailable(voice: Voice) -> VoiceResponse:
    """For Agent B's leg when the transfer ended (failed, timed out, handed elsewhere) before they answered."""
    return say_and_hang_up(voice, TRANSFER_UNAVAILABLE)


def call_ended(voice: Voice) -> VoiceResponse:
    """For the customer when the agent ended the call."""
    return say_and_hang_up(voice, CALL_ENDED)


def connection_lost(voice: Voice) -> VoiceResponse:
    """For the customer when the bridge into LiveKit ended or could not be made."""
    return say_and_hang_up(voice, CONNECTION_LOST)
