"""The app under gunicorn and a worker process on PostgreSQL, each dependency behind a FaultProxy.

    test process ──HTTP──► gunicorn (web) ──► proxy ─► PostgreSQL (a database of its own)
                                           ├─► proxy ─► LiveKit Twirp double
                                           └─► proxy ─► OpenAI-compatible LLM double
                   worker process ─────────┬─► (the same three proxies)
                                           └─► proxy ─► Twilio REST (the simulator's HTTP front)
    Twilio simulator ──signed webhooks over HTTP──► gunicorn

What breaks is only the link between the app's processes and one dependency: the test itself
reads the database directly (to judge what was written) and plays the browsers' and LiveKit
SIP's part on the LiveKit double directly (a browser can reach LiveKit while the app cannot).

`Stack` is built once per module; `Run` is one test's view of it: the agents, calls and
transfers that test made, every API answer it got (each must be a success or a typed JSON
error), and the problems found, reported together at the end with the log lines around them.
"""
from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests
from livekit.protocol import models as lk_models
from sqlalchemy import Text, cast, func, or_, select

from app import create_app, states
from app.db import migrate
from app.models import Agent, Call, Summary, Task, Transfer
from tests.doubles.livekit_twirp import LiveKitTwirpDouble
from tests.doubles.openai_compat import OpenAICompatibleDouble
from tests.doubles.twilio_http import TwilioHttp, WebhookClient
from tests.doubles.twilio_sim import RecordingSipLegs, SimCall, SipLeg, TwilioSim
from tests.fault.proxy import FaultProxy
from tests.harness.http import Stream
from tests.harness.postgres import ThrowawayDatabase
from tests.harness.server import ChildProcess, GunicornServer
from tests.harness.waiting import until

# -- settings of the app under test ------------------------------------------------------------
ACCOUNT_SID = "AC" + "f" * 32
AUTH_TOKEN = "fault-sim-auth-token-0123456789ab"
NUMBER = "+15005550006"
CALLER = "+14155550123"
SIP_HOST = "sip.fault.test:5060"
SECRET_KEY = "fault-suite-secret-key-long-enough-for-sessions"

LIVEKIT_TIMEOUT_S = 1.0
TWILIO_TIMEOUT_S = 1.0
LLM_TIMEOUT_S = 1.0
SUMMARY_BUDGET_S = 1.0
RING_TIMEOUT_S = 5
ANSWER_TIMEOUT_S = 5
HANDOVER_JOIN_TIMEOUT_S = 10
CUSTOMER_JOIN_TIMEOUT_S = 10

# Every API answer must arrive within this long, whatever a dependency does: the slowest bounded
# path is a transfer waiting on LiveKit (LIVEKIT_TIMEOUT_S + 1 s) after a summary (budget 1 s).
API_BOUND_S = 8.0

# Task kinds whose giving up is acceptable: a draft refresh is re-made by the next context line,
# and a transfer summarises anew when the draft is behind (app.services.summaries.for_transfer).
FAILURE_TOLERATED = frozenset({"summary.refresh_draft"})

LOG_PATTERNS = re.compile(r"Traceback|ERROR|CRITICAL|unhandled error|crashed the runner|Exception")


# -- HTTP answers ------------------------------------------------------------------------------
@dataclass
class Answer:
    what: str
    status: int | None
    content_type: str = ""
    text: str = ""
    elapsed: float = 0.0
    error: str | None = None  # no HTTP answer at all (timeout, connection refused)
    headers: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> dict:
        return json.loads(self.text)

    @property
    def code(self) -> str | None:
        try:
            return self.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None

    def __str__(self) -> str:
        if self.error:
            return f"{self.what} -> no answer after {self.elapsed:.1f}s ({self.error})"
        return f"{self.what} -> {self.status} {self.content_type} in {self.elapsed:.2f}s: {self.text[:300]}"


def typed_problem(answer: Answer) -> str | None:
    """Why `answer` is neither a success nor a typed error, or None."""
    if answer.error:
        return f"no answer within {API_BOUND_S:g}s: {answer}"
    if answer.status >= 500 and answer.status != 503:
        return f"HTTP {answer.status}: {answer}"
    if answer.status < 400:
        return None
    if not answer.content_type.startswith("application/json"):
        return f"a non-JSON error: {answer}"
    try:
        error = answer.json()["error"]
        assert isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str) and error["message"]
    except (ValueError, KeyError, TypeError, AssertionError):
        return f"an error without {{error: {{code, message}}}}: {answer}"
    return None


class Http:
    """One browser: a cookie jar, and every request it makes recorded as an Answer."""

    def __init__(self, stack: Stack, run: Run):
        self.stack, self.run = stack, run
        self.session = requests.Session()
        self.headers: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict | None = None, *, headers: dict | None = None, raw: str | None = None,
                check: bool = True) -> Answer:
        what = f"{method} {path}" + (f" {json.dumps(body)}" if body is not None else "")
        started = time.monotonic()
        try:
            r = self.session.request(method, self.stack.url + path, json=body if raw is None else None, data=raw,
                                     headers={**self.headers, **(headers or {})}, timeout=(3.0, API_BOUND_S))
        except requests.RequestException as err:
            answer = Answer(what, None, elapsed=time.monotonic() - started, error=type(err).__name__)
        else:
            answer = Answer(what, r.status_code, r.headers.get("Content-Type", ""), r.text, time.monotonic() - started, headers=dict(r.headers))
        if check:
            self.run.record(answer)
        else:
            self.run.answers.append(answer)
        return answer


