"""Browser tests (marker `browser`): Playwright driving Debian's Chromium through the dashboards.

What runs for real: the Flask app on a werkzeug server thread (threaded, so SSE streams work),
redis-server + livekit-server from the live rig (tests/live/rig.py; real WebRTC media on
loopback) posting its webhooks to the app (who joined or left which room), and Chromium with a
fake microphone (`--use-fake-device-for-media-stream` plays a beep), so "audio flows" is
measured from real RTP counters, not asserted from UI text.

livekit-server learns its webhook URL when it starts, once per session, so the app is served by
one session-wide HTTP server (`AppHost`) and each test's fresh app (its own database) is swapped
in behind it. `@pytest.mark.app_settings(NAME=value, ...)` changes the app's settings for a test.

Nothing is skipped when a dependency is missing: Chromium at /usr/bin/chromium, the rig
binaries (scripts/rig/install.sh) and axe-core (`npm ci` at the repository root) are required.

Artifacts (gitignored): screenshots and accessibility reports under artifacts/browser/<test>/.
"""
from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from sqlalchemy import select, update

from app import create_app
from app.db import migrate
from app.events import emit
from app.models import Agent, Call, Task, Transfer, utcnow
from app.repo import agents_in_call, load_call
from app.serializers import entry_dict
from app.services.effects import CUSTOMER_GRACE_TIMER
from app.worker import Worker
from tests.browser.flows import AGENT_PASSWORD
from tests.live.rig import Binaries, LiveKitServer, PortAllocator, RedisServer

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"
AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
DESKTOP = {"width": 1280, "height": 800}
# Room changes (a transfer, a cancel) involve LiveKit reconnections: on a busy 2-core CI machine
# 5 s is tight. Timing promises of the product (the transfer alert within a second) are
# asserted with their own explicit timeouts.
expect.set_options(timeout=10_000)


def pytest_configure(config):
    config.addinivalue_line("markers", "app_settings(**settings): settings of the browser test's app (e.g. short timeouts)")


# -- services ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def livekit(tmp_path_factory, app_host):
    """A real livekit-server (with its Redis) for the whole session, on loopback, sending its
    webhooks to the app under test."""
    workdir = tmp_path_factory.mktemp("livekit")
    binaries = Binaries.locate()
    ports = PortAllocator()
    redis = RedisServer(workdir, binaries.redis_server, ports.port())
    redis.start()
    server = LiveKitServer(
        workdir, binaries.livekit_server, ports, redis.address,
        api_key="wt-browser", api_secret="wt-browser-secret-" + secrets.token_hex(16), log_level="warn",
        webhook_urls=[app_host.url + "/livekit/webhook"],
    )
    try:
        server.start()
    except BaseException:
        redis.process.stop()
        raise
    yield server
    server.process.stop()
    redis.process.stop()


@dataclass
class AppServer:
    """The app under test, served over real HTTP on 127.0.0.1."""

    base_url: str
    app: object
    services: object

    def add_agent(self, agent_id: str, name: str, role: str = "agent") -> str:
        self.services.agents.add(agent_id, name, AGENT_PASSWORD, role=role)
        return AGENT_PASSWORD

    def push_transcript(self, session_id: str, author: str, text: str) -> None:
        """A final live-transcription utterance arriving for the call, stored and pushed to the
        call's agents the way the Twilio transcription webhook does (app.services.telephony)."""
        with self.services.db.transaction() as s:
            call = load_call(s, session_id)
            entry = self.services.summaries.add_entry(s, call, author=author, source="transcript", text=text)
            audience = set(agents_in_call(s, call.id)) | {call.agent_id}
            emit(s, "context_added", {"entry": entry_dict(entry)}, audiences=audience, call_id=call.id)

    def only_call(self) -> dict:
        """The one call of this test, straight from the database: status, owner, transfers."""
        with self.services.db.reading() as s:
            calls = list(s.scalars(select(Call)))
            assert len(calls) == 1, f"expected exactly one call, found {[c.id for c in calls]}"
            call = calls[0]
            transfers = list(s.scalars(select(Transfer).where(Transfer.call_id == call.id).order_by(Transfer.requested_at)))
            return {
                "session_id": call.id,
                "status": call.status,
                "agent_id": call.agent_id,
                "end_reason": call.end_reason,
                "transfers": [
                    {
                        "status": t.status,
                        "to_agent_id": t.to_agent_id,
                        "reason": t.reason,
                        "handed_over_at": t.handed_over_at,
                        "bridged_at": t.bridged_at,
                    }
                    for t in transfers
                ],
            }

    def age_customer_departure(self, session_id: str, seconds: float) -> None:
        """Move the web customer's departure (recorded from LiveKit's webhook) into the past, and
        its reconnect timer to now, instead of waiting out CUSTOMER_RECONNECT_GRACE_S; the
        worker's timer then ends the call."""
        with self.services.db.transaction() as s:
            call = s.get(Call, session_id)
            assert call.customer_left_at is not None, "the customer has not left (no webhook yet?)"
            call.customer_left_at = call.customer_left_at - timedelta(seconds=seconds)
            s.execute(update(Task).where(Task.kind == CUSTOMER_GRACE_TIMER, Task.state == "pending").values(due_at=utcnow()))

    def presence(self, agent_id: str) -> str:
        with self.services.db.reading() as s:
            return s.get(Agent, agent_id).presence


