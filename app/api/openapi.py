"""The OpenAPI 3.1 description of the JSON API, served at `GET /api/openapi.json`.

Written as code rather than a static file so that it takes its limits and enumerations from the
modules that enforce them (context and summary lengths, call and transfer states, event types,
the summary's structured shape), and so each route reads as one call next to its neighbours.

What it covers, and the rule for what it does not:
- every `/api/...` route: methods, request bodies (required fields, types, `maxLength`,
  `additionalProperties: false`, because `parse_json` refuses unknown fields), path, query and
  header parameters, security, and every response with its schema, including the typed error
  body of each error status the route can answer;
- the routes outside the JSON API (Twilio's and LiveKit's webhooks, the pages, the hold music,
  `/metrics`), minimally: path, method, content types and statuses, tagged `outside-json-api`;
- not Flask's `/static/<path:filename>`: a file server whose `filename` may contain slashes,
  which an OpenAPI path parameter cannot. HEAD and OPTIONS are not listed either: Flask answers
  them for every route by itself.

tests/contract/test_openapi.py keeps this true against the app's url_map, the error codes raised
in `app/`, the bodies `parse_json` accepts, and every response of a representative flow;
tests/e2e/test_schemathesis.py fuzzes the API under gunicorn against it.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache

from flask import current_app, request

from app import MAX_BODY_BYTES, outbox, states
from app.api import bp
from app.api.guards import CSRF_HEADER, CUSTOMER_COOKIE, CUSTOMER_KEY_HEADER
from app.api.validation import ID
from app.events import EVENT_TYPES
from app.protocol import ACCOUNT_ROLES, CUSTOMER_STATUS_EVENT, CUSTOMER_STREAM_REPLACED_EVENT, SUPERVISION_MODES
from app.services.call_list import LIST_LIMIT, PAGE_MAX, STATUS_FILTERS
from app.services.calls import CUSTOMER_NAME_MAX
from app.services.stats import INSTANT_MAX_LEN, MAX_SPAN
from app.services.stats_report import CHANNELS, CSV_HEADER, OUTCOMES, TARGET_KINDS, TIMINGS, TREND_DAYS
from app.services.summaries import CONTEXT_TEXT_MAX
from app.summaries.base import TEXT_MAX_CHARS, StructuredSummary

OPENAPI_PATH = "/api/openapi.json"
# Browsers and tools may cache the document briefly; the ETag makes revalidation free.
CACHE_CONTROL = "public, max-age=300"

JSON = "application/json"
STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
DATE_TIME = {"type": "string", "format": "date-time"}
NULLABLE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}


def _not_blank_pattern() -> str:
    """At least one character `str.strip()` keeps. Python's whitespace is not JSON Schema's `\\s`
    (it includes U+001C..U+001F and U+0085, not U+FEFF), so the class is built from `str.isspace`
    (U+3000 is the last such character; the contract test checks the whole of Unicode)."""
    spaces = [c for c in map(chr, range(0x3001)) if c.isspace()]
    ranges: list[list[int]] = []
    for code in map(ord, spaces):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    parts = "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)
    return f"[^{parts}]"


# parse_json strips strings, and an empty required field is refused: at least one non-blank
# character. No string anywhere may contain NUL (PostgreSQL text cannot hold it: 422 invalid_text).
_BLANK_CLASS = _not_blank_pattern()
NOT_BLANK = "^[^\\u0000]*" + _BLANK_CLASS[:-1] + "\\u0000][^\\u0000]*$"
NO_NUL = "^[^\\u0000]*$"
NO_STORE = {"Cache-Control": {"schema": {"const": "no-store"}}}
# Event ids in `?since=` and `Last-Event-ID`: ASCII decimal digits, at most 2147483647 (the events
# table's id column; larger is a 422); empty means "not given".
EVENT_ID_PATTERN = (
    "^(|[0-9]{1,9}|0[0-9]{9}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
    "|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]|214748364[0-7])$"
)

# -- typed errors -------------------------------------------------------------------------------
# Every error the app answers is `{"error": {"code", "message"}}` (app/errors.py); these are the
# codes each status can carry through HTTP. tests/contract/test_openapi.py fails when app code
# raises a code that is neither listed here nor named there as unreachable through HTTP.
ERRORS: dict[int, tuple[str, str, tuple[str, ...]]] = {
    400: ("BadRequest", "The body is not a JSON object (or not JSON at all).", ("invalid_json", "bad_request")),
    401: (
        "NotAuthenticated",
        "No valid session (or wrong credentials; or, on a customer's status stream, no customer cookie).",
        ("not_authenticated", "invalid_credentials", "customer_cookie_missing"),
    ),
    403: (
        "Forbidden",
        "Authenticated, but not allowed: wrong or missing CSRF token or customer key, not a party to this call or transfer, or (supervisor routes) not a supervisor.",
        ("forbidden", "csrf_failed", "invalid_customer_key", "supervisor_only"),
    ),
    404: (
        "NotFound",
        "No such call, transfer, agent or route; or the call has no recording; or the supervisor is not supervising it.",
        ("not_found", "no_recording", "not_supervising"),
    ),
    405: ("MethodNotAllowed", "The route exists but not with this method.", ("method_not_allowed",)),
    409: (
        "Conflict",
        "Valid, but the call, transfer or agent is not in a state that allows it.",
        ("invalid_state", "call_ended", "transfer_in_progress", "agent_unavailable", "owner_on_phone", "phone_transfer", "agent_busy", "agent_b_left",
         "recording_not_ready", "team_unavailable", "transfer_taken", "call_not_connected", "own_call", "whisper_not_available"),
    ),
    413: ("PayloadTooLarge", f"The body is larger than the app accepts ({MAX_BODY_BYTES // 1024} KiB).", ("payload_too_large",)),
    422: (
        "ValidationFailed",
        "The JSON is well formed but a field is missing, unknown, of the wrong type, too long or not acceptable.",
        ("validation_error", "too_long", "invalid_text", "invalid_input", "invalid_phone_number", "number_not_allowed"),
    ),
    429: ("RateLimited", "Too many requests from this address (or agent); `Retry-After` says when to try again.", ("rate_limited",)),
    500: ("InternalError", "An unexpected failure; nothing was changed.", ("internal_error",)),
    503: (
        "ServiceUnavailable",
        "The database, LiveKit or telephony is unavailable or not configured.",
        ("db_unavailable", "livekit_unavailable", "livekit_error", "telephony_not_configured", "twilio_unavailable"),
    ),
}

# What every JSON route can answer, whatever it does: a NUL or lone surrogate in its path or query
# (422 invalid_text, app.api before_request), an unexpected failure, or the database down.
ALWAYS = (422, 500, 503)
# A route whose body goes through parse_json.
BODY = (400, 413, 422)
AGENT_READ = (401,)
AGENT_WRITE = (401, 403)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(name: str) -> dict:
    return {"oneOf": [_ref(name), {"type": "null"}]}


def _obj(properties: dict, *, optional: tuple[str, ...] = (), description: str | None = None) -> dict:
    """A closed object whose properties are all required except `optional`."""
    schema = {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


ERROR_SCHEMA = _obj(
    {
        "error": _obj(
            {
                "code": {"type": "string", "pattern": "^[a-z][a-z_]*$", "description": "Stable, snake_case; what clients branch on."},
                "message": {"type": "string", "description": "For people; may change."},
                "twilio_code": {"type": ["integer", "null"], "description": "Twilio's own error code, on Twilio errors only."},
            },
            optional=("twilio_code",),
        )
    },
    description="Every error the app answers.",
)


def _text(max_len: int, *, required: bool = True, description: str | None = None, **extra) -> dict:
    """A string field as parse_json reads it: stripped, at most `max_len` characters; an optional
    one may be null or blank, meaning "not given"."""
    schema: dict = {"type": "string" if required else ["string", "null"], "maxLength": max_len}
    schema["pattern"] = NOT_BLANK if required else NO_NUL
    if description:
        schema["description"] = description
    schema.update(extra)
    return schema


def _body(properties: dict, *, optional: tuple[str, ...] = (), description: str | None = None, **extra) -> dict:
    schema = _obj(properties, optional=optional)
    schema.update(extra)
    return {
        "required": True,
        "description": description or "A JSON object; unknown fields are refused (422).",
        "content": {JSON: {"schema": schema}},
    }


def _json(schema: dict, description: str, *, headers: dict | None = None, links: dict | None = None) -> dict:
    response: dict = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    if links:
        response["links"] = links
    return response


def _errors(*statuses: int) -> dict:
    return {str(status): {"$ref": f"#/components/responses/{ERRORS[status][0]}"} for status in sorted(set(statuses))}


def _op(
    operation_id: str,
    summary: str,
    tag: str,
    *,
    security: list[dict],
    responses: dict,
    errors: tuple[int, ...] = (),
    body: dict | None = None,
    parameters: list[dict] | None = None,
    description: str | None = None,
) -> dict:
    op: dict = {"operationId": operation_id, "summary": summary, "tags": [tag], "security": security}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = body
    # A response given explicitly (health's 503 is its own report) wins over the shared error.
    merged = dict(_errors(*errors, *ALWAYS), **responses)
    op["responses"] = {status: merged[status] for status in sorted(merged)}
    return op


def _path_param(name: str, description: str) -> dict:
    # Flask's default converter: one non-empty path segment.
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string", "minLength": 1, "pattern": NO_NUL}}


def _query_param(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


SESSION_ID_PARAM = _path_param("session_id", "The call's id (`session_id` from create-call, or from the agent's events).")

_INSTANT = "An ISO 8601 date and time with a UTC offset or `Z` (RFC 3339), e.g. `2024-05-01T00:00:00+02:00` (send `+` as `%2B`)"
STATS_PARAMS = [
    _query_param("from", f"The period's start (inclusive). {_INSTANT}; without an offset, or empty, it is refused (422). Default: 24 hours before `to`.",
                 {"type": "string", "format": "date-time", "maxLength": INSTANT_MAX_LEN}),
    _query_param("to", f"The period's end (exclusive), after `from` and at most {MAX_SPAN.days} days later. {_INSTANT}. Default: now.",
                 {"type": "string", "format": "date-time", "maxLength": INSTANT_MAX_LEN}),
]
PRIVATE_NO_STORE = {"Cache-Control": {"schema": {"const": "private, no-store"}}}

PUBLIC: list[dict] = []
AGENT: list[dict] = [{"agentSession": []}]
AGENT_CSRF: list[dict] = [{"agentSession": [], "csrfToken": []}]
CUSTOMER: list[dict] = [{"customerKey": []}]
CUSTOMER_STREAM: list[dict] = [{"customerCookie": []}]
CUSTOMER_OR_AGENT: list[dict] = [{"customerKey": []}, {"agentSession": [], "csrfToken": []}]


def _session_body(**more) -> dict:
    return dict({"session_id": _text(ID.max_len, description="The call's id.")}, **more)


def _transfer_body(**more) -> dict:
    return dict({"transfer_id": _text(ID.max_len, description="The transfer's id (`transfer.id`).")}, **more)


def _links_from_call() -> dict:
    """What follows create-call: the customer page polls, the agent joins (token), or the customer
    hangs up. The rest follows the agent's token."""
    sid = {"session_id": "$response.body#/session_id"}
    return {
        "GetCallStatus": {"operationId": "getCustomerCallStatus", "parameters": sid},
        "GetToken": {"operationId": "getToken", "requestBody": sid},
        "EndCall": {"operationId": "endCall", "requestBody": sid},
    }


