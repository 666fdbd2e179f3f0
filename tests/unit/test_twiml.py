"""TwiML builders: parsed with ElementTree and checked element by element.

The hostile-input tests are the point of this file: whatever a caller or the LLM puts in a name
or summary, the document must stay well-formed, contain only the elements the builder made,
keep every `<Say>` under the limit, and lose nothing but the characters the cleaner strips.
"""
from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl

import pytest
from twilio.twiml.voice_response import VoiceResponse

import twiml
from twiml import agent as agent_module
from twiml.common import TWIML_RESPONSE_MAX_BYTES
from twiml.sip import add_sip_dial

VOICE = twiml.Voice("Polly.Joanna", "en-US")
TRUNK = twiml.SipTrunk(host="lk-sip.example.com", username="twilio", password="s3cr&t\"<pw>")
HOSTILE = '</Say><Dial>+19005550000</Dial> Tom & Jerry <b>bold</b> "quoted" \'single\' 😀👍🏽🇺🇸 1️⃣'


def parse(response) -> ET.Element:
    """Serialize as Twilio would receive it, then parse; a malformed document raises here."""
    return ET.fromstring(str(response).encode("utf-8"))


def tags(root: ET.Element) -> set[str]:
    return {el.tag for el in root.iter()}


def say_texts(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter("Say")]


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def sip_parts(sip_text: str) -> tuple[str, dict[str, str]]:
    """Split a SIP URI into the part before `?` and its decoded headers."""
    base, _, query = sip_text.partition("?")
    return base, dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))


# --- SIP URI -------------------------------------------------------------------------------------


def test_sip_uri_has_room_host_transport_and_headers_in_order():
    uri = twiml.sip_uri("call_42", "lk-sip.example.com", {"X-WT-Call": "42", "X-WT-Role": "customer"})
    assert uri == "sip:call_42@lk-sip.example.com;transport=tcp?X-WT-Call=42&X-WT-Role=customer"


