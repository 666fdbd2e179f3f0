"""Pure TwiML builders (no Flask, no database, no environment).

Each builder takes plain values (voice, URLs, room and ids, text) and returns a twilio
`VoiceResponse`; the webhook layer serializes it with `str(response)` and serves it as
`text/xml`. Text from users and the LLM only ever enters as element text, cleaned for speech
and chunked under Twilio's `<Say>` limit, so the library's escaping is the only markup path.
"""
from twiml.agent import (
    BRIEFING_PROMPT,
    DIGIT_ACCEPT,
    DIGIT_DECLINE,
    DIGIT_REPEAT,
    agent_bridge,
    agent_briefing,
    briefing_announcement,
)
from twiml.common import DEFAULT_VOICE, INLINE_TWIML_MAX_CHARS, Voice, inline_twiml
from twiml.customer import RecordingOptions, TranscriptionOptions, customer_bridge, queued_hold
from twiml.endings import (
    call_ended,
    caller_left,
    connection_lost,
    hang_up,
    internal_error,
    no_selection,
    say_and_hang_up,
    transfer_cancelled,
    transfer_declined,
    transfer_unavailable,
)
from twiml.sip import (
    HEADER_CALL,
    HEADER_ROLE,
    HEADER_TRANSFER,
    ROLE_AGENT_B,
    ROLE_CUSTOMER,
    SIP_EDGES,
    SipTrunk,
    sip_uri,
)
from twiml.speech import SAY_MAX_BYTES, clean_for_speech, split_for_say

__all__ = [
    "BRIEFING_PROMPT",
    "DEFAULT_VOICE",
    "DIGIT_ACCEPT",
    "DIGIT_DECLINE",
    "DIGIT_REPEAT",
    "HEADER_CALL",
    "HEADER_ROLE",
    "HEADER_TRANSFER",
    "INLINE_TWIML_MAX_CHARS",
    "ROLE_AGENT_B",
    "ROLE_CUSTOMER",
    "RecordingOptions",
    "SAY_MAX_BYTES",
    "SIP_EDGES",
    "SipTrunk",
    "TranscriptionOptions",
    "Voice",
    "agent_bridge",
    "agent_briefing",
    "briefing_announcement",
    "call_ended",
    "caller_left",
    "clean_for_speech",
    "connection_lost",
    "customer_bridge",
    "hang_up",
    "inline_twiml",
    "internal_error",
    "no_selection",
    "queued_hold",
    "say_and_hang_up",
    "sip_uri",
    "split_for_say",
    "transfer_cancelled",
    "transfer_declined",
    "transfer_unavailable",
]