def _links_from_token() -> dict:
    """An agent who has joined the call (their token makes a ringing call active) can work on it."""
    sid = {"session_id": "$response.body#/session_id"}
    return {
        "AddContext": {"operationId": "addContext", "requestBody": sid},
        "GetCall": {"operationId": "getCall", "parameters": sid},
        "GetSummary": {"operationId": "getSummary", "parameters": sid},
        "EditSummary": {"operationId": "editSummary", "parameters": sid},
        "InitiateTransfer": {"operationId": "initiateTransfer", "requestBody": sid},
        "MicrophoneFailed": {"operationId": "microphoneFailed", "requestBody": sid},
        "AgentExitRoom": {"operationId": "agentExitRoom", "requestBody": sid},
        "EndCall": {"operationId": "endCall", "requestBody": sid},
    }


def _links_from_transfer(*targets: str) -> dict:
    by_body = {"transfer_id": "$response.body#/transfer/id"}
    names = {
        "acceptTransfer": "AcceptTransfer",
        "declineTransfer": "DeclineTransfer",
        "completeTransfer": "CompleteTransfer",
        "cancelTransfer": "CancelTransfer",
    }
    return {names[t]: {"operationId": t, "requestBody": by_body} for t in targets}


# -- the JSON API ---------------------------------------------------------------------------------
def _api_paths() -> dict:
    floor_since = {
        "name": "since",
        "in": "query",
        "required": False,
        "description": "Where \"today\" starts for the per-agent counts and the missed calls: an ISO 8601 date-time with a UTC offset (a page sends its local midnight), within the last 48 hours. Absent: 24 hours ago. Empty, without an offset or out of range: 422.",
        "schema": {"type": "string", "format": "date-time"},
    }
    since = {
        "name": "since",
        "in": "query",
        "required": False,
        "description": "Only events after this event id (empty: not given).",
        "schema": {"type": "string", "pattern": EVENT_ID_PATTERN},
    }
    transfer_answer = _json(_ref("TransferWithToken"), "The transfer, a token for its private transfer room and the LiveKit URL.")
    return {
        "/api/login": {
            "post": _op(
                "login",
                "Log an agent in",
                "agents",
                security=PUBLIC,
                description="Starts a session (cookie) and returns the CSRF token to send as `X-CSRF-Token` on every state-changing request. Rate-limited per address and agent id.",
                body=_body({
                    "agent_id": _text(ID.max_len, examples=["agent-a"]),
                    "password": _text(256),
                    "stay_away": {"type": ["boolean", "null"], "description": "Sign in without becoming available (a page that takes no calls: the supervisor view). An agent who was offline becomes available otherwise; a supervisor always starts away."},
                }, optional=("stay_away",)),
                responses={
                    "200": _json(
                        _ref("LoginResult"),
                        "Logged in; the session cookie is set.",
                        headers={"Set-Cookie": {"description": "The session cookie (HttpOnly, SameSite=Lax).", "schema": STRING}},
                    ),
                },
                errors=(*BODY, 401, 429),
            )
        },
        "/api/logout": {
            "post": _op(
                "logout",
                "End this session",
                "agents",
                security=AGENT_CSRF,
                description="No body is read.",
                responses={"200": _json(_obj({"ok": {"const": True}}), "Logged out; the session is revoked.")},
                errors=AGENT_WRITE,
            )
        },
        "/api/me": {
            "get": _op(
                "getMe",
                "The logged-in agent, to restore a dashboard",
                "agents",
                security=AGENT,
                responses={"200": _json(_ref("Me"), "Profile, active call, CSRF token, where to resume events, transfers ringing for this agent.")},
                errors=AGENT_READ,
            )
        },
        "/api/agents": {
            "get": _op(
                "listAgents",
                "The agent directory with presence",
                "agents",
                security=AGENT,
                responses={"200": _json(_obj({"agents": {"type": "array", "items": _ref("Agent")}}), "Every agent.")},
                errors=AGENT_READ,
            )
        },
        "/api/teams": {
            "get": _op(
                "listTeams",
                "The teams a transfer can be addressed to",
                "agents",
                security=AGENT,
                description="Each team with `available`: how many of its members are free now (available, not on a call, account enabled).",
                responses={"200": _json(_obj({"teams": {"type": "array", "items": _ref("Team")}}), "Every team, by name.")},
                errors=AGENT_READ,
            )
        },
        "/api/presence": {
            "post": _op(
                "setPresence",
                "Set the agent's presence",
                "agents",
                security=AGENT_CSRF,
                body=_body({"status": {"type": "string", "maxLength": 16, "enum": ["available", "away"]}}),
                responses={"200": _json(_obj({"agent": _ref("Agent")}), "The agent, with the new presence.")},
                errors=(*AGENT_WRITE, *BODY),
            )
        },
        "/api/create-call": {
            "post": _op(
                "createCall",
                "A web customer starts a call",
                "calls",
                security=PUBLIC,
                description="Creates the call and its LiveKit room and assigns an available agent (or queues the call). Rate-limited per address. Keep `customer_key`: it is the customer's credential (`X-Customer-Key`) for this call. The same key is set as the HttpOnly, SameSite=Strict cookie `wt_customer`, scoped to the call's status stream (`Path=/api/calls/<session_id>/events`; `Secure` with SESSION_COOKIE_SECURE): nothing else accepts it.",
                body=_body({"customer_name": _text(CUSTOMER_NAME_MAX, examples=["Jane Doe"])}),
                responses={
                    "201": dict(
                        _json(_ref("CreatedCall"), "The call, the customer's LiveKit token and key.", links=_links_from_call()),
                        headers={"Set-Cookie": {"description": "`wt_customer=<customer_key>; Path=/api/calls/<session_id>/events; HttpOnly; SameSite=Strict; Max-Age=…`", "schema": {"type": "string"}}},
                    ),
                },
                errors=(*BODY, 429),
            )
        },
        "/api/calls/{session_id}/status": {
            "get": _op(
                "getCustomerCallStatus",
                "The web customer's view of their call",
                "calls",
                security=CUSTOMER,
                description="A missing or wrong `X-Customer-Key` is 403 `invalid_customer_key` (404 if there is no such call).",
                parameters=[SESSION_ID_PARAM],
                responses={"200": _json(_ref("CustomerCallStatus"), "What the customer page shows.")},
                errors=(403, 404),
            )
        },
        "/api/calls/{session_id}/events": {
            "get": _op(
                "streamCustomerCallStatus",
                "The web customer's view of their call as Server-Sent Events",
                "calls",
                security=CUSTOMER_STREAM,
                description="Authenticated by the `wt_customer` cookie create-call set for this call (an EventSource sends no headers, and the key never goes in a URL): none is 401 `customer_cookie_missing`, another call's is 403 `invalid_customer_key`. Each `event: status` carries the JSON of `GET /api/calls/{session_id}/status`, with an `id:`; one is sent on connect (also on a reconnect with `Last-Event-ID`: the current status is all that was missed) and again whenever it changes. The stream closes after the status of an ended call. At most SSE_STREAMS_PER_CALL streams per call: the oldest gets `event: stream_replaced` and closes (do not reconnect; poll). Comments (`: keepalive`) keep it open.",
                parameters=[
                    SESSION_ID_PARAM,
                    {"name": "Last-Event-ID", "in": "header", "required": False, "description": "The id of the last status received (validated; the current status is sent regardless).", "schema": {"type": "string", "pattern": EVENT_ID_PATTERN}},
                ],
                responses={
                    "200": {
                        "description": "The call's status until the call ends.",
                        "headers": {"Cache-Control": {"schema": {"const": "no-cache, no-transform"}}},
                        "content": {"text/event-stream": {"schema": _ref("CustomerStreamEvent")}},
                    },
                    "503": dict(
                        _error_response(
                            "`streams_full`: this process holds as many streams as it may (poll the status instead; `Retry-After`); or the database is unavailable.",
                            ("streams_full", "db_unavailable"),
                        ),
                        headers={"Retry-After": {"description": "With `streams_full`: seconds before opening a stream again.", "schema": {"type": "integer", "minimum": 0}}},
                    ),
                },
                errors=(401, 403, 404, 422),
            )
        },
        "/api/add-context": {
            "post": _op(
                "addContext",
                "Add a note to the call's context",
                "calls",
                security=AGENT_CSRF,
                description="Only the agent in the call. Card numbers and national ids are redacted before storing.",
                body=_body(_session_body(text=_text(CONTEXT_TEXT_MAX))),
                responses={"201": _json(_obj({"entry": _ref("ContextEntry")}), "The stored (redacted) entry.")},
                errors=(*AGENT_WRITE, *BODY, 404, 409),
            )
        },
        "/api/token": {
            "post": _op(
                "getToken",
                "A fresh LiveKit token for the caller's current room",
                "calls",
                security=CUSTOMER_OR_AGENT,
                description="With `X-Customer-Key` the web customer's token for their call room; otherwise the agent's, for the room they belong in now (the call room, or the transfer room during a consult). An agent owning a ringing call makes it active by this.",
                body=_body(_session_body()),
                responses={"200": _json(_ref("RoomToken"), "The room and a token for it.", links=_links_from_token())},
                errors=(*AGENT_WRITE, *BODY, 404, 409),
            )
        },
        "/api/microphone-failed": {
            "post": _op(
                "microphoneFailed",
                "The agent's browser cannot capture audio",
                "calls",
                security=AGENT_CSRF,
                description="The agent is set away and leaves the call: the caller goes to the next agent (or to a briefed Agent B); an Agent B whose microphone fails declines the transfer.",
                body=_body(_session_body(error=_text(200, description="The browser's error, for the agent's own notification."))),
                responses={"200": _json(_ref("CallDeparture"), "What happened to the call.")},
                errors=(*AGENT_WRITE, *BODY, 404, 409),
            )
        },
        "/api/agent-exit-room": {
            "post": _op(
                "agentExitRoom",
                "The agent leaves the customer's room",
                "calls",
                security=AGENT_CSRF,
                description="The owner leaving hands the call on (to a briefed Agent B, or back to the queue); leaving again after completing a transfer is a no-op.",
                body=_body(_session_body()),
                responses={"200": _json(_ref("CallDeparture"), "What happened to the call.")},
                errors=(*AGENT_WRITE, *BODY, 404, 409),
            )
        },
        "/api/end-call": {
            "post": _op(
                "endCall",
                "End the call (customer or the agent handling it)",
                "calls",
                security=CUSTOMER_OR_AGENT,
                body=_body(_session_body()),
                responses={"200": _json(_obj({"call": _ref("Call")}), "The ended call.")},
                errors=(*AGENT_WRITE, *BODY, 404, 409),
            )
        },
        "/api/calls": {
            "get": _op(
                "listCalls",
                "A page of the agent's calls, newest first, and the queue length",
                "calls",
                security=AGENT,
                description="Only calls the agent took part in (handled, is in, transferred, or was briefed on). "
                            "Pages by key: pass the answer's `next_before` as `before` for the next page; it is null on the last. "
                            "Unknown query parameters are refused (422).",
                parameters=[
                    _query_param("mine", "Only the agent's own calls: the only value is 1 (an agent sees nothing else).", {"type": "string", "enum": ["1"]}),
                    _query_param("status", "A call status, or `ended` for any final one (completed, abandoned, failed); empty: any.",
                                 {"type": "string", "enum": ["", *sorted(STATUS_FILTERS)]}),
                    _query_param("limit", f"Calls per page, 1 to {PAGE_MAX} (empty: {LIST_LIMIT}).", {"type": "string", "pattern": f"^(|{PAGE_MAX}|[1-9][0-9]?)$"}),
                    _query_param("before", "The previous page's `next_before` (empty: from the newest).", {"type": "string", "maxLength": 64}),
                ],
                responses={"200": _json(_obj({"calls": {"type": "array", "items": _ref("Call")}, "queued": {"type": "integer", "minimum": 0},
                                              "next_before": {"type": ["string", "null"]}}),
                                        "Calls the agent handles, is in, or transferred, newest first.")},
                errors=(*AGENT_READ, 404, 422),
            )
        },
        "/api/calls/{session_id}": {
            "get": _op(
                "getCall",
                "A call with its context, summary, transfers and timeline",
                "calls",
                security=AGENT,
                description="Only while the agent is part of the call (owner, in it, or a party of its open transfer).",
                parameters=[SESSION_ID_PARAM],
                responses={"200": _json(_obj({"call": _ref("CallDetail")}), "The call.")},
                errors=(*AGENT_READ, 403, 404),
            )
        },
        "/api/calls/{session_id}/recording": {
            "get": _op(
                "getCallRecording",
                "The call's recording (audio), streamed from Twilio",
                "calls",
                security=AGENT,
                description=(
                    "Phone calls recorded with RECORDING_ENABLED (web calls never are), for the agents who may read the call "
                    "(every agent who took part, once it has ended). The app fetches the audio from Twilio with the account's "
                    "credentials and streams it on: no Twilio URL or credential reaches the browser. 404 `no_recording`: none, "
                    "Twilio made none (too short or silent) or it was deleted; 409 `recording_not_ready`: Twilio is still "
                    "processing it; 503 `twilio_unavailable`: Twilio did not answer in TWILIO_TIMEOUT_S or failed."
                ),
                parameters=[SESSION_ID_PARAM],
                responses={
                    "200": {
                        "description": "The audio (MP3, two channels: the caller and the agents' side). `Content-Length` when Twilio gave it.",
                        "headers": {"Cache-Control": {"required": True, "schema": {"const": "private, no-store"}}},
                        "content": {"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}},
                    }
                },
                errors=(*AGENT_READ, 403, 404, 409, 503),
            )
        },
        "/api/calls/{session_id}/summary": {
            "get": _op(
                "getSummary",
                "The current summary and every version",
                "summaries",
                security=AGENT,
                parameters=[SESSION_ID_PARAM],
                responses={"200": _json(_obj({"summary": _nullable("Summary"), "history": {"type": "array", "items": _ref("SummaryVersion")}}), "`summary` is what Agent B would be handed now (null before any); `history` is newest first.")},
                errors=(*AGENT_READ, 403, 404),
            ),
            "put": _op(
                "editSummary",
                "Agent A edits the summary Agent B will see and hear",
                "summaries",
                security=AGENT_CSRF,
                parameters=[SESSION_ID_PARAM],
                description="Exactly one of `text` (free text) or `structured` (the structured summary); a blank `text` counts as not given.",
                body=_body(
                    {"text": _text(TEXT_MAX_CHARS, required=False), "structured": {"oneOf": [_ref("StructuredSummaryInput"), {"type": "null"}]}},
                    optional=("text", "structured"),
                    oneOf=[
                        {"required": ["text"], "properties": {"text": {"type": "string", "pattern": NOT_BLANK}}},
                        {"required": ["structured"], "properties": {"structured": {"type": "object"}}},
                    ],
                ),
                responses={"200": _json(_obj({"summary": _ref("Summary")}), "The new (edited) version.")},
                errors=(*AGENT_WRITE, *BODY, 404, 409),
            ),
        },
        "/api/initiate-transfer": {
            "post": _op(
                "initiateTransfer",
                "Agent A starts a warm transfer",
                "transfers",
                security=AGENT_CSRF,
                description="To a dashboard agent (`to_agent_id`; an offline agent with a phone is dialled), a phone number (`to_phone`, international form, checked with libphonenumber and normalised to E.164; premium-rate and similar numbers are refused) or a team (`to_team`: offered to every member free now but Agent A; the first to accept takes it, `transfer.to_agent_id` is null until then; 409 `team_unavailable` when nobody is free). Exactly one of the three; a blank one counts as not given. The customer is put on hold and Agent A gets a token for the private transfer room.",
                body=_body(
                    _session_body(
                        to_agent_id=_text(ID.max_len, required=False, examples=["agent-b"]),
                        to_phone=_text(20, required=False, examples=["+14155550100"]),
                        to_team=_text(ID.max_len, required=False, examples=["billing"]),
                    ),
                    optional=("to_agent_id", "to_phone", "to_team"),
                    oneOf=[
                        {"required": ["to_agent_id"], "properties": {"to_agent_id": {"type": "string", "pattern": NOT_BLANK}}},
                        {"required": ["to_phone"], "properties": {"to_phone": {"type": "string", "pattern": NOT_BLANK}}},
                        {"required": ["to_team"], "properties": {"to_team": {"type": "string", "pattern": NOT_BLANK}}},
                    ],
                ),
                responses={
                    "201": dict(transfer_answer, links=_links_from_transfer("acceptTransfer", "declineTransfer", "cancelTransfer")),
                },
                errors=(*AGENT_WRITE, *BODY, 404, 409, 429),
            )
        },
        "/api/accept-transfer": {
            "post": _op(
                "acceptTransfer",
                "Agent B accepts and joins the transfer room",
                "transfers",
                security=AGENT_CSRF,
                description="A team transfer goes to the first member who accepts; a later accept is 409 `transfer_taken`.",
                body=_body(_transfer_body()),
                responses={"200": dict(transfer_answer, links=_links_from_transfer("completeTransfer", "cancelTransfer", "declineTransfer"))},
                errors=(*AGENT_WRITE, *BODY, 404, 409),
            )
        },
        "/api/decline-transfer": {
            "post": _op(
                "declineTransfer",
                "Agent B declines (before or after the briefing)",
                "transfers",
                security=AGENT_CSRF,
                description="A member declining a team transfer nobody has taken is no longer offered it; it rings on for the others and ends `declined` once every member offered has declined.",
                body=_body(_transfer_body(reason=_text(200, required=False)), optional=("reason",)),
                responses={"200": _json(_obj({"transfer": _ref("Transfer")}), "The declined transfer.")},
                errors=(*AGENT_WRITE, *BODY, 404, 409),
            )
        },
        "/api/complete-transfer": {
            "post": _op(
                "completeTransfer",
                "Agent A hands the customer to Agent B and leaves",
                "transfers",
                security=AGENT_CSRF,
                body=_body(_transfer_body()),
                responses={"200": _json(_obj({"transfer": _ref("Transfer")}), "The completed transfer.")},
                errors=(*AGENT_WRITE, *BODY, 404, 409),
            )
        },
        "/api/cancel-transfer": {
            "post": _op(
                "cancelTransfer",
                "Agent A cancels; the customer is back with Agent A",
                "transfers",
                security=AGENT_CSRF,
                body=_body(_transfer_body()),
                responses={"200": _json(_obj({"transfer": _ref("Transfer")}), "The cancelled transfer.")},
                errors=(*AGENT_WRITE, *BODY, 404, 409),
            )
        },
        "/api/supervise": {
            "post": _op(
                "supervise",
                "A supervisor monitors, whispers to the agent, or barges into a live call",
                "supervision",
                security=AGENT_CSRF,
                description=(
                    "Supervisors only (403 `supervisor_only` for agents). The call must be live (active, on hold or transferred). "
                    "`monitor`: a hidden, subscribe-only token: nobody sees or hears the supervisor. `whisper`: the supervisor's "
                    "client must set its track subscription permissions to allow only the identities in `whisper_to` (the agent) "
                    "before publishing its microphone; livekit-server then refuses every other subscriber, the customer's SIP leg "
                    "included. Not available (409 `whisper_not_available`) when the call's agent is a phone Agent B. `barge`: a "
                    "normal participant, and the call's agents are told. A supervision of the same supervisor still open ends first. "
                    "Start and end are events on the call's timeline."
                ),
                body=_body(_session_body(mode={"type": "string", "maxLength": 16, "enum": list(SUPERVISION_MODES)})),
                responses={"201": _json(_ref("SupervisionGrant"), "The supervision, and a token for the customer's room.")},
                errors=(*AGENT_WRITE, *BODY, 404, 409),
            )
        },
        "/api/supervise/end": {
            "post": _op(
                "endSupervision",
                "The supervisor stops supervising the call",
                "supervision",
                security=AGENT_CSRF,
                description="Supervisors only. Ends the caller's open supervision of this call (`supervision_ended` on the timeline) and removes their participant from the room.",
                body=_body(_session_body()),
                responses={"200": _json(_obj({"supervision": _ref("Supervision")}), "The ended supervision.")},
                errors=(*AGENT_WRITE, *BODY, 404),
            )
        },
        "/api/supervisor/floor": {
            "get": _op(
                "supervisorFloor",
                "The floor: the queue, every live call and every agent",
                "supervision",
                security=AGENT,
                description="Supervisors only (403 `supervisor_only` for agents). From the database, so every instance answers the same. Durations are not given: each row has the moment its state began, and `server_time` lets a client count on its own clock. Unknown query parameters are refused (422).",
                parameters=[floor_since],
                responses={"200": _json(_ref("Floor"), "The floor now.")},
                errors=(*AGENT_WRITE, 422),
            )
        },
        "/api/supervisor/events": {
            "get": _op(
                "streamSupervisorFloor",
                "The floor as Server-Sent Events, sent again whenever it changes",
                "supervision",
                security=AGENT,
                description="Supervisors only. Each frame is `event: floor` with `data:` the JSON of GET /api/supervisor/floor, sent on connect and whenever the floor changes (re-read on every event and every 5 s). It is one of the supervisor's event streams (the per-session and per-agent limits); `event: stream_replaced` (a newer stream took its place: poll instead, do not reconnect) or `event: session_ended` ends it. Comments (`: keepalive`) keep it open.",
                parameters=[floor_since],
                responses={
                    "200": {
                        "description": "An endless stream of floors.",
                        "headers": {"Cache-Control": {"schema": {"const": "no-cache, no-transform"}}},
                        "content": {"text/event-stream": {"schema": _ref("Floor")}},
                    },
                    "503": _error_response("`streams_full`: this process holds as many streams as it may (poll the floor instead); or the database is unavailable.", ("streams_full", "db_unavailable")),
                },
                errors=(*AGENT_WRITE, 422),
            )
        },
        "/api/stats": {
            "get": _op(
                "getStats",
                "Transfer quality over a period: calls, transfer outcomes and targets, timings, a 7-day trend (supervisors)",
                "supervision",
                security=AGENT,
                description=(
                    "Supervisors only (403 `supervisor_only` for agents). Read from the database (docs/architecture.md, "
                    "\"Supervisor statistics\"): a call is in the period [from, to) when it was created in it, a transfer when "
                    "it was requested in it. Timings are in seconds (p50/p95 by linear interpolation, null when there is "
                    "nothing to measure). `trend` is 7 windows of 24 h, the last one starting at `from`. Phone numbers "
                    "appear only by their last four digits. Unknown query parameters are refused (422)."
                ),
                parameters=STATS_PARAMS,
                responses={"200": _json(_ref("Stats"), "The statistics of the period.", headers=PRIVATE_NO_STORE)},
                errors=(*AGENT_READ, 403, 422),
            )
        },
        "/api/stats.csv": {
            "get": _op(
                "getStatsCsv",
                "The period's transfers as CSV, one row per transfer (supervisors)",
                "supervision",
                security=AGENT,
                description=(
                    "Supervisors only. The transfers requested in [from, to), oldest first, with the columns "
                    f"{', '.join(f'`{c}`' for c in CSV_HEADER)}; seconds with three decimals, empty when unknown. "
                    "Text that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage "
                    "return) gets a leading apostrophe; phone numbers appear only by their last four digits."
                ),
                parameters=STATS_PARAMS,
                responses={
                    "200": {
                        "description": "RFC 4180 CSV (CRLF line ends), UTF-8.",
                        "headers": dict(
                            PRIVATE_NO_STORE,
                            **{"Content-Disposition": {"required": True, "description": "`attachment; filename=\"transfers-<from date>-<to date>.csv\"` (the dates in the offsets given).", "schema": STRING}},
                        ),
                        "content": {"text/csv": {"schema": STRING}},
                    }
                },
                errors=(*AGENT_READ, 403, 422),
            )
        },
        "/api/notifications/{agent_id}": {
            "get": _op(
                "listNotifications",
                "Polling fallback: the agent's events, oldest first",
                "events",
                security=AGENT,
                description="Only the logged-in agent's own. Without `since`, from the start of this session. Unknown query parameters are refused (422).",
                parameters=[_path_param("agent_id", "The logged-in agent's id."), since],
                responses={"200": _json(_obj({"notifications": {"type": "array", "items": _ref("Event")}}), "Up to a page of events.")},
                errors=(*AGENT_READ, 403, 422),
            )
        },
        "/api/events": {
            "get": _op(
                "streamEvents",
                "The agent's events as Server-Sent Events",
                "events",
                security=AGENT,
                description="The schema is that of each event. Each is `id:` (event id), `event:` (type) and `data:` (JSON: the payload plus `event_id` and `created_at`). A fresh stream starts with `event: ready`; with `Last-Event-ID` (or `?since=`) it first replays what came after, then sends `ready`. Comments (`: keepalive`) keep it open; `event: session_ended` closes it.",
                parameters=[
                    since,
                    {"name": "Last-Event-ID", "in": "header", "required": False, "description": "Resume after this event id (wins over `since`).", "schema": {"type": "string", "pattern": EVENT_ID_PATTERN}},
                ],
                responses={
                    "200": {
                        "description": "An endless event stream.",
                        "headers": {"Cache-Control": {"schema": {"const": "no-cache, no-transform"}}},
                        "content": {"text/event-stream": {"schema": _ref("StreamEvent")}},
                    },
                    "503": dict(
                        _error_response(
                            "`streams_full`: this process holds as many streams as it may (poll notifications instead; `Retry-After`); or the database is unavailable.",
                            ("streams_full", "db_unavailable"),
                        ),
                        headers={"Retry-After": {"description": "With `streams_full`: seconds before opening a stream again.", "schema": {"type": "integer", "minimum": 0}}},
                    ),
                },
                errors=(*AGENT_READ, 422),
            )
        },
        "/api/health": {
            "get": _op(
                "health",
                "Is the app up and its database usable? (for load balancers; anyone)",
                "operations",
                security=PUBLIC,
                description="Terse and cheap: the database is checked at most once a second per process; nothing else.",
                responses={
                    "200": _json(_obj({"status": {"const": "ok"}}), "Up.", headers=NO_STORE),
                    "503": _json(_obj({"status": {"const": "degraded"}}), "The database is unavailable or needs migrating.", headers=NO_STORE),
                },
            )
        },
        "/api/health/live": {
            "get": _op(
                "healthLive",
                "Is this process up? (liveness; anyone)",
                "operations",
                security=PUBLIC,
                description="No dependency is checked: an outage of the database or LiveKit is readiness, not liveness.",
                responses={"200": _json(_obj({"status": {"const": "live"}}), "The process answers.", headers=NO_STORE)},
            )
        },
        "/api/health/ready": {
            "get": _op(
                "healthReady",
                "Can this process serve calls? (readiness, for load balancers; anyone)",
                "operations",
                security=PUBLIC,
                description="The database reachable and migrated (checked at most once a second per process) and LiveKit reachable (at most every 10 s per process).",
                responses={
                    "200": _json(_obj({"status": {"const": "ready"}}), "Ready.", headers=NO_STORE),
                    "503": _json(_obj({"status": {"const": "not_ready"}}), "The database or LiveKit is unavailable, or the database needs migrating.", headers=NO_STORE),
                },
            )
        },
        "/api/health/details": {
            "get": _op(
                "healthDetails",
                "What the app depends on, in detail (agents)",
                "operations",
                security=AGENT,
                description="Database, LiveKit (checked at most every 10 s per process, with the time of the check), the summary provider, telephony, live event streams and the task queue.",
                responses={"200": _json(_ref("HealthDetails"), "The details (200 even when degraded: `status` says).", headers=NO_STORE)},
                errors=AGENT_READ,
            )
        },
        OPENAPI_PATH: {
            "get": _op(
                "getOpenApi",
                "This document",
                "operations",
                security=PUBLIC,
                responses={
                    "200": {
                        "description": "The OpenAPI description, cacheable (`ETag`, `Cache-Control`).",
                        "headers": {"ETag": {"schema": STRING}, "Cache-Control": {"schema": {"const": CACHE_CONTROL}}},
                        "content": {JSON: {"schema": {"type": "object", "required": ["openapi", "info", "paths"]}}},
                    },
                    "304": {"description": "Not modified (`If-None-Match` matched the ETag)."},
                },
            )
        },
    }


# -- outside the JSON API -------------------------------------------------------------------------
def _other_paths() -> dict:
    twiml = {"text/xml": {"schema": STRING}}
    error_header = {"X-WT-Error": {"description": "Why the request was refused (or why the apology was played).", "schema": STRING}}

    def twilio(operation_id: str, summary: str, *, transfer: bool = False) -> dict:
        op: dict = {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["outside-json-api"],
            "security": [{"twilioSignature": []}],
            "requestBody": {
                "required": True,
                "description": "Twilio's webhook fields (`CallSid`, `CallStatus`, ...), form-encoded; or JSON, signed through `bodySHA256`.",
                "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}, JSON: {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": {"description": "TwiML. A failure inside the webhook still answers 200 with an apology (Twilio would play its own error otherwise); `X-WT-Error` names it.", "headers": error_header, "content": twiml},
                "403": {"description": "Bad or missing `X-Twilio-Signature`.", "headers": error_header, "content": twiml},
                "503": {"description": "Telephony is not configured (`X-WT-Error: telephony_not_configured`).", "headers": error_header, "content": twiml},
            },
        }
        if transfer:
            op["parameters"] = [_path_param("transfer_id", "The transfer whose phone leg this is.")]
        return {"post": op}

    def page(operation_id: str, summary: str, media: str) -> dict:
        return {
            "get": {
                "operationId": operation_id,
                "summary": summary,
                "tags": ["outside-json-api"],
                "security": PUBLIC,
                "responses": {"200": {"description": summary, "content": {media: {"schema": {"type": "string"}}}}},
            }
        }

    return {
        "/": page("customerPage", "The customer page (HTML)", "text/html"),
        "/agent": page("agentConsole", "The agent console (HTML)", "text/html"),
        "/agent-b": page("agentBDashboard", "The Agent B dashboard (HTML)", "text/html"),
        "/supervisor": page("supervisorView", "The supervisor view (HTML): the floor, transfer figures, monitor / whisper / barge", "text/html"),
        "/media/hold-music.wav": page("holdMusic", "Hold music Twilio plays to queued phone callers", "audio/wav"),
        "/twilio/voice": twilio("twilioVoice", "Twilio: a call comes in"),
        "/twilio/dial-action": twilio("twilioDialAction", "Twilio: the caller's bridge into LiveKit ended"),
        "/twilio/status": twilio("twilioStatus", "Twilio: the caller's call progressed"),
        "/twilio/transcription": twilio("twilioTranscription", "Twilio: real-time transcription"),
        "/twilio/recording": twilio("twilioRecording", "Twilio: a recording of the caller's bridge is ready (or absent)"),
        "/twilio/transfer/{transfer_id}/answer": twilio("twilioTransferAnswer", "Twilio: Agent B's phone answered", transfer=True),
        "/twilio/transfer/{transfer_id}/gather": twilio("twilioTransferGather", "Twilio: Agent B pressed a key", transfer=True),
        "/twilio/transfer/{transfer_id}/status": twilio("twilioTransferStatus", "Twilio: Agent B's leg progressed", transfer=True),
        "/twilio/transfer/{transfer_id}/bridge": twilio("twilioTransferBridge", "Twilio: Agent B's bridge into LiveKit ended", transfer=True),
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text exposition format), every gunicorn worker's together",
                "tags": ["outside-json-api"],
                # Public when METRICS_TOKEN is empty (development); production requires the token.
                "security": [{"metricsToken": []}, {}],
                "responses": {
                    "200": {
                        "description": "The metrics (docs/architecture.md §12); `wt_tasks` is left out while the database is unavailable.",
                        "headers": {"Cache-Control": {"schema": {"const": "no-store"}}},
                        "content": {"text/plain": {"schema": STRING}},
                    },
                    "401": dict(
                        _error_response("METRICS_TOKEN is set and the request's bearer token is missing or another.", ("metrics_token_required",)),
                        headers={"WWW-Authenticate": {"description": "`Bearer realm=\"metrics\"`.", "required": True, "schema": STRING}},
                    ),
                    **_errors(500),
                },
            }
        },
        "/livekit/webhook": {
            "post": {
                "operationId": "livekitWebhook",
                "summary": "LiveKit's webhook (room and participant events)",
                "tags": ["outside-json-api"],
                "security": [{"livekitWebhookToken": []}],
                "requestBody": {"required": True, "content": {"application/webhook+json": {"schema": {"type": "object"}}}},
                "responses": {
                    "200": _json(_obj({"event": STRING, "id": STRING, "outcome": {}}), "Handled (or recognised as a duplicate)."),
                    "400": _error_response("Signed, but not a WebhookEvent.", ("invalid_webhook_body",)),
                    "401": _error_response("Bad, missing or mismatched signature (livekit-server does not retry 4xx).", ("invalid_webhook_signature",)),
                    **_errors(500, 503),
                },
            }
        },
    }