@pytest.fixture
def app_server(request, livekit, app_host, tmp_path):
    config = {
        "APP_ENV": "test",
        "SECRET_KEY": "browser-test-secret-key-of-sufficient-length",
        "DATABASE_URL": f"sqlite:///{tmp_path}/warm_transfer.db",
        "LIVEKIT_HTTP_URL": livekit.http_url,
        "LIVEKIT_WS_URL": livekit.ws_url,
        "LIVEKIT_API_KEY": livekit.api_key,
        "LIVEKIT_API_SECRET": livekit.api_secret,
        "LIVEKIT_TIMEOUT_S": 5.0,
        "EVENT_POLL_INTERVAL_S": 0.02,
        "SSE_HEARTBEAT_S": 2.0,
        "LOGIN_RATE_LIMIT": "1000/60",
        "LOGIN_AGENT_RATE_LIMIT": "1000/60",
        "CREATE_CALL_RATE_LIMIT": "1000/60",
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "LLM_PROVIDER": "offline",
        "TRANSFER_RING_TIMEOUT_S": 120,
    }
    marker = request.node.get_closest_marker("app_settings")
    if marker is not None:
        config.update(marker.kwargs)
    app = create_app(config)
    services = app.extensions["wt"]
    migrate(services.db)
    # The worker runs beside the app, as in production: room deletions, timers, hold audio.
    worker = Worker(services, poll_s=0.02).start()
    app_host.app = app
    yield AppServer(app_host.url, app, services)
    app_host.app = None
    worker.stop()
    services.close()


# -- browser ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_JS.exists():
        raise RuntimeError(f"{AXE_JS} is missing: run `npm ci` at the repository root (axe-core is pinned in package.json)")
    return AXE_JS.read_text()


@dataclass
class Person:
    """One browser context (its own cookies and storage) with one page, and what it saw."""

    name: str
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)


class Session:
    """The people in a test, plus screenshots and accessibility checks saved as artifacts."""

    def __init__(self, browser: Browser, server: AppServer, axe: str, artifacts: Path):
        self.browser = browser
        self.server = server
        self.axe = axe
        self.artifacts = artifacts
        self.people: list[Person] = []
        self.shots = 0

    def person(self, name: str, viewport: dict | None = None, **context_options) -> Person:
        context = self.browser.new_context(viewport=viewport or DESKTOP, base_url=self.server.base_url, **context_options)
        context.set_default_timeout(15_000)
        return self._watch(Person(name, context, context.new_page()))

    def tab(self, person: Person, name: str) -> Person:
        """Another tab of `person`'s browser: the same cookies (so the same agent session)."""
        return self._watch(Person(name, person.context, person.context.new_page()))

    def _watch(self, who: Person) -> Person:
        name, page = who.name, who.page
        page.on("pageerror", lambda err: who.errors.append(str(err)))
        page.on("console", lambda msg: who.csp.append(msg.text) if "Content Security Policy" in msg.text else None)
        if os.environ.get("WT_BROWSER_CONSOLE") == "1":  # debugging aid: echo the pages' consoles
            page.on("console", lambda msg: print(f"[{name} console.{msg.type}] {msg.text}"))
            page.on("pageerror", lambda err: print(f"[{name} pageerror] {err}"))

        def on_dialog(dialog):
            who.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        self.people.append(who)
        return who

    def shot(self, person: Person, label: str) -> Path:
        self.shots += 1
        path = self.artifacts / f"{self.shots:02d}-{person.name}-{label}.png"
        person.page.screenshot(path=str(path), full_page=True)
        return path

    def check_a11y(self, person: Person, label: str) -> list[dict]:
        """Run axe-core in the page; fail on serious or critical violations."""
        page = person.page
        if not page.evaluate("() => typeof window.axe === 'object'"):
            # page.evaluate is not subject to the page's CSP (a <script> tag would be).
            page.evaluate(self.axe)
        violations = page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))"""
        )
        report = self.artifacts / f"axe-{person.name}-{label}.json"
        report.write_text(json.dumps(violations, indent=2))
        bad = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert not bad, f"{person.name} ({label}): accessibility violations: {json.dumps(bad, indent=2)}"
        return violations

    def close(self) -> None:
        for context in {id(who.context): who.context for who in self.people}.values():
            context.close()


@pytest.fixture
def session(request, browser, app_server, axe_source):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    artifacts = ARTIFACTS / name
    artifacts.mkdir(parents=True, exist_ok=True)
    for old in artifacts.iterdir():
        old.unlink()
    s = Session(browser, app_server, axe_source, artifacts)
    yield s
    try:
        for who in s.people:
            assert not who.errors, f"{who.name}: uncaught errors in the page: {who.errors}"
            assert not who.csp, f"{who.name}: Content-Security-Policy violations: {who.csp}"
            assert not who.dialogs, f"{who.name}: unexpected dialogs (script injection?): {who.dialogs}"
    finally:
        s.close()
