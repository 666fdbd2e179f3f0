"""The dispatcher thread runs the timeouts by itself: nobody calls the jobs here."""
from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import update

from app.models import Call, Transfer, utcnow
from tests.support import AgentClient, start_call, start_transfer


def _until(predicate, timeout=6.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)  # polling the API as a dashboard would
    return False


def test_ring_timeouts_and_missed_calls_happen_on_their_own(make_app):
    app = make_app(BACKGROUND_JOBS=True)
    services = app.extensions["wt"]
    agents = {}
    for agent_id in ("alice", "bob"):
        services.agents.add(agent_id, agent_id.title(), f"pw-{agent_id}-123456")
        agents[agent_id] = AgentClient(app.test_client(), agent_id, f"pw-{agent_id}-123456")
        agents[agent_id].login()
    a, b = agents["alice"], agents["bob"]
    call = start_call(app.test_client(), a)
    t = start_transfer(a, call, "bob")
    with services.db.transaction() as s:
        s.execute(update(Transfer).where(Transfer.id == t["id"]).values(requested_at=utcnow() - timedelta(minutes=5)))
    assert _until(lambda: "transfer_failed" in a.types())
    assert [n["payload"]["outcome"] for n in a.notifications() if n["type"] == "transfer_failed"] == ["no_answer"]

    waiting = start_call(app.test_client(), None, "Second Caller")
    assert waiting["agent_id"] == "bob"
    with services.db.transaction() as s:
        s.execute(update(Call).where(Call.id == waiting["session_id"]).values(assigned_at=utcnow() - timedelta(minutes=5)))
    assert _until(lambda: "call_missed" in b.types())
    assert b.get("/api/me").json["agent"]["presence"] == "away"
