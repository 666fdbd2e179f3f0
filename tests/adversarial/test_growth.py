"""Bounded growth, and what the operator-facing routes give away: a draft summary per transcript
line, calls and sessions kept for ever, SQLite event ids handed out twice after pruning, a public
health check that calls LiveKit and names its URL, and a call list that shows a caller's name and
number to agents who never had the call. Each test fails on the code before its fix."""
from __future__ import annotations

import json
import math
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.events import emit
from app.models import AgentSession, Call, ContextEntry, Event, Summary, Transfer, utcnow
from app.services.retention import prune_events
from app.worker.runner import ensure_periodic
from tests.doubles.openai_compat import DEFAULT_SUMMARY, OpenAICompatibleDouble
from tests.support import run_tasks, start_call, start_transfer
from tests.telephony import agent_on


@pytest.fixture
def llm():
    double = OpenAICompatibleDouble()
    yield double
    double.stop()


def _count(services, model, *where) -> int:
    with services.db.reading() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_a_stream_of_transcript_lines_is_drafted_at_most_once_per_window(make_app, llm):
    redraft_s = 1.0
    app = make_app(LLM_PROVIDER="openai", LLM_BASE_URL=llm.base_url, LLM_MODEL="m", LLM_TIMEOUT_S=3.0,
                   DRAFT_DEBOUNCE_S=0.0, SUMMARY_REDRAFT_S=redraft_s)
    services = app.extensions["wt"]
    a, _b = agent_on(app, "alice"), agent_on(app, "bob")
    call = start_call(app.test_client(), a)
    sid = call["session_id"]
    # The model says whether it was shown the last line: that is what "covered" means to Agent B.
    llm.content = lambda body: json.dumps(dict(DEFAULT_SUMMARY, details=["saw LAST-LINE" if "LAST-LINE" in str(body["messages"]) else "earlier lines"]))
    started = time.monotonic()
    for i in range(20):  # a caller talking: a line every ~0.1 s, each one followed by the worker
        assert a.post("/api/add-context", {"session_id": sid, "text": f"Utterance {i} about order A-77{i:02d}"}).status_code == 201
        run_tasks(services)
        time.sleep(0.1)
    duration = time.monotonic() - started
    drafts = _count(services, Summary, Summary.call_id == sid, Summary.kind == "draft")
    assert 1 <= drafts <= math.ceil(duration / redraft_s) + 1, (drafts, duration)
    assert len(llm.requests) == drafts  # one LLM request per draft, none wasted
    # A transfer right after one more line still hands over a summary that covers it.
    last = a.post("/api/add-context", {"session_id": sid, "text": "LAST-LINE: also wants a refund"}).json["entry"]
    summary = start_transfer(a, call, "bob")["summary"]
    assert summary["covering_entry_id"] >= last["id"] and "saw LAST-LINE" in summary["text"]


