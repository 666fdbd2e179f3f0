"""A web customer's status stream (GET /api/calls/<id>/events): authenticated by the cookie
create-call sets for that call only, the customer's view pushed at each change of a whole transfer,
resumed with Last-Event-ID, limited per call, and ended with the call."""
from __future__ import annotations

import queue

import pytest

from tests import log_audit
from tests.support import SSEReader, open_sse, start_call, start_transfer


def _cookie_header(response) -> str:
    [cookie] = [v for v in response.headers.getlist("Set-Cookie") if v.startswith("wt_customer=")]
    return cookie


def _open(client, session_id: str, **headers) -> SSEReader:
    return open_sse(client, f"/api/calls/{session_id}/events", **headers)


def _status(stream: SSEReader, timeout: float = 5.0) -> dict:
    item = stream.next(timeout)
    assert item["event"] == "status", item
    return item


def _no_more(stream: SSEReader, seconds: float = 0.3) -> None:
    with pytest.raises(queue.Empty):
        stream.next(seconds)


def test_create_call_sets_an_httponly_strict_cookie_scoped_to_the_calls_stream(client):
    r = client.post("/api/create-call", json={"customer_name": "Jane Doe"})
    assert r.status_code == 201
    sid, key = r.json["session_id"], r.json["customer_key"]
    log_audit.remember(key, "a customer key")
    cookie = _cookie_header(r)
    attrs = {a.strip().split("=", 1)[0].lower(): a.strip().partition("=")[2] for a in cookie.split(";")[1:]}
    assert cookie.split(";")[0] == f"wt_customer={key}"
    assert attrs["path"] == f"/api/calls/{sid}/events"
    assert "httponly" in attrs and attrs["samesite"] == "Strict"
    assert "secure" not in attrs  # SESSION_COOKIE_SECURE is off in tests
    assert int(attrs["max-age"]) > 0
    # The key never travels in a URL: not in the stream's, nor anywhere else the API names.
    assert key not in cookie.split(";")[2]


def test_cookie_is_secure_when_session_cookies_are(make_app):
    client = make_app(SESSION_COOKIE_SECURE=True).test_client()
    r = client.post("/api/create-call", json={"customer_name": "Jane Doe"})
    log_audit.remember(r.json["customer_key"], "a customer key")
    assert "Secure" in _cookie_header(r).split("; ")


def test_stream_needs_the_cookie_of_that_very_call(app, client):
    first = start_call(client)
    other_browser = app.test_client()
    # No cookie at all: 401, typed.
    r = other_browser.get(f"/api/calls/{first['session_id']}/events")
    assert r.status_code == 401 and r.json["error"]["code"] == "customer_cookie_missing"
    # The header alone does not open the stream: it is the cookie's route.
    r = other_browser.get(f"/api/calls/{first['session_id']}/events", headers={"X-Customer-Key": first["customer_key"]})
    assert r.status_code == 401
    # Another call's key, sent as this call's cookie: 403.
    second = start_call(other_browser)
    other_browser.set_cookie("wt_customer", second["customer_key"], path=f"/api/calls/{first['session_id']}/events")
    r = other_browser.get(f"/api/calls/{first['session_id']}/events")
    assert r.status_code == 403 and r.json["error"]["code"] == "invalid_customer_key"
    # Unknown call: 404.
    client.set_cookie("wt_customer", first["customer_key"], path="/api/calls/nope/events")
    r = client.get("/api/calls/nope/events")
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    # The browser's own cookie goes only to its own call's stream path.
    assert client.get_cookie("wt_customer", path=f"/api/calls/{first['session_id']}/events") is not None
    assert client.get_cookie("wt_customer", path=f"/api/calls/{second['session_id']}/events") is None


def test_the_cookie_authorizes_nothing_but_the_stream(client, make_agent):
    """State-changing routes keep asking for the X-Customer-Key header, which no other site can
    send; the cookie (sent to the stream's path only anyway) does not stand in for it."""
    a = make_agent("alice")
    call = start_call(client, a)
    sid = call["session_id"]
    client.set_cookie("wt_customer", call["customer_key"], path="/api")
    assert client.post("/api/end-call", json={"session_id": sid}).status_code == 401
    assert client.post("/api/token", json={"session_id": sid}).status_code == 401
    assert client.get(f"/api/calls/{sid}/status").status_code == 403
    assert a.get(f"/api/calls/{sid}").json["call"]["status"] == "active"


