"""Supervisors (issue 14): the role, and monitor / whisper / barge on live calls, through the API,
LiveKit's webhooks (the Twirp double signs them as livekit-server does) and the CLI.

The permission tests: an agent gets 403 on every supervisor route, and no route gives an agent
(or a customer) a hidden or subscribe-only LiveKit token.
"""
from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text

from app.db import migrate
from app.events import timeline
from app.models import Agent, Call, SchemaMigration, Supervision
from tests.livekit_webhooks import join, send
from tests.support import AgentClient, grants_of, start_call, start_transfer
from tests.telephony import dial_b, phone_b_takes_over, phone_call_with_context

MODES = ("monitor", "whisper", "barge")
SUPERVISOR_ROUTES = [("/api/supervise", {"mode": m}) for m in MODES] + [("/api/supervise/end", {})]


@pytest.fixture
def make_supervisor(make_agent):
    """A signed-in supervisor (away: supervisors sign in away, so no waiting call goes to her)."""
    return lambda agent_id="sue": make_agent(agent_id, role="supervisor")


def grants(livekit_double, token: str):
    return grants_of(token, livekit_double.api_key, livekit_double.api_secret)


def supervisions_of(services, call_id: str) -> list[Supervision]:
    with services.db.reading() as s:
        return list(s.scalars(select(Supervision).where(Supervision.call_id == call_id).order_by(Supervision.started_at)))


def timeline_of(services, call_id: str) -> list[tuple[str, dict]]:
    with services.db.reading() as s:
        return [(e["type"], {k: v for k, v in e["payload"].items() if k != "session_id"})
                for e in timeline(s, call_id) if e["type"].startswith("supervision_")]


# -- the role --------------------------------------------------------------------------------------
def test_role_shows_in_me_and_the_directory(make_agent, make_supervisor):
    a = make_agent("alice")
    sup = make_supervisor()
    assert a.get("/api/me").json["agent"]["role"] == "agent"
    assert sup.get("/api/me").json["agent"]["role"] == "supervisor"
    roles = {x["id"]: x["role"] for x in a.get("/api/agents").json["agents"]}
    assert roles == {"alice": "agent", "sue": "supervisor"}


def test_cli_adds_a_supervisor_and_sets_roles(app, services, make_agent):
    runner = app.test_cli_runner()
    added = runner.invoke(args=["agents", "add", "sam", "--name", "Sam S", "--password", "sam-password", "--role", "supervisor"])
    assert added.exit_code == 0, added.output
    plain = runner.invoke(args=["agents", "add", "pat", "--name", "Pat P", "--password", "pat-password"])
    assert plain.exit_code == 0, plain.output
    assert (services.agents.get("sam").role, services.agents.get("pat").role) == ("supervisor", "agent")
    assert runner.invoke(args=["agents", "add", "x", "--name", "X", "--password", "x-password", "--role", "boss"]).exit_code != 0
    assert services.agents.get("x") is None

    a = make_agent("alice")
    call = start_call(a.client, a)
    pat = AgentClient(app.test_client(), "pat", "pat-password")
    pat.login()
    assert pat.post("/api/supervise", {"session_id": call["session_id"], "mode": "monitor"}).json["error"]["code"] == "supervisor_only"
    promoted = runner.invoke(args=["agents", "set-role", "pat", "supervisor"])
    assert promoted.exit_code == 0 and "pat is now a supervisor" in promoted.output
    # The same login: the role is read with it on every request.
    assert pat.post("/api/supervise", {"session_id": call["session_id"], "mode": "monitor"}).status_code == 201
    assert runner.invoke(args=["agents", "set-role", "pat", "agent"]).exit_code == 0
    assert pat.post("/api/supervise/end", {"session_id": call["session_id"]}).status_code == 403
    assert runner.invoke(args=["agents", "set-role", "pat", "king"]).exit_code != 0
    assert runner.invoke(args=["agents", "set-role", "nobody", "agent"]).exit_code != 0
    assert "supervisor" in runner.invoke(args=["agents", "list"]).output


def test_migration_9_makes_existing_accounts_agents(services, make_agent):
    make_agent("alice")
    with services.db.transaction() as s:
        # As a database from before step 9 (step 1 builds the current models, so undo that).
        s.execute(text("DROP TABLE supervisions"))
        s.execute(text("ALTER TABLE agents DROP COLUMN role"))
        s.execute(delete(SchemaMigration).where(SchemaMigration.version == 9))
    assert migrate(services.db) == ["9: agents.role, supervisions"]
    assert services.agents.get("alice").role == "agent"
    assert migrate(services.db) == []
    services.agents.add("sam", "Sam", "sam-password", role="supervisor")
    assert (services.agents.get("sam").role, services.agents.get("alice").role) == ("supervisor", "agent")


