"""TwiML for the customer's inbound call: greeting and bridge into `call_<id>`, or hold.

`/twilio/voice` must answer well inside Twilio's ~15 s webhook timeout, so these builders take
everything they need as arguments and do no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

from twiml.common import Voice, check_url
from twiml.sip import DIAL_TIMEOUT_MAX_S, HEADER_CALL, HEADER_ROLE, ROLE_CUSTOMER, DialRecording, SipTrunk, add_sip_dial
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


@dataclass(frozen=True)
class RecordingOptions:
    """Record the caller's bridge (RECORDING_ENABLED): the status callback URL, and what the caller
    is told first (RECORDING_NOTICE; empty says nothing)."""

    status_callback_url: str
    notice: str = ""

    def __post_init__(self) -> None:
        check_url(self.status_callback_url, "recording status callback URL")


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
    recording: RecordingOptions | None = None,
) -> VoiceResponse:
    """`[<Start><Transcription/></Start>] [<Say>notice</Say>] <Say>greeting</Say> <Dial answerOnBridge action [record…]><Sip>`.

    With `recording`, the notice is the first thing the caller hears, and the `<Dial>` records
    both sides from answer in two channels (twiml.sip.DialRecording). A caller bridged again after
    the hold loop hears it again: every `<Dial>` starts a recording of its own.

    Transcription starts first so nothing said after the greeting is missed. The `<Say>` has
    already answered the caller's call (Twilio answers an inbound call at its first `<Say>`,
    `<Play>`, `<Gather>` or `<Dial>`: "SIP TwiML" docs), so answerOnBridge does not delay billing
    here; it keeps the caller hearing ringback, rather than silence, until LiveKit answers the leg.

    LiveKit SIP answers once someone in the room publishes audio (the agent, or the worker's hold
    audio after a missed assignment; pkg/sip/inbound.go `waitSubscribe`). Twilio's default 30 s
    dial timeout could end the dial before that, so it waits the maximum Twilio allows; a leg
    LiveKit SIP gives up on (its ringing timeout) sends the caller back to the hold loop.
    """
    response = VoiceResponse()
    if transcription is not None:
        _start_transcription(response, transcription)
    if recording is not None and recording.notice:
        add_speech(response, recording.notice, voice)
    add_speech(response, greeting, voice)
    add_sip_dial(
        response,
        trunk=trunk,
        room=room,
        headers={HEADER_CALL: str(call_id), HEADER_ROLE: ROLE_CUSTOMER},
        action_url=dial_action_url,
        answer_on_bridge=True,
        timeout_s=DIAL_TIMEOUT_MAX_S,
        recording=DialRecording(recording.status_callback_url) if recording is not None else None,
    )
    return response


def queued_hold(*, voice: Voice, message: str, redirect_url: str, music_url: str | None = None, pause_seconds: int = 8) -> VoiceResponse:
    """`<Say>message</Say><Play>music</Play><Redirect method=POST>url</Redirect>`, or with
    `<Pause length/>` in place of `<Play>` when there is no music URL.

    Used while no agent is free: the caller loops back to `redirect_url` after each round so the
    webhook can bridge them once an agent is assigned, without any long-lived request (the app
    also redirects a waiting caller the moment an agent is assigned). Music, not a pause, so the
    caller never hears dead air and knows they are still connected.
    """
    if isinstance(pause_seconds, bool) or not isinstance(pause_seconds, int):
        raise ValueError("pause_seconds must be an integer")
    if not 1 <= pause_seconds <= HOLD_PAUSE_MAX_S:
        raise ValueError(f"pause_seconds must be between 1 and {HOLD_PAUSE_MAX_S}")
    response = VoiceResponse()
    add_speech(response, message, voice)
    if music_url is not None:
        response.play(check_url(music_url, "hold music URL"))
    else:
        response.pause(length=pause_seconds)
    response.redirect(check_url(redirect_url, "hold redirect URL"), method="POST")
    return response
