"""TwiML for the customer's inbound call: greeting and bridge into `call_<id>`, or hold.

`/twilio/voice` must answer well inside Twilio's ~15 s webhook timeout, so these builders take
everything they need as arguments and do no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

from twiml.common import Voice, check_url
from twiml.sip import DIAL_TIMEOUT_MAX_S, HEADER_CALL, HEADER_ROLE, ROLE_CUSTOMER, SipTrunk, add_sip_dial
from twiml.speech import add_speech

TRANSCRIPTION_TRACKS = ("inbound_track", "outbound_track", "both_tracks")
HOLD_PAUSE_MAX_S = 120


@dataclass(frozen=True)
class TranscriptionOptions:
    """Attributes of `<Start><Transcription>` (Twilio Real-Time Transcription).

    On the customer's inbound call the inbound track is what the customer says and the outbound
    track is what Twilio plays to them (the agent over SIP, and our `<Say>` prompts); the
    labels name them for the status callback. Partial results are off by default because the
    app stores final utterances only and partials would multiply webhook traffic.
    """

    status_callback_url: str
    track: str = "both_tracks"
    partial_results: bool = False
    language_code: str | None = None
    inbound_track_label: str = "customer"
    outbound_track_label: str = "agent"
    name: str | None = None
    transcription_engine: str | None = None
    speech_model: str | None = None
    enable_automatic_punctuation: bool = True

    def __post_init__(self) -> None:
        check_url(self.status_callback_url, "transcription status callback URL")
        if self.track not in TRANSCRIPTION_TRACKS:
            raise ValueError(f"transcription track must be one of {TRANSCRIPTION_TRACKS}")


def _start_transcription(response: VoiceResponse, options: TranscriptionOptions) -> None:
    start = response.start()
    start.transcription(
        name=options.name,
        track=options.track,
        status_callback_url=options.status_callback_url,
        status_callback_method="POST",
        inbound_track_label=options.inbound_track_label,
        outbound_track_label=options.outbound_track_label,
        partial_results=options.partial_results,
        language_code=options.language_code,
        transcription_engine=options.transcription_engine,
        speech_model=options.speech_model,
        enable_automatic_punctuation=options.enable_automatic_punctuation,
    )


def customer_bridge(
    *,
    voice: Voice,
    greeting: str,
    trunk: SipTrunk,
    room: str,
    call_id: str | int,
    dial_action_url: str,
    transcription: TranscriptionOptions | None = None,
) -> VoiceResponse:
    """`[<Start><Transcription/></Start>] <Say>greeting</Say> <Dial answerOnBridge action><Sip>`.

    Transcription starts first so nothing said after the greeting is missed. answerOnBridge
    keeps the caller hearing ringback (and unbilled) until LiveKit answers the SIP leg.

    LiveKit SIP answers only when someone in the room publishes audio, i.e. when an agent joins;
    if the assigned agent never does, the app hands the call to another agent in the same room.
    Twilio's default 30 s dial timeout would hang up on that caller, so the dial waits the
    maximum Twilio allows.
    """
    response = VoiceResponse()
    if transcription is not None:
        _start_transcription(response, transcription)
    add_speech(response, greeting, voice)
    add_sip_dial(
        response,
        trunk=trunk,
        room=room,
        headers={HEADER_CALL: str(call_id), HEADER_ROLE: ROLE_CUSTOMER},
        action_url=dial_action_url,
        answer_on_bridge=True,
        timeout_s=DIAL_TIMEOUT_MAX_S,
    )
    return response


def queued_hold(*, voice: Voice, message: str, redirect_url: str, pause_seconds: int = 15) -> VoiceResponse:
    """`<Say>message</Say><Pause length/><Redirect method=POST>url</Redirect>`.

    Used while no agent is free: the caller loops back to `redirect_url` every few seconds so
    the webhook can bridge them as soon as an agent is assigned, without any long-lived request.
    """
    if isinstance(pause_seconds, bool) or not isinstance(pause_seconds, int):
        raise ValueError("pause_seconds must be an integer")
    if not 1 <= pause_seconds <= HOLD_PAUSE_MAX_S:
        raise ValueError(f"pause_seconds must be between 1 and {HOLD_PAUSE_MAX_S}")
    response = VoiceResponse()
    add_speech(response, message, voice)
    response.pause(length=pause_seconds)
    response.redirect(check_url(redirect_url, "hold redirect URL"), method="POST")
    return response
