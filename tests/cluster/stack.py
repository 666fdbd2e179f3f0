"""The product scaled out on one machine, every part real except Twilio's cloud:

    Twilio simulator ─signed webhooks─► HAProxy ─round robin─► gunicorn app1 ─┐   one PostgreSQL
    agents' browsers (HTTP + SSE) ────►    │     (health:        gunicorn app2 ─┼─► (a database of
                                           │      /ready)        worker w1 ─────┤    its own)
                                           │                     worker w2 ─────┘
    livekit-server node1 ◄─── app1, w1 ────┼──► Redis ◄──── livekit-server node2 ◄─── app2, w2
      ▲ Agent A's SDK client               │      ▲            ▲ Agent B's SDK client
      └──── livekit-sip ◄── SIP phones (pjsua2) of the caller and of a phone Agent B

Two livekit-server nodes share one Redis: LiveKit's multi-node mode (livekit-server v1.13.3).
Each room is hosted by one node, chosen when it is created (pkg/service/roomallocator.go, "selected
node for room") and recorded in Redis; a participant who connects to the other node has its
signal connection routed to the hosting node (pkg/routing/redisrouter.go StartParticipantSignal:
GetNodeForRoom, then psrpc over Redis), and its media goes to that node's RTC ports. Nodes
register in the Redis hash `nodes` (ibid., NodesKey); `start` checks that both did. livekit-sip
joins through the same Redis. Each app instance and each worker uses "its" node for LiveKit's
API; both nodes post their signed webhooks to HAProxy.

The Twilio REST API of the simulator is served over HTTP (tests/doubles/twilio_http.py) for the
workers, the only processes that place or update calls.
"""
from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from livekit import api as lk
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from app import create_app
from app.db import migrate
from app.models import Call, Event, Task
from tests.aio import LoopThread
from tests.cluster.haproxy import HAProxy
from tests.doubles.twilio_http import TwilioHttp, WebhookClient
from tests.doubles.twilio_sim import TwilioSim
from tests.harness.http import Stream
from tests.harness.postgres import ThrowawayDatabase
from tests.harness.server import GunicornServer, flask_cli
from tests.harness.waiting import until
from tests.live.app_env import hold_tone_file
from tests.live.participant import ToneParticipant
from tests.live.processes import ManagedProcess, PortAllocator
from tests.live.rig import Binaries, LiveKitServer, LiveKitSIP, RedisServer
from tests.live.sip_legs import LiveSipLegs
from tests.live.steps import SIP_TONES
from tests.live.worker_process import WorkerProcess

ACCOUNT_SID = "AC" + "c" * 32
AUTH_TOKEN = "cluster-sim-auth-token-0123456789"
NUMBER = "+15005550006"
API_KEY = "wt-cluster-key"
SECRET_KEY = "cluster-suite-secret-key-long-enough-for-sessions"
METRICS_TOKEN = "cluster-metrics-token-0123456789abcdef"
# The worker's task lease: a killed worker's running tasks are claimed again once it lapses.
TASK_LEASE_S = 3


# -- a dashboard agent over HTTP ----------------------------------------------------------------
@dataclass
class HttpAgent:
    """One agent's browser through HAProxy: a cookie jar, a CSRF token, event streams."""

    id: str
    password: str
    base: str
    session: requests.Session = field(default_factory=requests.Session)
    csrf: str = ""
    streams: list[Stream] = field(default_factory=list)

    def login(self) -> None:
        r = self.session.post(self.base + "/api/login", json={"agent_id": self.id, "password": self.password}, timeout=10)
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf_token"]

    def post(self, path: str, body: dict | None = None, *, base: str | None = None) -> requests.Response:
        """POST through HAProxy, or to one instance directly (`base`)."""
        return self.session.post((base or self.base) + path, json=body or {}, headers={"X-CSRF-Token": self.csrf}, timeout=15)

    def open_stream(self, *, last_event_id: int | None = None, on: str | None = None, attempts: int = 8) -> Stream:
        """`/api/events` through HAProxy as EventSource opens it. `on`: keep opening until HAProxy
        hands the stream to that instance (round robin alternates)."""
        for _ in range(attempts):
            headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
            r = self.session.get(self.base + "/api/events", headers=headers, stream=True, timeout=(3, 60))
            assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream"), r.text
            if on is None or r.headers.get("X-WT-Backend") == on:
                stream = Stream(r, last_event_id)
                stream.instance = r.headers.get("X-WT-Backend")
                self.streams.append(stream)
                return stream
            r.close()
        raise AssertionError(f"HAProxy never put {self.id}'s stream on {on} in {attempts} attempts")

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        self.session.close()