# -- shared schemas -------------------------------------------------------------------------------
def _structured_summary(*, for_response: bool) -> dict:
    schema = StructuredSummary.model_json_schema()
    schema.pop("title", None)
    for prop in schema["properties"].values():
        prop.pop("title", None)
    if for_response:
        # Stored summaries are the model dumped in full: every field is present.
        schema["required"] = list(schema["properties"])
        for prop in schema["properties"].values():
            prop.pop("default", None)
    return schema


def _schemas() -> dict:
    call_status = {"type": "string", "enum": [str(s) for s in states.CallStatus]}
    count = {"type": "integer", "minimum": 0}
    summary_props = {
        "id": {"type": "integer"},
        "kind": {"type": "string", "enum": ["draft", "transfer", "edited"]},
        "text": STRING,
        "speech": STRING,
        "structured": _ref("StructuredSummary"),
        "provider": STRING,
        "model": NULLABLE_STRING,
        "degraded": {"type": "boolean"},
        "degraded_reason": NULLABLE_STRING,
        "covering_entry_id": {"type": "integer"},
        "edited_by": NULLABLE_STRING,
        "created_at": DATE_TIME,
    }
    call_props = {
        "session_id": STRING,
        "status": call_status,
        "customer_name": STRING,
        "room_name": STRING,
        "agent_id": NULLABLE_STRING,
        "channel": {"type": "string", "enum": ["web", "phone"]},
        "caller_number": NULLABLE_STRING,
        "created_at": DATE_TIME,
        "assigned_at": NULLABLE_DATE_TIME,
        "answered_at": NULLABLE_DATE_TIME,
        "ended_at": NULLABLE_DATE_TIME,
        "end_reason": NULLABLE_STRING,
    }
    agent_props = {
        "id": STRING,
        "name": STRING,
        "presence": {"type": "string", "enum": ["offline", "available", "away"]},
        "busy": {"type": "boolean"},
        "has_phone": {"type": "boolean"},
        "role": {"type": "string", "enum": list(ACCOUNT_ROLES)},
    }
    return {
        "Error": ERROR_SCHEMA,
        "Agent": _obj(agent_props),
        "Me": _obj(
            {
                "agent": _obj(dict(agent_props, active_call_id=NULLABLE_STRING)),
                "csrf_token": STRING,
                "last_event_id": {"type": "integer", "minimum": 0},
                "pending_transfers": {"type": "array", "items": _ref("PendingTransfer")},
            }
        ),
        "LoginResult": _obj({"agent": _obj({"id": STRING, "name": STRING}), "csrf_token": STRING}),
        "PendingTransfer": _obj(
            {
                "transfer_id": STRING,
                "session_id": STRING,
                "transfer_room": STRING,
                "customer_name": STRING,
                "from_agent_id": STRING,
                "from_agent_name": STRING,
                "requested_at": DATE_TIME,
                "summary": _nullable("Summary"),
                "to_team": {"type": ["string", "null"], "description": "The team it was offered to as a member, or null."},
                "team_name": NULLABLE_STRING,
            }
        ),
        "Team": _obj(
            {
                "id": STRING,
                "name": STRING,
                "available": {"type": "integer", "minimum": 0, "description": "Members free now."},
            }
        ),
        "CreatedCall": _obj(
            {
                "session_id": STRING,
                "room_name": STRING,
                "token": {"type": "string", "description": "The customer's LiveKit token for `room_name`."},
                "livekit_url": STRING,
                "customer_key": {"type": "string", "description": "The customer's credential for this call: send it as `X-Customer-Key`."},
                "agent_id": {"type": ["string", "null"], "description": "The agent assigned, or null when the call is queued."},
                "status": call_status,
            }
        ),
        "CustomerCallStatus": _obj(
            {
                "session_id": STRING,
                "status": call_status,
                "agent_name": NULLABLE_STRING,
                "on_hold": {"type": "boolean"},
                "end_reason": NULLABLE_STRING,
            }
        ),
        "Supervision": _obj(
            {
                "id": STRING,
                "session_id": STRING,
                "supervisor_id": STRING,
                "mode": {"type": "string", "enum": list(SUPERVISION_MODES)},
                "started_at": DATE_TIME,
                "ended_at": NULLABLE_DATE_TIME,
                "end_reason": {"type": ["string", "null"], "enum": ["ended", "left", "replaced", "call_ended", None]},
            }
        ),
        "Floor": _obj(
            {
                "server_time": DATE_TIME,
                "since": DATE_TIME,
                "queue": _obj(
                    {
                        "waiting": {"type": "array", "items": _obj({
                            "session_id": STRING,
                            "customer_name": STRING,
                            "channel": {"type": "string", "enum": ["web", "phone"]},
                            "waiting_since": DATE_TIME,
                            "requeued": {"type": "boolean", "description": "It went back to the queue (its agent did not join, or left)."},
                        })},
                        "longest_wait_since": NULLABLE_DATE_TIME,
                        "missed": {"type": "integer", "minimum": 0, "description": "Times since `since` a call was given to an agent who never reached the customer (`call_missed` events: the answer timeout, an Agent B who never arrived after a hand-over, a microphone that failed); a call missed twice counts twice."},
                    }
                ),
                "calls": {"type": "array", "items": _obj({
                    "session_id": STRING,
                    "customer_name": STRING,
                    "channel": {"type": "string", "enum": ["web", "phone"]},
                    "agent_id": NULLABLE_STRING,
                    "agent_name": NULLABLE_STRING,
                    "status": call_status,
                    "state": {"type": "string", "enum": ["ringing", "talking", "on_hold", "consult", "transferred"]},
                    "state_label": STRING,
                    "state_since": DATE_TIME,
                    "consult": {"oneOf": [{"type": "null"}, _obj({
                        "transfer_id": STRING,
                        "kind": {"type": "string", "enum": ["agent", "team", "phone"]},
                        "with": {"type": "string", "description": "Agent B's name, the team's name, or a phone number's last four digits."},
                        "stage": {"type": "string", "enum": ["pending", "ringing", "briefing"]},
                    })]},
                    "coach": _obj({
                        "monitor": {"type": "boolean"},
                        "whisper": {"type": "boolean"},
                        "barge": {"type": "boolean"},
                        "note": NULLABLE_STRING,
                    }),
                    "agent_on_phone": {"type": "boolean", "description": "The call's agent is a phone Agent B."},
                })},
                "agents": {"type": "array", "items": _obj({
                    "agent_id": STRING,
                    "name": STRING,
                    "role": {"type": "string", "enum": ["agent", "supervisor"]},
                    "presence": {"type": "string", "enum": ["available", "away", "offline"]},
                    "current_call": NULLABLE_STRING,
                    "calls_today": {"type": "integer", "minimum": 0},
                    "transfers_out_today": {"type": "integer", "minimum": 0, "description": "Transfers they started since `since`, however they ended."},
                    "transfers_in_today": {"type": "integer", "minimum": 0, "description": "Transfers that handed them the customer since `since`."},
                })},
            },
            description="The floor (GET /api/supervisor/floor); no caller numbers.",
        ),
        "SupervisionGrant": _obj(
            {
                "supervision": _ref("Supervision"),
                "room_name": STRING,
                "identity": {"type": "string", "description": "The supervisor's participant identity, `supervisor-<agent id>`."},
                "token": STRING,
                "livekit_url": STRING,
                "whisper_to": {
                    "type": "array",
                    "items": STRING,
                    "description": "Whisper only: the identities the supervisor's client must allow (and only them) to subscribe to its track, set before publishing. Empty otherwise.",
                },
            }
        ),
        "Timing": _obj(
            {
                "count": {"type": "integer", "minimum": 0, "description": "How many values were measured."},
                "p50_s": {"type": ["number", "null"], "minimum": 0, "description": "Median, in seconds (null when count is 0)."},
                "p95_s": {"type": ["number", "null"], "minimum": 0, "description": "95th percentile, in seconds (null when count is 0)."},
            }
        ),
        "Stats": _obj(
            {
                "from": DATE_TIME,
                "to": DATE_TIME,
                "calls": _obj(
                    {
                        "total": count,
                        "answered": count,
                        "abandoned": count,
                        "missed": {"type": "integer", "minimum": 0, "description": "`call_missed` events in the period: an agent given the call did not take it."},
                        "by_channel": _obj({channel: count for channel in CHANNELS}),
                    }
                ),
                "transfers": _obj(
                    {
                        "total": count,
                        "by_outcome": {
                            "type": "array",
                            "minItems": len(OUTCOMES),
                            "maxItems": len(OUTCOMES),
                            "description": "Every outcome, always in this order: " + ", ".join(key for key, _label in OUTCOMES) + ".",
                            "items": _obj({"outcome": {"type": "string", "enum": [key for key, _label in OUTCOMES]}, "label": STRING, "count": count}),
                        },
                        "by_target": {
                            "type": "array",
                            "description": "Who transfers went to, most first (then by label).",
                            "items": _obj(
                                {
                                    "kind": {"type": "string", "enum": list(TARGET_KINDS)},
                                    "id": {"type": "string", "description": "The agent or team id; for a phone number `••` and its last four digits."},
                                    "label": STRING,
                                    "count": count,
                                    "completed": count,
                                }
                            ),
                        },
                    }
                ),
                "timings": _obj({name: _ref("Timing") for name in TIMINGS}),
                "trend": {
                    "type": "array",
                    "minItems": TREND_DAYS,
                    "maxItems": TREND_DAYS,
                    "items": _obj(dict({"day_start": DATE_TIME, "day_end": DATE_TIME}, **{name: _ref("Timing") for name in TIMINGS})),
                },
            },
            description="Supervisor statistics of a period (GET /api/stats).",
        ),
        "RoomToken": _obj(
            {
                "session_id": STRING,
                "room_name": STRING,
                "token": STRING,
                "role": {"type": "string", "enum": ["customer", "owner", "leaving", "agent_a", "agent_b"]},
                "livekit_url": STRING,
            }
        ),
        "CallDeparture": _obj(
            {
                "session_id": STRING,
                "status": call_status,
                "outcome": {"type": "string", "enum": ["left", "requeued", "handed_over", "declined"]},
            }
        ),
        "Call": _obj(call_props),
        "CallDetail": _obj(
            dict(
                call_props,
                context={"type": "array", "items": _ref("ContextEntry")},
                summary=_nullable("Summary"),
                transfers={"type": "array", "items": _ref("Transfer")},
                timeline={"type": "array", "items": _ref("Event")},
                recording=_nullable("Recording"),
            )
        ),
        "Recording": _obj(
            {
                "status": {"type": "string", "enum": ["in-progress", "completed", "absent", "failed"],
                           "description": "Twilio's RecordingStatus; only `completed` can be played (GET /api/calls/{session_id}/recording)."},
                "duration_s": {"type": ["integer", "null"], "minimum": 0},
                "channels": {"type": ["integer", "null"], "minimum": 1},
            },
            description="A phone call's recording (never a Twilio URL).",
        ),
        "ContextEntry": _obj(
            {
                "id": {"type": "integer"},
                "author": {"type": "string", "description": "An agent id, `customer` or `system`."},
                "source": {"type": "string", "enum": ["note", "transcript", "system"]},
                "text": STRING,
                "created_at": DATE_TIME,
            }
        ),
        "Summary": _obj(summary_props),
        "SummaryVersion": _obj(dict(summary_props, supersedes_id={"type": ["integer", "null"]})),
        "StructuredSummary": _structured_summary(for_response=True),
        "StructuredSummaryInput": _structured_summary(for_response=False),
        "Transfer": _obj(
            {
                "id": STRING,
                "session_id": STRING,
                "status": {"type": "string", "enum": [str(s) for s in states.TransferStatus]},
                "transfer_room": STRING,
                "from_agent_id": STRING,
                "to_agent_id": NULLABLE_STRING,
                "to_phone": NULLABLE_STRING,
                "to_team": {"type": ["string", "null"], "description": "A team transfer's team; `to_agent_id` is null until a member accepts."},
                "reason": NULLABLE_STRING,
                "reason_code": NULLABLE_STRING,
                "error_code": NULLABLE_STRING,
                "leg_status": NULLABLE_STRING,
                "requested_at": DATE_TIME,
                "answered_at": NULLABLE_DATE_TIME,
                "bridged_at": NULLABLE_DATE_TIME,
                "handed_over_at": NULLABLE_DATE_TIME,
                "ended_at": NULLABLE_DATE_TIME,
                "summary": _nullable("Summary"),
            }
        ),
        "TransferWithToken": _obj({"transfer": _ref("Transfer"), "token": STRING, "livekit_url": STRING}),
        "Event": _obj(
            {
                "id": {"type": "integer"},
                "type": {"type": "string", "enum": sorted(EVENT_TYPES)},
                "payload": {"type": "object", "description": "Depends on `type` (see the README's event list); carries `session_id` for a call's events."},
                "created_at": DATE_TIME,
            }
        ),
        "StreamEvent": _obj(
            {
                "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event id (what `Last-Event-ID` resumes from)."},
                "event": {"type": "string", "enum": sorted(EVENT_TYPES | {"ready"})},
                "data": {"type": "string", "contentMediaType": JSON, "description": "JSON: the event's payload, with `event_id` and `created_at`."},
                "retry": {"type": "integer", "minimum": 0},
            },
            optional=("id", "retry"),
            description="One Server-Sent Event, as its fields.",
        ),
        "CustomerStreamEvent": _obj(
            {
                "id": {"type": "string", "pattern": "^[0-9]+$", "description": "Rises with every status (what `Last-Event-ID` sends back)."},
                "event": {"type": "string", "enum": [CUSTOMER_STATUS_EVENT, CUSTOMER_STREAM_REPLACED_EVENT]},
                "data": {"type": "string", "contentMediaType": JSON, "description": "JSON: a `CustomerCallStatus` (for `status`)."},
                "retry": {"type": "integer", "minimum": 0},
            },
            optional=("id", "retry"),
            description="One Server-Sent Event of a customer's status stream, as its fields.",
        ),
        "HealthDetails": _obj(
            {
                "status": {"type": "string", "enum": ["ok", "degraded"]},
                "db": _obj(
                    {
                        "status": {"type": "string", "enum": ["ok", "needs_migration", "unavailable"]},
                        "backend": {"type": "string", "enum": ["sqlite", "postgresql"]},
                        "missing_migrations": {"type": "array", "items": {"type": "integer"}},
                        "error": {"type": "string", "description": "The exception's class name."},
                    },
                    optional=("error",),
                ),
                "livekit": _obj(
                    {"status": {"type": "string", "enum": ["ok", "unavailable"]}, "url": STRING, "checked_at": DATE_TIME, "error": STRING},
                    optional=("error",),
                ),
                "llm": _obj({"provider": STRING, "model": NULLABLE_STRING}),
                "telephony": _obj({"configured": {"type": "boolean"}, "message": NULLABLE_STRING}),
                "sse_subscribers": {"type": "integer", "minimum": 0},
                "tasks": {
                    "oneOf": [
                        _obj({state: {"type": "integer", "minimum": 0} for state in (outbox.PENDING, outbox.RUNNING, outbox.FAILED)}),
                        {"type": "null"},
                    ],
                    "description": "Tasks by state; null while the database is unavailable.",
                },
            }
        ),
    }


