"""Schemathesis against the app served by gunicorn with a worker, on SQLite and PostgreSQL.

Every `/api/...` operation of the OpenAPI description (`GET /api/openapi.json`) is exercised with
its examples, schemathesis's coverage cases (boundary values and each way to be invalid) and
bounded fuzzing; then the stateful phase follows the description's links (create-call -> token
-> context, summary, initiate-transfer -> accept/decline/cancel -> complete, ...). Every check is
on: no 5xx; a documented status with its declared content type, headers and schema; data the
description calls invalid refused and data it calls valid accepted; auth not ignored; a 405 that
says which methods the route has.

Schemathesis runs through its engine (what `st run` uses), in this process: its pytest plugin's
fixture-based loader does not work with pytest 9 (it sets `Function._nodeid`, gone in pytest 9).

Who the requests come from (`Parties`): agents `agent-a` and `agent-b`, each logged in once
(cookie + `X-CSRF-Token`); for the supervisor statistics, the supervisor `sup-a` (away, so no call
of the run is routed to her; the other supervisor routes keep the agents' 403); for an operation on one of the run's calls, the agent handling it now
(the customer status route says), for Agent B's routes the transfer's Agent B, for Agent A's its
Agent A; logout with a throwaway session of its own, so it never ends the others; web customers
with the `customer_key` create-call gave for their call. The run keeps its agents usable: when a
new call finds both busy, the run's earlier calls are hung up (by their customers); before a
transfer to an agent busy with another of the run's calls, that call is; after presence or
microphone-failed both agents are set available again.

Generation is derandomized with a fixed seed: the same cases every run (the server's timing can
still change which states a scenario reaches).
"""
from __future__ import annotations

import threading
import tomllib
import zlib
from collections import Counter, defaultdict

import pytest
import requests
import schemathesis
from schemathesis.engine import events

from tests.harness.server import GunicornServer, WorkerProcess, app_env, flask_cli

pytestmark = pytest.mark.e2e

SEED = 20261201
AGENTS = {"agent-a": ("Agent A", "agent-a-password-1"), "agent-b": ("Agent B", "agent-b-password-1")}
SUPERVISOR = ("sup-a", "Sup A", "sup-a-password-1")
SUPERVISOR_ROUTES = {"/api/stats", "/api/stats.csv"}
AGENT_B_ROUTES = {"/api/accept-transfer", "/api/decline-transfer"}
AGENT_A_TRANSFER_ROUTES = {"/api/complete-transfer", "/api/cancel-transfer"}
RESTORES_PRESENCE = {"/api/presence", "/api/microphone-failed"}
NO_KEY = "not-the-key-of-any-call"
CONFIG = f"""
seed = {SEED}
request-timeout = 10
# /api/events never ends: its first event (`ready`) shows the stream's status, type and framing.
max-stream-events = 1
# The credentials are the run's own; a failure's curl line should reproduce it as sent.
output.sanitization.enabled = false

# Nothing kept between runs (no example database, no response cache): each run is the same.
cache.enabled = false

[generation]
deterministic = true
max-examples = 12
no-shrink = true
database = "none"

[phases.stateful]
max-steps = 10
generation.max-examples = 60
# Scenarios are for reaching states (a call answered, a transfer ringing, briefed, completed);
# invalid requests are the other phases' business.
generation.mode = "positive"
# The description's own links (create-call -> token -> initiate-transfer -> accept -> complete,
# ...); links inferred on top would spread the few scenarios too thin to reach a hand-over.
inference.algorithms = []

[dictionaries]
# The run's agent ids, often enough that transfers and notifications find someone.
agents = {{ values = ["agent-a", "agent-b"] }}
# Values known to break things, now and then in the ids, names and event ids a request carries:
# NUL (PostgreSQL refuses it in text), a digit Python's isdigit() accepts and int() refuses, an id
# past PostgreSQL's integer, and a character only Python counts as space. Headers only get what
# HTTP allows in them (gunicorn refuses control characters before the app sees the request).
tricky = {{ values = ["a\\u0000b", "\\u00b2", "1\\u00b2", "2147483648", "\\u001d"] }}
tricky_header = {{ values = ["\\u00b2", "1\\u00b2", "2147483648"] }}

[parameters]
"body.to_agent_id" = {{ dictionary = "agents", probability = 0.8 }}
"path.agent_id" = {{ dictionary = "agents", probability = 0.8 }}
"body.session_id" = {{ dictionary = "tricky", probability = 0.1 }}
"body.transfer_id" = {{ dictionary = "tricky", probability = 0.1 }}
"body.agent_id" = {{ dictionary = "tricky", probability = 0.1 }}
"body.customer_name" = {{ dictionary = "tricky", probability = 0.1 }}
"path.session_id" = {{ dictionary = "tricky", probability = 0.1 }}
"query.since" = {{ dictionary = "tricky", probability = 0.2 }}
"header.Last-Event-ID" = {{ dictionary = "tricky_header", probability = 0.2 }}

# The routes outside the JSON API (webhooks, pages) are in the description for completeness only.
[[operations]]
include-tag = "outside-json-api"
enabled = false

# Two things the description lets a client send that the app still refuses with 422, neither
# expressible in JSON Schema: a `to_phone` libphonenumber finds invalid or never dials, and a
# summary whose redaction makes a field longer than allowed. (A 5xx is not_a_server_error's.)
[[operations]]
include-path = "/api/initiate-transfer"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429", "5xx"]

# The statistics' period: `from` before `to`, at most 31 days, years 1970 to 9998, whole-minute
# offsets and no leap second; none of it expressible in JSON Schema (refused with 422).
[[operations]]
include-path-regex = "^/api/stats"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "422", "5xx"]

[[operations]]
include-path = "/api/calls/{{session_id}}/summary"
include-method = "PUT"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "5xx"]
"""