# -- the parties -------------------------------------------------------------------------------
@dataclass
class AgentUser:
    id: str
    name: str
    password: str
    http: Http
    phone: str | None = None
    csrf: str | None = None
    streams: list[Stream] = field(default_factory=list)

    def login(self) -> Answer:
        answer = self.http.request("POST", "/api/login", {"agent_id": self.id, "password": self.password})
        if answer.ok:
            self.csrf = answer.json()["csrf_token"]
            self.http.headers["X-CSRF-Token"] = self.csrf
        return answer

    def post(self, path: str, body: dict | None = None) -> Answer:
        return self.http.request("POST", path, body or {})

    def get(self, path: str) -> Answer:
        return self.http.request("GET", path)

    def put(self, path: str, body: dict) -> Answer:
        return self.http.request("PUT", path, body)

    def open_stream(self, last_event_id: int | None = None) -> tuple[Answer, Stream | None]:
        """Connect `/api/events` as EventSource does (with Last-Event-ID on a reconnect)."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        what = f"GET /api/events (Last-Event-ID: {last_event_id})"
        started = time.monotonic()
        try:
            r = self.http.session.get(self.http.stack.url + "/api/events", headers=headers, stream=True, timeout=(3.0, API_BOUND_S))
        except requests.RequestException as err:
            answer = Answer(what, None, elapsed=time.monotonic() - started, error=type(err).__name__)
            self.http.run.record(answer)
            return answer, None
        content_type = r.headers.get("Content-Type", "")
        if r.status_code == 200 and content_type.startswith("text/event-stream"):
            answer = Answer(what, 200, content_type, "", time.monotonic() - started)
            self.http.run.record(answer)
            stream = Stream(r, last_event_id)
            self.streams.append(stream)
            return answer, stream
        answer = Answer(what, r.status_code, content_type, r.text, time.monotonic() - started)
        r.close()
        self.http.run.record(answer)
        return answer, None


@dataclass
class WebCall:
    id: str
    room: str
    key: str
    customer: Http

    def customer_request(self, method: str, path: str, body: dict | None = None) -> Answer:
        return self.customer.request(method, path, body, headers={"X-Customer-Key": self.key})


# -- LiveKit SIP's part, on the double ---------------------------------------------------------
class DoubleSipLegs(RecordingSipLegs):
    """Where the simulator's `<Dial><Sip>` goes: the leg is answered and appears in the LiveKit
    double's room with the attributes the inbound trunk maps from the X-WT-* headers, as LiveKit
    SIP would put it there; `disconnect` takes it out again."""

    def __init__(self, livekit: LiveKitTwirpDouble, on_join: Callable[[str, object], None]):
        super().__init__()
        self.livekit = livekit
        self.on_join = on_join
        self._identities: dict[int, tuple[str, str]] = {}

    def connect(self, leg: SipLeg) -> str:
        outcome = super().connect(leg)
        if outcome == "answered":
            headers = leg.headers
            attributes = {"wt_call": headers.get("X-WT-Call", ""), "wt_role": headers.get("X-WT-Role", "")}
            if headers.get("X-WT-Transfer"):
                attributes["wt_transfer"] = headers["X-WT-Transfer"]
            identity = f"sip_{leg.call.sid[-10:]}_{len(self.legs)}"
            if leg.room in self.livekit.rooms:
                info = self.livekit.join(leg.room, identity, kind=lk_models.ParticipantInfo.Kind.SIP, attributes=attributes)
                self._identities[id(leg)] = (leg.room, identity)
                self.on_join(leg.room, info)
        return outcome

    def disconnect(self, leg: SipLeg) -> None:
        super().disconnect(leg)
        room, identity = self._identities.pop(id(leg), (None, None))
        if room is not None:
            state = self.livekit.rooms.get(room)
            if state is not None:
                state.participants.pop(identity, None)

    def end_legs_in_deleted_rooms(self) -> None:
        """LiveKit SIP hangs up (BYE) a leg whose room was deleted; Twilio then reports the dial over."""
        for leg in list(self.legs):
            if leg.connected and leg.call.sip is leg and leg.room not in self.livekit.rooms and not leg.call.ended:
                leg.call.end_dial("completed")


class FaultWorker(ChildProcess):
    name = "worker"

    def __init__(self, env: dict, log_path: Path, twilio_base: str):
        super().__init__([sys.executable, "-m", "tests.fault.worker_main", twilio_base], env, log_path)

    def ready(self) -> bool:
        return "Worker " in self.output()


class LogMark:
    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                return f.read().decode(errors="replace").splitlines()
        except OSError:
            return []


# -- the stack ---------------------------------------------------------------------------------
class Stack:
    def __init__(self, admin_url: str, workdir: Path):
        self.workdir = workdir
        parts = urlsplit(admin_url)
        self.database = ThrowawayDatabase(admin_url, "wt_fault")

        self.livekit = LiveKitTwirpDouble().start()
        self.llm = OpenAICompatibleDouble()
        self.sip = DoubleSipLegs(self.livekit, self.livekit_joined)
        self.webhooks = WebhookClient(timeout=(3.0, API_BOUND_S))
        self.run: Run | None = None  # the test running now: LiveKit's webhooks are its answers
        self._webhook_backlog: list[tuple[str, str, str]] = []
        self._webhook_lock = threading.Lock()
        self.sim: TwilioSim | None = None
        self.twilio_http: TwilioHttp | None = None

        lk_port = urlsplit(self.livekit.url).port
        llm_port = urlsplit(self.llm.base_url).port
        self.proxies = {
            "database": FaultProxy("database", parts.hostname or "127.0.0.1", parts.port or 5432),
            "livekit": FaultProxy("livekit", "127.0.0.1", lk_port),
            "llm": FaultProxy("llm", "127.0.0.1", llm_port),
        }
        proxied_db = urlunsplit(parts._replace(scheme="postgresql", netloc=_with_port(parts, self.proxies["database"].port),
                                               path=f"/{self.database.name}"))
        self.env = {
            "PATH": "/usr/bin:/bin",
            "APP_ENV": "test",
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": proxied_db,
            "LIVEKIT_HTTP_URL": f"http://{self.proxies['livekit'].address}",
            "LIVEKIT_WS_URL": f"ws://{self.proxies['livekit'].address}",
            "LIVEKIT_API_KEY": self.livekit.api_key,
            "LIVEKIT_API_SECRET": self.livekit.api_secret,
            "LIVEKIT_TIMEOUT_S": str(LIVEKIT_TIMEOUT_S),
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            "EVENT_POLL_INTERVAL_S": "0.05",
            "WORKER_POLL_INTERVAL_S": "0.05",
            "SSE_HEARTBEAT_S": "1",
            "LOGIN_RATE_LIMIT": "100000/60",
            "LOGIN_AGENT_RATE_LIMIT": "100000/60",
            "CREATE_CALL_RATE_LIMIT": "100000/60",
            "PHONE_DIAL_RATE_LIMIT": "100000/3600",
            "PHONE_DIAL_GLOBAL_RATE_LIMIT": "100000/3600",
            "LLM_PROVIDER": "openai",
            "LLM_BASE_URL": f"http://{self.proxies['llm'].address}/v1",
            "LLM_MODEL": "fault-model",
            "LLM_TIMEOUT_S": str(LLM_TIMEOUT_S),
            "TRANSFER_SUMMARY_BUDGET_S": str(SUMMARY_BUDGET_S),
            "DRAFT_DEBOUNCE_S": "0.2",
            "SUMMARY_REDRAFT_S": "1",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_PHONE_NUMBER": NUMBER,
            "TWILIO_TIMEOUT_S": str(TWILIO_TIMEOUT_S),
            "LIVEKIT_SIP_HOST": SIP_HOST,
            "LIVEKIT_SIP_USERNAME": "fault-trunk",
            "LIVEKIT_SIP_PASSWORD": "fault-trunk-password",
            "TRANSFER_RING_TIMEOUT_S": str(RING_TIMEOUT_S),
            "AGENT_ANSWER_TIMEOUT_S": str(ANSWER_TIMEOUT_S),
            "HANDOVER_JOIN_TIMEOUT_S": str(HANDOVER_JOIN_TIMEOUT_S),
            "CUSTOMER_JOIN_TIMEOUT_S": str(CUSTOMER_JOIN_TIMEOUT_S),
            "AGENT_RECONNECT_GRACE_S": "5",
            "CUSTOMER_RECONNECT_GRACE_S": "5",
            "WORKER_TASK_LEASE_S": "5",
        }
        # The test's own view of the database: direct, never through the proxy.
        direct = {k: v for k, v in self.env.items() if k != "PATH"}
        direct.update(DATABASE_URL=self.database.url, LIVEKIT_HTTP_URL=self.livekit.url, LLM_PROVIDER="offline")
        direct.pop("LLM_BASE_URL")
        direct.pop("LLM_MODEL")
        self.local = create_app(direct)
        self.services = self.local.extensions["wt"]
        migrate(self.services.db)

        self.server = GunicornServer(self.env, workdir / "gunicorn.log", workers=2, threads=32)
        self.env["PUBLIC_BASE_URL"] = self.server.url  # Twilio signs and calls back the URL we hand it
        self.server.env["PUBLIC_BASE_URL"] = self.server.url
        self.sim = TwilioSim(self.webhooks, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, number=NUMBER,
                             voice_url=self.server.url + "/twilio/voice", status_url=self.server.url + "/twilio/status", sip_legs=self.sip)
        self.twilio_http = TwilioHttp(self.sim, AUTH_TOKEN)
        self.proxies["twilio"] = FaultProxy("twilio", "127.0.0.1", urlsplit(self.twilio_http.base).port)
        self.worker = FaultWorker(self.env, workdir / "worker.log", f"http://{self.proxies['twilio'].address}")

    def start(self) -> Stack:
        started = time.monotonic()
        self.server.start(timeout=60)
        self.worker.start(timeout=60)
        print(f"[fault stack] up in {time.monotonic() - started:.1f}s")
        return self

    @property
    def url(self) -> str:
        return self.server.url

    def proxy(self, name: str) -> FaultProxy:
        return self.proxies[name]

    # -- LiveKit's webhooks to the app ------------------------------------------------------------
    def livekit_joined(self, room: str, participant) -> None:
        body, token = self.livekit.webhook("participant_joined", room=room, participant=participant)
        self._post_livekit_webhook(room, body, token)

    def _post_livekit_webhook(self, room: str, body: str, token: str) -> None:
        run = self.run
        http = Http(self, run) if run is not None else None
        if http is None:
            return
        answer = http.request("POST", "/livekit/webhook", headers={"Authorization": token, "Content-Type": "application/webhook+json"}, raw=body)
        answer.what = f"POST /livekit/webhook participant_joined {room}"
        if not answer.ok:
            with self._webhook_lock:
                self._webhook_backlog.append((room, body, token))  # livekit-server retries a 5xx

    def redeliver_livekit_webhooks(self) -> None:
        with self._webhook_lock:
            backlog, self._webhook_backlog = self._webhook_backlog, []
        for room, body, token in backlog:
            self._post_livekit_webhook(room, body, token)

    def restore_all(self) -> None:
        for proxy in self.proxies.values():
            proxy.up()

    def stop(self) -> None:
        self.restore_all()
        for step in (self.worker.stop, self.server.stop, self.services.close, self.twilio_http.stop, self.livekit.stop, self.llm.stop,
                     *[p.stop for p in self.proxies.values()]):
            started = time.monotonic()
            try:
                step()
            except Exception as err:  # keep tearing down; a leftover process is worse than a message
                print(f"[fault stack] teardown step failed: {err!r}")
            if time.monotonic() - started > 10:
                print(f"[fault stack] {getattr(step, '__qualname__', step)} took {time.monotonic() - started:.1f}s")
        keep = os.environ.get("WT_FAULT_LOG_DIR")
        if keep:  # pytest's temporary directories rotate; keep the logs where asked
            target = Path(keep) / time.strftime("%Y%m%d-%H%M%S")
            target.mkdir(parents=True, exist_ok=True)
            for name in ("gunicorn.log", "worker.log"):
                if (self.workdir / name).exists():
                    (target / name).write_bytes((self.workdir / name).read_bytes())
            print(f"[fault stack] logs kept in {target}")
        self.database.drop()


def _with_port(parts, port: int) -> str:
    user = parts.username or "postgres"
    auth = user + (f":{parts.password}" if parts.password else "")
    return f"{auth}@127.0.0.1:{port}"


# -- one test's view ---------------------------------------------------------------------------
class Run:
    """What one test did and found. Problems are collected, not raised at once, so one run
    reports every bug it met; `report()` fails the test with all of them and the log lines."""

    _serial = 0

    def __init__(self, stack: Stack, name: str):
        self.stack = stack
        self.name = name
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.answers: list[Answer] = []
        self.agents: list[AgentUser] = []
        self.calls: dict[str, WebCall | None] = {}  # call id -> web call (None: a phone caller)
        self.phone_callers: list[SimCall] = []
        self.transfer_ids: set[str] = set()
        self.finished = False
        self.outbound_from = len(stack.sim.outbound)
        self.rooms_at_start = set(stack.livekit.rooms)
        self.gunicorn_log = LogMark(stack.workdir / "gunicorn.log")
        self.worker_log = LogMark(stack.workdir / "worker.log")
        self.started = time.monotonic()
        stack.restore_all()
        stack.run = self
        # Whatever an earlier test left available (it failed half-way) takes no calls of ours.
        with stack.services.db.reading() as s:
            leftovers = list(s.scalars(select(Agent.id).where(Agent.disabled_at.is_(None))))
        for agent_id in leftovers:
            stack.services.agents.disable(agent_id)

    # -- bookkeeping -----------------------------------------------------------------------------
    def record(self, answer: Answer) -> None:
        self.answers.append(answer)
        problem = typed_problem(answer)
        if problem:
            self.problem(f"untyped API answer: {problem}")

    def problem(self, text: str) -> None:
        stamp = f"[{time.monotonic() - self.started:5.1f}s]"
        self.problems.append(f"{stamp} {text}")

    def expect(self, answer: Answer, statuses: Iterable[int], code: str | None = None, why: str = "") -> bool:
        """A functional expectation on an answer (on top of its being typed)."""
        statuses = set(statuses)
        if answer.status not in statuses or (code is not None and answer.status >= 400 and answer.code != code):
            wanted = "/".join(map(str, sorted(statuses))) + (f" {code}" if code else "")
            self.problem(f"expected {wanted}{' (' + why + ')' if why else ''}: {answer}")
            return False
        return True

    def wait(self, predicate: Callable[[], object], what: str, timeout: float) -> object:
        """Bounded polling; a timeout is a problem (e.g. a stuck transfer), not an exception."""
        try:
            return until(predicate, what, timeout)
        except AssertionError as err:
            self.problem(str(err))
            return None

    # -- parties ---------------------------------------------------------------------------------
    def agent(self, role: str, *, phone: str | None = None, login: bool = True) -> AgentUser:
        Run._serial += 1
        agent_id = f"{self.name}-{role}{Run._serial}"
        password = f"pw-{agent_id}-123456"
        self.stack.services.agents.add(agent_id, f"{role.upper()} {Run._serial}", password, phone)
        user = AgentUser(agent_id, f"{role.upper()} {Run._serial}", password, Http(self.stack, self), phone=phone)
        self.agents.append(user)
        if login:
            answer = user.login()
            assert answer.ok, str(answer)
        return user

    def web_call(self, owner: AgentUser, customer_name: str = "Jane Doe") -> WebCall:
        """A web customer calls, reaches LiveKit, and `owner` (the only available agent) answers."""
        customer = Http(self.stack, self)
        answer = customer.request("POST", "/api/create-call", {"customer_name": customer_name})
        assert answer.status == 201, str(answer)
        body = answer.json()
        call = WebCall(body["session_id"], body["room_name"], body["customer_key"], customer)
        self.calls[call.id] = call
        assert body["agent_id"] == owner.id, f"the call went to {body['agent_id']}, not {owner.id}"
        self.lk_join(call.room, f"customer-{call.id}")
        joined = owner.post("/api/token", {"session_id": call.id})
        assert joined.ok and joined.json()["role"] == "owner", str(joined)
        self.lk_join(call.room, f"agent-{owner.id}")
        return call

    def lk_join(self, room: str, identity: str) -> None:
        """A browser reaches LiveKit (the double, directly: only the app's link to LiveKit is
        ever broken), and LiveKit tells the app with a signed `participant_joined` webhook."""
        if room not in self.stack.livekit.rooms:
            self.problem(f"{identity} cannot join {room}: LiveKit has no such room")
            return
        self.stack.livekit_joined(room, self.stack.livekit.join(room, identity))

    def redeliver_webhooks(self) -> None:
        """livekit-server retries a webhook the app answered with 5xx (or not at all)."""
        self.stack.redeliver_livekit_webhooks()

    def context(self, agent: AgentUser, call: WebCall, *lines: str) -> None:
        for text in lines:
            answer = agent.post("/api/add-context", {"session_id": call.id, "text": text})
            assert answer.status == 201, str(answer)

    def initiate(self, a: AgentUser, call_id: str, *, to: AgentUser | None = None, to_phone: str | None = None) -> dict:
        body = {"session_id": call_id, **({"to_agent_id": to.id} if to else {"to_phone": to_phone})}
        answer = a.post("/api/initiate-transfer", body)
        assert answer.status == 201, str(answer)
        transfer = answer.json()["transfer"]
        self.transfer_ids.add(transfer["id"])
        self.lk_join(transfer["transfer_room"], f"agent-{a.id}")
        return transfer

    def consult(self, *, phone: bool = False) -> Consult:
        """A call, answered; context; a transfer ringing Agent B (dashboard, or their phone)."""
        self.step_aside()
        a = self.agent("a")
        call = self.web_call(a)
        b = self.agent("b", phone=self.phone_number(), login=False) if phone else self.agent("b")
        self.context(a, call, "Customer reports a double charge on order A-7731", "Wants the refund on the original card")
        _, a_stream = a.open_stream()
        b_stream = None
        if not phone:
            _, b_stream = b.open_stream()
            until(lambda: b_stream.find("ready") or b_stream.closed, "B's stream ready", 5)
        until(lambda: a_stream.find("ready") or a_stream.closed, "A's stream ready", 5)
        transfer = self.initiate(a, call.id, to=b)
        consult = Consult(self, a, b, call, transfer, a_stream, b_stream)
        if phone:
            consult.leg = self.ringing_leg(b.phone, transfer["id"])
        else:
            assert b_stream.wait_for("transfer_requested", lambda d: d["transfer_id"] == transfer["id"], 10), "B was not told"
        return consult

    def step_aside(self) -> None:
        """This run's earlier agents stop taking new calls (away), so a new call goes to the
        agent the test means; calls they are on go on."""
        for agent in self.agents:
            if agent.csrf and self.agent_row(agent.id).presence == "available":
                self.expect(agent.post("/api/presence", {"status": "away"}), {200}, why="set away")

    def phone_number(self) -> str:
        return f"+1415555{(Run._serial % 9000) + 1000:04d}"

    # -- Agent B's phone -------------------------------------------------------------------------
    def ringing_leg(self, number: str, transfer_id: str, timeout: float = 10.0) -> SimCall:
        """The worker dialled `number` for `transfer_id` through Twilio: it rings (Twilio reports it)."""
        leg = until(lambda: next((c for c in self.new_outbound() if c.to == number and transfer_id in (c.url or "")), None),
                    f"the worker dialling {number}", timeout)
        leg.ring()
        self.deliver()
        return leg

    def new_outbound(self) -> list[SimCall]:
        return list(self.stack.sim.outbound[self.outbound_from:])

    def deliver(self) -> None:
        """Twilio posts its queued status callbacks (each must be answered 200 with TwiML)."""
        try:
            self.stack.sim.deliver()
        except AssertionError as err:
            self.problem(f"a Twilio status callback was not answered with 200: {err}")

    def answer_by_phone(self, consult: Consult) -> None:
        """Agent B picks up, hears the summary, presses 1: bridged into the transfer room."""
        consult.leg.press("1").answer("human")
        self.deliver()
        self.wait(lambda: self.transfer(consult.transfer["id"]).status == "briefing", "the phone transfer in briefing", 10)

    def phone_caller(self) -> tuple[SimCall, str]:
        """A customer phones in: Twilio asks /twilio/voice (which never waits on LiveKit)."""
        caller = self.stack.sim.call_in(CALLER)
        self.phone_callers.append(caller)
        with self.stack.services.db.reading() as s:
            call_id = s.scalar(select(Call.id).where(Call.twilio_call_sid == caller.sid))
        assert call_id, "no call for the phone caller"
        self.calls[call_id] = None
        return caller, call_id

    def in_room(self, room: str, identity: str) -> bool:
        state = self.stack.livekit.rooms.get(room)
        return state is not None and identity in state.participants

    def orphan_rooms(self) -> list[str]:
        """Rooms LiveKit has that no call or transfer names (made by a request the app gave up on)."""
        with self.stack.services.db.reading() as s:
            known = set(s.scalars(select(Call.room_name))) | set(s.scalars(select(Transfer.transfer_room)))
        return sorted(set(self.stack.livekit.rooms) - known - self.rooms_at_start)

    # -- reading the database directly -----------------------------------------------------------
    def transfer(self, transfer_id: str) -> Transfer:
        with self.stack.services.db.reading() as s:
            return s.get(Transfer, transfer_id)

    def call_row(self, call_id: str) -> Call:
        with self.stack.services.db.reading() as s:
            return s.get(Call, call_id)

    def agent_row(self, agent_id: str) -> Agent:
        with self.stack.services.db.reading() as s:
            return s.get(Agent, agent_id)

    def call_count(self) -> int:
        with self.stack.services.db.reading() as s:
            return s.scalar(select(func.count()).select_from(Call))

    def transfers_of(self, call_id: str) -> list[Transfer]:
        with self.stack.services.db.reading() as s:
            return list(s.scalars(select(Transfer).where(Transfer.call_id == call_id).order_by(Transfer.requested_at)))

    def tasks_about(self, *needles: str, kind: str | None = None) -> list[Task]:
        with self.stack.services.db.reading() as s:
            query = select(Task).where(or_(*[cast(Task.payload, Text).contains(n) for n in needles]))
            if kind:
                query = query.where(Task.kind == kind)
            return list(s.scalars(query.order_by(Task.id)))

    def task_failed_once(self, kind: str, *needles: str) -> Task | None:
        """A task of `kind` about `needles` that has already failed an attempt (it is retrying)."""
        return next((t for t in self.tasks_about(*needles, kind=kind) if t.last_error and t.attempts >= 1), None)

    def latest_summary(self, call_id: str) -> Summary | None:
        with self.stack.services.db.reading() as s:
            return s.scalar(select(Summary).where(Summary.call_id == call_id).order_by(Summary.id.desc()).limit(1))

    # -- invariants ------------------------------------------------------------------------------
    def consistency(self, label: str) -> list[str]:
        """What is half-written in this run's calls, transfers and agents, read from the database."""
        found: list[str] = []
        ids = list(self.calls)
        if not ids:
            return found
        with self.stack.services.db.reading() as s:
            calls = {c.id: c for c in s.scalars(select(Call).where(Call.id.in_(ids)))}
            transfers = list(s.scalars(select(Transfer).where(Transfer.call_id.in_(ids)).order_by(Transfer.requested_at)))
            holders = list(s.scalars(select(Agent).where(or_(Agent.active_call_id.in_(ids), Agent.id.in_([a.id for a in self.agents])))))
            ring_timers = {str(t.payload.get("transfer_id")) for t in s.scalars(
                select(Task).where(Task.kind == "timer.transfer_ring", Task.state.in_(["pending", "running"])))}
            held_calls = {c.id: c for c in s.scalars(select(Call).where(Call.id.in_([a.active_call_id for a in holders if a.active_call_id])))}
        agents = {a.id: a for a in holders}
        open_by_call: dict[str, list[Transfer]] = {}
        for t in transfers:
            call = calls[t.call_id]
            if t.status in states.TRANSFER_OPEN:
                open_by_call.setdefault(t.call_id, []).append(t)
                if call.status != "on_hold":
                    found.append(f"transfer {t.id} is {t.status} but its call {call.id} is {call.status}")
                if t.status in ("pending", "ringing") and t.id not in ring_timers:
                    found.append(f"transfer {t.id} is {t.status} with no ring timer pending: nothing will ever end it")
                if t.status == "briefing" and t.to_agent_id and agents.get(t.to_agent_id) and agents[t.to_agent_id].active_call_id != call.id:
                    found.append(f"transfer {t.id} is briefing but Agent B {t.to_agent_id} holds {agents[t.to_agent_id].active_call_id}")
                if t.ended_at is not None:
                    found.append(f"transfer {t.id} is {t.status} yet has ended_at")
            else:
                if t.ended_at is None:
                    found.append(f"transfer {t.id} is {t.status} without ended_at")
                if t.status == "completed" and t.handed_over_at is None:
                    found.append(f"transfer {t.id} is completed without handed_over_at")
        for call in calls.values():
            opened = open_by_call.get(call.id, [])
            mine = [t for t in transfers if t.call_id == call.id]
            if len(opened) > 1:
                found.append(f"call {call.id} has {len(opened)} open transfers")
            if call.status == "on_hold" and not opened:
                last = mine[-1] if mine else None
                found.append(f"call {call.id} is on_hold with no open transfer (last transfer: {last.id + ' ' + last.status if last else 'none'})")
            if call.status == "transferred":
                done = [t for t in mine if t.status in ("completed", "agent_a_left") and t.handed_over_at is not None]
                if not done:
                    found.append(f"call {call.id} is transferred but no transfer of it handed over")
                elif done[-1].to_agent_id != call.agent_id:
                    found.append(f"call {call.id} is transferred to {call.agent_id}, its hand-over was to {done[-1].to_agent_id}")
            if states.is_terminal("call", call.status):
                if call.ended_at is None:
                    found.append(f"call {call.id} is {call.status} without ended_at")
                if opened:
                    found.append(f"call {call.id} is {call.status} with transfer {opened[0].id} still {opened[0].status}")
            elif call.status in ("ringing", "active", "on_hold", "transferred") and call.agent_id and call.agent_id in agents:
                slot = agents[call.agent_id].active_call_id
                if slot != call.id:
                    found.append(f"call {call.id} is {call.status} with owner {call.agent_id}, whose slot is {slot}")
        for agent in agents.values():
            if agent.active_call_id is None:
                continue
            held = held_calls.get(agent.active_call_id)
            if held is None:
                found.append(f"agent {agent.id} holds {agent.active_call_id}, which does not exist")
                continue
            if states.is_terminal("call", held.status):
                found.append(f"agent {agent.id} still holds call {held.id}, which is {held.status}")
                continue
            if held.id in calls:
                part = held.agent_id == agent.id or any(t.to_agent_id == agent.id for t in open_by_call.get(held.id, []))
                if not part:
                    found.append(f"agent {agent.id} holds call {held.id} ({held.status}, owner {held.agent_id}) without being part of it")
        for text in found:
            self.problem(f"half-written ({label}): {text}")
        return found

    def unsettled(self) -> list[str]:
        """What is still waiting on a deadline: a transfer ringing, a call on hold, a hand-over
        Agent B has not been seen to complete. Empty once every deadline has done its work."""
        waiting = []
        for call_id in self.calls:
            call = self.call_row(call_id)
            for t in self.transfers_of(call_id):
                if t.status in states.TRANSFER_OPEN:
                    waiting.append(f"transfer {t.id} {t.status}")
                if t.status == "completed" and t.bridged_at is None and call.status == "transferred" and call.agent_id == t.to_agent_id:
                    waiting.append(f"transfer {t.id} handed over, Agent B not yet seen with the customer")
            if call.status == "on_hold":
                waiting.append(f"call {call_id} on_hold")
        return waiting

    def settle(self, timeout: float) -> None:
        """Once the deadlines have passed, nothing may be left waiting on one."""
        if self.wait(lambda: not self.unsettled(), "every deadline done with", timeout) is None:
            self.problem(f"stuck after the deadlines: {self.unsettled()}")

    # -- the whole flow, after recovery ----------------------------------------------------------
    def flow_completes(self, *, phone: bool = False, expect_llm: bool = False) -> None:
        """A fresh call is transferred from start to finish: initiate, accept, complete, Agent B
        with the customer; then the customer hangs up."""
        c = self.consult(phone=phone)
        if expect_llm:
            summary = c.transfer["summary"]
            if summary["degraded"] or summary["provider"] == "offline":
                self.problem(f"after recovery the transfer summary is still {summary['provider']} (degraded={summary['degraded']}): {summary['degraded_reason']}")
        if phone:
            self.answer_by_phone(c)
        else:
            accepted = c.b.post("/api/accept-transfer", {"transfer_id": c.transfer["id"]})
            self.expect(accepted, {200}, why="accept after recovery")
        done = c.a.post("/api/complete-transfer", {"transfer_id": c.transfer["id"]})
        self.expect(done, {200}, why="complete after recovery")
        c.agent_b_reaches_customer()
        self.wait(lambda: self.transfer(c.transfer["id"]).bridged_at is not None, "Agent B seen with the customer after recovery",
                  HANDOVER_JOIN_TIMEOUT_S + 8)
        self.wait(lambda: c.transfer["transfer_room"] not in self.stack.livekit.rooms, "the transfer room deleted after recovery", 15)
        call = self.call_row(c.call.id)
        if call.status != "transferred" or call.agent_id != c.b.id:
            self.problem(f"after recovery the call is {call.status} with {call.agent_id}, not transferred to {c.b.id}")
        ended = c.call.customer_request("POST", "/api/end-call", {"session_id": c.call.id})
        self.expect(ended, {200}, why="the customer hangs up")

    # -- the end of a run ------------------------------------------------------------------------
    def finish(self) -> None:
        """End whatever is live (the customers hang up), then check that everything reached a
        final state, nothing is half-written, and nothing was left behind in LiveKit or Twilio."""
        self.finished = True
        self.stack.restore_all()
        self.redeliver_webhooks()
        for caller in self.phone_callers:
            if not caller.ended:
                caller.hang_up()
        self.deliver()
        for call_id, web in self.calls.items():
            if web is not None and not states.is_terminal("call", self.call_row(call_id).status):
                ended = web.customer_request("POST", "/api/end-call", {"session_id": call_id})
                self.expect(ended, {200, 409}, why="the customer hangs up at the end")
        self.deliver()
        self.wait(lambda: all(states.is_terminal("call", self.call_row(c).status) for c in self.calls), "every call ended", 10)
        self.wait(lambda: all(t.status in states.TRANSFER_TERMINAL for c in self.calls for t in self.transfers_of(c)),
                  "every transfer ended", 10)
        self.consistency("at the end")
        self._left_behind()
        needles = list(self.calls) + sorted(self.transfer_ids)
        for task in self.tasks_about(*needles) if needles else []:
            if task.state == "failed":
                entry = f"task {task.id} {task.kind} {task.payload} failed after {task.attempts} attempt(s): {task.last_error}"
                if task.kind in FAILURE_TOLERATED:
                    self.notes.append(entry)
                else:
                    self.problem(entry)
        for line in self.gunicorn_log.lines():
            if "unhandled error" in line:
                self.problem(f"gunicorn logged an unhandled error (a 500): {line}")
        for line in self.worker_log.lines():
            if "crashed the runner" in line:
                self.problem(f"the worker's runner crashed: {line}")
        self.cleanup()

    def _left_behind(self) -> None:
        """No room of the run left in LiveKit (unless its deletion is still being retried), no
        phone leg the run placed still up."""
        rooms = set()
        for call_id in self.calls:
            rooms.add(self.call_row(call_id).room_name)
            rooms.update(t.transfer_room for t in self.transfers_of(call_id))

        def settled() -> bool:
            self.stack.sip.end_legs_in_deleted_rooms()  # LiveKit SIP hangs up the legs of a deleted room
            self.deliver()
            return not (rooms & set(self.stack.livekit.rooms)) and all(leg.ended for leg in self.new_outbound())

        try:
            until(settled, "rooms deleted and phone legs ended", 25)
        except AssertionError:
            for room in sorted(rooms & set(self.stack.livekit.rooms)):
                pending = [t for t in self.tasks_about(room, kind="livekit.delete_room") if t.state in ("pending", "running")]
                if pending:
                    self.notes.append(f"room {room} still exists; its deletion is being retried (attempt {pending[-1].attempts}: {pending[-1].last_error})")
                else:
                    self.problem(f"room {room} was left in LiveKit, with no deletion pending")
            for leg in self.new_outbound():
                if not leg.ended:
                    self.problem(f"Agent B's phone leg {leg.sid} to {leg.to} left {leg.status}")

    def cleanup(self) -> None:
        """Whatever happened, this run's agents take no further calls and its streams close."""
        for agent in self.agents:
            for stream in agent.streams:
                stream.close()
            try:
                self.stack.services.agents.disable(agent.id)
            except Exception as err:  # the next run disables leftovers again
                print(f"[{self.name}] could not disable {agent.id}: {err!r}")
        if self.stack.run is self:
            self.stack.run = None

    def report(self) -> None:
        elapsed = time.monotonic() - self.started
        print(f"\n[{self.name}] {len(self.answers)} API answers in {elapsed:.1f}s; proxies: "
              + "; ".join(f"{n} {p.stats}" for n, p in self.stack.proxies.items()))
        for note in self.notes:
            print(f"[{self.name}] note: {note}")
        if not self.problems:
            return
        logs = [f"gunicorn: {line}" for line in _error_lines(self.gunicorn_log.lines())]
        logs += [f"worker: {line}" for line in _error_lines(self.worker_log.lines())]
        text = "\n".join(f"- {p}" for p in self.problems)
        if logs:
            text += "\n\nLog lines (errors; unhandled errors with their traceback) during the run:\n" + "\n".join(logs[-150:])
        raise AssertionError(f"{self.name}: {len(self.problems)} problem(s)\n{text}")


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d |\[\d{4}-)")


def _error_lines(lines: list[str]) -> list[str]:
    """Error lines, each once; an unhandled error (a 500) or a crash with its whole traceback."""
    out, seen, keep = [], set(), False
    for line in lines:
        if _STAMP.match(line):
            keep = "unhandled error" in line or "crashed the runner" in line
            key = re.sub(r"^\S+ \S+ ", "", line)
            if LOG_PATTERNS.search(line) and (keep or key not in seen):
                seen.add(key)
                out.append(line)
        elif keep:
            out.append("    " + line)
    return out


@dataclass
class Consult:
    run: Run
    a: AgentUser
    b: AgentUser
    call: WebCall
    transfer: dict
    a_stream: Stream
    b_stream: Stream | None
    leg: SimCall | None = None

    def agent_b_reaches_customer(self) -> None:
        """After the hand-over a dashboard Agent B's browser joins the customer's room (a phone
        Agent B's leg gets there by the worker's redirect, which DoubleSipLegs puts in the room)."""
        if self.leg is None:
            self.run.lk_join(self.call.room, f"agent-{self.b.id}")