# -- permissions -----------------------------------------------------------------------------------
READ_ROUTES = ["/api/supervisor/floor", "/api/supervisor/events", "/api/stats", "/api/stats.csv"]


def test_every_supervisor_route_is_checked_here(app):
    """The routes marked by `supervisor_required` are exactly those the tests below drive as an
    agent: a new supervisor route is either added to them or fails here."""
    marked = {
        rule.rule for rule in app.url_map.iter_rules()
        if getattr(app.view_functions[rule.endpoint], "supervisor_only", False)
    }
    assert marked == {path for path, _ in SUPERVISOR_ROUTES} | set(READ_ROUTES)


def test_agents_get_403_on_every_supervisor_read(make_agent, client):
    alice = make_agent("alice")
    start_call(client, alice)
    for path in READ_ROUTES:
        r = alice.get(path)
        assert r.status_code == 403 and r.json["error"]["code"] == "supervisor_only", (path, r.get_data(as_text=True))
        assert client.get(path).status_code == 401
    # The page itself is a shell for anyone; what it shows comes only from the routes above.
    assert alice.get("/supervisor").status_code == 200


def test_agents_get_403_on_every_supervisor_route(make_agent, client):
    a = make_agent("alice")
    call = start_call(client, a)
    bob = make_agent("bob")
    for who in (bob, a):  # another agent, and the call's own agent
        for path, extra in SUPERVISOR_ROUTES:
            r = who.post(path, {"session_id": call["session_id"], **extra})
            assert r.status_code == 403 and r.json["error"]["code"] == "supervisor_only", (who.id, path, r.json)
    # Without CSRF or without a login it is what it always was, before the role is looked at.
    for path, extra in SUPERVISOR_ROUTES:
        assert bob.client.post(path, json={"session_id": call["session_id"], **extra}).json["error"]["code"] == "csrf_failed"
        assert client.post(path, json={"session_id": call["session_id"], **extra}).status_code == 401


def test_no_route_gives_an_agent_or_a_customer_a_hidden_or_subscribe_only_token(client, make_agent, livekit_double):
    """Every route that answers a token, driven as an agent or a customer: each grant joins one
    room visibly and may publish its microphone."""
    a = make_agent("alice")
    b = make_agent("bob")
    created = client.post("/api/create-call", json={"customer_name": "Jane"})
    call = created.json
    key = {"X-Customer-Key": call["customer_key"]}
    tokens = {
        "create-call (customer)": call["token"],
        "token (customer)": client.post("/api/token", json={"session_id": call["session_id"]}, headers=key).json["token"],
        "token (owner)": a.post("/api/token", {"session_id": call["session_id"]}).json["token"],
    }
    r = a.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_agent_id": "bob"})
    tokens["initiate-transfer (agent A)"] = r.json["token"]
    tokens["token (agent A, consult)"] = a.post("/api/token", {"session_id": call["session_id"]}).json["token"]
    tokens["accept-transfer (agent B)"] = b.post("/api/accept-transfer", {"transfer_id": r.json["transfer"]["id"]}).json["token"]
    tokens["token (agent B, consult)"] = b.post("/api/token", {"session_id": call["session_id"]}).json["token"]
    assert a.post("/api/complete-transfer", {"transfer_id": r.json["transfer"]["id"]}).status_code == 200
    tokens["token (agent B, owner)"] = b.post("/api/token", {"session_id": call["session_id"]}).json["token"]
    for route, token in tokens.items():
        claims = grants(livekit_double, token)
        v = claims.video
        assert v.room_join and not v.hidden and v.can_publish and v.can_subscribe and not v.recorder, route
        assert list(v.can_publish_sources) == ["microphone"], route
        assert not claims.identity.startswith("supervisor-"), route