class Parties:
    """The agents and customers the requests come from, and what the run learnt about them."""

    def __init__(self, url: str):
        self.url = url
        self.lock = threading.Lock()
        self.sessions = {agent_id: self.login(agent_id) for agent_id in AGENTS}
        self.sessions[SUPERVISOR[0]] = self.login(SUPERVISOR[0], SUPERVISOR[2])
        self.set_presence(SUPERVISOR[0], "away")
        self.issued = {cookie for cookie, _csrf in self.sessions.values()}
        self.by_name = {name: agent_id for agent_id, (name, _pw) in AGENTS.items()}
        self.customer_keys: dict[str, str] = {}
        self.live_calls: set[str] = set()
        self.transfers: dict[str, tuple[str, str | None]] = {}  # id -> (Agent A, Agent B)

    def login(self, agent_id: str, password: str | None = None) -> tuple[str, str]:
        r = requests.post(f"{self.url}/api/login", json={"agent_id": agent_id, "password": password or AGENTS[agent_id][1]}, timeout=10)
        assert r.status_code == 200, r.text
        return r.cookies["wt_session"], r.json()["csrf_token"]

    # -- credentials -----------------------------------------------------------------------------
    def authenticate(self, case) -> None:
        """Credentials for a generated case, as its operation's security asks."""
        schemes = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
        headers, cookies = dict(case.headers or {}), dict(case.cookies or {})
        session_id = self._field(case, "session_id")
        key = self.customer_keys.get(session_id) if session_id else None
        # The customer status route as the customer; end-call as either, by call; a token as the
        # agent, whose token answers the call (what a transfer needs first).
        as_customer = "customerKey" in schemes and (
            "agentSession" not in schemes
            or (case.path == "/api/end-call" and key is not None and zlib.crc32(session_id.encode()) % 2 == 0)
        )
        if as_customer:
            headers["X-Customer-Key"] = key or NO_KEY
        elif "agentSession" in schemes:
            if case.path == "/api/logout":
                cookie, csrf = self.login("agent-a")  # its own session: logging out ends only that one
                self.issued.add(cookie)
            else:
                cookie, csrf = self.sessions[self._acting_agent(case, key)]
            cookies["wt_session"] = cookie
            if case.method.upper() != "GET":
                headers["X-CSRF-Token"] = csrf
        case.headers, case.cookies = headers, cookies

    def before_call(self, case) -> None:
        """At call time: a link may have put the id of one of the run's calls (or transfers) into
        the case since it was generated; its credentials become those of whoever that call's
        request comes from. Only credentials this class issued are replaced: a check that sends
        the case without them, or with made-up ones, keeps what it sent."""
        if case.path == "/api/logout":
            return
        if case.path == "/api/initiate-transfer":
            self.free_transfer_target(case)
        headers, cookies = case.headers or {}, case.cookies or {}
        session_id = self._field(case, "session_id")
        key = self.customer_keys.get(session_id) if session_id else None
        if key is not None and headers.get("X-Customer-Key") in self.keys_issued():
            headers["X-Customer-Key"] = key
        if cookies.get("wt_session") in self.issued:
            cookie, csrf = self.sessions[self._acting_agent(case, key)]
            cookies["wt_session"] = cookie
            if headers.get("X-CSRF-Token") in {c for _k, c in self.sessions.values()}:
                headers["X-CSRF-Token"] = csrf

    def keys_issued(self) -> set[str]:
        with self.lock:
            return set(self.customer_keys.values()) | {NO_KEY}

    def _acting_agent(self, case, key: str | None) -> str:
        if case.path in SUPERVISOR_ROUTES:
            return SUPERVISOR[0]
        transfer = self.transfers.get(self._field(case, "transfer_id") or "")
        if case.path in AGENT_B_ROUTES:
            return transfer[1] if transfer and transfer[1] in AGENTS else "agent-b"
        if case.path in AGENT_A_TRANSFER_ROUTES and transfer:
            return transfer[0]
        if key is not None:
            # The agent handling the call now, as its customer page says.
            session_id = self._field(case, "session_id")
            r = requests.get(f"{self.url}/api/calls/{session_id}/status", headers={"X-Customer-Key": key}, timeout=10)
            if r.status_code == 200 and r.json()["agent_name"] in self.by_name:
                return self.by_name[r.json()["agent_name"]]
        return "agent-a"

    @staticmethod
    def _field(case, name: str):
        if case.path_parameters and name in case.path_parameters:
            return case.path_parameters[name]
        value = case.body.get(name) if isinstance(case.body, dict) else None
        return value if isinstance(value, str) and value else None

    # -- what responses teach ----------------------------------------------------------------------
    def observe(self, case, response) -> None:
        if case.path == "/api/create-call" and response.status_code == 201:
            call = response.json()
            with self.lock:
                self.customer_keys[call["session_id"]] = call["customer_key"]
                others = sorted(self.live_calls)
                self.live_calls.add(call["session_id"])
            if call["agent_id"] is None:
                # Both agents are busy with earlier calls: those customers hang up, and the
                # freed agents take this one.
                self.hang_up(others)
        elif case.path == "/api/initiate-transfer" and response.status_code == 201:
            transfer = response.json()["transfer"]
            self.transfers[transfer["id"]] = (transfer["from_agent_id"], transfer["to_agent_id"])
        elif case.path in RESTORES_PRESENCE:
            self.make_available()

    def free_transfer_target(self, case) -> None:
        """Before a transfer to one of the run's agents: that agent finishes any other call of the
        run (its customer hangs up), so the transfer can ring."""
        target, session_id = self._field(case, "to_agent_id"), self._field(case, "session_id")
        if target not in AGENTS:
            return
        others = []
        for other in sorted(self.live_calls - {session_id}):
            r = requests.get(f"{self.url}/api/calls/{other}/status", headers={"X-Customer-Key": self.customer_keys[other]}, timeout=10)
            if r.status_code == 200 and self.by_name.get(r.json()["agent_name"]) == target:
                others.append(other)
        self.hang_up(others)

    def hang_up(self, session_ids: list[str]) -> None:
        """End these calls as their customers: their agents are free for the next one."""
        with self.lock:
            self.live_calls -= set(session_ids)
        for session_id in session_ids:
            r = requests.post(f"{self.url}/api/end-call", json={"session_id": session_id}, headers={"X-Customer-Key": self.customer_keys[session_id]}, timeout=10)
            assert r.status_code in (200, 409), r.text
        self.make_available()

    def make_available(self) -> None:
        for agent_id in AGENTS:
            self.set_presence(agent_id, "available")

    def set_presence(self, agent_id: str, status: str) -> None:
        cookie, csrf = self.sessions[agent_id]
        r = requests.post(f"{self.url}/api/presence", json={"status": status}, cookies={"wt_session": cookie}, headers={"X-CSRF-Token": csrf}, timeout=10)
        assert r.status_code == 200, r.text