def test_sip_uri_percent_encodes_header_values():
    value = "a b&c=d;e?f/g%h\u00e9"
    uri = twiml.sip_uri("call_1", "host.example", {"X-WT-Note": value})
    query = uri.partition("?")[2]
    assert set(query.partition("=")[2]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789%-._~")
    assert sip_parts(uri)[1] == {"X-WT-Note": value}


def test_sip_uri_without_headers_has_no_query_and_keeps_port():
    assert twiml.sip_uri("room-1", "10.0.0.5:5070", {}, transport="udp") == "sip:room-1@10.0.0.5:5070;transport=udp"


@pytest.mark.parametrize(
    "name",
    ["WT-Call", "Call", "X-", "X-Bad Name", "X-Bad:Name", "X-Bad_Name", "X-Twilio-Call", "x-twilio-foo", "X-TWILIO"],
)
def test_sip_uri_rejects_bad_header_names(name):
    with pytest.raises(ValueError):
        twiml.sip_uri("call_1", "host.example", {name: "1"})


def test_sip_uri_accepts_lowercase_x_prefix_but_not_duplicates_differing_in_case():
    assert twiml.sip_uri("call_1", "h.example", {"x-wt-call": "1"}).endswith("?x-wt-call=1")
    with pytest.raises(ValueError):
        twiml.sip_uri("call_1", "h.example", {"X-WT-Call": "1", "x-wt-call": "2"})


@pytest.mark.parametrize("value", ["", "a\r\nVia: evil", "a\x00b", "\u202eevil", 42])
def test_sip_uri_rejects_empty_control_or_non_string_values(value):
    with pytest.raises(ValueError):
        twiml.sip_uri("call_1", "host.example", {"X-WT-Call": value})


def test_sip_uri_rejects_headers_longer_than_twilio_allows():
    with pytest.raises(ValueError, match="1023"):
        twiml.sip_uri("call_1", "host.example", {"X-WT-Note": "x" * 1020})


@pytest.mark.parametrize("room", ["", "call 1", "call@1", "a;b", "a?b", "_leading", "x" * 129, "caf\u00e9"])
def test_sip_uri_rejects_bad_rooms(room):
    with pytest.raises(ValueError):
        twiml.sip_uri(room, "host.example", {})


@pytest.mark.parametrize("host", ["", "host;x=1", "user@host", "-bad.example", "host:0", "host:70000", "a..b", "h st"])
def test_sip_uri_rejects_bad_hosts(host):
    with pytest.raises(ValueError):
        twiml.sip_uri("call_1", host, {})


def test_sip_trunk_validates_and_hides_password():
    assert "s3cr" not in repr(TRUNK)
    with pytest.raises(ValueError):
        twiml.SipTrunk(host="h.example", username="only-user")
    with pytest.raises(ValueError):
        twiml.SipTrunk(host="h.example", transport="ws")
    with pytest.raises(ValueError):
        twiml.SipTrunk(host="bad host")


# --- customer greeting and bridge ----------------------------------------------------------------


def customer_doc(**overrides) -> ET.Element:
    args = dict(
        voice=VOICE,
        greeting="Thanks for calling. Connecting you to an agent.",
        trunk=TRUNK,
        room="call_42",
        call_id=42,
        dial_action_url="https://app.example.com/twilio/dial-action",
    )
    args.update(overrides)
    return parse(twiml.customer_bridge(**args))


def test_customer_bridge_dials_livekit_with_credentials_headers_and_action():
    root = customer_doc()
    assert [child.tag for child in root] == ["Say", "Dial"]
    dial = root.find("Dial")
    assert dial.get("answerOnBridge") == "true"
    # The caller keeps ringing while the app finds an agent: Twilio's 30 s default would drop them.
    assert dial.get("timeout") == "600"
    assert dial.get("action") == "https://app.example.com/twilio/dial-action"
    assert dial.get("method") == "POST"
    sips = dial.findall("Sip")
    assert len(sips) == 1 and len(list(dial)) == 1
    sip = sips[0]
    assert sip.get("username") == "twilio"
    assert sip.get("password") == 's3cr&t"<pw>'
    base, headers = sip_parts(sip.text)
    assert base == "sip:call_42@lk-sip.example.com;transport=tcp"
    assert headers == {"X-WT-Call": "42", "X-WT-Role": "customer"}
    assert not any(name.lower().startswith("x-twilio") for name in headers)


def test_customer_bridge_records_both_sides_from_answer_after_the_notice():
    recording = twiml.RecordingOptions("https://app.example.com/twilio/recording", "Calls are <recorded> & kept 30 days.")
    root = customer_doc(recording=recording)
    assert [child.tag for child in root] == ["Say", "Say", "Dial"]
    assert root[0].text == "Calls are recorded & kept 30 days."  # cleaned for speech, escaped by the library
    dial = root.find("Dial")
    assert dial.get("record") == "record-from-answer-dual"
    assert dial.get("recordingStatusCallback") == "https://app.example.com/twilio/recording"
    assert dial.get("recordingStatusCallbackMethod") == "POST"
    assert dial.get("recordingStatusCallbackEvent") == "completed absent"
    assert dial.get("answerOnBridge") == "true" and dial.get("action") == "https://app.example.com/twilio/dial-action"


def test_customer_bridge_records_without_a_notice_and_not_at_all_unasked():
    root = customer_doc(recording=twiml.RecordingOptions("https://app.example.com/twilio/recording"))
    assert [child.tag for child in root] == ["Say", "Dial"] and root.find("Dial").get("record") == "record-from-answer-dual"
    assert customer_doc().find("Dial").get("record") is None
    with pytest.raises(ValueError):
        twiml.RecordingOptions("not a url")


def test_customer_bridge_omits_credentials_when_trunk_has_none():
    sip = customer_doc(trunk=twiml.SipTrunk(host="localhost:5060")).find("Dial/Sip")
    assert sip.get("username") is None and sip.get("password") is None
    assert sip.text.startswith("sip:call_42@localhost:5060;transport=tcp?")


def test_customer_bridge_starts_transcription_first_with_twilio_attribute_names():
    options = twiml.TranscriptionOptions(status_callback_url="https://app.example.com/twilio/transcription")
    root = customer_doc(transcription=options)
    assert [child.tag for child in root] == ["Start", "Say", "Dial"]
    transcription = root.find("Start/Transcription")
    assert transcription.attrib == {
        "statusCallbackUrl": "https://app.example.com/twilio/transcription",
        "statusCallbackMethod": "POST",
        "track": "both_tracks",
        "partialResults": "false",
        "inboundTrackLabel": "customer",
        "outboundTrackLabel": "agent",
        "enableAutomaticPunctuation": "true",
    }


def test_transcription_options_reject_unknown_track_and_bad_url():
    with pytest.raises(ValueError):
        twiml.TranscriptionOptions(status_callback_url="https://a.example/t", track="both")
    with pytest.raises(ValueError):
        twiml.TranscriptionOptions(status_callback_url="not a url")


def test_customer_bridge_with_hostile_greeting_stays_one_dial():
    root = customer_doc(greeting=HOSTILE)
    assert tags(root) == {"Response", "Say", "Dial", "Sip"}
    assert len(root.findall(".//Dial")) == 1
    assert "+19005550000" in " ".join(say_texts(root))


def test_customer_bridge_rejects_bad_action_url():
    with pytest.raises(ValueError):
        customer_doc(dial_action_url="https://app.example.com/twilio/dial action")


# --- queued caller hold --------------------------------------------------------------------------


def test_queued_hold_says_pauses_and_redirects_by_post():
    root = parse(twiml.queued_hold(voice=VOICE, message="All agents are busy.", redirect_url="/twilio/voice", pause_seconds=12))
    assert [child.tag for child in root] == ["Say", "Pause", "Redirect"]
    assert root.find("Pause").get("length") == "12"
    redirect = root.find("Redirect")
    assert redirect.get("method") == "POST" and redirect.text == "/twilio/voice"


@pytest.mark.parametrize("seconds", [0, -1, 121, 2.5, True])
def test_queued_hold_rejects_bad_pause(seconds):
    with pytest.raises(ValueError):
        twiml.queued_hold(voice=VOICE, message="Hold", redirect_url="/twilio/voice", pause_seconds=seconds)


# --- Agent B briefing ----------------------------------------------------------------------------


def briefing_doc(summary: str, **overrides) -> ET.Element:
    args = dict(
        voice=VOICE,
        from_agent="Alice",
        customer_name="Bob Smith",
        summary=summary,
        gather_url="https://app.example.com/twilio/transfer/7/gather",
    )
    args.update(overrides)
    return parse(twiml.agent_briefing(**args))


def test_briefing_gathers_one_digit_and_reports_no_input_to_the_action():
    root = briefing_doc("Customer wants a refund for order 1234.")
    assert [child.tag for child in root] == ["Gather"]
    gather = root.find("Gather")
    assert gather.attrib == {
        "input": "dtmf",
        "numDigits": "1",
        "action": "https://app.example.com/twilio/transfer/7/gather",
        "method": "POST",
        "timeout": "8",
        "finishOnKey": "",
        "actionOnEmptyResult": "true",
    }
    texts = [say.text for say in gather]
    assert {child.tag for child in gather} == {"Say"}
    assert texts[0] == "Warm transfer from Alice for customer Bob Smith."
    assert texts[1] == "Customer wants a refund for order 1234."
    prompt = texts[-1]
    assert re.search(r"\b1\b.*accept", prompt) and re.search(r"\b2\b.*again", prompt) and re.search(r"\b9\b.*decline", prompt)
    assert all(say.get("voice") == "Polly.Joanna" and say.get("language") == "en-US" for say in gather)


def test_briefing_notice_comes_first_and_empty_summary_is_announced():
    root = briefing_doc("   \u200b😀  ", notice="That key is not an option.")
    texts = say_texts(root)
    assert texts[0] == "That key is not an option."
    assert agent_module.NO_SUMMARY in texts


def test_briefing_announcement_drops_missing_parts_and_cleans_names():
    assert twiml.briefing_announcement("", "") == "Warm transfer."
    assert twiml.briefing_announcement("<Al>", "Dr. Who.") == "Warm transfer from Al for customer Dr. Who."


@pytest.mark.parametrize("timeout", [0, 2, 61, "8", 8.0])
def test_briefing_rejects_bad_timeouts(timeout):
    with pytest.raises(ValueError):
        briefing_doc("x", timeout_seconds=timeout)


def hostile_summary(n_words: int) -> str:
    """Numbered words interleaved with injection attempts, to ~12,000 characters."""
    words = []
    for i in range(n_words):
        words.append(f"w{i}")
        if i % 97 == 0:
            words.append(HOSTILE)
        if i % 13 == 0:
            words.append("End.")
    return " ".join(words)


def test_hostile_12000_char_summary_is_well_formed_bounded_and_lossless():
    n_words = 1900
    summary = hostile_summary(n_words)
    assert len(summary) >= 12_000
    injections = len(range(0, n_words, 97))
    raw = str(twiml.agent_briefing(voice=VOICE, from_agent="A & B <x>", customer_name='"Q" 😀', summary=summary,
                                   gather_url="https://app.example.com/g"))
    root = ET.fromstring(raw.encode("utf-8"))

    assert tags(root) == {"Response", "Gather", "Say"}
    assert "<Dial" not in raw and "<b>" not in raw
    gather = root.find("Gather")
    assert all(child.tag == "Say" and len(child) == 0 for child in gather)
    texts = say_texts(root)
    assert all(0 < utf8_len(text) <= twiml.SAY_MAX_BYTES for text in texts)

    summary_says = texts[1:-1]
    assert len(summary_says) >= 12
    spoken = " ".join(summary_says)
    # Nothing lost: every numbered word, in order, and the hostile text's words and punctuation.
    assert [int(m) for m in re.findall(r"\bw(\d+)\b", spoken)] == list(range(n_words))
    assert spoken.count("+19005550000") == summary.count("+19005550000") == injections
    assert spoken.count("Tom & Jerry") == spoken.count('"quoted"') == spoken.count("'single'") == injections
    assert spoken.count("/Say Dial") == injections and spoken.count("End.") == summary.count("End.")
    # Only the stripped characters are gone.
    assert not set(spoken) & set("<>😀👍🏽🇺🇸\ufe0f\u20e3")
    assert "1" in spoken.split("Jerry")[1]  # the keycap's digit survives, its decoration does not
    assert texts[0] == 'Warm transfer from A & B x for customer "Q".'


def test_runaway_summary_is_cut_with_notice_and_document_stays_under_64kb():
    summary = "& " * 60_000 + "Z" * 30_000
    raw = str(twiml.agent_briefing(voice=VOICE, from_agent="A", customer_name="C", summary=summary,
                                   gather_url="https://app.example.com/g"))
    assert len(raw.encode("utf-8")) < TWIML_RESPONSE_MAX_BYTES
    texts = say_texts(ET.fromstring(raw.encode("utf-8")))
    assert all(utf8_len(text) <= twiml.SAY_MAX_BYTES for text in texts)
    assert texts[-2].endswith(agent_module.TRUNCATION_NOTICE)
    assert texts[-1] == twiml.BRIEFING_PROMPT
    assert " ".join(texts).count("&") > 5_000  # cut by budget, not emptied


@pytest.mark.parametrize("digits", [5, 6, 7])  # different word lengths, so some cut lands mid-word
def test_runaway_summary_is_cut_between_words(digits):
    words = [f"item{i:0{digits}d}" for i in range(8000)]  # ~80 kB or more of distinct words
    texts = say_texts(briefing_doc(" ".join(words)))
    spoken = " ".join(texts[1:-1])
    assert spoken.endswith(" " + agent_module.TRUNCATION_NOTICE)
    kept = spoken[: -len(agent_module.TRUNCATION_NOTICE)].split()
    assert 1000 < len(kept) < len(words)
    assert kept == words[: len(kept)]  # a prefix of whole words: the last one is not cut in half


# --- Agent B bridge ------------------------------------------------------------------------------


def test_agent_bridge_into_transfer_room_carries_transfer_header_and_credentials():
    response = twiml.agent_bridge(voice=VOICE, trunk=TRUNK, room="transfer_42_ab12", call_id="42", transfer_id=7,
                                  intro="Connecting you to Alice.", dial_action_url="https://app.example.com/d")
    root = parse(response)
    assert [child.tag for child in root] == ["Say", "Dial"]
    dial = root.find("Dial")
    assert dial.get("action") == "https://app.example.com/d" and dial.get("answerOnBridge") is None
    sip = dial.find("Sip")
    assert (sip.get("username"), sip.get("password")) == ("twilio", 's3cr&t"<pw>')
    base, headers = sip_parts(sip.text)
    assert base == "sip:transfer_42_ab12@lk-sip.example.com;transport=tcp"
    assert headers == {"X-WT-Call": "42", "X-WT-Role": "agent_b", "X-WT-Transfer": "7"}


def test_agent_bridge_inline_into_customer_room_fits_twilio_inline_limit():
    response = twiml.agent_bridge(voice=VOICE, trunk=TRUNK, room="call_42", call_id=42, transfer_id=7)
    document = twiml.inline_twiml(response)
    assert not document.startswith("<?xml")
    root = ET.fromstring(document)
    assert [child.tag for child in root] == ["Dial"]
    assert root.find("Dial").get("action") is None
    assert sip_parts(root.find("Dial/Sip").text)[0].startswith("sip:call_42@")


def test_inline_twiml_refuses_documents_twilio_would_reject():
    with pytest.raises(ValueError, match="4000"):
        twiml.inline_twiml(twiml.say_and_hang_up(VOICE, "word " * 900))


# --- endings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "builder",
    [
        twiml.caller_left,
        twiml.transfer_cancelled,
        twiml.transfer_declined,
        twiml.no_selection,
        twiml.internal_error,
        twiml.transfer_unavailable,
        twiml.call_ended,
        twiml.connection_lost,
    ],
)
def test_endings_say_then_hang_up(builder):
    root = parse(builder(VOICE))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root.find("Say").text.endswith("Goodbye.")
    assert root.find("Say").attrib == {"voice": VOICE.voice, "language": VOICE.language}


