"""Call history: `GET /api/calls?mine=1&status=ended&limit=&before=` pages an agent's finished
calls, newest first, and only the calls they took part in (on SQLite and PostgreSQL)."""
from __future__ import annotations

from datetime import timedelta

from app.models import Call
from tests.support import start_call


def finish(agent, call: dict) -> None:
    r = agent.post("/api/end-call", {"session_id": call["session_id"]})
    assert r.status_code == 200, r.get_data(as_text=True)


def spread_out(services, ids: list[str]) -> None:
    """Give the calls distinct start times in the past, one second apart, oldest first (calls made
    in one test can share a timestamp; paging must not depend on that, but the expected order is
    clearer this way)."""
    with services.db.transaction() as s:
        base = s.get(Call, ids[0]).created_at - timedelta(seconds=len(ids) + 1)
        for i, call_id in enumerate(ids):
            s.get(Call, call_id).created_at = base + timedelta(seconds=i)


def pages(agent, query: str) -> list[list[str]]:
    """Every page of `query`, following next_before, as lists of call ids."""
    out, before = [], None
    while True:
        r = agent.get(f"/api/calls?{query}" + (f"&before={before}" if before else ""))
        assert r.status_code == 200, r.get_data(as_text=True)
        out.append([c["session_id"] for c in r.json["calls"]])
        before = r.json["next_before"]
        if before is None:
            return out
        assert len(out) < 20, "next_before never ran out"


def test_finished_calls_page_newest_first_and_every_call_once(client, make_agent, services):
    a = make_agent("alice")
    ids = []
    for n in range(5):
        call = start_call(client, a, f"Caller {n}")
        finish(a, call)
        ids.append(call["session_id"])
    live = start_call(client, a, "Still talking")
    spread_out(services, [*ids, live["session_id"]])

    assert pages(a, "mine=1&status=ended&limit=2") == [ids[:2:-1], ids[2:0:-1], ids[:1]]
    everything = a.get("/api/calls?limit=100").json
    assert [c["session_id"] for c in everything["calls"]] == [live["session_id"], *ids[::-1]]
    assert everything["next_before"] is None
    assert [c["session_id"] for c in a.get("/api/calls?status=active").json["calls"]] == [live["session_id"]]
    assert {c["status"] for c in a.get("/api/calls?status=ended").json["calls"]} == {"completed"}


def test_a_call_started_between_pages_does_not_shift_the_next_page(client, make_agent, services):
    a = make_agent("alice")
    ids = []
    for n in range(3):
        call = start_call(client, a, f"Caller {n}")
        finish(a, call)
        ids.append(call["session_id"])
    spread_out(services, ids)
    first = a.get("/api/calls?status=ended&limit=2").json
    newer = start_call(client, a, "Newer")
    finish(a, newer)
    second = a.get(f"/api/calls?status=ended&limit=2&before={first['next_before']}").json
    assert [c["session_id"] for c in second["calls"]] == [ids[0]]


def test_history_shows_only_calls_the_agent_took_part_in(client, make_agent):
    a, b, c = make_agent("alice"), make_agent("bob"), make_agent("carol")
    transferred = start_call(client, a, "Transferred")
    sid = transferred["session_id"]
    r = a.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "bob"})
    assert r.status_code == 201, r.get_data(as_text=True)
    transfer_id = r.json["transfer"]["id"]
    assert b.post("/api/accept-transfer", {"transfer_id": transfer_id}).status_code == 200
    assert a.post("/api/complete-transfer", {"transfer_id": transfer_id}).status_code == 200
    # While Bob talks to the customer, Alice (who handed over) reads nothing more of the call...
    assert a.get(f"/api/calls/{sid}").status_code == 403
    finish(b, transferred)
    # ...once it has ended, both read its whole record: their history.
    for agent in (a, b):
        detail = agent.get(f"/api/calls/{sid}")
        assert detail.status_code == 200, detail.get_data(as_text=True)
        assert [t["status"] for t in detail.json["call"]["transfers"]] == ["completed"]
        assert agent.get(f"/api/calls/{sid}/summary").status_code == 200
    r = a.client.put(f"/api/calls/{sid}/summary", json={"text": "rewritten afterwards"}, headers={"X-CSRF-Token": a.csrf})
    assert r.status_code == 403  # reading the record is not editing it
    own = start_call(client, c, "Carol's own")
    finish(c, own)

    assert [x["session_id"] for x in a.get("/api/calls?status=ended").json["calls"]] == [sid]  # Agent A
    assert [x["session_id"] for x in b.get("/api/calls?status=ended").json["calls"]] == [sid]  # Agent B
    assert [x["session_id"] for x in c.get("/api/calls?status=ended").json["calls"]] == [own["session_id"]]
    assert c.get(f"/api/calls/{sid}").status_code == 403  # and the detail is refused too
    # Another agent's call is no cursor: not found (for Carol), not read as "from the start".
    r = c.get(f"/api/calls?status=ended&before={sid}")
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


def test_bad_queries_are_refused_with_a_typed_error(client, make_agent):
    a = make_agent("alice")
    for query in ("mine=0", "status=nope", "limit=0", "limit=101", "limit=x", "limit=%C2%B2", "before=" + "x" * 65, "page=2"):
        r = a.get(f"/api/calls?{query}")
        assert r.status_code == 422, (query, r.status_code)
        assert r.json["error"]["code"] == "validation_error" and r.json["error"]["message"], query
    assert client.get("/api/calls?status=ended").status_code == 401
