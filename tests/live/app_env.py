"""The app under test on the live rig: a real HTTP endpoint for livekit-server's webhooks, the
app built against the real livekit-server and livekit-sip, the Twilio simulator with real SIP
legs, and the agents' LiveKit participants on one event loop.

The app runs in this process (Flask test client for the simulator and the agents, werkzeug's
threaded server for livekit-server's webhooks), so Twilio's REST API can be answered by the
simulator through `responses`, as in the app tests. livekit-server must know the webhook URL
when it starts, so `AppHost` listens for the whole session and the app behind it is swapped in
per test (a fresh database each time); between tests it answers webhooks with 200 and nothing.
"""
from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import responses
from livekit import api as lk
from livekit.protocol import sip as sip_proto
from werkzeug.serving import make_server

from app import create_app
from app.db import migrate
from app.gateways.livekit_sip import is_ours
from app.worker import Worker
from tests.aio import LoopThread
from tests.doubles.twilio_sim import TwilioSim
from tests.harness.waiting import until
from tests.live.audio import tone, write_wav
from tests.live.participant import ToneParticipant
from tests.live.rig import LOOPBACK, Rig
from tests.live.sip_legs import LiveSipLegs
from tests.support import AgentClient

ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "live-sim-auth-token-0123456789ab"
NUMBER = "+15005550006"
CALLER = "+14155550123"
B_PHONE = "+14155550199"
# The hold audio the worker plays in the live tests: a pure tone, so what a customer hears can be
# told apart by frequency from every party's own tone. Written at 16 kHz, so the worker's
# resampling to LiveKit's 48 kHz is exercised too.
HOLD_HZ = 700.0
HOLD_FILE_RATE = 16_000


class AppHost:
    """A threaded HTTP server on loopback whose WSGI app can be replaced while it runs."""

    def __init__(self) -> None:
        self.app = None
        self.server = make_server(LOOPBACK, 0, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self.server.serve_forever, name="app-host", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server.server_port}"

    @property
    def webhook_url(self) -> str:
        return self.url + "/livekit/webhook"

    def _wsgi(self, environ, start_response):
        app = self.app
        if app is None:  # between tests: accept, so livekit-server has nothing to retry
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"outcome": "no app"}']
        return app(environ, start_response)

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(timeout=10)


def app_config(rig: Rig, host: AppHost, workdir: Path, trunk_password: str) -> dict:
    return {
        "APP_ENV": "test",
        "SECRET_KEY": "live-secret-key-" + "x" * 32,
        "DATABASE_URL": f"sqlite:///{workdir}/live.db",
        "LIVEKIT_HTTP_URL": rig.livekit.http_url,
        "LIVEKIT_WS_URL": rig.livekit.ws_url,
        "LIVEKIT_API_KEY": rig.livekit.api_key,
        "LIVEKIT_API_SECRET": rig.livekit.api_secret,
        "LIVEKIT_SIP_HOST": f"{LOOPBACK}:{rig.sip.sip_port}",
        "LIVEKIT_SIP_USERNAME": "wt-live-twilio",
        "LIVEKIT_SIP_PASSWORD": trunk_password,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": NUMBER,
        "PUBLIC_BASE_URL": host.url,
        "EVENT_POLL_INTERVAL_S": 0.05,
        "WORKER_POLL_INTERVAL_S": 0.02,
        "HOLD_AUDIO_FILE": str(hold_tone_file(workdir)),
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "LOGIN_RATE_LIMIT": "1000/60",
        "LOGIN_AGENT_RATE_LIMIT": "1000/60",
        "CREATE_CALL_RATE_LIMIT": "1000/60",
    }


def hold_tone_file(workdir: Path) -> Path:
    path = workdir / "hold-tone.wav"
    if not path.exists():
        write_wav(path, tone(HOLD_HZ, 2.0, HOLD_FILE_RATE), HOLD_FILE_RATE)
    return path


def new_trunk_password() -> str:
    return "live-" + secrets.token_urlsafe(18)


