"""Every route answers bad input with a typed JSON error, and never a 500."""
from __future__ import annotations

import pytest

from tests.support import start_call, start_transfer

JSON_POST_ROUTES = {
    "/api/login": {"agent_id": "alice", "password": "x" * 10},
    "/api/presence": {"status": "away"},
    "/api/create-call": {"customer_name": "Jane"},
    "/api/add-context": {"session_id": "abc", "text": "hello"},
    "/api/initiate-transfer": {"session_id": "abc", "to_agent_id": "bob"},
    "/api/accept-transfer": {"transfer_id": "tr_x"},
    "/api/decline-transfer": {"transfer_id": "tr_x"},
    "/api/complete-transfer": {"transfer_id": "tr_x"},
    "/api/cancel-transfer": {"transfer_id": "tr_x"},
    "/api/token": {"session_id": "abc"},
    "/api/agent-exit-room": {"session_id": "abc"},
    "/api/microphone-failed": {"session_id": "abc", "error": "NotAllowedError"},
    "/api/end-call": {"session_id": "abc"},
}
NEEDS_LOGIN = sorted(set(JSON_POST_ROUTES) - {"/api/login", "/api/create-call", "/api/token", "/api/end-call"})


def _error(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    assert r.is_json, r.get_data(as_text=True)
    err = r.json["error"]
    assert set(err) == {"code", "message"} and err["message"]
    if code:
        assert err["code"] == code, err
    return err


@pytest.fixture
def alice(make_agent):
    return make_agent("alice", "Alice")


@pytest.mark.parametrize("path", sorted(JSON_POST_ROUTES))
@pytest.mark.parametrize(
    "raw,content_type,status,code",
    [
        ("{not json", "application/json", 400, "invalid_json"),
        ('["a", "list"]', "application/json", 400, "invalid_json"),
        ('"a string"', "application/json", 400, "invalid_json"),
        ("", "application/json", 400, "invalid_json"),
        ("customer_name=Jane", "application/x-www-form-urlencoded", 400, "invalid_json"),
        ('{"x": "\\ud800"}', "application/json", 422, "validation_error"),
    ],
)
def test_malformed_bodies(alice, path, raw, content_type, status, code):
    r = alice.client.post(path, data=raw, content_type=content_type, headers={"X-CSRF-Token": alice.csrf})
    _error(r, status, code)


@pytest.mark.parametrize("path", sorted(JSON_POST_ROUTES))
def test_shape_errors(alice, path):
    good = JSON_POST_ROUTES[path]
    first = next(iter(good))
    _error(alice.post(path, dict(good, surprise=1)), 422, "validation_error")
    _error(alice.post(path, {k: v for k, v in good.items() if k != first}), 422, "validation_error")
    _error(alice.post(path, dict(good, **{first: 12345})), 422, "validation_error")
    _error(alice.post(path, dict(good, **{first: True})), 422, "validation_error")
    _error(alice.post(path, dict(good, **{first: ["list"]})), 422, "validation_error")
    _error(alice.post(path, dict(good, **{first: "x" * 5000})), 422, "too_long")


@pytest.mark.parametrize("path", NEEDS_LOGIN + ["/api/logout"])
def test_no_login_is_401(client, path):
    _error(client.post(path, json=JSON_POST_ROUTES.get(path, {})), 401, "not_authenticated")


@pytest.mark.parametrize("path", NEEDS_LOGIN + ["/api/logout"])
def test_missing_or_wrong_csrf_is_403(alice, path):
    body = JSON_POST_ROUTES.get(path, {})
    _error(alice.client.post(path, json=body), 403, "csrf_failed")
    _error(alice.client.post(path, json=body, headers={"X-CSRF-Token": "forged"}), 403, "csrf_failed")


@pytest.mark.parametrize("path", ["/api/calls", "/api/calls/abc", "/api/notifications/alice", "/api/events", "/api/me", "/api/agents"])
def test_get_routes_need_login(client, path):
    _error(client.get(path), 401, "not_authenticated")


def test_unknown_ids_are_404(alice):
    for path, body in [
        ("/api/add-context", {"session_id": "nope", "text": "x"}),
        ("/api/initiate-transfer", {"session_id": "nope", "to_agent_id": "bob"}),
        ("/api/accept-transfer", {"transfer_id": "tr_nope"}),
        ("/api/decline-transfer", {"transfer_id": "tr_nope"}),
        ("/api/complete-transfer", {"transfer_id": "tr_nope"}),
        ("/api/cancel-transfer", {"transfer_id": "tr_nope"}),
        ("/api/token", {"session_id": "nope"}),
        ("/api/agent-exit-room", {"session_id": "nope"}),
        ("/api/end-call", {"session_id": "nope"}),
    ]:
        _error(alice.post(path, body), 404, "not_found")
    _error(alice.get("/api/calls/nope"), 404, "not_found")
    _error(alice.get("/api/nothing-here"), 404, "not_found")
    _error(alice.client.delete("/api/create-call"), 405, "method_not_allowed")


def test_customer_key_is_checked(client, alice):
    call = start_call(client, alice)
    sid = call["session_id"]
    _error(client.post("/api/token", json={"session_id": sid}, headers={"X-Customer-Key": "wrong"}), 403, "invalid_customer_key")
    _error(client.post("/api/end-call", json={"session_id": sid}, headers={"X-Customer-Key": ""}), 403, "invalid_customer_key")
    other = start_call(client, None, "Other")
    _error(client.post("/api/end-call", json={"session_id": sid}, headers={"X-Customer-Key": other["customer_key"]}), 403, "invalid_customer_key")
    ok = client.post("/api/token", json={"session_id": sid}, headers={"X-Customer-Key": call["customer_key"]})
    assert ok.status_code == 200 and ok.json["room_name"] == call["room_name"]


def test_wrong_agent_is_403(client, make_agent):
    a, b, c = make_agent("alice"), make_agent("bob"), make_agent("carol")
    call = start_call(client, a)
    sid = call["session_id"]
    _error(c.post("/api/add-context", {"session_id": sid, "text": "sneaky"}), 403, "forbidden")
    _error(c.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "bob"}), 403, "forbidden")
    _error(c.post("/api/token", {"session_id": sid}), 403, "forbidden")
    _error(c.post("/api/end-call", {"session_id": sid}), 403, "forbidden")
    _error(c.post("/api/agent-exit-room", {"session_id": sid}), 403, "forbidden")
    _error(c.get(f"/api/calls/{sid}"), 403, "forbidden")
    _error(c.get("/api/notifications/alice"), 403, "forbidden")
    t = start_transfer(a, call, "bob")
    _error(c.post("/api/accept-transfer", {"transfer_id": t["id"]}), 403, "forbidden")
    _error(a.post("/api/accept-transfer", {"transfer_id": t["id"]}), 403, "forbidden")
    _error(b.post("/api/complete-transfer", {"transfer_id": t["id"]}), 403, "forbidden")
    _error(b.post("/api/cancel-transfer", {"transfer_id": t["id"]}), 403, "forbidden")
    _error(c.post("/api/decline-transfer", {"transfer_id": t["id"]}), 403, "forbidden")