# -- the stack ----------------------------------------------------------------------------------
class Cluster:
    def __init__(self, admin_url: str, workdir: Path):
        self.workdir = workdir
        self.database = ThrowawayDatabase(admin_url, "wt_cluster")
        self.api_secret = "wt-cluster-secret-" + secrets.token_hex(16)
        self.trunk_password = "cluster-" + secrets.token_urlsafe(18)
        binaries = Binaries.locate()
        ports = PortAllocator()

        # Ports first: the nodes need HAProxy's address for their webhooks, HAProxy the instances'.
        self.apps = {name: GunicornServer({}, workdir / f"{name}.log", workers=2, threads=32) for name in ("app1", "app2")}
        self.haproxy = HAProxy(workdir, ports, {name: s.port for name, s in self.apps.items()})
        webhook = self.haproxy.url + "/livekit/webhook"

        self.redis = RedisServer(workdir, binaries.redis_server, ports.port(tcp=True))
        self.nodes: dict[str, LiveKitServer] = {}
        for name in ("node1", "node2"):
            node_dir = workdir / name
            node_dir.mkdir(exist_ok=True)
            self.nodes[name] = LiveKitServer(node_dir, binaries.livekit_server, ports, self.redis.address, API_KEY, self.api_secret, [webhook])
        self.sip = LiveKitSIP(workdir, binaries.livekit_sip, ports, self.redis.address, self.nodes["node1"].ws_url, API_KEY, self.api_secret)

        self.webhooks = WebhookClient()
        self.sim = TwilioSim(self.webhooks, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, number=NUMBER,
                             voice_url=self.haproxy.url + "/twilio/voice", status_url=self.haproxy.url + "/twilio/status")
        self.legs = LiveSipLegs(workdir, SIP_TONES, self.sim.lock)
        self.sim.sip_legs = self.legs
        self.twilio_http = TwilioHttp(self.sim, AUTH_TOKEN)

        node_of = {"app1": "node1", "app2": "node2", "w1": "node1", "w2": "node2"}
        for name, server in self.apps.items():
            server.env.update(self.settings(self.nodes[node_of[name]]))
        self.workers = {name: WorkerProcess(self.settings(self.nodes[node_of[name]]), self.twilio_http.base, workdir, name)
                        for name in ("w1", "w2")}

        # The test's own view of the database (and an agent directory): direct, in this process.
        self.local = create_app(dict(self.settings(self.nodes["node1"]), LLM_PROVIDER="offline"))
        self.services = self.local.extensions["wt"]
        self.loop: LoopThread | None = None
        self.participants: list[ToneParticipant] = []
        self._services: list[ManagedProcess] = []
        self.made_agents: list[HttpAgent] = []

    def settings(self, node: LiveKitServer) -> dict[str, str]:
        return {
            "APP_ENV": "test",
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": self.database.url,
            "PUBLIC_BASE_URL": self.haproxy.url,  # Twilio signs, and calls back, the URL we hand it
            "TRUST_PROXY": "1",  # HAProxy is the one hop in front (option forwardfor)
            "METRICS_TOKEN": METRICS_TOKEN,
            "LIVEKIT_HTTP_URL": node.http_url,
            "LIVEKIT_WS_URL": node.ws_url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": self.api_secret,
            "LIVEKIT_SIP_HOST": f"127.0.0.1:{self.sip.sip_port}",
            "LIVEKIT_SIP_USERNAME": "wt-cluster-twilio",
            "LIVEKIT_SIP_PASSWORD": self.trunk_password,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_PHONE_NUMBER": NUMBER,
            "HOLD_AUDIO_FILE": str(hold_tone_file(self.workdir)),
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            "EVENT_POLL_INTERVAL_S": "0.05",
            "WORKER_POLL_INTERVAL_S": "0.05",
            "WORKER_TASK_LEASE_S": str(TASK_LEASE_S),
            "SSE_HEARTBEAT_S": "2",
            "LOGIN_RATE_LIMIT": "1000/60",
            "LOGIN_AGENT_RATE_LIMIT": "1000/60",
            "CREATE_CALL_RATE_LIMIT": "1000/60",
        }

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> Cluster:
        started = time.monotonic()
        for service in (self.redis, self.nodes["node1"], self.nodes["node2"], self.sip):
            self._services.append(service.process)
            service.start()
        migrate(self.services.db)
        env = dict(self.apps["app1"].env, PATH="/usr/bin:/bin")
        flask_cli(env, "livekit", "provision-sip")
        for server in self.apps.values():
            server.env["PATH"] = "/usr/bin:/bin"
            server.start(timeout=60)
        for worker in self.workers.values():
            worker.start(timeout=60)
        self._services.append(self.haproxy.process)
        self.haproxy.start()
        self.loop = LoopThread()
        # Both nodes registered in Redis: one cluster, not two servers side by side.
        until(lambda: self.livekit_nodes() == 2, "both livekit-server nodes registered in Redis", 10)
        print(f"\n[cluster] up in {time.monotonic() - started:.1f}s; logs in {self.workdir}")
        return self

    def stop(self) -> None:
        steps: list[Callable[[], Any]] = []
        if self.loop is not None:
            steps += [self.leave_all, self.loop.close]
        steps += [self.legs.close, *[w.stop for w in self.workers.values()], *[a.stop for a in self.apps.values()],
                  self.services.close, self.twilio_http.stop, *[p.stop for p in reversed(self._services)]]
        for step in steps:
            try:
                step()
            except Exception as err:  # keep tearing down: a leftover process is worse than a message
                print(f"[cluster] teardown step {getattr(step, '__qualname__', step)} failed: {err!r}")
        self.database.drop()

    def reset(self) -> None:
        """After a test: its SDK participants leave, its agents take no more calls, and whatever
        it killed runs again, so the next test finds the whole cluster."""
        self.leave_all()
        while self.made_agents:
            agent = self.made_agents.pop()
            agent.close()
            self.services.agents.disable(agent.id)
        self.ensure_all_running()

    def ensure_all_running(self) -> None:
        """Start again whatever a test killed, so the next test finds the whole cluster."""
        for server in self.apps.values():
            if server.proc is None or server.proc.poll() is not None:
                server.start(timeout=60)
        for worker in self.workers.values():
            if worker.proc is None or worker.proc.poll() is not None:
                worker.start(timeout=60)
        until(self.haproxy.all_up, "HAProxy seeing every instance UP", 15)

    # -- parties ----------------------------------------------------------------------------------
    def agent(self, agent_id: str, name: str, phone: str | None = None) -> HttpAgent:
        password = f"pw-{agent_id}-123456"
        self.services.agents.add(agent_id, name, password, phone)
        agent = HttpAgent(agent_id, password, self.haproxy.url)
        agent.login()
        self.made_agents.append(agent)
        return agent

    def join(self, node: str, tone_hz: float, token: str) -> ToneParticipant:
        """An SDK participant playing `tone_hz`, connected to the given LiveKit node."""
        async def make():
            participant = ToneParticipant(tone_hz)
            self.participants.append(participant)
            await participant.join(self.nodes[node].ws_url, token)
            return participant
        return self.loop.run(make())

    def leave(self, participant: ToneParticipant) -> None:
        self.participants.remove(participant)
        self.loop.run(participant.leave())

    def leave_all(self) -> None:
        while self.participants:
            self.leave(self.participants[-1])

    # -- looking -----------------------------------------------------------------------------------
    def wait_until(self, probe: Callable[[], Any], timeout: float, what: str) -> Any:
        return until(probe, what, timeout)

    def livekit(self, node: str, fn: Callable[[lk.LiveKitAPI], Any]) -> Any:
        async def run():
            async with lk.LiveKitAPI(self.nodes[node].http_url, API_KEY, self.api_secret) as api:
                return await fn(api)
        return self.loop.run(run())

    def rooms(self, *names: str, node: str = "node1") -> list[str]:
        return [r.name for r in self.livekit(node, lambda api: api.room.list_rooms(lk.ListRoomsRequest(names=list(names)))).rooms]

    def livekit_nodes(self) -> int:
        """How many livekit-server nodes are registered in Redis (livekit-server v1.13.3 keeps
        them in the hash `nodes`, pkg/routing/redisrouter.go NodesKey)."""
        with socket.create_connection(("127.0.0.1", self.redis.port), timeout=2) as s:
            s.sendall(b"*2\r\n$4\r\nHLEN\r\n$5\r\nnodes\r\n")
            reply = s.recv(64)
        assert reply.startswith(b":"), reply
        return int(reply[1:].split(b"\r\n")[0])

    def metrics(self) -> dict[tuple[str, frozenset], float]:
        """`GET /metrics` of each app instance (as Prometheus scrapes them: each directly, with
        the bearer token), samples summed over the instances: {(name, labels): value}."""
        totals: dict[tuple[str, frozenset], float] = {}
        for server in self.apps.values():
            r = requests.get(server.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
            assert r.status_code == 200, r.text
            for family in text_string_to_metric_families(r.text):
                for sample in family.samples:
                    key = (sample.name, frozenset(sample.labels.items()))
                    totals[key] = totals.get(key, 0.0) + sample.value
        return totals

    def row(self, model, id_):
        with self.services.db.reading() as s:
            return s.get(model, id_)

    def call_of(self, call_sid: str) -> Call:
        with self.services.db.reading() as s:
            return s.scalar(select(Call).where(Call.twilio_call_sid == call_sid))

    def event_ids_for(self, agent_id: str, after: int) -> list[int]:
        """The ids of the events stored for an agent after `after` (what its stream must deliver)."""
        with self.services.db.reading() as s:
            return list(s.scalars(select(Event.id).where(Event.audience == agent_id, Event.id > after).order_by(Event.id)))

    def running_tasks(self, *, kind: str) -> list[Task]:
        with self.services.db.reading() as s:
            return list(s.scalars(select(Task).where(Task.state == "running", Task.kind == kind)))

    def holders(self) -> dict[str, str]:
        """Each running worker's holder id (what `claimed_by` and hold leases name) -> its name."""
        return {worker.holder(): name for name, worker in self.workers.items()}


def wait_stream_events(stream: Stream, types: list[str], timeout: float = 10.0) -> list[dict]:
    found = []
    for t in types:
        event = stream.wait_for(t, timeout=timeout)
        assert event is not None, f"no {t} on {getattr(stream, 'instance', '?')}'s stream (closed: {stream.closed}); got {[e.get('event') for e in stream.events]}"
        found.append(event)
    return found
