"""Anchored patterns end at `\\Z`, not `$`: in Python `$` also matches before a final newline, so
"alice\\n" was a valid agent id and "sip.example.com\\n" (LIVEKIT_SIP_HOST read from a file) a
valid SIP host, putting the newline into a `<Sip>` URI (found by the mutation run)."""
from __future__ import annotations

import pytest

from app import protocol
from app.services.agents import AGENT_ID
from app.summaries import llm
from twiml import common, sip

VALID = [
    (AGENT_ID, "alice"),
    (protocol._CALL_ID, "0718dc0a912edd29"),
    (protocol._ROOM_PART, "a1b2"),
    (llm._DATE, "2026-12-01"),
    (common._VOICE_NAME, "Polly.Joanna"),
    (common._LANGUAGE_TAG, "en-US"),
    (common._URL, "https://warm.example.com/twilio/voice"),
    (sip._HEADER_NAME, "X-WT-Call"),
    (sip._ROOM, "call_0718dc0a912edd29"),
    (sip._HOST, "sip.example.com:5060"),
]


@pytest.mark.parametrize("pattern, value", VALID, ids=[v for _, v in VALID])
def test_a_valid_value_matches_but_not_with_a_trailing_newline(pattern, value):
    assert pattern.match(value)
    assert not pattern.match(value + "\n")
