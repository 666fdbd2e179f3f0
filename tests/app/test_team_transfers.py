"""Transfers to a team: offered to every free member, the first accept wins, and every other way
such a transfer ends (taken, nobody available, declined by all, unanswered, cancelled)."""
from __future__ import annotations

import pytest

from app.models import Agent, Transfer
from tests.app.test_concurrency import _race
from tests.support import call_status, start_call


def _team(services, team_id: str, name: str, *members: str, keywords: tuple[str, ...] = ()) -> None:
    services.teams.add(team_id, name, keywords)
    for member in members:
        services.teams.set_agent_teams(member, (team_id,))


def _to_team(a, call, team: str, expect: int = 201):
    r = a.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_team": team})
    assert r.status_code == expect, r.get_data(as_text=True)
    return r.json


def _events(agent, type_):
    return [n["payload"] for n in agent.notifications() if n["type"] == type_]


def _stored(services, transfer_id: str) -> Transfer:
    with services.db.reading() as s:
        return s.get(Transfer, transfer_id)


def _slot(services, agent_id: str) -> str | None:
    with services.db.reading() as s:
        return s.get(Agent, agent_id).active_call_id


def test_every_free_member_is_offered_and_the_first_accept_wins(client, make_agent, services, tasks):
    a, bob, carol, dave = make_agent("alice"), make_agent("bob"), make_agent("carol"), make_agent("dave")
    _team(services, "billing", "Billing", "alice", "bob", "carol", "dave")
    call = start_call(client, a)  # alice is the longest idle: she takes it, and is busy now
    assert dave.post("/api/presence", {"status": "away"}).status_code == 200
    assert a.get("/api/teams").json == {"teams": [{"id": "billing", "name": "Billing", "available": 2}]}

    t = _to_team(a, call, "billing")["transfer"]
    assert t["to_team"] == "billing" and t["to_agent_id"] is None and t["status"] == "ringing"
    for member in (bob, carol):
        [requested] = _events(member, "transfer_requested")
        assert requested["to_team"] == "billing" and requested["team_name"] == "Billing" and requested["transfer_id"] == t["id"]
        assert [p["transfer_id"] for p in member.get("/api/me").json["pending_transfers"]] == [t["id"]]
    # Away, and Agent A herself, are not offered it.
    assert _events(dave, "transfer_requested") == [] and _events(a, "transfer_requested") == []
    assert _events(a, "transfer_ringing")[-1]["to_team"] == "billing"

    accepted = bob.post("/api/accept-transfer", {"transfer_id": t["id"]})
    assert accepted.status_code == 200 and accepted.json["transfer"]["to_agent_id"] == "bob"
    late = carol.post("/api/accept-transfer", {"transfer_id": t["id"]})
    assert late.status_code == 409 and late.json["error"]["code"] == "transfer_taken"
    assert carol.post("/api/decline-transfer", {"transfer_id": t["id"]}).json["error"]["code"] == "transfer_taken"
    [taken] = _events(carol, "transfer_taken")
    assert taken == {**taken, "transfer_id": t["id"], "to_team": "billing", "to_agent_id": "bob", "to_agent_name": "Bob"}
    assert _events(bob, "transfer_taken") == []
    assert carol.get("/api/me").json["pending_transfers"] == [] and _slot(services, "carol") is None
    assert _events(a, "transfer_accepted")[-1]["to_agent_id"] == "bob"

    # From here it is a transfer to Bob.
    assert a.post("/api/complete-transfer", {"transfer_id": t["id"]}).status_code == 200
    assert call_status(bob, call["session_id"]) == "transferred"
    assert _slot(services, "bob") == call["session_id"]
    assert _events(bob, "transfer_completed")[-1]["to_agent_id"] == "bob"


@pytest.mark.parametrize("round_", range(3))
def test_two_members_accepting_at_once_exactly_one_wins(client, make_agent, services, round_):
    a, bob, carol = make_agent(f"a{round_}"), make_agent(f"bob{round_}"), make_agent(f"carol{round_}")
    _team(services, "billing", "Billing", bob.id, carol.id)
    call = start_call(client, a)
    t = _to_team(a, call, "billing")["transfer"]
    codes, results = _race(
        lambda: bob.post("/api/accept-transfer", {"transfer_id": t["id"]}),
        lambda: carol.post("/api/accept-transfer", {"transfer_id": t["id"]}),
    )
    assert sorted(codes) == [200, 409], codes
    winner, loser = ((bob, carol) if codes[0] == 200 else (carol, bob))
    assert results[codes.index(409)].json["error"]["code"] == "transfer_taken"
    stored = _stored(services, t["id"])
    assert stored.status == "briefing" and stored.to_agent_id == winner.id
    # The loser's claim on the call was rolled back with their accept: they are free.
    assert _slot(services, winner.id) == call["session_id"] and _slot(services, loser.id) is None
    assert [p["to_agent_id"] for p in _events(loser, "transfer_taken")] == [winner.id]


