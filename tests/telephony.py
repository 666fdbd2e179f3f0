"""Helpers for telephony tests: the settings of an app with Twilio and LiveKit SIP configured,
the Twilio simulator wired to it, and the steps those tests share.

The fixtures live in tests/conftest.py: `rest` (Twilio's REST API answered by `responses`), `sim`
(the simulator), and `app`, which is the telephony-enabled app (built with `TELEPHONY`, after
`rest`) in a module marked `pytestmark = pytest.mark.telephony`, so `client`, `services` and
`make_agent` all use it there.
"""
from __future__ import annotations

from sqlalchemy import select

from app.models import Call, Transfer
from tests.doubles.twilio_sim import TwilioSim
from tests.support import AgentClient, run_tasks

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "sim-auth-token-0123456789abcdef"
NUMBER = "+15005550006"
PUBLIC = "https://wt.example.test"
SIP_HOST = "sip.wt.example.test:5060"
SIP_USER = "twilio-trunk"
SIP_PASSWORD = "trunk-s3cret&<pw>"
B_PHONE = "+14155550199"

TELEPHONY = {
    "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "TWILIO_PHONE_NUMBER": NUMBER,
    "PUBLIC_BASE_URL": PUBLIC,
    "LIVEKIT_SIP_HOST": SIP_HOST,
    "LIVEKIT_SIP_USERNAME": SIP_USER,
    "LIVEKIT_SIP_PASSWORD": SIP_PASSWORD,
    "TWILIO_TIMEOUT_S": 2.0,
}


def agent_on(application, agent_id: str, name: str | None = None, *, phone: str | None = None) -> AgentClient:
    """A logged-in agent of an app built in the test itself (make_agent serves `app`)."""
    password = f"pw-{agent_id}-123456"
    application.extensions["wt"].agents.add(agent_id, name or agent_id.title(), password, phone)
    agent = AgentClient(application.test_client(), agent_id, password)
    agent.login()
    return agent


def agent_with_phone_caller(application, sim):
    """Alice, logged in and talking to a phone caller."""
    a = agent_on(application, "alice")
    caller = sim.call_in()
    with application.extensions["wt"].db.reading() as s:
        call = s.scalar(select(Call).where(Call.twilio_call_sid == caller.sid))
    a.post("/api/token", {"session_id": call.id})
    return a, call


def make_sim(app, rest, *, public: str = PUBLIC) -> TwilioSim:
    sim = TwilioSim(
        app.test_client(),
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        number=NUMBER,
        voice_url=public + "/twilio/voice",
        status_url=public + "/twilio/status",
    )
    sim.install(rest)
    return sim


def types(agent: AgentClient) -> list[str]:
    return [n["type"] for n in agent.notifications()]


def last(agent: AgentClient, type_: str) -> dict:
    items = [n["payload"] for n in agent.notifications() if n["type"] == type_]
    assert items, (type_, types(agent))
    return items[-1]


def phone_call_with_context(sim, a, services) -> tuple:
    """A phone customer, answered by `a`, with some context noted."""
    caller = sim.call_in("+14155550123")
    with services.db.reading() as s:
        call = s.scalar(select(Call).where(Call.twilio_call_sid == caller.sid))
    assert a.post("/api/token", {"session_id": call.id}).status_code == 200
    for text in ("Order #5521 arrived broken & late.", "Customer wants a replacement, not a refund."):
        assert a.post("/api/add-context", {"session_id": call.id, "text": text}).status_code == 201
    return caller, call


def dial_b(sim, a, session_id: str, **target) -> tuple[dict, object]:
    """Agent A starts a phone transfer (to B_PHONE unless told otherwise): (API body, B's SimCall)."""
    r = a.post("/api/initiate-transfer", {"session_id": session_id, **(target or {"to_phone": B_PHONE})})
    assert r.status_code == 201, r.get_data(as_text=True)
    run_tasks(sim.client.application.extensions["wt"])  # the worker places the call
    return r.json, sim.outbound[-1]


def phone_b_takes_over(sim, a, session_id: str, leg, transfer_id: str) -> None:
    """Agent B's phone (`leg`, from `dial_b`) rings, B presses 1 and is briefed, Agent A completes
    the transfer and leaves: the caller is with the phone Agent B."""
    leg.ring()
    leg.press("1").answer("human")
    sim.deliver()
    assert a.post("/api/complete-transfer", {"transfer_id": transfer_id}).status_code == 200
    run_tasks(sim.client.application.extensions["wt"])
    assert a.post("/api/agent-exit-room", {"session_id": session_id}).status_code == 200


def transfer_row(services, transfer_id: str) -> Transfer:
    with services.db.reading() as s:
        return s.get(Transfer, transfer_id)