def _error_response(description: str, codes: tuple[str, ...]) -> dict:
    """The error body with `code` narrowed to what this status (or route) can carry."""
    schema = copy.deepcopy(ERROR_SCHEMA)
    schema["properties"]["error"]["properties"]["code"] = {"type": "string", "enum": list(codes)}
    return _json(schema, description)


def _error_responses() -> dict:
    responses = {}
    for status, (name, description, codes) in ERRORS.items():
        response = _error_response(description, codes)
        if status == 429:
            response["headers"] = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
        if status == 405:
            # RFC 9110 §15.5.6: a 405 must say which methods the route has.
            response["headers"] = {"Allow": {"description": "The route's methods.", "required": True, "schema": STRING}}
        responses[name] = response
    return responses


@lru_cache(maxsize=4)
def _document(cookie_name: str) -> str:
    spec = {
        "openapi": "3.1.0",
        "info": {
            "title": "Warm Transfer",
            "version": "1",
            "description": (
                "The JSON API of the warm-transfer contact center (README, *JSON API*). Every error is "
                "`{\"error\": {\"code\", \"message\"}}`; each status's response lists the codes it carries. "
                "Agents log in (`POST /api/login`: session cookie + `csrf_token`) and send `X-CSRF-Token` on "
                "every state-changing request; web customers use the `customer_key` from create-call in "
                "`X-Customer-Key`.\n\nRoutes outside the JSON API (Twilio's and LiveKit's webhooks, the pages, "
                "the hold music, the Prometheus metrics) are listed minimally under the tag `outside-json-api`. Not listed: Flask's "
                "static files (`/static/<path:filename>`: a path with slashes, which an OpenAPI path parameter "
                "cannot be), and HEAD/OPTIONS, which Flask answers for every route."
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "agents", "description": "Sessions, presence and the directory."},
            {"name": "calls", "description": "Web calls, tokens, context, leaving and ending."},
            {"name": "transfers", "description": "Warm transfers: Agent A starts, completes or cancels; Agent B accepts or declines."},
            {"name": "summaries", "description": "The summary Agent B is handed."},
            {"name": "supervision", "description": "Supervisors monitoring, whispering to or barging into live calls."},
            {"name": "events", "description": "Notifications: SSE and the polling fallback."},
            {"name": "operations", "description": "Health and this document."},
            {"name": "outside-json-api", "description": "Webhooks, pages and media: listed for completeness, not JSON API."},
        ],
        "paths": dict(_api_paths(), **_other_paths()),
        "components": {
            "schemas": _schemas(),
            "responses": _error_responses(),
            "headers": {"RetryAfter": {"description": "Seconds until the rate-limit window resets.", "required": True, "schema": {"type": "integer", "minimum": 0}}},
            "securitySchemes": {
                "agentSession": {"type": "apiKey", "in": "cookie", "name": cookie_name, "description": "The session cookie `POST /api/login` sets."},
                "csrfToken": {"type": "apiKey", "in": "header", "name": CSRF_HEADER, "description": "The `csrf_token` from login (or `GET /api/me`); required on every agent POST/PUT."},
                "customerKey": {"type": "apiKey", "in": "header", "name": CUSTOMER_KEY_HEADER, "description": "The `customer_key` create-call returned, for that call only."},
                "customerCookie": {"type": "apiKey", "in": "cookie", "name": CUSTOMER_COOKIE, "description": "The same key as the HttpOnly cookie create-call sets, sent only to (and accepted only by) that call's status stream."},
                "twilioSignature": {"type": "apiKey", "in": "header", "name": "X-Twilio-Signature", "description": "Twilio's HMAC of the URL and fields."},
                "metricsToken": {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN, for `GET /metrics`."},
                "livekitWebhookToken": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "LiveKit's signed JWT (raw, no `Bearer`), covering the body's sha256."},
            },
        },
    }
    return json.dumps(spec, separators=(",", ":"))


def build_spec(cookie_name: str = "wt_session") -> dict:
    """The document as a fresh dict (callers may change their copy)."""
    return json.loads(_document(cookie_name))


@bp.get("/openapi.json")
def openapi_document():
    response = current_app.response_class(_document(current_app.config["SESSION_COOKIE_NAME"]), mimetype=JSON)
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.add_etag()
    return response.make_conditional(request)
