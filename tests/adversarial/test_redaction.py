"""Card numbers and SSNs that an adversarial review got past redaction, into storage, into the
summary Agent B is handed (and hears), and so into the LLM prompt and text-to-speech. Each test
replays one finding through the app and looks everywhere the number could surface: the stored
context, the `transfer_requested` event Agent B receives, the summary text and its speech."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.models import Call, ContextEntry, utcnow
from app.services.summaries import SPLIT_WINDOW_S
from tests.support import start_call, start_transfer
from tests.telephony import TELEPHONY, agent_on, make_sim

CARD = "4111111111111111"
SSN = "123456789"
_MARKER = re.compile(r"\[[^\]]*\]")
_SPOKEN = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_SPOKEN_WORD = re.compile(r"\b(" + "|".join(_SPOKEN) + r")\b", re.I)


def _digits(*texts: str) -> str:
    """The digits of the texts run together, written or spoken, redaction markers left out: a
    number that survived in them shows up here however it was punctuated, spoken or split."""
    joined = _MARKER.sub(" ", " ".join(texts))
    joined = _SPOKEN_WORD.sub(lambda m: _SPOKEN[m.group(1).lower()], joined)
    return re.sub(r"\D", "", joined)


def _last(agent, type_: str) -> dict:
    items = [n["payload"] for n in agent.notifications() if n["type"] == type_]
    assert items, (type_, agent.types())
    return items[-1]


def _assert_hidden(secret: str, a, b, session_id: str, summary: dict) -> list[str]:
    """Neither the stored context, nor Agent B's event, nor the summary (text or speech) has the
    secret. Returns the stored context texts."""
    context = [e["text"] for e in a.get(f"/api/calls/{session_id}").json["call"]["context"]]
    assert secret not in _digits(*context), context
    requested = _last(b, "transfer_requested")
    for handed in (summary, requested["summary"]):
        assert secret not in _digits(handed["text"]), handed["text"]
        assert secret not in _digits(handed["speech"]), handed["speech"]
    assert secret not in _digits(json.dumps(requested)), requested
    return context


@pytest.mark.parametrize(
    "note,secret,marker",
    [
        ("Card 4111.1111.1111.1111 was declined.", CARD, "[card ending 1111]"),
        ("Card 4111  1111  1111  1111 was declined.", CARD, "[card ending 1111]"),
        ("Card 4111/1111/1111/1111 was declined.", CARD, "[card ending 1111]"),
        ("Card no:-4111111111111111 was declined.", CARD, "[card ending 1111]"),
        ("Card 4111-1111.1111 1111 was declined.", CARD, "[card ending 1111]"),
        ("Card 4111\t1111\t1111\t1111 was declined.", CARD, "[card ending 1111]"),
        ("Her ssn 123.45.6789 is on file.", SSN, "[SSN redacted]"),
    ],
    ids=["dotted", "multi-space", "slashed", "no-colon-dash", "mixed", "tabs", "ssn-dotted"],
)
def test_a_number_written_with_any_separators_is_redacted(client, make_agent, note, secret, marker):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a, "Maria Lopez")
    assert a.post("/api/add-context", {"session_id": call["session_id"], "text": note}).status_code == 201
    t = start_transfer(a, call, "bob")
    context = _assert_hidden(secret, a, b, call["session_id"], t["summary"])
    # Redacted, not dropped: Agent B still learns that a card (or SSN) was given.
    assert marker in context[-1] and marker in _last(b, "transfer_requested")["summary"]["text"]


def _phone_call(make_app, rest, **config):
    """A phone caller answered by Alice, transcribed, with Bob free to take a transfer."""
    application = make_app(**TELEPHONY, TRANSCRIPTION_ENABLED=True, **config)
    sim = make_sim(application, rest)
    services = application.extensions["wt"]
    a = agent_on(application, "alice")
    caller = sim.call_in()
    with services.db.reading() as s:
        call = s.scalar(select(Call).where(Call.twilio_call_sid == caller.sid))
    assert call.agent_id == "alice" and a.post("/api/token", {"session_id": call.id}).status_code == 200
    b = agent_on(application, "bob")
    return services, caller, call, a, b


def _transfer_to_bob(a, session_id: str) -> dict:
    r = a.post("/api/initiate-transfer", {"session_id": session_id, "to_agent_id": "bob"})
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.json["transfer"]


def test_a_card_read_out_as_words_is_redacted(make_app, rest):
    _services, caller, call, a, b = _phone_call(make_app, rest)
    said = "Sure, it's four one one one, one one one one, double one one one, triple one one."
    assert caller.transcribe(said).status_code == 200
    t = _transfer_to_bob(a, call.id)
    context = _assert_hidden(CARD, a, b, call.id, t["summary"])
    assert context[-1] == "Sure, it's [card ending 1111]."


def test_an_ssn_read_out_as_words_is_redacted(make_app, rest):
    _services, caller, call, a, b = _phone_call(make_app, rest)
    assert caller.transcribe("My social security number is one two three, four five, six seven eight nine.").status_code == 200
    t = _transfer_to_bob(a, call.id)
    context = _assert_hidden(SSN, a, b, call.id, t["summary"])
    assert context[-1] == "My social security number is [SSN redacted]."


def test_a_card_split_across_two_utterances_is_redacted_in_both(make_app, rest):
    services, caller, call, a, b = _phone_call(make_app, rest)
    assert caller.transcribe("My card is 4111 1111.").status_code == 200
    assert caller.transcribe("Okay.", track="outbound_track").status_code == 200  # Alice, between the halves
    assert caller.transcribe("1111 1111.").status_code == 200
    t = _transfer_to_bob(a, call.id)
    context = _assert_hidden(CARD, a, b, call.id, t["summary"])
    assert context[-3:] == ["My card is [redacted].", "Okay.", "[card ending 1111]."]
    # The first half already went out as it was said; alone it was never a whole card.
    added = [n["payload"]["entry"]["text"] for n in a.notifications() if n["type"] == "context_added"]
    assert added[-3:] == ["My card is 4111 1111.", "Okay.", "[card ending 1111]."]


def test_utterances_further_apart_than_the_window_are_not_joined(make_app, rest):
    services, caller, call, a, _b = _phone_call(make_app, rest)
    assert caller.transcribe("My order number is 4111 1111.").status_code == 200
    with services.db.transaction() as s:  # as if the caller had paused longer than the window
        then = utcnow() - timedelta(seconds=SPLIT_WINDOW_S + 1)
        s.execute(update(ContextEntry).where(ContextEntry.call_id == call.id).values(created_at=then))
    assert caller.transcribe("1111 1111 is the other one.").status_code == 200
    with services.db.reading() as s:
        texts = list(s.scalars(select(ContextEntry.text).where(ContextEntry.source == "transcript").order_by(ContextEntry.id)))
    assert texts == ["My order number is 4111 1111.", "1111 1111 is the other one."]


def test_with_raw_context_kept_a_split_card_is_only_in_raw_text(make_app, rest):
    services, caller, call, _a, _b = _phone_call(make_app, rest, STORE_RAW_CONTEXT=True)
    assert caller.transcribe("My card is 4111 1111.").status_code == 200
    assert caller.transcribe("1111 1111.").status_code == 200
    with services.db.reading() as s:
        rows = list(s.scalars(select(ContextEntry).where(ContextEntry.source == "transcript").order_by(ContextEntry.id)))
    assert [(r.text, r.raw_text) for r in rows] == [
        ("My card is [redacted].", "My card is 4111 1111."),
        ("[card ending 1111].", "1111 1111."),
    ]
