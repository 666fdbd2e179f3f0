"""Client plumbing for the load run (bench/load_calls.py): HTTP with per-route figures, agents'
logins, Twilio- and LiveKit-signed webhooks, and many SSE streams read by one asyncio thread.

Nothing here asserts anything: it records what the server answered, so the run can print it.
"""
from __future__ import annotations

import asyncio
import http.cookiejar
import json
import secrets
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import aiohttp
import requests
from livekit.protocol import models
from twilio.request_validator import RequestValidator

from twiml.endings import INTERNAL_ERROR

WEBHOOK, API = "webhook", "api"
# Events a stream ends on instead of passing them on (app.sse): not in a stream's event set.
CONTROL_EVENTS = frozenset({"session_ended", "stream_replaced"})


# -- HTTP with figures ----------------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    body: dict | str
    headers: dict

    @property
    def json(self) -> dict:
        return self.body if isinstance(self.body, dict) else {}


class Stats:
    """Latency, status and problems per route label (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.kind: dict[str, str] = {}
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.server_errors: list[str] = []  # every 5xx: route, request, response
        self.apologies: list[str] = []  # a Twilio webhook's 200 carrying the "something went wrong" TwiML
        self.unexpected: list[str] = []  # statuses the scenario did not expect (samples)
        self.unexpected_count: Counter = Counter()
        self.transport_errors: list[str] = []  # no HTTP answer at all (reset, timeout)
        self.retries = 0

    def record(self, label: str, kind: str, status: int, seconds: float) -> None:
        with self._lock:
            self.latency[label].append(seconds)
            self.kind[label] = kind
            self.statuses[label][status] += 1

    def note(self, bucket: str, text: str, limit: int = 50) -> None:
        with self._lock:
            target = getattr(self, bucket)
            if len(target) < limit:
                target.append(text)

    def unexpected_answer(self, label: str, answer: Answer, context: str) -> None:
        with self._lock:
            self.unexpected_count[(label, answer.status)] += 1
        body = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
        self.note("unexpected", f"{label} -> {answer.status} {body[:240]} [{context}]")

    def five_xx(self) -> Counter:
        out = Counter()
        for label, counts in self.statuses.items():
            for status, n in counts.items():
                if status >= 500:
                    out[(label, status)] += n
        return out

    def by_kind(self, kind: str) -> list[float]:
        return [v for label, values in self.latency.items() if self.kind.get(label) == kind for v in values]


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Each request names its agent's cookie itself; a shared jar would mix agents up."""

    def set_ok(self, cookie, request):
        return False


class Http:
    """requests with one keep-alive Session per thread (a browser or Twilio's connection)."""

    def __init__(self, base: str, stats: Stats, timeout: float = 30.0):
        self.base = base.rstrip("/")
        self.stats = stats
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.cookies.set_policy(_NoCookies())
            self._local.session = s
        return s

    def send(self, label: str, kind: str, method: str, path: str, **kw) -> Answer:
        url = self.base + path
        for attempt in (1, 2):
            t0 = time.perf_counter()
            try:
                r = self._session().request(method, url, timeout=self.timeout, **kw)
            except requests.ConnectionError as err:
                # A keep-alive connection the server closed as we reused it: send again, once
                # (Twilio and browsers retry too). Counted, and listed if it happens twice.
                self.stats.note("transport_errors", f"{label} {method} {path}: {err!r}"[:300])
                if attempt == 1:
                    with self.stats._lock:
                        self.stats.retries += 1
                    self._local.session = None
                    continue
                raise
            except requests.RequestException as err:
                self.stats.note("transport_errors", f"{label} {method} {path}: {err!r}"[:300])
                raise
            elapsed = time.perf_counter() - t0
            break
        self.stats.record(label, kind, r.status_code, elapsed)
        ctype = r.headers.get("Content-Type", "")
        body: dict | str = r.text
        if ctype.startswith("application/json"):
            try:
                body = r.json()
            except ValueError:
                pass
        if r.status_code >= 500:
            sent = kw.get("json") if "json" in kw else kw.get("data")
            self.stats.note("server_errors", f"{label}: {method} {path} {json.dumps(sent, default=str)[:300]} -> "
                                             f"{r.status_code} {r.headers.get('X-WT-Error', '')} {r.text[:400]}", limit=200)
        elif kind == WEBHOOK and isinstance(body, str) and INTERNAL_ERROR in body:
            self.stats.note("apologies", f"{label}: {method} {path} -> {r.status_code} X-WT-Error={r.headers.get('X-WT-Error', '-')}", limit=200)
        return Answer(r.status_code, body, dict(r.headers))


