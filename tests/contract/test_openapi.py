"""The OpenAPI description (`GET /api/openapi.json`, app/api/openapi.py) is kept true here.

- It is a valid OpenAPI 3.1 document, served publicly and cacheably.
- Every route in the app's url_map is described with exactly its methods, and nothing described
  is missing from the app (the one exclusion, Flask's static files, is the documented rule).
- Every error code raised in `app/` is documented under its status, or named below as one that
  never reaches an HTTP client; and every documented code is raised somewhere.
- Every request body the spec describes matches what the route's `parse_json` accepts (fields,
  types, required, maxLength), read from the schemas the routes actually pass it.
- Every response of a representative flow through the Flask test client (each route's success
  and each error status: 400, 401, 403, 404, 409, 413, 422, 429, 503) validates against the
  spec by path, method and status: the status is documented, the content type is declared, the
  body matches its schema (formats included) and required headers are present.
- A 405 says which methods the route has, and requests at the edge of what the spec allows get
  documented answers, not 500s (these fail until the app bugs they describe are fixed).

`SpecChecker` (tests/harness/openapi_check.py) is also what tests/conftest.py uses, when WT_OPENAPI_RECORD=1, to check every
response of the whole test suite.
"""
from __future__ import annotations

import ast
import copy
import json
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import responses
from openapi_spec_validator import validate as validate_openapi

import app.api.agents
import app.api.calls
import app.api.summaries
import app.api.supervision
import app.api.transfers
from app import errors
from app.api.openapi import CACHE_CONTROL, ERRORS, NOT_BLANK, build_spec
from app.api.validation import Field
from app.api.validation import parse_json as real_parse_json
from tests.harness.openapi_check import ResponseRecorder, SpecChecker, openapi_path
from tests.telephony import TELEPHONY, agent_on, make_sim

ROOT = Path(__file__).resolve().parents[2]
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Error codes app code raises that never reach an HTTP client, and why.
NOT_OVER_HTTP = {
    (409, "agent_exists"): "`flask agents add` (CLI) only",
    (409, "team_exists"): "`flask teams add` (CLI) only",
    (409, "phone_leg_ended"): "the Twilio gateway, called by the worker only",
    (422, "invalid_phone_number", "app/gateways/twilio.py"): "the Twilio gateway, called by the worker only",
    (502, "twilio_error"): "Twilio REST refusals reach worker tasks only; the recording route answers any Twilio failure as 503",
    (503, "sip_provisioning_ambiguous"): "`flask livekit provision-sip` (CLI) only",
    (0, "http_error"): "the fallback for werkzeug statuses no route raises",
}
# Twilio's webhooks answer TwiML whatever fails (the code travels in X-WT-Error), never JSON.
TWIML_ONLY = {"app/twilio_webhooks.py"}



@pytest.fixture(scope="module")
def spec():
    return build_spec()


# -- the document ---------------------------------------------------------------------------------
def test_spec_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate_openapi(spec)


