"""What a failed SIP bridge into LiveKit means, in words an operator can act on.

Twilio reports how a `<Dial><Sip>` ended to its `action` URL: `DialCallStatus` and, for `<Sip>`,
`DialSipResponseCode`, "the SIP response code as a result of the INVITE attempt" (Twilio's
`<Sip>` TwiML reference, "Additional parameters"); its call status callbacks carry
`SipResponseCode` (Call resource, StatusCallback parameters). The responses LiveKit SIP v1.8.0
gives, and why (pkg/sip/inbound.go): 401/407 the trunk's digest credentials did not match, 404 no
trunk or dispatch rule matched, 486 the call waited longer than the trunk's ringing timeout for
someone in the room to publish audio (or the room closed), 487 the caller cancelled.
"""
from __future__ import annotations

SIP_MEANINGS = {
    401: "LiveKit SIP rejected the credentials (check LIVEKIT_SIP_USERNAME/PASSWORD and run provision-sip)",
    403: "LiveKit SIP refused the call (the trunk's allowed addresses?)",
    404: "LiveKit SIP has no trunk or dispatch rule for this call (run flask livekit provision-sip)",
    407: "LiveKit SIP rejected the credentials (check LIVEKIT_SIP_USERNAME/PASSWORD and run provision-sip)",
    408: "LiveKit SIP did not answer in time",
    480: "LiveKit SIP is temporarily unavailable",
    486: "LiveKit SIP gave up waiting for audio in the room (ringing timeout) or the room closed",
    487: "the call attempt was cancelled",
    488: "LiveKit SIP could not agree on a codec with Twilio",
    500: "LiveKit SIP failed internally",
    503: "LiveKit SIP is unavailable (is livekit-sip running and connected to Redis?)",
}
DIAL_MEANINGS = {
    "busy": "the SIP service answered busy",
    "no-answer": "the SIP service did not answer within the dial timeout",
    "failed": "Twilio could not reach the SIP service",
    "canceled": "the attempt was cancelled",
}


def parse_sip_code(value: str | None) -> int | None:
    """A SIP response code from a Twilio parameter; None when absent or not a 3-digit code."""
    text = (value or "").strip()
    if len(text) == 3 and text.isdigit() and text[0] in "3456":
        return int(text)
    return None


def describe_sip(code: int | None) -> str | None:
    if code is None:
        return None
    return SIP_MEANINGS.get(code, f"LiveKit SIP answered {code}")


def bridge_failure_reason(what: str, dial_status: str, sip_code: int | None) -> str:
    """'<what>: <meaning> (SIP 407).' from whatever Twilio told us."""
    meaning = describe_sip(sip_code) or DIAL_MEANINGS.get(dial_status, f"the bridge ended ({dial_status or 'no status'})")
    suffix = f" (SIP {sip_code})" if sip_code is not None else ""
    return f"{what}: {meaning}{suffix}."