# -- agents ---------------------------------------------------------------------------------------
@dataclass
class Login:
    """One signed-in browser session of an agent: its cookie and CSRF token."""

    agent_id: str
    cookie: str
    csrf: str


def login(http: Http, agent_id: str, password: str, *, attempts: int = 50) -> Login:
    """Sign in; a 429 (LOGIN_CONCURRENCY: too many password checks at once) is tried again."""
    for _ in range(attempts):
        r = http._session().post(f"{http.base}/api/login", json={"agent_id": agent_id, "password": password}, timeout=http.timeout)
        http.stats.record("api login", API, r.status_code, r.elapsed.total_seconds())
        if r.status_code == 200:
            cookie = r.cookies.get("wt_session")
            return Login(agent_id, cookie, r.json()["csrf_token"])
        if r.status_code != 429:
            raise RuntimeError(f"login {agent_id}: {r.status_code} {r.text[:200]}")
        time.sleep(0.05)  # the server said "too many at once": a short back-off
    raise RuntimeError(f"login {agent_id}: still 429 after {attempts} attempts")


def agent_request(http: Http, who: Login, label: str, method: str, path: str, body: dict | None = None) -> Answer:
    headers = {"Cookie": f"wt_session={who.cookie}"}
    if method != "GET":
        headers["X-CSRF-Token"] = who.csrf
        return http.send(label, API, method, path, json=body or {}, headers=headers)
    return http.send(label, API, method, path, headers=headers)


# -- webhooks -------------------------------------------------------------------------------------
class TwilioWebhooks:
    """Posts Twilio's webhooks as Twilio does: form fields, X-Twilio-Signature over the full URL."""

    def __init__(self, http: Http, auth_token: str):
        self.http = http
        self.validator = RequestValidator(auth_token)

    def post(self, label: str, path: str, params: dict) -> Answer:
        signature = self.validator.compute_signature(self.http.base + path, params)
        return self.http.send(label, WEBHOOK, "POST", path, data=params, headers={"X-Twilio-Signature": signature})


class LiveKitWebhooks:
    """livekit-server's side: participants appear in the Twirp double's rooms (so the app's
    RoomService checks see them) and signed webhooks are posted to /livekit/webhook."""

    def __init__(self, http: Http, double):
        self.http = http
        self.double = double

    def participant(self, room: str, identity: str, *, sip: bool = False, attributes: dict | None = None) -> models.ParticipantInfo:
        kind = models.ParticipantInfo.Kind.SIP if sip else models.ParticipantInfo.Kind.STANDARD
        try:
            return self.double.join(room, identity, kind=kind, attributes=attributes)
        except KeyError:
            # The room is not there (yet): LiveKit would create it on the SIP leg's arrival. The
            # webhook still says who joined; RoomService just does not list them.
            return models.ParticipantInfo(sid=f"PA_{secrets.token_hex(6)}", identity=identity, kind=kind,
                                          state=models.ParticipantInfo.State.ACTIVE, joined_at=int(time.time()),
                                          attributes=attributes or {})

    def post(self, event: str, room: str, participant: models.ParticipantInfo) -> Answer:
        body, token = self.double.webhook(event, room=room, participant=participant)
        return self.http.send(f"livekit {event}", WEBHOOK, "POST", "/livekit/webhook", data=body,
                              headers={"Authorization": token, "Content-Type": "application/webhook+json"})

    def joined(self, room: str, identity: str, **kw) -> models.ParticipantInfo:
        p = self.participant(room, identity, **kw)
        self.post("participant_joined", room, p)
        return p


# -- events: what agents' dashboards receive --------------------------------------------------------
@dataclass
class Seen:
    agent_id: str
    payload: dict
    at: float  # time.monotonic() when it was read
    wall: float  # time.time() then (the server's clock on this machine)


