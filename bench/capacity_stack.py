"""What bench/capacity.py runs against: the live rig and the app as production runs it, each in
processes of its own, so the CPU each one uses can be read from /proc.

    this process: Twilio simulator ──signed webhooks over HTTP──► gunicorn (web, 2 gthread workers)
                  │  <Dial><Sip> = a real SIP call from a pjsua2 phone process per leg ──► livekit-sip
                  │  agents: LiveKit SDK participants, one event loop                 ──► livekit-server
                  └─ Twilio REST front (HTTP) ◄── worker process (`flask … worker`: tasks, hold audio)
    livekit-server ──signed webhooks──► gunicorn          redis ◄── livekit-server, livekit-sip

Everything is on loopback; the database is SQLite in the run's directory (the app's web and
worker processes share it, as in the e2e tests). The rig is started with room for many calls
(livekit-sip's RTP port range) and without livekit-sip's debug log, which would cost CPU the
benchmark counts against it.
"""
from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from types import SimpleNamespace

from app import create_app
from app.db import migrate
from bench.proc_cpu import Proc
from tests.aio import LoopThread, run_async
from tests.doubles.twilio_http import TwilioHttp, WebhookClient
from tests.doubles.twilio_sim import TwilioSim
from tests.harness.server import GunicornServer
from tests.live.app_env import ACCOUNT_SID, AUTH_TOKEN, NUMBER, app_config, new_trunk_password, provision_output, remove_our_sip_objects
from tests.live.participant import ToneParticipant
from tests.live.rig import Rig
from tests.live.sip_legs import LiveSipLegs
from tests.live.steps import SIP_TONES
from tests.live.worker_process import WorkerProcess

AGENT_PASSWORD = "capacity-agent-password"
SIP_PHONE_MODULE = "tests.live.sip_phone"
# Agents send and receive 50 ms audio frames (the tests use 10 ms): five times fewer crossings
# between Python and the SDK's native core; in a 4-call run this took the agents' CPU from ~120 to
# ~70 ms per call-second. What is left is mostly the SDK's own media work (Opus, WebRTC).
FRAME_MS = 50
# A second of tone queued ahead: the agents' tones are made on this process's event loop, which
# shares a loaded machine with what is measured; a gap it causes would be our fault, not the
# system's (a browser captures on a real-time thread). Gaps that still happen are counted.
QUEUE_MS = 1000


class CapacityStack:
    def __init__(self, workdir: Path, *, agents: int, web_workers: int = 2, web_threads: int = 32, rtp_ports: int = 1000,
                 keep_s: float = 30.0):
        self.workdir = workdir
        self.agents = agents
        self.keep_s = keep_s  # how much audio each agent participant keeps (see ToneParticipant)
        # gunicorn's port first: livekit-server must be told where its webhooks go when it starts.
        self.server = GunicornServer({}, workdir / "gunicorn.log", workers=web_workers, threads=web_threads)
        self.rig = Rig.start(workdir / "rig", webhook_urls=[self.server.url + "/livekit/webhook"], api_key="wt-capacity-key",
                             api_secret="wt-capacity-secret-" + secrets.token_hex(16), sip_rtp_ports=rtp_ports, sip_log_level="info")
        self.sim: TwilioSim | None = None
        self.legs: LiveSipLegs | None = None
        self.twilio_http: TwilioHttp | None = None
        self.worker: WorkerProcess | None = None
        self.loop: LoopThread | None = None

    def start(self) -> CapacityStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        config = app_config(self.rig, SimpleNamespace(url=self.server.url), self.workdir, new_trunk_password())
        # The live tests poll faster than production to run quicker; idle polling is CPU this
        # benchmark counts, so the app polls at its production defaults here.
        for key in ("EVENT_POLL_INTERVAL_S", "WORKER_POLL_INTERVAL_S"):
            config.pop(key)
        local = create_app(config)
        services = local.extensions["wt"]
        try:
            migrate(services.db)
            provision_output(local)  # the trunk and dispatch rule, by the app's own `provision-sip`
            for i in range(1, self.agents + 1):
                for role in ("a", "b"):
                    services.agents.add(agent_id(role, i), f"{role.upper()} {i}", AGENT_PASSWORD)
        finally:
            services.close()
        self.server.env.update({k: str(v) for k, v in config.items()}, PATH=os.environ.get("PATH", "/usr/bin:/bin"))
        self.server.start(timeout=60)
        self.sim = TwilioSim(WebhookClient(timeout=(3.0, 30.0)), account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, number=NUMBER,
                             voice_url=self.server.url + "/twilio/voice", status_url=self.server.url + "/twilio/status")
        (self.workdir / "legs").mkdir()
        self.legs = LiveSipLegs(self.workdir / "legs", SIP_TONES, self.sim.lock)
        self.sim.sip_legs = self.legs
        self.twilio_http = TwilioHttp(self.sim, AUTH_TOKEN)
        self.worker = WorkerProcess(config, self.twilio_http.base, self.workdir, "worker").start(timeout=60)
        self.loop = LoopThread()

    @property
    def url(self) -> str:
        return self.server.url

    # -- agents' participants --------------------------------------------------------------------
    def join(self, tone_hz: float, token: str) -> ToneParticipant:
        async def make():
            participant = ToneParticipant(tone_hz, keep_s=self.keep_s, frame_ms=FRAME_MS, queue_ms=QUEUE_MS)
            await participant.join(self.rig.livekit.ws_url, token)
            return participant
        return self.loop.run(make())

    def leave(self, participant: ToneParticipant) -> None:
        self.loop.run(participant.leave())

    # -- whose CPU is it -------------------------------------------------------------------------
    def classify(self, proc: Proc) -> str | None:
        """The group a process's CPU is counted in (see bench/proc_cpu.py); None: not ours."""
        groups = {self.rig.livekit.process.pid: "livekit-server", self.rig.sip.process.pid: "livekit-sip",
                  self.rig.redis.process.pid: "redis"}
        if self.server.proc is not None:
            groups[self.server.proc.pid] = "app (gunicorn)"
        if self.worker is not None and self.worker.proc is not None:
            groups[self.worker.proc.pid] = "worker"
        if proc.pgid in groups:  # each was started in a session (so a process group) of its own
            return groups[proc.pgid]
        if proc.pid == os.getpid():
            return "bench: agents + simulator"
        if proc.ppid == os.getpid() and SIP_PHONE_MODULE in proc.cmd:
            return "bench: SIP phones"
        return None

    def stop(self) -> None:
        steps = []
        if self.legs is not None:
            steps.append(self.legs.close)  # every phone hangs up (BYE) and exits
        if self.loop is not None:
            steps.append(self.loop.close)
        if self.worker is not None:
            steps.append(self.worker.stop)
        steps += [self.server.stop]
        if self.twilio_http is not None:
            steps.append(self.twilio_http.stop)
        steps += [lambda: run_async(lambda: remove_our_sip_objects(self.rig)), self.rig.stop]
        for step in steps:
            try:
                step()
            except Exception as err:  # keep tearing down: a leftover process is worse than a message
                print(f"[capacity] teardown step failed: {err!r}", file=sys.stderr)


def agent_id(role: str, index: int) -> str:
    return f"cap-{role}{index:03d}"