def test_bare_hang_up_says_nothing():
    root = parse(twiml.hang_up())
    assert [child.tag for child in root] == ["Hangup"] and not say_texts(root)


def test_say_and_hang_up_with_only_stripped_text_still_hangs_up():
    root = parse(twiml.say_and_hang_up(VOICE, "😀 <> \x07"))
    assert [child.tag for child in root] == ["Hangup"]


# --- text cleaning and chunking ------------------------------------------------------------------


KEPT_AS_IS = "Café 日本語 25°C © 2024 — \u201cquoted\u201d & 'single' $5 50% a@b.com"


@pytest.mark.parametrize(
    "raw, spoken",
    [
        ("a\x00b\x07c\x1bd", "abcd"),
        ("line one\nline\ttwo\r\n", "line one line two"),
        ("pass\u200bword \u202eevil\u202c", "password evil"),
        ("lone \ud800 surrogate \ufffe", "lone surrogate"),
        ("**Bold** # Heading `code` [link](x) {a|b} ~c^", "Bold Heading code link (x) a b c"),
        ("family 👨‍👩‍👧 flag 🇺🇸 thumbs 👍🏽 key 1️⃣", "family flag thumbs key 1"),
        (KEPT_AS_IS, KEPT_AS_IS),
        ("full\uff1cwidth\uff1e\u00a0nbsp \ufb01ne", "full width nbsp fine"),
    ],
)
def test_clean_for_speech(raw, spoken):
    assert twiml.clean_for_speech(raw) == spoken