def test_served_publicly_and_cacheably(client, spec):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.json == spec
    assert r.headers["Cache-Control"] == CACHE_CONTROL and r.headers["ETag"]
    again = client.get("/api/openapi.json", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


def test_every_route_is_described_and_nothing_else(app, spec):
    described = {(path, method.upper()) for path, item in spec["paths"].items() for method in item if method in HTTP_METHODS}
    registered = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue  # the documented exclusion: a file server, its filename may contain slashes
        for method in rule.methods - {"HEAD", "OPTIONS"}:  # Flask answers these for every route
            registered.add((openapi_path(rule.rule), method))
    assert sorted(registered - described) == [], "routes missing from the spec"
    assert sorted(described - registered) == [], "described routes that do not exist"
    api = {p for p, _m in registered if p.startswith("/api/")}
    assert all("outside-json-api" not in op["tags"] for p in api for op in spec["paths"][p].values())
    assert "static" in spec["info"]["description"]


def _raised_codes() -> set[tuple[int, str, str]]:
    """(status, code, file) for every AppError raised or built in app/, read from the source."""
    classes = {name: cls for name, cls in vars(errors).items() if isinstance(cls, type) and issubclass(cls, errors.AppError)}
    found = set()
    for path in sorted((ROOT / "app").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                if name not in classes:
                    continue
                kwargs = {kw.arg: kw.value for kw in node.keywords}
                code, status = classes[name].code, classes[name].status
                if "code" in kwargs:
                    if not isinstance(kwargs["code"], ast.Constant):
                        continue  # the generic HTTP handler's variable code, read below
                    code = kwargs["code"].value
                if "status" in kwargs:
                    if not isinstance(kwargs["status"], ast.Constant):
                        continue
                    status = kwargs["status"].value
                found.add((status, code, rel))
            # The generic handler's mapping of werkzeug statuses: `codes = {404: "not_found", ...}`.
            if (
                rel == "app/errors.py"
                and isinstance(node, ast.Dict)
                and node.keys
                and all(isinstance(k, ast.Constant) and isinstance(k.value, int) for k in node.keys)
                and all(isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value.islower() and " " not in v.value for v in node.values)
            ):
                found |= {(k.value, v.value, rel) for k, v in zip(node.keys, node.values, strict=True)}
    # The generic handler's fallback code, for any other werkzeug status.
    found.add((0, "http_error", "app/errors.py"))
    return found


def _documented_codes(spec: dict) -> set[tuple[int, str]]:
    found = set()

    def visit(status: str, response: dict):
        for content in response.get("content", {}).values():
            schema = content.get("schema", {})
            code = schema.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
            found.update((int(status), c) for c in code.get("enum", []))

    shared = spec["components"]["responses"]
    for item in spec["paths"].values():
        for method, op in item.items():
            if method in HTTP_METHODS:
                for status, response in op["responses"].items():
                    if "$ref" in response:
                        response = shared[response["$ref"].rsplit("/", 1)[1]]
                    visit(status, response)
    # Shared responses no operation lists (405: a method the path does not have) count too.
    names = {name: status for status, (name, _d, _c) in ERRORS.items()}
    for name, response in shared.items():
        visit(str(names[name]), response)
    return found


def test_error_codes_are_documented_under_their_status(spec):
    raised = _raised_codes()
    documented = _documented_codes(spec)
    unreachable = {k for k in NOT_OVER_HTTP}
    missing = sorted(
        (status, code, where)
        for status, code, where in raised
        if (status, code) not in documented
        and (status, code) not in unreachable
        and (status, code, where) not in unreachable
        and where not in TWIML_ONLY
    )
    assert missing == [], "codes raised in app/ but not documented in the spec (or listed in NOT_OVER_HTTP)"
    raised_pairs = {(s, c) for s, c, _w in raised}
    assert sorted(documented - raised_pairs) == [], "documented codes nothing raises"


# -- request bodies -------------------------------------------------------------------------------
def test_not_blank_is_what_strip_keeps():
    """`pattern: NOT_BLANK` accepts exactly the strings parse_json does not strip to nothing (and
    that hold no NUL, which validation refuses in any string)."""
    pattern = re.compile(NOT_BLANK)
    for char in map(chr, range(0x10000)):
        assert (pattern.search(char) is None) == (char.isspace() or char == "\x00"), hex(ord(char))
    assert pattern.search("a\x00b") is None and pattern.search(" a ") is not None
    assert not any(chr(c).isspace() for c in range(0x10000, 0x110000))



KIND = {str: "string", dict: "object", int: "integer", bool: "boolean", list: "array"}


def _described_body(spec: dict, template: str, method: str) -> dict | None:
    body = spec["paths"][template][method.lower()].get("requestBody")
    return None if body is None else body["content"]["application/json"]["schema"]


def _resolve_types(spec: dict, prop: dict) -> set[str]:
    types = set()
    for alternative in prop.get("oneOf", [prop]):
        if "$ref" in alternative:
            alternative = spec["components"]["schemas"][alternative["$ref"].rsplit("/", 1)[1]]
        kind = alternative.get("type")
        types |= set(kind if isinstance(kind, list) else [kind])
    return types


def compare_body(spec: dict, template: str, method: str, fields: dict) -> list[str]:
    """What differs between the spec's request body and the Field schema parse_json was given."""
    schema = _described_body(spec, template, method)
    if schema is None:
        return [f"{method} {template}: parse_json reads a body the spec does not describe"]
    problems = []
    if schema.get("additionalProperties") is not False:
        problems.append("unknown fields are refused: additionalProperties must be false")
    if set(schema["properties"]) != set(fields):
        problems.append(f"fields {sorted(schema['properties'])} != parse_json's {sorted(fields)}")
    for name, field in fields.items():
        prop = schema["properties"].get(name)
        if prop is None:
            continue
        if (name in schema.get("required", [])) != field.required:
            problems.append(f"{name}: required is {field.required} in parse_json")
        types = _resolve_types(spec, prop)
        expected = {KIND[field.kind]} | ({"null"} if not field.required or field.nullable else set())
        if types != expected:
            problems.append(f"{name}: types {sorted(types)} != {sorted(expected)}")
        if field.kind is str and prop.get("maxLength") != field.max_len:
            problems.append(f"{name}: maxLength {prop.get('maxLength')} != {field.max_len}")
        if field.kind is str and field.required and prop.get("pattern") != NOT_BLANK and "enum" not in prop:
            problems.append(f"{name}: a required string must not be blank (pattern NOT_BLANK)")
    return [f"{method} {template}: {p}" for p in problems]


@contextmanager
def capturing_parse_json(monkeypatch):
    """Record (method, rule, Field schema) each time a route calls parse_json."""
    from flask import request

    captured: dict[tuple[str, str], dict] = {}

    def parse_and_capture(req, schema):
        captured[(request.method, openapi_path(request.url_rule.rule))] = schema
        return real_parse_json(req, schema)

    for module in (app.api.agents, app.api.calls, app.api.summaries, app.api.supervision, app.api.transfers):
        monkeypatch.setattr(module, "parse_json", parse_and_capture)
    yield captured


# -- the flow -------------------------------------------------------------------------------------
def _agent(services, app_, agent_id: str, role: str = "agent"):
    password = f"pw-{agent_id}-123456"
    services.agents.add(agent_id, agent_id.title(), password, None, role=role)
    client = app_.test_client()
    r = client.post("/api/login", json={"agent_id": agent_id, "password": password})
    assert r.status_code == 200, r.get_data(as_text=True)
    return client, {"X-CSRF-Token": r.json["csrf_token"]}


def _expect(r, status: int):
    assert r.status_code == status, (r.request.method, r.request.path, r.status_code, r.get_data(as_text=True)[:300])
    return r.json if r.is_json else None


def _drive(app_, services, make_app, livekit_double) -> None:
    """Every API route's success, and each error status, through the test client."""
    anon = app_.test_client()
    _expect(anon.get("/api/health"), 200)
    _expect(anon.get("/api/health/live"), 200)
    _expect(anon.get("/api/health/ready"), 200)
    doc = anon.get("/api/openapi.json")
    _expect(anon.get("/api/openapi.json", headers={"If-None-Match": doc.headers["ETag"]}), 304)
    _expect(anon.get("/api/me"), 401)
    _expect(anon.post("/api/login", json={"agent_id": "nobody", "password": "wrong-password"}), 401)
    _expect(anon.post("/api/login", json={"agent_id": "nobody"}), 422)
    _expect(anon.post("/api/login", data="{nope", content_type="application/json"), 400)
    _expect(anon.post("/api/create-call", data="x" * (70 * 1024), content_type="application/json"), 413)
    _expect(anon.get("/api/nothing-here"), 404)

    alice, a_csrf = _agent(services, app_, "alice")
    bob, b_csrf = _agent(services, app_, "bob")
    carol, c_csrf = _agent(services, app_, "carol")
    _expect(alice.get("/api/me"), 200)
    _expect(alice.get("/api/agents"), 200)
    _expect(alice.get("/api/health/details"), 200)
    _expect(anon.get("/api/health/details"), 401)
    for who, csrf in ((bob, b_csrf), (carol, c_csrf)):
        _expect(who.post("/api/presence", json={"status": "away"}, headers=csrf), 200)
    _expect(alice.post("/api/presence", json={"status": "away"}), 403)
    _expect(alice.post("/api/presence", json={"status": "asleep"}, headers=a_csrf), 422)

    call = _expect(anon.post("/api/create-call", json={"customer_name": "Jane Doe"}), 201)
    sid, key = call["session_id"], {"X-Customer-Key": call["customer_key"]}
    assert call["agent_id"] == "alice"
    _expect(bob.post("/api/presence", json={"status": "available"}, headers=b_csrf), 200)
    _expect(anon.get(f"/api/calls/{sid}/status", headers=key), 200)
    _expect(anon.get(f"/api/calls/{sid}/status", headers={"X-Customer-Key": "wrong"}), 403)
    _expect(anon.get("/api/calls/nope/status", headers=key), 404)
    # The status stream: the cookie create-call set in `anon`'s jar, for this call's path only.
    status_stream = anon.get(f"/api/calls/{sid}/events", buffered=False)
    _expect(status_stream, 200)
    status_stream.close()
    _expect(anon.get(f"/api/calls/{sid}/events", headers={"Last-Event-ID": "x"}), 422)
    _expect(alice.get(f"/api/calls/{sid}/events"), 401)
    other_call = _expect(app_.test_client().post("/api/create-call", json={"customer_name": "Other"}), 201)
    stranger = app_.test_client()
    stranger.set_cookie("wt_customer", other_call["customer_key"], path=f"/api/calls/{sid}/events")
    _expect(stranger.get(f"/api/calls/{sid}/events"), 403)
    stranger.set_cookie("wt_customer", other_call["customer_key"], path="/api/calls/nope/events")
    _expect(stranger.get("/api/calls/nope/events"), 404)
    # The other call went to Bob, who is needed below: it ends at once.
    _expect(stranger.post("/api/end-call", json={"session_id": other_call["session_id"]}, headers={"X-Customer-Key": other_call["customer_key"]}), 200)
    _expect(anon.post("/api/token", json={"session_id": sid}, headers=key), 200)
    _expect(anon.post("/api/token", json={"session_id": sid}), 401)
    _expect(alice.post("/api/token", json={"session_id": sid}, headers=a_csrf), 200)
    _expect(alice.post("/api/add-context", json={"session_id": sid, "text": "Card 4111 1111 1111 1111 charged twice"}, headers=a_csrf), 201)
    _expect(alice.post("/api/add-context", json={"session_id": sid, "text": "x" * 5000}, headers=a_csrf), 422)
    _expect(carol.post("/api/add-context", json={"session_id": sid, "text": "sneaky"}, headers=c_csrf), 403)
    # A supervisor (away, so no call is routed to her) monitors, then whispers, then stops.
    sue, s_csrf = _agent(services, app_, "sue", role="supervisor")
    _expect(sue.post("/api/presence", json={"status": "away"}, headers=s_csrf), 200)
    _expect(sue.get("/api/me"), 200)
    _expect(carol.post("/api/supervise", json={"session_id": sid, "mode": "monitor"}, headers=c_csrf), 403)
    _expect(sue.post("/api/supervise", json={"session_id": sid, "mode": "monitor"}, headers=s_csrf), 201)
    floor = _expect(sue.get("/api/supervisor/floor?since=" + quote((datetime.now(UTC) - timedelta(hours=3)).isoformat())), 200)
    assert [c["session_id"] for c in floor["calls"]] == [sid]
    _expect(sue.get("/api/supervisor/floor?since="), 422)
    _expect(sue.get("/api/supervisor/floor?since=2026-12-02T00:00:00"), 422)  # no offset
    _expect(carol.get("/api/supervisor/floor"), 403)
    _expect(anon.get("/api/supervisor/floor"), 401)
    floor_stream = sue.get("/api/supervisor/events", buffered=False)
    _expect(floor_stream, 200)
    floor_stream.close()
    _expect(carol.get("/api/supervisor/events"), 403)
    _expect(sue.post("/api/supervise", json={"session_id": sid, "mode": "whisper"}, headers=s_csrf), 201)
    _expect(sue.post("/api/supervise", json={"session_id": sid, "mode": "shout"}, headers=s_csrf), 422)
    _expect(sue.post("/api/supervise", json={"session_id": "nope", "mode": "barge"}, headers=s_csrf), 404)
    _expect(carol.post("/api/supervise/end", json={"session_id": sid}, headers=c_csrf), 403)
    _expect(sue.post("/api/supervise/end", json={"session_id": sid}, headers=s_csrf), 200)
    _expect(sue.post("/api/supervise/end", json={"session_id": sid}, headers=s_csrf), 404)
    _expect(alice.get("/api/calls"), 200)
    _expect(alice.get("/api/calls?mine=1&status=active&limit=1"), 200)
    _expect(alice.get(f"/api/calls?status=ended&limit=5&before={sid}"), 200)
    _expect(alice.get("/api/calls?status=nope"), 422)
    _expect(alice.get("/api/calls?mine=0"), 422)
    _expect(alice.get("/api/calls?before=not-a-call-of-hers"), 404)
    _expect(alice.get(f"/api/calls/{sid}"), 200)
    _expect(alice.get("/api/calls/nope"), 404)
    _expect(carol.get(f"/api/calls/{sid}"), 403)
    _expect(alice.get(f"/api/calls/{sid}/summary"), 200)
    _expect(alice.put(f"/api/calls/{sid}/summary", json={"text": "Double charge; refund to card."}, headers=a_csrf), 200)
    structured = {"customer_name": "Jane Doe", "reason": "Double charge", "details": ["$89 twice"], "urgency": "high"}
    _expect(alice.put(f"/api/calls/{sid}/summary", json={"structured": structured}, headers=a_csrf), 200)
    _expect(alice.put(f"/api/calls/{sid}/summary", json={"text": "a", "structured": structured}, headers=a_csrf), 422)
    _expect(alice.get(f"/api/calls/{sid}/summary"), 200)
    _expect(alice.get("/api/notifications/alice"), 200)
    _expect(alice.get("/api/notifications/alice?since=0"), 200)
    _expect(alice.get("/api/notifications/alice?since=abc"), 422)
    _expect(alice.get("/api/notifications/bob"), 403)
    stream = alice.get("/api/events", buffered=False)
    _expect(stream, 200)
    stream.close()
    _expect(alice.get("/api/events", headers={"Last-Event-ID": "x"}), 422)
    _expect(anon.get("/api/events"), 401)

    # Transfers: declined, cancelled, then accepted and completed.
    def initiate(expect=201, **target):
        return _expect(alice.post("/api/initiate-transfer", json={"session_id": sid, **target}, headers=a_csrf), expect)

    t1 = initiate(to_agent_id="bob")["transfer"]
    _expect(bob.get("/api/me"), 200)  # a pending transfer to restore
    initiate(409, to_agent_id="bob")
    _expect(bob.post("/api/decline-transfer", json={"transfer_id": t1["id"], "reason": "busy"}, headers=b_csrf), 200)
    _expect(bob.post("/api/decline-transfer", json={"transfer_id": t1["id"]}, headers=b_csrf), 409)
    initiate(503, to_phone="+14155552671")  # telephony is not configured in tests
    initiate(422, to_phone="not a number")
    initiate(404, to_agent_id="ghost")
    t2 = initiate(to_agent_id="bob")["transfer"]
    _expect(alice.post("/api/cancel-transfer", json={"transfer_id": t2["id"]}, headers=a_csrf), 200)
    _expect(alice.post("/api/cancel-transfer", json={"transfer_id": "tr_nope"}, headers=a_csrf), 404)
    t3 = initiate(to_agent_id="bob")["transfer"]
    _expect(alice.post("/api/token", json={"session_id": sid}, headers=a_csrf), 200)  # the transfer room
    _expect(alice.post("/api/complete-transfer", json={"transfer_id": t3["id"]}, headers=a_csrf), 409)  # not briefed yet
    _expect(bob.post("/api/accept-transfer", json={"transfer_id": t3["id"]}, headers=b_csrf), 200)
    _expect(bob.post("/api/accept-transfer", json={"transfer_id": t3["id"]}, headers=b_csrf), 409)
    _expect(alice.get(f"/api/calls/{sid}"), 200)  # with its transfers and timeline
    _expect(alice.post("/api/complete-transfer", json={"transfer_id": t3["id"]}, headers=a_csrf), 200)
    _expect(alice.post("/api/agent-exit-room", json={"session_id": sid}, headers=a_csrf), 200)
    _expect(bob.post("/api/token", json={"session_id": sid}, headers=b_csrf), 200)

    # A second call: Alice's microphone fails, the caller waits; then the customer hangs up.
    second = _expect(anon.post("/api/create-call", json={"customer_name": "John Roe"}), 201)
    sid2, key2 = second["session_id"], {"X-Customer-Key": second["customer_key"]}
    _expect(alice.post("/api/token", json={"session_id": sid2}, headers=a_csrf), 200)

    # A team transfer: nobody free, then two members; the first accept wins, the second is taken.
    services.teams.add("billing", "Billing", ("invoice",))
    dave, d_csrf = _agent(services, app_, "dave")
    for member in ("carol", "dave"):
        services.teams.set_agent_teams(member, ("billing",))
    _expect(dave.post("/api/presence", json={"status": "away"}, headers=d_csrf), 200)
    _expect(alice.post("/api/initiate-transfer", json={"session_id": sid2, "to_team": "billing"}, headers=a_csrf), 409)
    _expect(alice.post("/api/initiate-transfer", json={"session_id": sid2, "to_team": "nope"}, headers=a_csrf), 404)
    for who, csrf in ((carol, c_csrf), (dave, d_csrf)):
        _expect(who.post("/api/presence", json={"status": "available"}, headers=csrf), 200)
    assert _expect(alice.get("/api/teams"), 200)["teams"] == [{"id": "billing", "name": "Billing", "available": 2}]
    team = _expect(alice.post("/api/initiate-transfer", json={"session_id": sid2, "to_team": "billing"}, headers=a_csrf), 201)["transfer"]
    assert team["to_team"] == "billing" and team["to_agent_id"] is None
    assert _expect(dave.get("/api/me"), 200)["pending_transfers"][0]["to_team"] == "billing"
    _expect(carol.post("/api/accept-transfer", json={"transfer_id": team["id"]}, headers=c_csrf), 200)
    _expect(dave.post("/api/accept-transfer", json={"transfer_id": team["id"]}, headers=d_csrf), 409)
    _expect(alice.post("/api/cancel-transfer", json={"transfer_id": team["id"]}, headers=a_csrf), 200)
    _expect(anon.get("/api/teams"), 401)
    _expect(alice.post("/api/microphone-failed", json={"session_id": sid2, "error": "NotAllowedError"}, headers=a_csrf), 200)
    _expect(anon.post("/api/end-call", json={"session_id": sid2}, headers=key2), 200)
    _expect(anon.post("/api/end-call", json={"session_id": sid2}, headers=key2), 409)
    _expect(sue.post("/api/supervise", json={"session_id": sid2, "mode": "barge"}, headers=s_csrf), 409)
    _expect(bob.post("/api/end-call", json={"session_id": sid}, headers=b_csrf), 200)

    # Supervisor statistics of the flow so far (its transfers: declined, cancelled, completed, a team's).
    stats = _expect(sue.get("/api/stats"), 200)
    assert stats["transfers"]["total"] >= 4 and stats["transfers"]["by_target"]
    _expect(sue.get("/api/stats?from=2024-05-01T00:00:00%2B02:00&to=2024-05-08T00:00:00%2B02:00"), 200)
    _expect(sue.get("/api/stats.csv"), 200)
    for bad in ("from=", "from=2024-05-01T00:00:00", "to=yesterday", "from=2024-05-01T00:00Z&to=2024-07-01T00:00Z", "mine=1"):
        _expect(sue.get(f"/api/stats?{bad}"), 422)
        _expect(sue.get(f"/api/stats.csv?{bad}"), 422)
    for path in ("/api/stats", "/api/stats.csv"):
        _expect(carol.get(path), 403)
        _expect(anon.get(path), 401)

    # LiveKit refuses: 503. A stricter rate limit (shared through the database): 429.
    livekit_double.fail_next("CreateRoom", status=503, code="unavailable")
    _expect(anon.post("/api/create-call", json={"customer_name": "Jane"}), 503)
    strict = make_app(CREATE_CALL_RATE_LIMIT="1/3600").test_client()
    codes = [strict.post("/api/create-call", json={"customer_name": "Jane"}).status_code for _ in range(2)]
    assert codes[-1] == 429, codes

    # Outside the JSON API: the pages, the hold music, the webhooks.
    for page in ("/", "/agent", "/agent-b", "/supervisor", "/media/hold-music.wav"):
        _expect(anon.get(page), 200)
    _expect(anon.post("/twilio/voice", data={"CallSid": "CA1"}), 503)  # telephony not configured
    body, token = livekit_double.webhook("room_finished", room=call["room_name"])
    _expect(anon.post("/livekit/webhook", data=body, content_type="application/webhook+json", headers={"Authorization": token}), 200)
    _expect(anon.post("/livekit/webhook", data=body, content_type="application/webhook+json", headers={"Authorization": "forged"}), 401)
    _expect(anon.get("/metrics"), 200)  # no METRICS_TOKEN here: public
    guarded = make_app(METRICS_TOKEN="m" * 32).test_client()
    _expect(guarded.get("/metrics"), 401)
    _expect(guarded.get("/metrics", headers={"Authorization": "Bearer " + "x" * 32}), 401)
    _expect(guarded.get("/metrics", headers={"Authorization": "Bearer " + "m" * 32}), 200)

    _expect(alice.post("/api/logout", headers=a_csrf), 200)
    _expect(alice.get("/api/me"), 401)

    # A recorded phone call (RECORDING_ENABLED): its audio through the app, and the errors around it.
    _expect(bob.post("/api/presence", json={"status": "away"}, headers=b_csrf), 200)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        phone = make_app(**TELEPHONY, RECORDING_ENABLED=True)
        sim = make_sim(phone, rsps)
        erin = agent_on(phone, "erin")
        caller = sim.call_in()
        phone_sid = erin.get("/api/calls").json["calls"][0]["session_id"]
        _expect(erin.post("/api/token", {"session_id": phone_sid}), 200)
        caller.hang_up()
        _expect(erin.get(f"/api/calls/{phone_sid}/recording"), 404)  # Twilio has not reported it yet
        [(url, params)] = [(u, p) for u, p in sim.pending if "RecordingSid" in p]
        sim.post(url, dict(params, RecordingStatus="in-progress"))
        _expect(erin.get(f"/api/calls/{phone_sid}/recording"), 409)  # still being processed
        sim.deliver()  # the status callback, then the recording callback (/twilio/recording)
        _expect(erin.get(f"/api/calls/{phone_sid}"), 200)
        _expect(erin.get(f"/api/calls/{phone_sid}/recording"), 200)
        _expect(carol.get(f"/api/calls/{phone_sid}/recording"), 403)
        _expect(bob.get(f"/api/calls/{sid}/recording"), 404)  # a web call: never recorded
        sim.fail_next_media()
        _expect(erin.get(f"/api/calls/{phone_sid}/recording"), 503)


def test_every_response_of_the_flow_conforms(app, services, make_app, livekit_double, spec, monkeypatch):
    recorder = ResponseRecorder(spec)
    with recorder.installed(), capturing_parse_json(monkeypatch) as bodies:
        _drive(app, services, make_app, livekit_double)
    assert recorder.report() == ""

    api_ops = {f"{m.upper()} {p}" for p, item in spec["paths"].items() if p.startswith("/api/") for m in item if m in HTTP_METHODS}
    succeeded = {label for label, status in recorder.seen if 200 <= status < 300}
    assert sorted(api_ops - succeeded) == [], "API operations the flow never completed"
    statuses = {status for _label, status in recorder.seen}
    assert {400, 401, 403, 404, 409, 413, 422, 429, 503} <= statuses

    # The request bodies, as the routes declare them to parse_json.
    problems = [p for (method, template), fields in sorted(bodies.items()) for p in compare_body(spec, template, method, fields)]
    assert problems == []
    with_body = {(m.upper(), p) for p, item in spec["paths"].items() if p.startswith("/api/") for m, op in item.items() if m in HTTP_METHODS and "requestBody" in op}
    assert sorted(with_body - set(bodies)) == [], "described request bodies no route parsed"


def test_a_405_says_which_methods_the_route_has(client, spec):
    """RFC 9110 §15.5.6: a 405 carries `Allow`. Fails until the app's HTTP error handler keeps
    werkzeug's header (it builds a new response without it)."""
    r = client.delete("/api/create-call")
    assert r.status_code == 405
    assert SpecChecker(spec).problems("DELETE", "/api/create-call", 405, r.headers, r.get_data())[1] == []
    assert r.headers.get("Allow") and "POST" in r.headers["Allow"]


# Requests at the edge of what the description allows, or just past it: each must get a documented
# answer, never a 500. Every one of these was answered with a 500 when written (on the backend
# noted), and fails until the app refuses or handles it.
EDGE_REQUESTS = [
    # (what, method, path, body, headers, the status it must get: None = any documented non-5xx)
    ("NUL in a body id (PostgreSQL)", "POST", "/api/token", {"session_id": "a\x00b"}, None, None),
    ("NUL in a login id (PostgreSQL)", "POST", "/api/login", {"agent_id": "a\x00b", "password": "whatever-123"}, None, None),
    ("NUL in a customer name (PostgreSQL)", "POST", "/api/create-call", {"customer_name": "Jane\x00Doe"}, None, None),
    ("NUL in a path id (PostgreSQL)", "GET", "/api/calls/a%00b", None, None, None),
    ("an event id past 2^31 (PostgreSQL)", "GET", "/api/notifications/alice?since=2147483648", None, None, 422),
    ("a digit int() refuses (both)", "GET", "/api/notifications/alice?since=%C2%B2", None, None, 422),
    ("a digit int() refuses, as Last-Event-ID (both)", "GET", "/api/events", None, {"Last-Event-ID": "\u00b2"}, 422),
    ("non-ASCII digits the description refuses (both: 200)", "GET", "/api/notifications/alice?since=%D9%A1%D9%A2", None, None, 422),
]


@pytest.mark.parametrize("what,method,path,body,headers,expected", EDGE_REQUESTS, ids=[e[0] for e in EDGE_REQUESTS])
def test_edge_requests_get_documented_answers(services, app, spec, what, method, path, body, headers, expected):
    client, csrf = _agent(services, app, "alice")
    r = client.open(path, method=method, json=body, headers=dict(csrf, **(headers or {})), buffered=path != "/api/events")
    status, response_headers = r.status_code, r.headers
    content = None if r.mimetype == "text/event-stream" else r.get_data()
    r.close()
    assert status < 500 and status == (expected or status), (what, status, content)
    assert SpecChecker(spec).problems(method, path.split("?")[0], status, response_headers, content)[1] == []


def test_the_body_comparison_catches_drift(spec):
    """compare_body itself: what parse_json declares and the spec must agree field by field."""
    same = {"session_id": Field(str, max_len=64)}
    assert compare_body(spec, "/api/token", "POST", same) == []
    assert compare_body(spec, "/api/token", "POST", {"session_id": Field(str, max_len=32)})  # maxLength
    assert compare_body(spec, "/api/token", "POST", {"session_id": Field(str, required=False, max_len=64)})  # required
    assert compare_body(spec, "/api/token", "POST", dict(same, extra=Field(str)))  # a field more
    assert compare_body(spec, "/api/token", "POST", {"session_id": Field(dict)})  # type
    assert compare_body(spec, "/api/logout", "POST", same)  # no body described


def test_the_checker_catches_what_is_off(spec):
    """The checker itself: each kind of mismatch is reported."""
    checker = SpecChecker(spec)
    json_headers = {"Content-Type": "application/json"}
    ok = {"error": {"code": "not_found", "message": "No call."}}
    assert checker.problems("GET", "/api/calls/x", 404, json_headers, json.dumps(ok).encode())[1] == []
    assert "not documented" in checker.problems("GET", "/api/calls/x", 418, json_headers, b"{}")[1][0]
    assert "content type" in checker.problems("GET", "/api/calls/x", 404, {"Content-Type": "text/html"}, b"<p>")[1][0]
    wrong_code = copy.deepcopy(ok)
    wrong_code["error"]["code"] = "made_up"
    assert checker.problems("GET", "/api/calls/x", 404, json_headers, json.dumps(wrong_code).encode())[1]
    extra = {"error": dict(ok["error"], stack="...")}
    assert checker.problems("GET", "/api/calls/x", 404, json_headers, json.dumps(extra).encode())[1]
    limited = {"error": {"code": "rate_limited", "message": "Slow down."}}
    assert "Retry-After" in checker.problems("POST", "/api/create-call", 429, json_headers, json.dumps(limited).encode())[1][0]
    naive = {"agent": {"id": "a", "name": "A"}, "csrf_token": "t"}
    assert checker.problems("POST", "/api/login", 200, json_headers, json.dumps(naive).encode())[1] == []
    entry = {"entry": {"id": 1, "author": "a", "source": "note", "text": "x", "created_at": "yesterday"}}
    assert "date-time" in checker.problems("POST", "/api/add-context", 201, json_headers, json.dumps(entry).encode())[1][0]