def test_nobody_available_is_refused_before_anything_happens(client, make_agent, services, livekit_double):
    a, bob = make_agent("alice"), make_agent("bob")
    _team(services, "billing", "Billing", "alice", "bob")
    call = start_call(client, a)
    assert bob.post("/api/presence", {"status": "away"}).status_code == 200
    rooms = set(livekit_double.rooms)
    r = _to_team(a, call, "billing", expect=409)
    assert r["error"]["code"] == "team_unavailable" and "Billing" in r["error"]["message"]
    assert set(livekit_double.rooms) == rooms  # no transfer room made for nobody
    assert call_status(a, call["session_id"]) == "active"
    assert _to_team(a, call, "nope", expect=404)["error"]["code"] == "not_found"
    both = a.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_team": "billing", "to_agent_id": "bob"})
    assert both.status_code == 422


def test_unanswered_team_transfer_times_out_and_clears_every_dashboard(client, make_agent, services, tasks, livekit_double):
    a, bob, carol = make_agent("alice"), make_agent("bob"), make_agent("carol")
    _team(services, "billing", "Billing", "bob", "carol")
    call = start_call(client, a)
    t = _to_team(a, call, "billing")["transfer"]
    tasks(after_s=services.settings.TRANSFER_RING_TIMEOUT_S - 1)
    assert _stored(services, t["id"]).status == "ringing"
    tasks(after_s=services.settings.TRANSFER_RING_TIMEOUT_S + 1)
    assert _stored(services, t["id"]).status == "no_answer"
    for agent in (a, bob, carol):
        failed = _events(agent, "transfer_failed")
        assert [p["outcome"] for p in failed] == ["no_answer"], agent.id
    assert bob.get("/api/me").json["pending_transfers"] == [] and carol.get("/api/me").json["pending_transfers"] == []
    assert call_status(a, call["session_id"]) == "active"
    assert t["transfer_room"] not in livekit_double.rooms
    assert bob.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 409


def test_a_decline_leaves_the_others_ringing_until_everyone_has_declined(client, make_agent, services):
    a, bob, carol = make_agent("alice"), make_agent("bob"), make_agent("carol")
    _team(services, "billing", "Billing", "bob", "carol")
    call = start_call(client, a)
    t = _to_team(a, call, "billing")["transfer"]

    assert bob.post("/api/decline-transfer", {"transfer_id": t["id"], "reason": "lunch"}).json["transfer"]["status"] == "ringing"
    assert bob.get("/api/me").json["pending_transfers"] == []
    assert [p["transfer_id"] for p in carol.get("/api/me").json["pending_transfers"]] == [t["id"]]
    assert bob.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 409  # declined is declined
    assert bob.post("/api/decline-transfer", {"transfer_id": t["id"]}).status_code == 409
    assert _events(a, "transfer_declined") == []

    assert carol.post("/api/decline-transfer", {"transfer_id": t["id"]}).json["transfer"]["status"] == "declined"
    [declined] = _events(a, "transfer_declined")
    assert declined["outcome"] == "declined" and declined["reason"] == "Everyone available in Billing declined."
    assert call_status(a, call["session_id"]) == "active"


def test_cancel_clears_every_member_offered_and_outsiders_cannot_act(client, make_agent, services):
    a, bob, carol, eve = make_agent("alice"), make_agent("bob"), make_agent("carol"), make_agent("eve")
    _team(services, "billing", "Billing", "bob", "carol")
    call = start_call(client, a)
    t = _to_team(a, call, "billing")["transfer"]
    assert eve.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 403
    assert eve.post("/api/decline-transfer", {"transfer_id": t["id"]}).status_code == 403
    assert a.post("/api/cancel-transfer", {"transfer_id": t["id"]}).json["transfer"]["status"] == "cancelled"
    for member in (bob, carol):
        assert [p["transfer_id"] for p in _events(member, "transfer_cancelled")] == [t["id"]]
    assert _events(eve, "transfer_cancelled") == []


def test_briefed_member_bowing_out_ends_it_like_any_agent_b(client, make_agent, services):
    a, bob, carol = make_agent("alice"), make_agent("bob"), make_agent("carol")
    _team(services, "billing", "Billing", "bob", "carol")
    call = start_call(client, a)
    t = _to_team(a, call, "billing")["transfer"]
    assert bob.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    assert bob.post("/api/decline-transfer", {"transfer_id": t["id"]}).json["transfer"]["status"] == "declined"
    assert _slot(services, "bob") is None
    assert call_status(a, call["session_id"]) == "active"
    # Carol was told it was taken, not that it ended: she has nothing more to clear.
    assert _events(carol, "transfer_declined") == []


def test_the_summary_suggests_the_team_the_call_is_about(client, make_agent, services):
    a = make_agent("alice")
    make_agent("bob")  # a member free to take it
    _team(services, "billing", "Billing", "bob", keywords=("invoice", "refund"))
    _team(services, "tech", "Technical Support", keywords=("router",))
    call = start_call(client, a)
    assert a.post("/api/add-context", {"session_id": call["session_id"], "text": "Wants a refund of invoice INV-2231."}).status_code == 201
    t = _to_team(a, call, "billing")["transfer"]
    assert t["summary"]["structured"]["suggested_team"] == "billing"
    summary = a.get(f"/api/calls/{call['session_id']}/summary").json["summary"]
    assert summary["structured"]["suggested_team"] == "billing"
