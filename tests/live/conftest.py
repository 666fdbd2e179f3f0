"""Fixtures for the live rig tests (pytest marker `live`).

The rig is real: redis-server, livekit-server and livekit-sip processes on loopback. Nothing
here skips a test for a missing binary or package; `scripts/rig/install.sh` installs them.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import responses

from app import create_app
from tests.aio import run_async
from tests.live.app_env import AppHost, app_config, new_trunk_password, provision_output, remove_our_sip_objects, start_env
from tests.live.rig import LOOPBACK, Rig
from tests.live.steps import SIP_TONES


@dataclass
class WebhookRequest:
    path: str
    authorization: str
    body: str
    received_at: float


@dataclass
class WebhookSink:
    """A loopback HTTP endpoint that stores every POST livekit-server sends it, raw, so tests
    verify signatures themselves (as the app must)."""

    server: ThreadingHTTPServer
    requests: list[WebhookRequest] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/livekit/webhook"

    def record(self, request: WebhookRequest) -> None:
        with self.cond:
            self.requests.append(request)
            self.cond.notify_all()

    def wait_for(self, predicate, timeout: float, what: str):
        """First stored request for which predicate(request) is truthy (its value)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for request in self.requests:
                    value = predicate(request)
                    if value:
                        return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    bodies = [json.loads(r.body).get("event") for r in self.requests]
                    raise AssertionError(f"no webhook {what} after {timeout:.0f}s; got events {bodies}")
                self.cond.wait(remaining)


@pytest.fixture(scope="session")
def webhook_sink():
    sink_ref: list[WebhookSink] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server API)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode("utf-8")
            sink_ref[0].record(WebhookRequest(self.path, self.headers.get("Authorization", ""),
                                              body, time.time()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            return

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    sink = WebhookSink(server)
    sink_ref.append(sink)
    thread = threading.Thread(target=server.serve_forever, name="webhook-sink", daemon=True)
    thread.start()
    yield sink
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def live_rig(tmp_path_factory: pytest.TempPathFactory, webhook_sink: WebhookSink, app_host: AppHost):
    """One rig for the session: start-up is paid once; each test provisions what it needs."""
    workdir: Path = tmp_path_factory.mktemp("rig")
    # A secret of 32+ characters, as livekit-server and PyJWT expect outside dev mode.
    rig = Rig.start(workdir, webhook_urls=[webhook_sink.url, app_host.webhook_url],
                    api_key="wt-rig-key", api_secret="wt-rig-secret-" + secrets.token_hex(16))
    print(f"\n[live rig] up in {rig.timings['total_s']:.2f}s "
          f"(redis {rig.timings['redis_s']:.2f}s, livekit-server {rig.timings['livekit_server_s']:.2f}s, "
          f"livekit-sip {rig.timings['livekit_sip_s']:.2f}s); logs in {workdir}")
    yield rig
    died = [p.name for p in rig.processes if not p.alive()]
    codes = rig.stop()
    forced = [p.name for p in rig.processes if p.forced_kill]
    assert not died, f"rig services died during the session: {died}\n{rig.log_tails()}"
    assert not forced, f"rig services needed SIGKILL to stop: {forced}; exit codes {codes}"




@pytest.fixture(scope="module")
def provisioned(live_rig: Rig, app_host: AppHost, tmp_path_factory: pytest.TempPathFactory):
    """`flask livekit provision-sip` against the real server, once per module; removed after,
    so the trunk never competes with another module's."""
    password = new_trunk_password()
    application = create_app(app_config(live_rig, app_host, tmp_path_factory.mktemp("provision"), password))
    try:
        output = provision_output(application)
    finally:
        application.extensions["wt"].close()
    yield password, output
    run_async(lambda: remove_our_sip_objects(live_rig))


def pytest_configure(config):
    config.addinivalue_line("markers", "app_settings(**settings): settings of the live test's app (e.g. short timeouts)")
    config.addinivalue_line("markers", "no_worker: the live test starts (and kills) its own worker")


@pytest.fixture
def live_env(request, live_rig: Rig, app_host: AppHost, provisioned, tmp_path: Path):
    """A fresh app (its own database) behind the webhook endpoint, the Twilio simulator with
    real SIP legs, a worker (with hold audio) beside the app, and an event loop for the agents'
    participants."""
    password, _ = provisioned
    marker = request.node.get_closest_marker("app_settings")
    settings = dict(marker.kwargs) if marker else {}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        env = start_env(live_rig, app_host, tmp_path, password, SIP_TONES, rsps,
                        worker=request.node.get_closest_marker("no_worker") is None, **settings)
        try:
            yield env
        finally:
            env.close()
            app_host.app = None
            env.services.close()
    live_rig.check_alive()
