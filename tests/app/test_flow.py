"""The original warm-transfer workflow through the JSON API, step by step."""
from __future__ import annotations

from tests.support import grants_of


def _call(client, name="Jane Doe"):
    r = client.post("/api/create-call", json={"customer_name": name})
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.json


def test_web_call_is_assigned_and_transferred(app, client, make_agent, livekit_double, tasks):
    a = make_agent("alice", "Alice A")
    call = _call(client)
    assert call["agent_id"] == "alice"
    assert call["room_name"] == f"call_{call['session_id']}"
    claims = grants_of(call["token"], livekit_double.api_key, livekit_double.api_secret)
    assert claims.video.room == call["room_name"] and claims.video.room_join
    assert call["room_name"] in livekit_double.rooms

    b = make_agent("bob", "Bob B")  # logs in after the call was assigned, so he is free
    sid = call["session_id"]
    r = a.post("/api/token", {"session_id": sid})
    assert r.status_code == 200 and r.json["room_name"] == call["room_name"]
    for text in ["Customer has billing issue, payment declined", "Order #12345, charged $49.99 twice", "Needs a refund today"]:
        r = a.post("/api/add-context", {"session_id": sid, "text": text})
        assert r.status_code == 201, r.get_data(as_text=True)
        assert r.json["entry"]["source"] == "note"

    r = a.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "bob"})
    assert r.status_code == 201, r.get_data(as_text=True)
    transfer = r.json["transfer"]
    assert transfer["status"] == "ringing"
    assert transfer["transfer_room"].startswith(f"transfer_{sid}_")
    assert "12345" in transfer["summary"]["text"]
    assert transfer["summary"]["provider"] == "offline"
    assert grants_of(r.json["token"], livekit_double.api_key, livekit_double.api_secret).video.room == transfer["transfer_room"]

    requested = [n for n in b.notifications() if n["type"] == "transfer_requested"]
    assert requested and requested[0]["payload"]["transfer_id"] == transfer["id"]

    r = b.post("/api/accept-transfer", {"transfer_id": transfer["id"]})
    assert r.status_code == 200 and r.json["transfer"]["status"] == "briefing"
    assert grants_of(r.json["token"], livekit_double.api_key, livekit_double.api_secret).video.room == transfer["transfer_room"]

    r = a.post("/api/complete-transfer", {"transfer_id": transfer["id"]})
    assert r.status_code == 200 and r.json["transfer"]["status"] == "completed"
    tasks()
    assert transfer["transfer_room"] not in livekit_double.rooms

    r = b.post("/api/token", {"session_id": sid})
    assert r.status_code == 200 and r.json["room_name"] == call["room_name"]
    r = a.post("/api/agent-exit-room", {"session_id": sid})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert a.post("/api/token", {"session_id": sid}).status_code == 403

    detail = b.get(f"/api/calls/{sid}").json["call"]
    assert detail["status"] == "transferred" and detail["agent_id"] == "bob"
    r = b.post("/api/end-call", {"session_id": sid})
    assert r.status_code == 200 and r.json["call"]["status"] == "completed"
    tasks()
    assert call["room_name"] not in livekit_double.rooms