async def remove_our_sip_objects(rig: Rig) -> list[str]:
    """Delete the trunk and rule `provision-sip` made, so other tests' trunks never compete."""
    removed = []
    async with lk.LiveKitAPI(rig.livekit.http_url, rig.livekit.api_key, rig.livekit.api_secret) as api:
        for rule in (await api.sip.list_dispatch_rule(sip_proto.ListSIPDispatchRuleRequest())).items:
            if is_ours(rule.metadata):
                await api.sip.delete_dispatch_rule(sip_proto.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id))
                removed.append(rule.sip_dispatch_rule_id)
        for trunk in (await api.sip.list_inbound_trunk(sip_proto.ListSIPInboundTrunkRequest())).items:
            if is_ours(trunk.metadata):
                await api.sip.delete_trunk(sip_proto.DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))
                removed.append(trunk.sip_trunk_id)
    return removed


@dataclass
class LiveEnv:
    rig: Rig
    app: Any
    sim: TwilioSim
    legs: LiveSipLegs
    loop: LoopThread
    workdir: Path
    worker: Worker | None = None
    participants: list[ToneParticipant] = field(default_factory=list)

    @property
    def services(self):
        return self.app.extensions["wt"]

    def agent(self, agent_id: str, name: str, phone: str | None = None) -> AgentClient:
        """A logged-in (so available) dashboard agent."""
        password = f"pw-{agent_id}-123456"
        self.services.agents.add(agent_id, name, password, phone)
        agent = AgentClient(self.app.test_client(), agent_id, password)
        agent.login()
        return agent

    # -- LiveKit participants -------------------------------------------------------------------
    def join(self, tone_hz: float, token: str, *, muted: bool = False, publish: bool = True,
             subscribers: list[str] | None = None) -> ToneParticipant:
        """A participant publishing `tone_hz` (or, `muted`, a muted track sending nothing; or,
        not `publish`, nothing at all), made on the loop (rtc.Room binds to the loop that creates
        it). `subscribers`: the only identities allowed to subscribe to it (ToneParticipant)."""
        async def make():
            participant = ToneParticipant(tone_hz, muted=muted, publish=publish, subscribers=subscribers)
            self.participants.append(participant)
            await participant.join(self.rig.livekit.ws_url, token)
            return participant
        return self.loop.run(make())

    def leave(self, participant: ToneParticipant) -> None:
        self.participants.remove(participant)
        self.loop.run(participant.leave())

    def livekit(self, fn: Callable[[lk.LiveKitAPI], Any]) -> Any:
        """Ask the real livekit-server directly (not through the app's gateway)."""
        async def run():
            async with lk.LiveKitAPI(self.rig.livekit.http_url, self.rig.livekit.api_key, self.rig.livekit.api_secret) as api:
                return await fn(api)
        return self.loop.run(run())

    def rooms(self, *names: str) -> list[str]:
        return [r.name for r in self.livekit(lambda api: api.room.list_rooms(lk.ListRoomsRequest(names=list(names)))).rooms]

    def identities(self, room: str) -> list[str]:
        response = self.livekit(lambda api: api.room.list_participants(lk.ListParticipantsRequest(room=room)))
        return [p.identity for p in response.participants]

    # -- waiting ---------------------------------------------------------------------------------
    def wait_until(self, probe: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll `probe` (a database row, a room list) until it is truthy."""
        return until(probe, what, timeout)

    def row(self, model, id_):
        with self.services.db.reading() as s:
            return s.get(model, id_)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        for participant in self.participants:
            self.loop.run(participant.leave())
        self.legs.close()
        self.loop.close()


def start_env(rig: Rig, host: AppHost, workdir: Path, trunk_password: str, tones: dict[str, float], rsps: responses.RequestsMock,
              *, worker: bool = True, **settings) -> LiveEnv:
    """The app, the simulator and (unless `worker=False`) a worker with hold audio, in-process."""
    application = create_app(dict(app_config(rig, host, workdir, trunk_password), **settings))
    migrate(application.extensions["wt"].db)
    sim = TwilioSim(
        application.test_client(), account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, number=NUMBER,
        voice_url=host.url + "/twilio/voice", status_url=host.url + "/twilio/status")
    legs = LiveSipLegs(workdir, tones, sim.lock)
    sim.sip_legs = legs
    sim.install(rsps)
    host.app = application
    env = LiveEnv(rig, application, sim, legs, LoopThread(), workdir)
    if worker:
        env.worker = Worker(env.services).start()
    return env


def provision_output(application) -> str:
    result = application.test_cli_runner().invoke(args=["livekit", "provision-sip"])
    assert result.exit_code == 0, result.output
    return result.output