# -- tokens and events per mode ----------------------------------------------------------------------
def test_monitor_is_a_hidden_subscribe_only_token_and_the_agent_is_not_told(client, make_agent, make_supervisor, livekit_double, services):
    a = make_agent("alice")
    call = start_call(client, a)
    sid = call["session_id"]
    sup = make_supervisor()
    since = a.notifications()[-1]["id"]
    r = sup.post("/api/supervise", {"session_id": sid, "mode": "monitor"})
    assert r.status_code == 201, r.json
    body = r.json
    assert body["room_name"] == call["room_name"] and body["identity"] == "supervisor-sue" and body["whisper_to"] == []
    assert body["supervision"]["mode"] == "monitor" and body["supervision"]["ended_at"] is None
    claims = grants(livekit_double, body["token"])
    v = claims.video
    assert claims.identity == "supervisor-sue" and v.room == call["room_name"] and v.room_join
    assert v.hidden and v.can_subscribe and not v.can_publish and not v.can_publish_data and list(v.can_publish_sources) == []
    assert claims.attributes == {"wt_role": "supervisor", "wt_call": sid, "wt_supervision": body["supervision"]["id"]}

    assert a.types(since) == []  # nobody is told of a monitor
    assert timeline_of(services, sid) == [("supervision_started", {"supervisor_id": "sue", "mode": "monitor"})]
    # The agent's record of the call does not reveal it either.
    assert not [e for e in a.get(f"/api/calls/{sid}").json["call"]["timeline"] if e["type"].startswith("supervision_")]

    ended = sup.post("/api/supervise/end", {"session_id": sid})
    assert ended.status_code == 200 and ended.json["supervision"]["end_reason"] == "ended"
    assert ended.json["supervision"]["ended_at"] is not None
    assert a.types(since) == []
    assert timeline_of(services, sid)[-1] == ("supervision_ended", {"supervisor_id": "sue", "mode": "monitor", "reason": "ended"})
    assert any(r.request.identity == "supervisor-sue" for r in _removals(livekit_double, services))


def _removals(livekit_double, services):
    from tests.support import run_tasks

    run_tasks(services)
    return livekit_double.calls("RemoveParticipant")


def test_whisper_allows_only_the_agent_and_tells_the_agent(client, make_agent, make_supervisor, livekit_double, services):
    a = make_agent("alice")
    call = start_call(client, a)
    sid = call["session_id"]
    sup = make_supervisor()
    r = sup.post("/api/supervise", {"session_id": sid, "mode": "whisper"})
    assert r.status_code == 201, r.json
    assert r.json["whisper_to"] == ["agent-alice"]
    v = grants(livekit_double, r.json["token"]).video
    assert not v.hidden and v.can_publish and v.can_subscribe and list(v.can_publish_sources) == ["microphone"] and not v.can_publish_data
    started = [n for n in a.notifications() if n["type"] == "supervision_started"]
    assert [n["payload"]["mode"] for n in started] == ["whisper"]


def test_barge_is_a_normal_participant_and_everyone_is_told(client, make_agent, make_supervisor, livekit_double, services):
    a = make_agent("alice")
    b = make_agent("bob")
    call = start_call(client, a)
    sid = call["session_id"]
    start_transfer(a, call, "bob")  # on hold with a consult ringing: Bob is told too
    sup = make_supervisor()
    r = sup.post("/api/supervise", {"session_id": sid, "mode": "barge"})
    assert r.status_code == 201, r.json
    v = grants(livekit_double, r.json["token"]).video
    assert not v.hidden and v.can_publish and v.can_subscribe and r.json["whisper_to"] == []
    for who in (a, b):
        assert [n["payload"] for n in who.notifications() if n["type"] == "supervision_started"] == [
            {"supervisor_id": "sue", "mode": "barge", "session_id": sid}]


def test_a_new_mode_replaces_the_open_supervision(client, make_agent, make_supervisor, services):
    a = make_agent("alice")
    call = start_call(client, a)
    sid = call["session_id"]
    sup = make_supervisor()
    assert sup.post("/api/supervise", {"session_id": sid, "mode": "monitor"}).status_code == 201
    assert sup.post("/api/supervise", {"session_id": sid, "mode": "barge"}).status_code == 201
    assert [(x.mode, x.end_reason) for x in supervisions_of(services, sid)] == [("monitor", "replaced"), ("barge", None)]
    assert [t for t, _ in timeline_of(services, sid)] == ["supervision_started", "supervision_ended", "supervision_started"]


# -- refusals ----------------------------------------------------------------------------------------
def test_refused_on_calls_that_are_not_live_and_on_ones_own(client, make_agent, make_supervisor, services):
    sup = make_supervisor()
    waiting = start_call(client)  # nobody available: queued
    r = sup.post("/api/supervise", {"session_id": waiting["session_id"], "mode": "monitor"})
    assert r.status_code == 409 and r.json["error"]["code"] == "call_not_connected"
    a = make_agent("alice")
    services.drain_queue()
    ringing = waiting  # assigned to Alice, who has not joined yet
    assert sup.post("/api/supervise", {"session_id": ringing["session_id"], "mode": "barge"}).json["error"]["code"] == "call_not_connected"
    assert a.post("/api/token", {"session_id": ringing["session_id"]}).status_code == 200
    assert a.post("/api/end-call", {"session_id": ringing["session_id"]}).status_code == 200
    r = sup.post("/api/supervise", {"session_id": ringing["session_id"], "mode": "monitor"})
    assert r.status_code == 409 and r.json["error"]["code"] == "call_ended"
    assert sup.post("/api/supervise", {"session_id": "nope", "mode": "monitor"}).status_code == 404
    assert sup.post("/api/supervise", {"session_id": ringing["session_id"], "mode": "listen"}).status_code == 422
    assert sup.post("/api/supervise/end", {"session_id": ringing["session_id"]}).json["error"]["code"] == "not_supervising"
    # Supervisors take calls too; one on a call of her own cannot supervise it.
    assert a.post("/api/presence", {"status": "away"}).status_code == 200
    assert sup.post("/api/presence", {"status": "available"}).status_code == 200
    own = start_call(client, sup, name="Own")
    assert sup.post("/api/supervise", {"session_id": own["session_id"], "mode": "monitor"}).json["error"]["code"] == "own_call"
    assert supervisions_of(services, ringing["session_id"]) == []