def test_old_finished_calls_and_spent_sessions_are_pruned_and_live_ones_kept(client, make_agent, services):
    a, b = make_agent("alice"), make_agent("bob")
    old = start_call(client, a)["session_id"]
    a.post("/api/add-context", {"session_id": old, "text": "Old problem"})
    t = start_transfer(a, {"session_id": old}, "bob")
    assert b.post("/api/decline-transfer", {"transfer_id": t["id"]}).status_code == 200
    assert a.post("/api/end-call", {"session_id": old}).status_code == 200
    # Live calls that started long ago: Bob's active call, and one Alice handed over to Carol.
    a.post("/api/presence", {"status": "away"})
    active = start_call(client, b, "Long Talker")["session_id"]
    a.post("/api/presence", {"status": "available"})
    handed = start_call(client, a, "Handed Over")["session_id"]
    c = make_agent("carol")
    t3 = start_transfer(a, {"session_id": handed}, "carol")
    assert c.post("/api/accept-transfer", {"transfer_id": t3["id"]}).status_code == 200
    assert a.post("/api/complete-transfer", {"transfer_id": t3["id"]}).status_code == 200
    recent = start_call(client, a, "Recent")["session_id"]
    assert a.post("/api/end-call", {"session_id": recent}).status_code == 200
    long_ago = utcnow() - timedelta(days=100)
    d, e = make_agent("dave"), make_agent("erin")
    assert e.post("/api/logout").status_code == 200
    with services.db.transaction() as s:
        s.execute(update(Call).where(Call.id.in_([old, active, handed])).values(created_at=long_ago))
        s.execute(update(Call).where(Call.id == old).values(ended_at=long_ago))
        s.execute(update(AgentSession).where(AgentSession.agent_id == "dave").values(expires_at=long_ago))
        s.execute(update(AgentSession).where(AgentSession.agent_id == "erin").values(revoked_at=long_ago))

    ensure_periodic(services.db)  # what every worker does when it starts
    run_tasks(services)

    assert _count(services, Call, Call.id == old) == 0
    for model in (ContextEntry, Summary, Transfer, Event):
        assert _count(services, model, model.call_id == old) == 0, model.__name__
    for sid in (active, handed, recent):
        assert _count(services, Call, Call.id == sid) == 1
        assert _count(services, ContextEntry, ContextEntry.call_id == sid) >= 1
    assert b.get(f"/api/calls/{active}").status_code == 200 and c.get(f"/api/calls/{handed}").status_code == 200
    assert _count(services, Transfer, Transfer.call_id == handed) == 1
    assert _count(services, AgentSession, AgentSession.agent_id.in_(["dave", "erin"])) == 0
    assert a.get("/api/me").status_code == 200 and d.get("/api/me").status_code == 401


def test_event_ids_keep_rising_after_every_event_was_pruned(services):
    def emit_one() -> int:
        with services.db.transaction() as s:
            emit(s, "call_queued", {"n": 1}, audiences=["alice"], call_id=None)
        with services.db.reading() as s:
            return s.scalar(select(func.max(Event.id)))

    seen = max(emit_one() for _ in range(3))
    assert prune_events(services.db, retention_days=0) >= 3  # the newest rows go too
    assert _count(services, Event) == 0
    # Dispatchers and browsers (Last-Event-ID) have seen `seen`: a smaller id would never reach them.
    assert emit_one() > seen


def test_public_health_is_terse_and_never_calls_livekit(client, make_agent, livekit_double):
    before = len(livekit_double.calls("ListRooms"))
    for _ in range(5):
        r = client.get("/api/health")
        assert r.status_code == 200 and r.json == {"status": "ok"}
    assert len(livekit_double.calls("ListRooms")) == before
    assert client.get("/api/health/details").status_code == 401
    a = make_agent("alice")
    before = len(livekit_double.calls("ListRooms"))
    for _ in range(3):
        details = a.get("/api/health/details").json
        assert details["livekit"]["status"] == "ok" and details["db"]["status"] == "ok"
    assert len(livekit_double.calls("ListRooms")) == before + 1  # asked once, then remembered


def test_the_call_list_shows_a_caller_only_to_agents_who_had_the_call(client, make_agent, services):
    a, b, c = make_agent("alice"), make_agent("bob"), make_agent("carol")
    call = start_call(client, a, "Private Person")
    sid = call["session_id"]
    with services.db.transaction() as s:
        s.execute(update(Call).where(Call.id == sid).values(caller_number="+14155550123"))
    t = start_transfer(a, call, "bob")
    assert sid in [x["session_id"] for x in b.get("/api/calls").json["calls"]]  # offered: he is being told who
    assert b.post("/api/decline-transfer", {"transfer_id": t["id"]}).status_code == 200
    for agent in (b, c):
        listed = agent.get("/api/calls").get_data(as_text=True)
        assert sid not in listed and "Private Person" not in listed and "+14155550123" not in listed, agent.id
    mine = a.get("/api/calls").json["calls"]
    assert [(x["session_id"], x["caller_number"]) for x in mine] == [(sid, "+14155550123")]