def test_clean_for_speech_rejects_non_text():
    with pytest.raises(TypeError):
        twiml.clean_for_speech(None)


def test_split_prefers_sentence_boundaries():
    first, second = "A" * 590 + ".", "B" * 590 + "!"
    assert twiml.split_for_say(first + " " + second) == [first, second]


def test_split_long_sentence_at_words_and_never_mid_word():
    words = [f"word{i}" for i in range(400)]
    chunks = twiml.split_for_say(" ".join(words), max_bytes=100)
    assert len(chunks) > 1
    assert all(utf8_len(chunk) <= 100 for chunk in chunks)
    assert [w for chunk in chunks for w in chunk.split(" ")] == words


def test_split_counts_utf8_bytes_not_characters():
    text = "日本語のテキスト" * 300  # 3 bytes per character, no spaces or sentence ends
    chunks = twiml.split_for_say(text)
    assert all(utf8_len(chunk) <= twiml.SAY_MAX_BYTES for chunk in chunks)
    assert "".join(chunks) == text
    assert len(chunks) == -(-utf8_len(text) // (twiml.SAY_MAX_BYTES - twiml.SAY_MAX_BYTES % 3))


def test_split_edge_cases():
    assert twiml.split_for_say("") == [] and twiml.split_for_say("  \n ") == []
    assert twiml.split_for_say("Short. Text!") == ["Short. Text!"]
    assert twiml.split_for_say("x" * 2500) == ["x" * 1000, "x" * 1000, "x" * 500]
    with pytest.raises(ValueError):
        twiml.split_for_say("abc", max_bytes=3)


# --- configuration values ------------------------------------------------------------------------


@pytest.mark.parametrize("voice, language", [("", "en-US"), ("Polly Joanna", "en-US"), ("Polly.Joanna", "english"),
                                             ("Polly.Joanna", "en_US"), ("Polly.Joanna", "")])
def test_voice_rejects_bad_configuration(voice, language):
    with pytest.raises(ValueError):
        twiml.Voice(voice, language)


def test_voice_is_frozen_and_used_by_every_say():
    with pytest.raises(dataclasses.FrozenInstanceError):
        VOICE.voice = "alice"
    google = twiml.Voice("Google.fr-FR-Standard-A", "fr-FR")
    root = parse(twiml.caller_left(google))
    assert {(s.get("voice"), s.get("language")) for s in root.iter("Say")} == {("Google.fr-FR-Standard-A", "fr-FR")}


@pytest.mark.parametrize("bad", [0, 4, 601, True, "30"])
def test_dial_timeout_is_bounded_by_twilio_limits(bad):
    response = VoiceResponse()
    with pytest.raises(ValueError):
        add_sip_dial(response, trunk=twiml.SipTrunk("sip.example.com"), room="call_1", headers={}, timeout_s=bad)