def test_wrong_state_is_409(client, make_agent):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    sid = call["session_id"]
    t = start_transfer(a, call, "bob")
    _error(a.post("/api/complete-transfer", {"transfer_id": t["id"]}), 409, "invalid_state")  # not briefed yet
    _error(a.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "bob"}), 409, "transfer_in_progress")
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    _error(b.post("/api/accept-transfer", {"transfer_id": t["id"]}), 409, "invalid_state")
    assert a.post("/api/complete-transfer", {"transfer_id": t["id"]}).status_code == 200
    _error(a.post("/api/complete-transfer", {"transfer_id": t["id"]}), 409, "invalid_state")
    _error(a.post("/api/cancel-transfer", {"transfer_id": t["id"]}), 409, "invalid_state")
    _error(b.post("/api/decline-transfer", {"transfer_id": t["id"]}), 409, "invalid_state")
    assert b.post("/api/end-call", {"session_id": sid}).status_code == 200
    _error(b.post("/api/end-call", {"session_id": sid}), 409, "call_ended")
    _error(b.post("/api/add-context", {"session_id": sid, "text": "late"}), 403, "forbidden")
    _error(client.post("/api/token", json={"session_id": sid}, headers={"X-Customer-Key": call["customer_key"]}), 409, "call_ended")


def test_transfer_targets_are_validated(client, make_agent):
    a = make_agent("alice")
    make_agent("away-agent").post("/api/presence", {"status": "away"})
    make_agent("offline-agent", login=False)
    call = start_call(client, a)
    sid = call["session_id"]
    _error(a.post("/api/initiate-transfer", {"session_id": sid}), 422, "validation_error")
    _error(a.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "x", "to_phone": "+14155550100"}), 422, "validation_error")
    _error(a.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "alice"}), 422, "validation_error")
    _error(a.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "ghost"}), 404, "not_found")
    _error(a.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "away-agent"}), 409, "agent_unavailable")
    _error(a.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "offline-agent"}), 409, "agent_unavailable")
    _error(a.post("/api/initiate-transfer", {"session_id": sid, "to_phone": "555-0100"}), 422, "invalid_phone_number")
    _error(a.post("/api/initiate-transfer", {"session_id": sid, "to_phone": "+1415555"}), 422, "invalid_phone_number")
    for premium_or_satellite in ("+19005550123", "+882123456789", "+881612345678"):
        _error(a.post("/api/initiate-transfer", {"session_id": sid, "to_phone": premium_or_satellite}), 422, "number_not_allowed")
    _error(a.post("/api/initiate-transfer", {"session_id": sid, "to_phone": "+14155550100"}), 503, "telephony_not_configured")


def test_other_field_rules(client, alice):
    _error(client.post("/api/create-call", json={"customer_name": "   "}), 422, "validation_error")
    _error(alice.post("/api/presence", {"status": "asleep"}), 422, "validation_error")
    _error(alice.get("/api/notifications/alice?since=abc"), 422, "validation_error")
    _error(alice.get("/api/notifications/alice?since=-1"), 422, "validation_error")
    _error(alice.get("/api/notifications/alice?bogus=1"), 422, "validation_error")
    _error(alice.get("/api/events", headers={"Last-Event-ID": "x"}), 422, "validation_error")
    big = "x" * (70 * 1024)
    _error(client.post("/api/create-call", data=big, content_type="application/json"), 413, "payload_too_large")


def test_login_failures_do_not_reveal_which_part_was_wrong(client, alice):
    e1 = _error(client.post("/api/login", json={"agent_id": "alice", "password": "wrong-password"}), 401, "invalid_credentials")
    e2 = _error(client.post("/api/login", json={"agent_id": "nobody", "password": "wrong-password"}), 401, "invalid_credentials")
    assert e1 == e2


def test_deeply_nested_json_is_a_400(client):
    body = "[" * 20_000 + "]" * 20_000  # 40 kB: under the body size limit
    for path in ("/api/create-call", "/api/login"):
        _error(client.post(path, data=body, content_type="application/json"), 400, "invalid_json")


def test_empty_optional_fields_count_as_absent(client, alice):
    call = start_call(client, alice)
    r = alice.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_agent_id": "", "to_phone": "+14155550100"})
    _error(r, 503, "telephony_not_configured")
    _error(alice.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_agent_id": "", "to_phone": ""}), 422, "validation_error")