class EventHub:
    """Events from every stream (and poller), once per agent, findable by (type, key) where key
    is the transfer id for transfer events and the call id (session_id) otherwise."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], list[Seen]] = defaultdict(list)
        self._signals: dict[tuple[str, str], threading.Event] = {}
        self._ids: dict[str, set[int]] = defaultdict(set)

    @staticmethod
    def key_of(payload: dict) -> str:
        return str(payload.get("transfer_id") or payload.get("session_id") or "")

    def publish(self, agent_id: str, event_id: int, type_: str, payload: dict) -> None:
        now, wall = time.monotonic(), time.time()
        with self._lock:
            if event_id in self._ids[agent_id]:
                return
            self._ids[agent_id].add(event_id)
            key = (type_, self.key_of(payload))
            self._items[key].append(Seen(agent_id, payload, now, wall))
            signal = self._signals.get(key)
        if signal is not None:
            signal.set()

    def wait(self, type_: str, key: str, timeout: float, *, agent_id: str | None = None) -> Seen | None:
        k = (type_, key)
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                for seen in self._items.get(k, ()):
                    if agent_id is None or seen.agent_id == agent_id:
                        return seen
                signal = self._signals.setdefault(k, threading.Event())
                signal.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            signal.wait(left)


@dataclass
class StreamState:
    agent_id: str
    login: Login
    status: int | None = None
    ready_id: int | None = None
    ids: set = field(default_factory=set)
    ended: str | None = None  # why it ended before the run closed it
    error: str | None = None
    heartbeats: int = 0
    open: bool = False


class StreamPool:
    """Many `GET /api/events` streams held by one asyncio thread (aiohttp), each read to the end,
    every event handed to the EventHub. Counts streams refused (non-200) and streams that ended
    while the run still wanted them (EOF, stream_replaced, session_ended, errors)."""

    def __init__(self, base: str, hub: EventHub):
        self.base = base.rstrip("/")
        self.hub = hub
        self.streams: list[StreamState] = []
        self.closing = False
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sse-streams", daemon=True)
        self._thread.start()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task] = []

    def open(self, logins: list[Login], *, concurrency: int = 40, timeout: float = 120.0) -> list[StreamState]:
        return asyncio.run_coroutine_threadsafe(self._open_all(logins, concurrency), self.loop).result(timeout)

    @property
    def open_count(self) -> int:
        return sum(1 for s in self.streams if s.open)

    async def _open_all(self, logins: list[Login], concurrency: int) -> list[StreamState]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=True),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=None),
            )
        gate = asyncio.Semaphore(concurrency)
        new = []
        for who in logins:
            state = StreamState(who.agent_id, who)
            self.streams.append(state)
            settled = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._run(state, gate, settled)))
            new.append(settled)
        await asyncio.gather(*(s.wait() for s in new))
        return self.streams[-len(logins):] if logins else []

    async def _run(self, st: StreamState, gate: asyncio.Semaphore, settled: asyncio.Event) -> None:
        await gate.acquire()
        released = False

        def settle():
            nonlocal released
            if not released:
                released = True
                gate.release()
                settled.set()

        try:
            headers = {"Cookie": f"wt_session={st.login.cookie}", "Accept": "text/event-stream"}
            async with self._session.get(f"{self.base}/api/events", headers=headers) as resp:
                st.status = resp.status
                if resp.status != 200:
                    st.error = f"{resp.status} {(await resp.text())[:200]}"
                    return
                event: dict = {}
                async for raw in resp.content:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if line.startswith(":"):
                        st.heartbeats += 1
                        continue
                    if line:
                        name, _, value = line.partition(":")
                        event[name] = value[1:] if value.startswith(" ") else value
                        continue
                    if "event" in event:
                        self._dispatch(st, event)
                        if event["event"] == "ready":
                            st.open = True
                            settle()
                    event = {}
                if not self.closing:
                    st.ended = st.ended or "closed by the server"
        except asyncio.CancelledError:
            pass
        except Exception as err:  # a stream that broke: recorded, the run goes on
            if not self.closing:
                st.error = repr(err)[:200]
                st.ended = st.ended or "error"
        finally:
            st.open = False
            settle()

    def _dispatch(self, st: StreamState, event: dict) -> None:
        type_ = event["event"]
        if type_ == "ready":
            st.ready_id = int(event["id"]) if event.get("id", "").isdigit() else st.ready_id
            return
        if type_ in CONTROL_EVENTS:
            st.ended = type_
            return
        if not event.get("id", "").isdigit():
            return
        event_id = int(event["id"])
        st.ids.add(event_id)
        try:
            payload = json.loads(event.get("data") or "{}")
        except ValueError:
            payload = {}
        self.hub.publish(st.agent_id, event_id, type_, payload)

    def close(self) -> None:
        self.closing = True

        async def shut():
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._session is not None:
                await self._session.close()

        try:
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


class Poller:
    """Agents without a stream read /api/notifications, as the dashboard does when it has none."""

    def __init__(self, http: Http, hub: EventHub, logins: list[Login], interval: float = 0.25):
        self.http, self.hub, self.logins, self.interval = http, hub, logins, interval
        self.cursor = {who.agent_id: None for who in logins}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notification-poller", daemon=True)
        if logins:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for who in self.logins:
                since = self.cursor[who.agent_id]
                path = f"/api/notifications/{who.agent_id}" + (f"?since={since}" if since is not None else "")
                try:
                    r = agent_request(self.http, who, "api notifications", "GET", path)
                except requests.RequestException:
                    continue
                for item in r.json.get("notifications", []):
                    self.hub.publish(who.agent_id, item["id"], item["type"], item["payload"])
                    self.cursor[who.agent_id] = item["id"]
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