@pytest.fixture
def served(database_url, livekit_double, make_app, tmp_path):
    make_app()  # an empty, migrated database (the server migrates again: idempotent)
    env = app_env(
        database_url,
        livekit_double,
        # Streams the run leaves behind are noticed (and their threads freed) at the next heartbeat.
        SSE_HEARTBEAT_S="0.5",
        # Rate limits are the contract test's business; here they would only turn cases into 429s.
        CREATE_CALL_RATE_LIMIT="100000/60",
        LOGIN_RATE_LIMIT="100000/60",
        LOGIN_AGENT_RATE_LIMIT="100000/60",
        # Nobody joins the run's calls through LiveKit; no agent is set away for that meanwhile.
        AGENT_ANSWER_TIMEOUT_S="300",
    )
    assert "Schema is up to date" in flask_cli(env, "init-db")
    for agent_id, (name, password) in AGENTS.items():
        flask_cli(env, "agents", "add", agent_id, "--name", name, "--password", password)
    flask_cli(env, "agents", "add", SUPERVISOR[0], "--name", SUPERVISOR[1], "--password", SUPERVISOR[2], "--role", "supervisor")
    server = GunicornServer(env, tmp_path / "gunicorn.log").start()
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        yield server
    finally:
        worker.stop()
        server.stop()


