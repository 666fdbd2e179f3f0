"""TwiML for Agent B's phone leg: the spoken briefing with its key-press menu, and the bridge.

Briefing flow: Twilio calls Agent B, `/twilio/transfer/<tid>/answer` returns `agent_briefing`,
and the digit (or its absence) arrives at `/twilio/transfer/<tid>/gather`, which answers with
`agent_bridge` (1), `agent_briefing` again (2), or a goodbye from `twiml.endings` (9, none).

Design choices, and why:
- The announcement, summary and prompt are nested *inside* `<Gather>`, so Agent B can press a
  key at any moment (Twilio stops speaking on the first digit) instead of sitting through a
  summary they have already heard. Only `<Say>` is ever nested there.
- No input is reported with `actionOnEmptyResult="true"`: Twilio then requests the action URL
  with no (empty) `Digits` when the timeout expires. One endpoint therefore decides every
  outcome, including "no response"; a trailing `<Redirect>` would add a second path to keep in
  step. The gather handler must treat a missing and an empty `Digits` the same way.
- `finishOnKey=""` disables `#` as a terminator, so `#` is reported as the digit "#" (an
  invalid choice) rather than silently as no input.
"""
from __future__ import annotations

from xml.sax.saxutils import escape

from twilio.twiml.voice_response import VoiceResponse

from twiml.common import Voice, check_url
from twiml.sip import HEADER_CALL, HEADER_ROLE, HEADER_TRANSFER, ROLE_AGENT_B, SipTrunk, add_sip_dial
from twiml.speech import add_speech, clean_for_speech

DIGIT_ACCEPT = "1"
DIGIT_REPEAT = "2"
DIGIT_DECLINE = "9"
BRIEFING_PROMPT = (
    "Press 1 to accept the transfer. Press 2 to hear the summary again. Press 9 to decline."
)
NO_SUMMARY = "No summary is available for this call."
TRUNCATION_NOTICE = "The summary is too long to read in full. The rest is on the dashboard."
GATHER_TIMEOUT_RANGE_S = (3, 60)

# Twilio rejects responses over 64 kB (error 11750). Escaping can grow text fivefold (`&` is
# `&amp;`), so the summary is budgeted by its escaped size; 40 kB leaves ample room for the
# <Say> tags (about 60 bytes each) and the rest of the document. That is over half an hour of
# speech, so only a runaway summary is ever cut.
SUMMARY_MAX_XML_BYTES = 40_000


def _xml_size(text: str) -> int:
    return len(escape(text).encode("utf-8", "surrogatepass"))


def _fit_summary(summary: str) -> str:
    """The cleaned summary, cut at a word boundary with a spoken notice if over budget."""
    cleaned = clean_for_speech(summary)
    if _xml_size(cleaned) <= SUMMARY_MAX_XML_BYTES:
        return cleaned
    budget = SUMMARY_MAX_XML_BYTES - _xml_size(TRUNCATION_NOTICE) - 1
    kept, used = [], 0
    for ch in cleaned:
        used += _xml_size(ch)
        if used > budget:
            break
        kept.append(ch)
    head = "".join(kept)
    if " " in head:
        head = head.rsplit(" ", 1)[0]  # never end on half a word
    return " ".join((head, TRUNCATION_NOTICE))


def briefing_announcement(from_agent: str, customer_name: str) -> str:
    """"Warm transfer from <agent> for customer <name>." with either part left out if empty."""
    agent = clean_for_speech(from_agent).rstrip(" .")
    customer = clean_for_speech(customer_name).rstrip(" .")
    words = ["Warm transfer"]
    if agent:
        words += ["from", agent]
    if customer:
        words += ["for customer", customer]
    return " ".join(words) + "."


def agent_briefing(
    *,
    voice: Voice,
    from_agent: str,
    customer_name: str,
    summary: str,
    gather_url: str,
    timeout_seconds: int = 8,
    notice: str | None = None,
) -> VoiceResponse:
    """`<Gather input=dtmf numDigits=1 action method=POST timeout finishOnKey="" actionOnEmptyResult>`
    containing only `<Say>`s: optional notice (e.g. "That key is not an option."), the
    announcement, the summary in chunks under SAY_MAX_BYTES, and the 1/2/9 prompt."""
    low, high = GATHER_TIMEOUT_RANGE_S
    if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int):
        raise ValueError("timeout_seconds must be an integer")
    if not low <= timeout_seconds <= high:
        raise ValueError(f"timeout_seconds must be between {low} and {high}")
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        action=check_url(gather_url, "gather action URL"),
        method="POST",
        timeout=timeout_seconds,
        finish_on_key="",
        action_on_empty_result=True,
    )
    if notice:
        add_speech(gather, notice, voice)
    add_speech(gather, briefing_announcement(from_agent, customer_name), voice)
    add_speech(gather, _fit_summary(summary) or NO_SUMMARY, voice)
    add_speech(gather, BRIEFING_PROMPT, voice)
    return response


def agent_bridge(
    *,
    voice: Voice,
    trunk: SipTrunk,
    room: str,
    call_id: str | int,
    transfer_id: str | int,
    intro: str | None = None,
    dial_action_url: str | None = None,
    role: str = ROLE_AGENT_B,
    timeout_s: int | None = None,
) -> VoiceResponse:
    """`[<Say>intro</Say>] <Dial [action] [timeout]><Sip username password>sip:<room>@…?X-WT-Call&X-WT-Role&X-WT-Transfer`.

    Used twice: after "1" into the transfer room, and (inline, through `inline_twiml`) when the
    transfer completes, into the customer's room. `dial_action_url` is requested when the dial
    ends (the bridge failed, its room closed, or the leg was redirected elsewhere), so a failed
    bridge is reported instead of the call simply ending after Twilio's default 30 s.
    """
    response = VoiceResponse()
    if intro:
        add_speech(response, intro, voice)
    headers = {HEADER_CALL: str(call_id), HEADER_ROLE: role, HEADER_TRANSFER: str(transfer_id)}
    add_sip_dial(response, trunk=trunk, room=room, headers=headers, action_url=dial_action_url, timeout_s=timeout_s)
    return response