# -- LiveKit's webhooks ------------------------------------------------------------------------------
def test_the_supervisor_joining_and_leaving_never_counts_as_an_agent(client, make_agent, make_supervisor, livekit_double, services):
    a = make_agent("alice")
    call = start_call(client, a)
    sid, room = call["session_id"], call["room_name"]
    sup = make_supervisor()
    body = sup.post("/api/supervise", {"session_id": sid, "mode": "barge"}).json
    attrs = grants(livekit_double, body["token"]).attributes
    info = join(livekit_double, room, "supervisor-sue", attributes=dict(attrs))
    assert send(client, livekit_double, "participant_joined", room=room, participant=info) == "supervisor present"
    assert send(client, livekit_double, "participant_left", room=room, participant=info) == "supervision ended (supervisor left)"
    # A second exit (another delivery of another id) or the API afterwards: ended once.
    assert send(client, livekit_double, "participant_left", room=room, participant=info) == "supervision already ended"
    assert sup.post("/api/supervise/end", {"session_id": sid}).status_code == 404
    assert [t for t, _ in timeline_of(services, sid)] == ["supervision_started", "supervision_ended"]
    assert timeline_of(services, sid)[-1][1]["reason"] == "left"
    with services.db.reading() as s:
        c = s.get(Call, sid)
        assert (c.status, c.agent_id, c.requeued_at, c.owner_left_at) == ("active", "alice", None, None)
        assert s.get(Agent, "alice").active_call_id == sid
    assert "agent_left" not in a.types() and "call_ended" not in a.types()


def test_the_exit_of_a_replaced_session_does_not_end_the_new_one(client, make_agent, make_supervisor, livekit_double, services):
    a = make_agent("alice")
    call = start_call(client, a)
    sid, room = call["session_id"], call["room_name"]
    sup = make_supervisor()
    first = sup.post("/api/supervise", {"session_id": sid, "mode": "monitor"}).json
    old = join(livekit_double, room, "supervisor-sue", attributes=dict(grants(livekit_double, first["token"]).attributes))
    second = sup.post("/api/supervise", {"session_id": sid, "mode": "whisper"}).json
    # LiveKit replaces the old session (same identity) and reports it gone.
    assert send(client, livekit_double, "participant_left", room=room, participant=old) == "supervision already ended"
    assert [(x.id, x.ended_at is None) for x in supervisions_of(services, sid)] == [
        (first["supervision"]["id"], False), (second["supervision"]["id"], True)]
    # Someone else's token naming her supervision changes nothing (the identity must match).
    forged = join(livekit_double, room, "supervisor-bob", attributes={"wt_supervision": second["supervision"]["id"]})
    assert send(client, livekit_double, "participant_left", room=room, participant=forged) == "ignored"
    assert a.post("/api/end-call", {"session_id": sid}).status_code == 200
    assert [x.end_reason for x in supervisions_of(services, sid)] == ["replaced", "call_ended"]
    assert send(client, livekit_double, "participant_left", room=room, participant=old) == "supervision already ended"


@pytest.mark.telephony
def test_no_whisper_for_a_phone_agent_b(sim, make_agent, services, livekit_double, tasks, app):
    a = make_agent("alice", "Alice Archer")
    caller, call = phone_call_with_context(sim, a, services)
    body, leg = dial_b(sim, a, call.id)
    phone_b_takes_over(sim, a, call.id, leg, body["transfer"]["id"])
    sup = make_agent("sue", role="supervisor")
    r = sup.post("/api/supervise", {"session_id": call.id, "mode": "whisper"})
    assert r.status_code == 409 and r.json["error"]["code"] == "whisper_not_available", r.json
    assert "phone Agent B" in r.json["error"]["message"]
    for mode in ("monitor", "barge"):
        assert sup.post("/api/supervise", {"session_id": call.id, "mode": mode}).status_code == 201