def _failures(event) -> list[str]:
    """Each failed check of a finished scenario: what failed, and the request that shows it."""
    found = []
    for checks in event.recorder.checks.values():
        for check in checks:
            if check.failure_info is not None:
                failure = check.failure_info.failure
                found.append(f"[{failure.operation}] {check.name}: {failure.title}\n{failure.message}\n{check.failure_info.code_sample}")
    return found


def _statuses(event, into: dict[str, Counter]) -> None:
    for case_id, interaction in event.recorder.interactions.items():
        node = event.recorder.cases.get(case_id)
        if node is not None and interaction.response is not None:
            into[node.value.operation.label][interaction.response.status_code] += 1


def test_api_conforms_to_its_description(served):
    parties = Parties(served.url)
    # The description as the server serves it. Loaded as a document rather than from its URL,
    # because schemathesis leaves out the operation a schema was loaded from, and that operation
    # (GET /api/openapi.json) is part of the API too.
    served_document = requests.get(f"{served.url}/api/openapi.json", timeout=10)
    assert served_document.status_code == 200, served_document.text
    config = schemathesis.Config.from_dict(dict(tomllib.loads(CONFIG), **{"base-url": served.url}))
    schema = schemathesis.openapi.from_dict(served_document.json(), config=config)

    # Not cached: each case gets the credentials its operation (and call) asks for.
    @schema.auth(refresh_interval=None, retry_on=[])
    class PartyAuth:
        def get(self, case, context):
            return parties

        def set(self, case, data, context):
            data.authenticate(case)

    @schema.hook("after_call")
    def learn(context, case, response):
        parties.observe(case, response)

    # Schemathesis calls `before_call` hooks only from its global registry: unregistered below.
    def before_call(context, case, kwargs):
        parties.before_call(case)

    failures: list[str] = []
    statuses: dict[str, Counter] = defaultdict(Counter)
    finished = None
    schemathesis.hook(before_call)
    try:
        for event in schemathesis.engine.from_schema(schema).execute():
            if isinstance(event, (events.ScenarioFinished, events.FuzzScenarioFinished)):
                failures.extend(_failures(event))
                _statuses(event, statuses)
            elif isinstance(event, (events.NonFatalError, events.FatalError)):
                failures.append(f"error: {getattr(event, 'value', None) or event.exception!r}")
            elif isinstance(event, events.EngineFinished):
                finished = event
    finally:
        schemathesis.hooks.unregister(before_call)
    # What each operation answered, shown with any failure below.
    for label, counts in sorted(statuses.items()):
        print(f"{label}: {dict(sorted(counts.items()))}")
    assert finished is not None and finished.stop_reason == "completed", finished
    described = {f"{m.upper()} {p}" for p, item in schema.raw_schema["paths"].items() if p.startswith("/api/") for m in item}
    assert sorted(described - set(statuses)) == [], "operations schemathesis never called"
    unique = sorted(set(failures))
    assert unique == [], f"{len(unique)} schemathesis failures:\n\n" + "\n\n".join(unique)
