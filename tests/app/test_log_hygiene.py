"""The issue's check: a representative run (sign-ins, a web call with PII in its notes, a warm
transfer with its summary, a phone caller, a phone transfer, SIP and LiveKit webhooks, the worker's
tasks) logs, as production writes it, none of the secrets, tokens and personal data it handled.
The whole suite's logs get the same search at the end of every session (tests/conftest.py)."""
from __future__ import annotations

import json

import pytest
from livekit.protocol import models

from tests.livekit_webhooks import send, session
from tests.log_audit import LogCapture, find, lines_with
from tests.support import start_call, start_transfer
from tests.telephony import AUTH_TOKEN, B_PHONE, PUBLIC, SIP_PASSWORD, dial_b, phone_call_with_context

pytestmark = pytest.mark.telephony

CUSTOMER = "Margaret Quimby"
CARD = "4111 1111 1111 1111"
EMAIL = "margaret.quimby@example.org"
SSN = "078-05-1120"
CALLER = "+14155550123"  # phone_call_with_context's caller
SIP = models.ParticipantInfo.Kind.SIP


def test_a_representative_run_logs_no_secret_token_or_personal_data(app, sim, make_agent, client, services, livekit_double, tasks):
    with LogCapture() as capture:
        a = make_agent("alice", "Alice Archer")
        b = make_agent("bob", "Bob Baker")
        call = start_call(client, a, name=CUSTOMER)
        sid = call["session_id"]
        note = a.post("/api/add-context", {"session_id": sid, "text": f"Card {CARD}, mail {EMAIL}, SSN {SSN}; wants a refund."})
        assert note.status_code == 201
        tasks(after_s=2)  # the draft summary (debounced)
        send(client, livekit_double, "participant_joined", room=call["room_name"], participant=session(f"agent-{a.id}", "PA_a", 1000))
        transfer = start_transfer(a, call, "bob")
        accepted = b.post("/api/accept-transfer", {"transfer_id": transfer["id"]})
        assert accepted.status_code == 200
        summary = a.get(f"/api/calls/{sid}/summary").json
        assert a.post("/api/complete-transfer", {"transfer_id": transfer["id"]}).status_code == 200
        fresh = a.post("/api/token", {"session_id": sid})  # Alice is out of the call now: refused
        send(client, livekit_double, "participant_joined", room=call["room_name"], participant=session(f"agent-{b.id}", "PA_b", 2000))
        tasks(after_s=5)

        caller, phone_call = phone_call_with_context(sim, a, services)
        # What the caller says (a transcript line with PII), Twilio's errors, a forged webhook.
        said = {"transcript": f"My card {CARD}, mail {EMAIL}", "confidence": 0.9}
        for event, data in (("transcription-content", json.dumps(said)), ("transcription-content", "{not json " + EMAIL), ("transcription-error", "")):
            params = dict(sim.base_params(caller), TranscriptionEvent=event, Final="true", Track="inbound_track", TranscriptionData=data,
                          SequenceId="1", TranscriptionSid="GT" + "1" * 32, TranscriptionError="no audio")
            assert sim.post(f"{PUBLIC}/twilio/transcription", params).status_code == 200
        assert sim.post(f"{PUBLIC}/twilio/status", sim.base_params(caller), signature="forged").status_code == 403
        body, leg = dial_b(sim, a, phone_call.id)
        leg.ring()
        leg.press("1").answer("human")
        sim.deliver()
        assert a.post("/api/complete-transfer", {"transfer_id": body["transfer"]["id"]}).status_code == 200
        tasks()
        livekit_double.join(phone_call.room_name, f"sip_{B_PHONE}", kind=SIP)
        send(client, livekit_double, "participant_joined", room=phone_call.room_name, participant=session(f"sip_{B_PHONE}", "PA_sip", 3000))
        tasks(after_s=1)

    lines = capture.lines
    records = capture.records()
    assert len(records) >= 6 and all({"ts", "level", "logger", "msg"} <= set(r) for r in records)

    cookies = [c.value for agent in (a, b) if (c := agent.client.get_cookie("wt_session"))]
    versions = [summary["summary"], *summary["history"]]
    summary_lines = [line for v in versions for text in (v["text"], v["speech"]) for line in text.splitlines() if len(line) >= 20]
    assert summary_lines, summary
    needles = {
        CUSTOMER: "the customer's name", CARD: "a card number", CARD.replace(" ", ""): "a card number", EMAIL: "an e-mail address",
        SSN: "an SSN", CALLER: "the caller's number", B_PHONE: "Agent B's number",
        a.password: "a password", b.password: "a password", a.csrf: "a CSRF token", b.csrf: "a CSRF token",
        call["token"]: "the customer's LiveKit token", call["customer_key"]: "the customer key",
        accepted.json["token"]: "Agent B's LiveKit token", body["token"]: "Agent A's transfer-room token",
        AUTH_TOKEN: "TWILIO_AUTH_TOKEN", SIP_PASSWORD: "LIVEKIT_SIP_PASSWORD", livekit_double.api_secret: "LIVEKIT_API_SECRET",
        app.config["SECRET_KEY"]: "SECRET_KEY",
        **{cookie: "a session cookie" for cookie in cookies},
        **{line: "summary text" for line in summary_lines},
    }
    assert fresh.status_code == 403 and len(cookies) == 2
    text = "\n".join(lines)
    hits = find(text, needles)
    assert hits == [], "\n".join(hits + lines_with(text, hits))

    # The lines say what they are about: the webhook's call and agent, and a phone leg by its
    # number's last four digits only.
    webhook_lines = [r for r in records if r["msg"].startswith("livekit webhook")]
    assert {(r.get("call_id"), r.get("agent_id")) for r in webhook_lines} >= {(sid, "alice"), (sid, "bob")}
    assert all(len(r["request_id"]) == 24 for r in webhook_lines)
    twilio_lines = [r for r in records if "TranscriptionData" in r["msg"] or r["msg"].startswith("transcription error")]
    assert len(twilio_lines) == 2 and all(r["call_sid"] == caller.sid for r in twilio_lines), twilio_lines
    assert any("sip_+…0199" in r["msg"] and r["call_id"] == phone_call.id for r in webhook_lines), json.dumps(webhook_lines, indent=1)
