"""Shared fixtures: a LiveKit Twirp double, a database per backend, and a fresh app per test;
for telephony tests, Twilio's REST API (`rest`) and the Twilio simulator (`sim`); for the live and
browser suites, the session's HTTP endpoint of the app (`app_host`).

App tests run once against SQLite and once against PostgreSQL when TEST_DATABASE_URL points at a
server (`make test` always provides one; WT_REQUIRE_POSTGRES=1 makes its absence an error rather
than a silently shorter run).

Every log line of the session is captured as production writes it (JSON) and, at the end, searched
for the fixtures' PII and every password, cookie, token and secret the tests used: one found is an
error of the session (`log_audit` below, tests/log_audit.py).

A module marked `pytestmark = pytest.mark.telephony` gets the telephony-enabled app as `app`
(Twilio and LiveKit SIP configured with `tests.telephony.TELEPHONY`, built after `rest`), so
`client`, `services` and `make_agent` all use it there.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import responses
from sqlalchemy import text

from app import create_app
from app.db import migrate
from app.models import Base
from tests import log_audit
from tests.doubles.livekit_twirp import LiveKitTwirpDouble
from tests.doubles.twilio_sim import TwilioSim
from tests.support import AgentClient, run_tasks
from tests.telephony import AUTH_TOKEN, SIP_PASSWORD, TELEPHONY, make_sim

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
if os.environ.get("WT_REQUIRE_POSTGRES") == "1" and not TEST_DATABASE_URL:
    raise pytest.UsageError("WT_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])
# Steps moved out of the live test modules keep pytest's detailed assertion messages.
pytest.register_assert_rewrite("tests.live.steps")


def pytest_configure(config):
    config.addinivalue_line("markers", "telephony: the module's `app` has Twilio and LiveKit SIP configured, Twilio's REST API answered by `rest`")


# Opt-in (WT_OPENAPI_RECORD=1): every response the Flask test client returns, in every test, is
# checked against the OpenAPI description; what does not conform fails the session at its end.
if os.environ.get("WT_OPENAPI_RECORD") == "1":

    @pytest.fixture(scope="session", autouse=True)
    def openapi_recorder():
        from tests.harness.openapi_check import ResponseRecorder

        recorder = ResponseRecorder()
        with recorder.installed():
            yield recorder
        assert recorder.report() == "", "responses off the OpenAPI description:\n" + recorder.report()


SECRET_KEY = "test-secret-key-of-sufficient-length"


@pytest.fixture(scope="session", autouse=True)
def log_audit_of_the_session(tmp_path_factory):
    """The whole session's logs, as JSON lines in a file, searched at its end for every secret and
    piece of PII the tests handled (remembered by tests/support.py's clients as they see them)."""
    path = tmp_path_factory.mktemp("logs") / "session.jsonl"
    log_audit.start_recording()
    for value, what in {SECRET_KEY: "SECRET_KEY", AUTH_TOKEN: "TWILIO_AUTH_TOKEN", SIP_PASSWORD: "LIVEKIT_SIP_PASSWORD"}.items():
        log_audit.remember(value, what)
    with log_audit.LogCapture(path, keep=False):
        yield path
    text = path.read_text(encoding="utf-8")
    hits = log_audit.find(text, {**log_audit.static_needles(), **log_audit.remembered()})
    assert hits == [], f"secrets or PII in this session's logs ({path}):\n" + "\n".join(hits[:20] + log_audit.lines_with(text, hits))


@pytest.fixture(scope="session")
def livekit_double():
    double = LiveKitTwirpDouble().start()
    log_audit.remember(double.api_secret, "LIVEKIT_API_SECRET")
    yield double
    double.stop()


@pytest.fixture(scope="session")
def postgres_url():
    """A database of our own on the test server, created fresh for this session."""
    if not TEST_DATABASE_URL:
        yield None
        return
    parts = urlsplit(TEST_DATABASE_URL)
    name = f"wt_test_{os.getpid()}"
    admin = urlunsplit(parts._replace(scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path, postgres_url):
    if request.param == "postgresql" and postgres_url is None:
        raise pytest.UsageError("this test needs PostgreSQL: set TEST_DATABASE_URL (make test does)")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/warm_transfer.db"
    return postgres_url


@pytest.fixture
def config(database_url, livekit_double, tmp_path):
    return {
        "APP_ENV": "test",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "LIVEKIT_HTTP_URL": livekit_double.url,
        "LIVEKIT_WS_URL": livekit_double.url.replace("http", "ws"),
        "LIVEKIT_API_KEY": livekit_double.api_key,
        "LIVEKIT_API_SECRET": livekit_double.api_secret,
        "LIVEKIT_TIMEOUT_S": 2.0,
        "EVENT_POLL_INTERVAL_S": 0.02,
        "SSE_HEARTBEAT_S": 0.5,
        "LOGIN_RATE_LIMIT": "1000/60",
        "LOGIN_AGENT_RATE_LIMIT": "1000/60",
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "CREATE_CALL_RATE_LIMIT": "1000/60",
    }


def _clean(db) -> None:
    if not db.is_postgres:
        return
    names = ", ".join(t.name for t in Base.metadata.sorted_tables if t.name != "schema_migrations")
    with db.transaction() as s:
        s.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def make_app(config, livekit_double):
    """Build an app with config overrides; the first one of a test starts from an empty database."""
    built = []

    def make(**overrides):
        application = create_app(dict(config, **overrides))
        services = application.extensions["wt"]
        migrate(services.db)
        if not built:
            livekit_double.reset()
            _clean(services.db)
        built.append(services)
        return application

    yield make
    for services in built:
        services.close()


@pytest.fixture
def rest():
    """Twilio's REST API. A request nothing here answers fails (never the internet)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def app(request, make_app):
    """The app under test; with the `telephony` marker, built with TELEPHONY after `rest`, so
    nothing a telephony test does can reach the real Twilio."""
    if request.node.get_closest_marker("telephony") is None:
        return make_app()
    request.getfixturevalue("rest")
    return make_app(**TELEPHONY)


@pytest.fixture
def sim(app, rest) -> TwilioSim:
    """The Twilio simulator, posting its webhooks to `app` and answering its REST calls via `rest`."""
    return make_sim(app, rest)


@pytest.fixture
def services(app):
    return app.extensions["wt"]


@pytest.fixture
def tasks(services):
    """Run the due tasks as the worker would: `tasks()` now; `tasks(after_s=31)` as if 31 s had
    passed (timers fire early). Nothing runs them otherwise, so each test says when time moves."""
    return lambda after_s=0.0: run_tasks(services, after_s=after_s)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_agent(app, services):
    def make(agent_id: str, name: str | None = None, *, phone: str | None = None, login: bool = True, role: str = "agent") -> AgentClient:
        password = f"pw-{agent_id}-123456"
        services.agents.add(agent_id, name or agent_id.title(), password, phone, role=role)
        agent = AgentClient(app.test_client(), agent_id, password)
        if login:
            agent.login()
        return agent

    return make


@pytest.fixture(scope="session")
def app_host():
    """Where livekit-server sends webhooks to the app, for the whole session (the live and browser
    suites): each test swaps its own app in behind it (see tests/live/app_env.py)."""
    from tests.live.app_env import AppHost  # the live rig's modules (livekit rtc), only when used

    host = AppHost()
    yield host
    host.stop()