def test_statuses_are_pushed_through_a_whole_transfer_and_the_stream_ends_with_the_call(client, make_agent):
    a, b = make_agent("alice", "Alice"), make_agent("bob", "Bob")
    call = start_call(client)  # assigned to Alice, who has not joined yet
    sid = call["session_id"]
    stream = _open(client, sid)
    first = _status(stream)
    assert first["data"] == {"session_id": sid, "status": "ringing", "agent_name": "Alice", "on_hold": False, "end_reason": None}

    assert a.post("/api/token", {"session_id": sid}).status_code == 200
    joined = _status(stream)
    assert (joined["data"]["status"], joined["data"]["agent_name"]) == ("active", "Alice")

    t1 = start_transfer(a, call, "bob")
    held = _status(stream)
    assert held["data"]["status"] == "on_hold" and held["data"]["on_hold"] is True
    assert a.post("/api/cancel-transfer", {"transfer_id": t1["id"]}).status_code == 200
    back = _status(stream)
    assert back["data"] == dict(joined["data"])

    t2 = start_transfer(a, call, "bob")
    assert _status(stream)["data"]["status"] == "on_hold"
    assert b.post("/api/accept-transfer", {"transfer_id": t2["id"]}).status_code == 200
    r = a.post("/api/complete-transfer", {"transfer_id": t2["id"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    moved = _status(stream)
    assert moved["data"]["status"] == "transferred" and moved["data"]["agent_name"] == "Bob"
    # Nothing agent-internal ever reaches the customer: only the status's own keys.
    assert set(moved["data"]) == {"session_id", "status", "agent_name", "on_hold", "end_reason"}

    # Agent A's notes are events of the call too, but change nothing the customer sees.
    assert b.post("/api/add-context", {"session_id": sid, "text": "private note"}).status_code == 201
    _no_more(stream)

    assert b.post("/api/end-call", {"session_id": sid}).status_code == 200
    ended = _status(stream)
    assert ended["data"]["status"] == "completed" and ended["data"]["end_reason"] == "agent_ended"
    assert stream.next()["event"] == "__closed__"

    ids = [int(x["id"]) for x in (first, joined, held, back, moved, ended)]
    assert ids == sorted(ids) and ids[0] < ids[-1]
    # The polled status says the same at every point (here: the end).
    assert client.get(f"/api/calls/{sid}/status", headers={"X-Customer-Key": call["customer_key"]}).json == ended["data"]


def test_a_reconnect_with_last_event_id_gets_what_changed_meanwhile(client, make_agent):
    a = make_agent("alice", "Alice")
    make_agent("bob", "Bob")
    call = start_call(client, a)
    sid = call["session_id"]
    stream = _open(client, sid)
    seen = _status(stream)
    assert seen["data"]["status"] == "active"
    start_transfer(a, call, "bob")  # while the customer's browser is away
    resumed = _open(client, sid, **{"Last-Event-ID": seen["id"]})
    got = _status(resumed)
    assert got["data"]["status"] == "on_hold" and int(got["id"]) > int(seen["id"])
    assert client.get(f"/api/calls/{sid}/events", headers={"Last-Event-ID": "x1"}).status_code == 422


def test_an_ended_call_sends_its_end_and_closes(client, make_agent):
    a = make_agent("alice")
    call = start_call(client, a)
    r = client.post("/api/end-call", json={"session_id": call["session_id"]}, headers={"X-Customer-Key": call["customer_key"]})
    assert r.status_code == 200
    stream = _open(client, call["session_id"])
    item = _status(stream)
    assert (item["data"]["status"], item["data"]["end_reason"]) == ("completed", "customer_hung_up")
    assert stream.next()["event"] == "__closed__"


def test_a_call_has_at_most_its_limit_of_streams_on_all_processes(make_app, client, services):
    call = start_call(client)
    sid = call["session_id"]
    oldest = _open(client, sid)
    _status(oldest)
    middle = _open(client, sid)
    _status(middle)
    # A third stream, opened on another process, closes the call's oldest (the limit is 2).
    other = make_app().test_client()
    other.set_cookie("wt_customer", call["customer_key"], path=f"/api/calls/{sid}/events")
    newest = _open(other, sid)
    _status(newest)
    # The oldest notices at its next read: at the latest its heartbeat, here the call's next change.
    services.calls.end_call(sid, by_agent=None, reason="customer_hung_up")
    assert oldest.next()["event"] == "stream_replaced"
    assert oldest.next()["event"] == "__closed__"
    # Nobody had answered: the call is abandoned, and both remaining streams say so.
    assert _status(middle)["data"]["status"] == "abandoned"
    assert _status(newest)["data"]["status"] == "abandoned"


def test_a_full_process_refuses_the_stream_before_writing_and_the_page_polls(make_app):
    app = make_app(GUNICORN_THREADS=2, SSE_THREAD_RESERVE=1)
    client = app.test_client()
    call = start_call(client)
    held = _open(client, call["session_id"])
    _status(held)
    r = client.get(f"/api/calls/{call['session_id']}/events")
    assert r.status_code == 503 and r.json["error"]["code"] == "streams_full" and r.headers["Retry-After"]
    assert client.get(f"/api/calls/{call['session_id']}/status", headers={"X-Customer-Key": call["customer_key"]}).status_code == 200


def test_graceful_stop_ends_customer_streams(client):
    from app.event_dispatcher import close_local_streams

    call = start_call(client)
    stream = _open(client, call["session_id"])
    _status(stream)
    close_local_streams()
    assert stream.next()["event"] == "__closed__"
