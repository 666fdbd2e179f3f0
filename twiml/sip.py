"""SIP URIs into LiveKit rooms, and the `<Dial><Sip>` that uses them.

The LiveKit dispatch rule is a callee rule with an empty prefix, so the SIP user part *is* the
room name. Our own metadata travels as custom headers in the URI's query part; LiveKit's inbound
trunk maps them to participant attributes. Twilio's rules for those headers (errors 13252,
21227, 32111-32113): names start with `X-`, never `X-Twilio`, use letters, digits and hyphens;
values must not carry characters illegal in SIP; the headers part stays under 1024 characters.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from twilio.twiml.voice_response import VoiceResponse

from app import protocol
from twiml.common import check_url

# Our header names and the roles they carry are the wire contract's (app.protocol): LiveKit's
# inbound trunk maps each header to the participant attribute named there.
HEADER_CALL, HEADER_ROLE, HEADER_TRANSFER = protocol.HEADER_CALL, protocol.HEADER_ROLE, protocol.HEADER_TRANSFER
ROLE_CUSTOMER, ROLE_AGENT_B = protocol.ROLE_CUSTOMER, protocol.ROLE_AGENT_B

SIP_TRANSPORTS = ("udp", "tcp", "tls")
SIP_HEADERS_MAX_CHARS = 1023  # Twilio 21227: "must be fewer than 1024 chars"

_HEADER_NAME = re.compile(r"^X-[A-Za-z0-9][A-Za-z0-9-]*\Z", re.IGNORECASE)
# Our room names (app.protocol: call_<id>, transfer_<call>_<suffix>) use only SIP-unreserved characters, so
# they go into the user part unescaped; anything else is a bug upstream, not something to encode.
_ROOM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*(?::(?P<port>[0-9]{{1,5}}))?\Z")


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in value)


SIP_EDGES = protocol.SIP_EDGES


@dataclass(frozen=True)
class SipTrunk:
    """Where and how Twilio reaches LiveKit SIP: LIVEKIT_SIP_HOST and the inbound trunk's
    digest credentials (LIVEKIT_SIP_USERNAME/PASSWORD), and optionally the Twilio edge the SIP
    leg leaves from (TWILIO_SIP_EDGE: pick the one nearest LiveKit SIP). The password is kept
    out of repr() so a logged trunk never leaks it."""

    host: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    transport: str = "tcp"
    edge: str | None = None

    def __post_init__(self) -> None:
        _check_host(self.host)
        if self.transport not in SIP_TRANSPORTS:
            raise ValueError(f"SIP transport must be one of {SIP_TRANSPORTS}")
        if self.edge is not None and self.edge not in SIP_EDGES:
            raise ValueError(f"Twilio SIP edge must be one of {', '.join(SIP_EDGES)}")
        if bool(self.username) != bool(self.password):
            raise ValueError("SIP username and password must be given together")
        for secret in (self.username, self.password):
            if secret is not None and (not isinstance(secret, str) or _has_control(secret)):
                raise ValueError("SIP credentials must be strings without control characters")


def _check_host(host: str) -> None:
    match = _HOST.match(host) if isinstance(host, str) else None
    port = match and match.group("port")
    if not match or (port and not 1 <= int(port) <= 65535):
        raise ValueError(f"invalid SIP host: {host!r}")


def _encoded_headers(headers: Mapping[str, str]) -> str:
    seen: set[str] = set()
    parts = []
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ValueError(f"SIP header name must be X- followed by letters, digits, hyphens: {name!r}")
        if name.lower().startswith("x-twilio"):
            raise ValueError(f"SIP header names starting with X-Twilio are reserved: {name!r}")
        if name.lower() in seen:
            raise ValueError(f"duplicate SIP header: {name!r}")
        seen.add(name.lower())
        if not isinstance(value, str) or not value or _has_control(value):
            raise ValueError(f"SIP header {name} needs a non-empty value without control characters")
        parts.append(name + "=" + quote(value, safe=""))
    encoded = "&".join(parts)
    if len(encoded) > SIP_HEADERS_MAX_CHARS:
        raise ValueError(f"SIP headers are {len(encoded)} characters; Twilio allows {SIP_HEADERS_MAX_CHARS}")
    return encoded


def sip_uri(room: str, sip_host: str, headers: Mapping[str, str], *, transport: str = "tcp", edge: str | None = None) -> str:
    """`sip:<room>@<host>;transport=<t>[;edge=<e>]?X-A=v&X-B=w` with header values percent-encoded.

    Raises ValueError for an invalid room, host, transport, edge, header name or value.
    """
    if not isinstance(room, str) or not _ROOM.match(room):
        raise ValueError(f"invalid room name for a SIP URI: {room!r}")
    _check_host(sip_host)
    if transport not in SIP_TRANSPORTS:
        raise ValueError(f"SIP transport must be one of {SIP_TRANSPORTS}")
    if edge is not None and edge not in SIP_EDGES:
        raise ValueError(f"Twilio SIP edge must be one of {', '.join(SIP_EDGES)}")
    uri = "sip:" + room + "@" + sip_host + ";transport=" + transport + (";edge=" + edge if edge else "")
    encoded = _encoded_headers(headers)
    return uri + "?" + encoded if encoded else uri


# Twilio's ceiling for <Dial timeout>.
DIAL_TIMEOUT_MAX_S = 600

# <Dial record>: "record-from-answer-dual" records both legs from the moment the dialled party
# answers, in two channels (https://www.twilio.com/docs/voice/twiml/dial#record); "the first
# channel of a dual-channel recording contains the parent call and the second channel contains the
# child call" (RecordingChannels, https://www.twilio.com/docs/voice/api/call-resource). Here that is the caller on one channel and
# the LiveKit room (whichever agent is talking, hold audio) on the other.
RECORD_DUAL_FROM_ANSWER = "record-from-answer-dual"
# recordingStatusCallbackEvent: in-progress, completed, absent; the default is "completed"
# (https://www.twilio.com/docs/voice/twiml/recording). "absent" too, so a recording Twilio could
# not make (too short, error 16101; silent, 16102) is known as such rather than never heard of.
RECORDING_EVENTS = "completed absent"


@dataclass(frozen=True)
class DialRecording:
    """`<Dial record recordingStatusCallback>`: where Twilio reports each recording of the dial."""

    status_callback_url: str

    def __post_init__(self) -> None:
        check_url(self.status_callback_url, "recording status callback URL")


def add_sip_dial(
    response: VoiceResponse,
    *,
    trunk: SipTrunk,
    room: str,
    headers: Mapping[str, str],
    action_url: str | None = None,
    answer_on_bridge: bool = False,
    timeout_s: int | None = None,
    recording: DialRecording | None = None,
) -> None:
    """Append `<Dial [answerOnBridge] [action method=POST] [timeout] [record recordingStatusCallback…]>
    <Sip username password>URI</Sip></Dial>`."""
    dial_attrs = {}
    if action_url is not None:
        dial_attrs = {"action": check_url(action_url, "dial action URL"), "method": "POST"}
    if answer_on_bridge:
        dial_attrs["answer_on_bridge"] = True
    if timeout_s is not None:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int) or not 5 <= timeout_s <= DIAL_TIMEOUT_MAX_S:
            raise ValueError(f"dial timeout must be an integer between 5 and {DIAL_TIMEOUT_MAX_S} seconds")
        dial_attrs["timeout"] = timeout_s
    if recording is not None:
        dial_attrs.update(
            record=RECORD_DUAL_FROM_ANSWER,
            recording_status_callback=recording.status_callback_url,
            recording_status_callback_method="POST",
            recording_status_callback_event=RECORDING_EVENTS,
        )
    dial = response.dial(**dial_attrs)
    uri = sip_uri(room, trunk.host, headers, transport=trunk.transport, edge=trunk.edge)
    dial.sip(uri, username=trunk.username or None, password=trunk.password or None)
