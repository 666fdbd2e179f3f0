"""All configuration, read from the environment in one place.

Every setting the app uses is declared here with its default, so `.env.example` and this module
are the whole story. Defaults give a working local product: SQLite, the offline summarizer and a
`livekit-server --dev` on localhost. Nothing else in the app reads `os.environ`.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from app.errors import ConfigError
from app.protocol import SIP_EDGES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The shortest AGENT_ANSWER_TIMEOUT_S allowed (answer timers first wake after this long).
MIN_ANSWER_TIMEOUT_S = 5
INSTANCE_DIR = PROJECT_ROOT / "instance"


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def _prefixes(value: str) -> tuple[str, ...]:
    items = tuple(p.strip() for p in value.split(",") if p.strip())
    for p in items:
        if not p.startswith("+") or not p[1:].isdigit():
            raise ValueError(f"prefix {p!r} must look like +1 or +4420")
    return items


def normalise_database_url(url: str) -> str:
    """Accept Heroku-style `postgres://` and plain `postgresql://`; we always drive psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


@dataclass(frozen=True)
class Settings:
    # Runtime
    APP_ENV: str = "development"
    SECRET_KEY: str = ""
    API_HOST: str = "0.0.0.0"
    API_PORT: int = 8000
    DATABASE_URL: str = ""
    # PostgreSQL waits, seconds (docs/architecture.md, "Database timeouts"): connecting; any one
    # exchange with the server (also the server's statement_timeout); and all of one web
    # request's exchanges together, so a slow database makes requests fail fast.
    DB_CONNECT_TIMEOUT_S: float = 5.0
    DB_TIMEOUT_S: float = 10.0
    DB_REQUEST_BUDGET_S: float = 6.0
    PUBLIC_BASE_URL: str = ""
    TRUST_PROXY: int = 0
    SESSION_COOKIE_SECURE: bool = False
    SESSION_LIFETIME_S: int = 12 * 3600
    # werkzeug method string; the default is deliberately slow. Tests use a cheap one.
    PASSWORD_HASH_METHOD: str = "scrypt"
    # Logs (docs/architecture.md §13): json (one object per line) or text (for people); empty
    # means json when APP_ENV=production, text otherwise. LOG_LEVEL: DEBUG, INFO, WARNING, ERROR.
    LOG_FORMAT: str = ""
    LOG_LEVEL: str = "INFO"

    # LiveKit (defaults match `livekit-server --dev`)
    LIVEKIT_API_KEY: str = "devkey"
    LIVEKIT_API_SECRET: str = "secret"
    LIVEKIT_WS_URL: str = "ws://localhost:7880"
    LIVEKIT_HTTP_URL: str = "http://localhost:7880"
    LIVEKIT_TIMEOUT_S: float = 5.0
    # Only needed to join: LiveKit refreshes a connected participant's token itself, and a
    # reconnect asks /api/token for a new one. Short, so a leaked or outdated token soon dies.
    LIVEKIT_TOKEN_TTL_S: int = 600
    LIVEKIT_ROOM_EMPTY_TIMEOUT_S: int = 300
    LIVEKIT_SIP_HOST: str = ""
    LIVEKIT_SIP_USERNAME: str = ""
    LIVEKIT_SIP_PASSWORD: str = ""
    # How long LiveKit SIP lets a caller's leg ring while nobody in the room publishes audio
    # (the inbound trunk's ringing_timeout, set by `provision-sip`). Unset, livekit-sip v1.8.0
    # gives up after 3 minutes with 486 (pkg/sip/participant.go defaultRingingTimeout). A leg
    # rings only until the assigned agent joins or, if they never do, until hold audio starts
    # (AGENT_ANSWER_TIMEOUT_S); this covers the longest Twilio keeps it up (<Dial timeout=600>).
    LIVEKIT_SIP_RINGING_TIMEOUT_S: int = 600
    # A web customer whose browser left the room (a page refresh, a network blip) has this
    # long to come back before the call ends as "customer left". A SIP caller never gets it:
    # their leg ending means they hung up.
    CUSTOMER_RECONNECT_GRACE_S: int = 30
    # A web customer who has not reached LiveKit this long after their agent joined never will
    # (blocked microphone prompt, closed tab before connecting): the call ends instead of
    # staying active with an agent talking to nobody.
    CUSTOMER_JOIN_TIMEOUT_S: int = 60
    # After a hand-over, Agent B (browser or phone leg) must reach the customer's room within this
    # long; otherwise the caller goes back to the queue for the next agent.
    HANDOVER_JOIN_TIMEOUT_S: int = 45

    # Summaries
    LLM_PROVIDER: str = "auto"
    LLM_MODEL: str = ""
    LLM_BASE_URL: str = ""
    LLM_TIMEOUT_S: float = 4.0
    GROQ_API_KEY: str = ""
    OPENAI_API_KEY: str = ""
    TRANSFER_SUMMARY_BUDGET_S: float = 3.0
    STORE_RAW_CONTEXT: bool = False
    # Quiet time after the last context change before the draft summary is refreshed.
    DRAFT_DEBOUNCE_S: float = 1.5
    # A call's draft is re-made at most once per this many seconds, however fast transcript lines
    # arrive (each draft is a summary row and an LLM request). A transfer still gets every line:
    # it makes its own summary when the draft is behind (TRANSFER_SUMMARY_BUDGET_S).
    SUMMARY_REDRAFT_S: float = 30.0

    # Twilio
    TWILIO_ACCOUNT_SID: str = ""
    TWILIO_AUTH_TOKEN: str = ""
    TWILIO_PHONE_NUMBER: str = ""
    TWILIO_VOICE: str = "Polly.Joanna"
    TWILIO_LANGUAGE: str = "en-US"
    # Per-request timeout for Twilio's REST API, seconds (a phone transfer waits on calls.create).
    TWILIO_TIMEOUT_S: float = 10.0
    # Twilio's REST edge and region (api.<edge>.<region>.twilio.com); empty means api.twilio.com.
    TWILIO_EDGE: str = ""
    TWILIO_REGION: str = ""
    # The Twilio edge SIP legs into LiveKit leave from (`;edge=` in the SIP URI): the one nearest
    # LIVEKIT_SIP_HOST. Empty means Twilio's default (North America, Virginia).
    TWILIO_SIP_EDGE: str = ""
    TRANSCRIPTION_ENABLED: bool = False
    # Record phone callers' bridges into LiveKit (dual channel, from answer; web calls never are).
    # RECORDING_NOTICE is said to the caller first (empty: nothing). Recordings are deleted, at
    # Twilio and here, RECORDING_RETENTION_DAYS after they were made (0: kept as long as the call,
    # CALL_RETENTION_DAYS); always before their call is deleted.
    RECORDING_ENABLED: bool = False
    RECORDING_NOTICE: str = ""
    RECORDING_RETENTION_DAYS: int = 0
    TRANSFER_ALLOWED_PREFIXES: tuple[str, ...] = field(default_factory=tuple)

    # Transfers and events
    TRANSFER_RING_TIMEOUT_S: int = 30
    # An assigned agent who has not joined the call within this is set away; the call goes on.
    AGENT_ANSWER_TIMEOUT_S: int = 30
    # An agent whose browser drops out of their call's rooms this long is taken out of the call
    # (Agent B takes over if briefed, else the caller is queued for the next agent).
    AGENT_RECONNECT_GRACE_S: int = 20
    EVENT_POLL_INTERVAL_S: float = 0.05
    SSE_HEARTBEAT_S: float = 15.0
    # Live event streams (/api/events) per login session and per agent, on all processes
    # together: a new stream beyond either limit closes that agent's oldest (app.sse).
    SSE_STREAMS_PER_SESSION: int = 2
    SSE_STREAMS_PER_AGENT: int = 6
    # A web customer's status streams (/api/calls/<id>/events) per call, on all processes: a new
    # one beyond it closes the call's oldest (a reloaded page, a second tab).
    SSE_STREAMS_PER_CALL: int = 2
    # Every stream holds a request thread: a process keeps this many of its GUNICORN_THREADS for
    # everything else (Twilio webhooks, API calls, health) and answers more streams with 503
    # (the dashboard then polls). GUNICORN_THREADS is read here and by gunicorn.conf.py.
    SSE_THREAD_RESERVE: int = 16
    GUNICORN_THREADS: int = 512
    NOTIFICATIONS_PAGE_SIZE: int = 200
    # Events are notifications and each call's timeline; older ones are deleted.
    EVENT_RETENTION_DAYS: int = 90
    # Finished calls (with their context, summaries, transfers and events) are deleted this many
    # days after they ended; ended or revoked agent sessions this many days after that.
    CALL_RETENTION_DAYS: int = 90
    SESSION_RETENTION_DAYS: int = 30

    # The worker (`flask --app app worker`): side effects, timers, hold audio.
    WORKER_THREADS: int = 8
    # How often a worker looks for due tasks when nothing woke it (PostgreSQL wakes it at commit).
    WORKER_POLL_INTERVAL_S: float = 0.05
    # A running task's claim; renewed while it runs, so only a dead worker's tasks outlive it.
    WORKER_TASK_LEASE_S: float = 15.0
    # Done tasks are kept this long (failed ones 30 days), then deleted.
    TASK_RETENTION_DAYS: int = 7
    # Hold audio: a WAV or OGG file (any rate, resampled), or empty for the built-in loop; and an
    # optional spoken reminder played every HOLD_REMINDER_S seconds of hold.
    HOLD_AUDIO_FILE: str = ""
    HOLD_REMINDER_FILE: str = ""
    HOLD_REMINDER_S: int = 45

    # Prometheus metrics (docs/architecture.md §12). `GET /metrics` on the web app, and the
    # worker's own on API_HOST:WORKER_METRICS_PORT (0: not served). With METRICS_TOKEN set, both
    # require `Authorization: Bearer <METRICS_TOKEN>`; production requires it set.
    METRICS_TOKEN: str = ""
    WORKER_METRICS_PORT: int = 0

    # Abuse limits: "count/seconds" per client address
    CREATE_CALL_RATE_LIMIT: str = "20/60"
    # Sign-in attempts per client address, whatever agent id they name: a whole floor behind one
    # NAT address signs in at the start of a shift, so this is not tight...
    LOGIN_RATE_LIMIT: str = "30/60"
    # ...failed sign-ins per agent id, from any address (a guesser spreading over many addresses).
    # Reaching it locks that id out until the window ends; the owner is told so, not "wrong password".
    LOGIN_AGENT_RATE_LIMIT: str = "10/900"
    # Password checks run at once in one process (each scrypt check: ~140 ms of CPU, 32 MiB).
    LOGIN_CONCURRENCY: int = 4
    # Per agent: how many phone transfers (each one a paid outbound call) they may start...
    PHONE_DIAL_RATE_LIMIT: str = "30/3600"
    # ...and all agents together (one leaked session per agent must not multiply it).
    PHONE_DIAL_GLOBAL_RATE_LIMIT: str = "300/3600"

    @property
    def log_format(self) -> str:
        return self.LOG_FORMAT or ("json" if self.APP_ENV == "production" else "text")

    @property
    def log_level(self) -> str:
        return self.LOG_LEVEL.upper()

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values no log line may contain (app.logs masks them wherever they appear)."""
        return (self.SECRET_KEY, self.LIVEKIT_API_SECRET, self.LIVEKIT_SIP_PASSWORD, self.TWILIO_AUTH_TOKEN, self.GROQ_API_KEY, self.OPENAI_API_KEY)

    @property
    def telephony_configured(self) -> bool:
        return bool(self.TWILIO_ACCOUNT_SID and self.TWILIO_AUTH_TOKEN and self.TWILIO_PHONE_NUMBER)

    def as_flask_config(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["SQLALCHEMY_URL"] = self.DATABASE_URL
        return values


_PARSERS = {int: int, float: float, bool: _bool, str: str}


def _coerce(name: str, raw: str, default: object) -> object:
    if name == "TRANSFER_ALLOWED_PREFIXES":
        return _prefixes(raw)
    parser = _PARSERS[type(default)]
    return parser(raw.strip() if parser is not str else raw)


def _dev_secret_key() -> str:
    """A stable per-checkout key so sessions survive restarts and work across gunicorn workers."""
    INSTANCE_DIR.mkdir(exist_ok=True)
    key_file = INSTANCE_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def load_settings(environ: Mapping[str, str] | None = None, overrides: Mapping[str, object] | None = None, *, strict: bool = True) -> Settings:
    """Build Settings from an environment mapping (default: os.environ) plus explicit overrides.

    Every problem is collected and reported at once (ConfigError, one per line), so an operator
    fixes a deployment in one go. With `strict=False` the settings are returned anyway, with the
    problems in `settings_problems(...)`: `flask --app app check-config` uses it to print them."""
    settings, problems = _load(environ, overrides)
    if problems and strict:
        raise ConfigError("Configuration problems:\n- " + "\n- ".join(problems))
    return settings


def settings_problems(environ: Mapping[str, str] | None = None, overrides: Mapping[str, object] | None = None) -> list[str]:
    return _load(environ, overrides)[1]


def _load(environ: Mapping[str, str] | None, overrides: Mapping[str, object] | None) -> tuple[Settings, list[str]]:
    environ = os.environ if environ is None else environ
    defaults = Settings()
    values: dict[str, object] = {}
    problems: list[str] = []
    for f in fields(Settings):
        raw = environ.get(f.name)
        if raw is None or not raw.strip():
            continue  # an empty line in .env means "use the default"
        try:
            values[f.name] = _coerce(f.name, raw, getattr(defaults, f.name))
        except ValueError as exc:
            problems.append(f"{f.name}: {exc}")
    for name, value in (overrides or {}).items():
        default = getattr(defaults, name)
        # Overrides may come as environment-style strings (benchmarks, scripts) or typed values.
        if isinstance(value, str) and not isinstance(default, str):
            try:
                value = _coerce(name, value, default)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                continue
        values[name] = value

    app_env = str(values.get("APP_ENV", defaults.APP_ENV))
    if not values.get("SECRET_KEY"):
        if app_env == "production":
            problems.append("SECRET_KEY must be set when APP_ENV=production")
            values["SECRET_KEY"] = ""
        else:
            values["SECRET_KEY"] = _dev_secret_key()
    if not values.get("DATABASE_URL"):
        INSTANCE_DIR.mkdir(exist_ok=True)
        values["DATABASE_URL"] = f"sqlite:///{INSTANCE_DIR / 'warm_transfer.db'}"
    values["DATABASE_URL"] = normalise_database_url(str(values["DATABASE_URL"]))
    if "SESSION_COOKIE_SECURE" not in values:
        values["SESSION_COOKIE_SECURE"] = str(values.get("PUBLIC_BASE_URL", "")).startswith("https://")

    settings = Settings(**values)
    problems += _validate(settings)
    return settings, problems


APP_ENVS = ("development", "test", "production")
RECORDING_NOTICE_MAX = 500
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Numeric settings and the range each must lie in (inclusive), with its unit.
RANGES: tuple[tuple[str, float, float, str], ...] = (
    ("LIVEKIT_TOKEN_TTL_S", 60, 24 * 3600, "seconds"),
    ("TRANSFER_RING_TIMEOUT_S", 5, 600, "seconds"),
    ("AGENT_ANSWER_TIMEOUT_S", MIN_ANSWER_TIMEOUT_S, 300, "seconds"),
    ("AGENT_RECONNECT_GRACE_S", 5, 600, "seconds"),
    ("CUSTOMER_RECONNECT_GRACE_S", 0, 600, "seconds"),
    ("CUSTOMER_JOIN_TIMEOUT_S", 10, 600, "seconds"),
    ("HANDOVER_JOIN_TIMEOUT_S", 10, 600, "seconds"),
    ("DB_CONNECT_TIMEOUT_S", 1, 60, "seconds"),
    ("DB_TIMEOUT_S", 0.5, 300, "seconds"),
    ("DB_REQUEST_BUDGET_S", 0.5, 12, "seconds"),
    ("TWILIO_TIMEOUT_S", 0, 60, "seconds"),
    ("LIVEKIT_SIP_RINGING_TIMEOUT_S", 5, 86400, "seconds"),
    ("WORKER_THREADS", 1, 256, ""),
    ("WORKER_POLL_INTERVAL_S", 0.01, 10, "seconds"),
    ("WORKER_TASK_LEASE_S", 3, 600, "seconds"),
    ("HOLD_REMINDER_S", 5, 3600, "seconds"),
    ("SUMMARY_REDRAFT_S", 1, 3600, "seconds"),
    ("CALL_RETENTION_DAYS", 1, 3650, "days"),
    ("SESSION_RETENTION_DAYS", 1, 3650, "days"),
    ("RECORDING_RETENTION_DAYS", 0, 3650, "days"),
    ("LOGIN_CONCURRENCY", 1, 64, ""),
    ("WORKER_METRICS_PORT", 0, 65535, ""),
)
RANGE_NOTES = {
    "TRANSFER_RING_TIMEOUT_S": " (Twilio's limit)",
    # Twilio waits 15 s in all for a webhook's HTTP answer, TCP connect included (Twilio error
    # 11205, https://www.twilio.com/docs/api/errors/11205): a request's database time must leave room.
    "DB_REQUEST_BUDGET_S": " (Twilio waits 15 s for a webhook)",
}


def _validate(s: Settings) -> list[str]:
    """Every problem with these settings, as sentences naming the setting."""
    problems: list[str] = []

    def check(ok: bool, problem: str) -> None:
        if not ok:
            problems.append(problem)

    check(s.APP_ENV in APP_ENVS, f"APP_ENV must be one of {', '.join(APP_ENVS)} (got {s.APP_ENV!r})")
    check(s.LOG_FORMAT in ("", *LOG_FORMATS), f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)} or empty (got {s.LOG_FORMAT!r})")
    check(s.log_level in LOG_LEVELS, f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)} (got {s.LOG_LEVEL!r})")
    check(s.LLM_PROVIDER in {"auto", "offline", "groq", "openai"}, "LLM_PROVIDER must be one of auto, offline, groq, openai")
    if s.APP_ENV == "production":
        problems += _production_problems(s)
    for name, low, high, unit in RANGES:
        note = RANGE_NOTES.get(name, "")
        check(low <= getattr(s, name) <= high, f"{name} must be between {low:g} and {high:g}{unit and ' ' + unit}{note}")
    check(s.TWILIO_TIMEOUT_S > 0, "TWILIO_TIMEOUT_S must be more than 0 seconds")
    check(len(s.RECORDING_NOTICE) <= RECORDING_NOTICE_MAX, f"RECORDING_NOTICE must be at most {RECORDING_NOTICE_MAX} characters (it is said before every bridge)")
    check(not (s.TWILIO_SIP_EDGE and s.TWILIO_SIP_EDGE not in SIP_EDGES), f"TWILIO_SIP_EDGE must be one of {', '.join(SIP_EDGES)}")
    check(1 <= s.SSE_STREAMS_PER_SESSION <= s.SSE_STREAMS_PER_AGENT <= 100,
          "SSE_STREAMS_PER_SESSION and SSE_STREAMS_PER_AGENT must be 1-100, per session at most per agent")
    check(1 <= s.SSE_STREAMS_PER_CALL <= 10, "SSE_STREAMS_PER_CALL must be 1-10")
    check(1 <= s.SSE_THREAD_RESERVE < s.GUNICORN_THREADS,
          "SSE_THREAD_RESERVE must be at least 1 and less than GUNICORN_THREADS (streams need threads too)")
    for name in ("CREATE_CALL_RATE_LIMIT", "LOGIN_RATE_LIMIT", "LOGIN_AGENT_RATE_LIMIT", "PHONE_DIAL_RATE_LIMIT", "PHONE_DIAL_GLOBAL_RATE_LIMIT"):
        try:
            parse_rate(getattr(s, name), name)
        except ConfigError as err:
            problems.append(str(err))
    return problems


def _production_problems(s: Settings) -> list[str]:
    """What a production deployment must have: nothing here has a safe default."""
    problems = []
    if len(s.SECRET_KEY.encode()) < 32:
        problems.append("SECRET_KEY must be at least 32 bytes in production (e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
    if not s.PUBLIC_BASE_URL.startswith("https://"):
        problems.append("PUBLIC_BASE_URL must be the app's public https:// URL in production (Twilio signs it; cookies are Secure)")
    if not s.SESSION_COOKIE_SECURE:
        problems.append("SESSION_COOKIE_SECURE must be true in production (session cookies only over https)")
    if not s.LIVEKIT_WS_URL.startswith("wss://"):
        problems.append("LIVEKIT_WS_URL must be a wss:// URL in production (browsers send tokens over it)")
    if s.LIVEKIT_API_KEY == "devkey" or s.LIVEKIT_API_SECRET == "secret" or len(s.LIVEKIT_API_SECRET) < 32:
        problems.append("LIVEKIT_API_KEY/LIVEKIT_API_SECRET must be real keys in production (not devkey/secret; a secret of at least 32 characters)")
    if len(s.METRICS_TOKEN) < 32:
        # /metrics is on the same public host Twilio reaches: call volumes, outcomes and error
        # rates are not for anyone who asks.
        problems.append("METRICS_TOKEN must be set in production, at least 32 characters (scrapers send it as a bearer token)")
    if s.RECORDING_ENABLED and not s.telephony_configured:
        problems.append("RECORDING_ENABLED needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_PHONE_NUMBER in production "
                        "(recordings are made, played and deleted through Twilio)")
    if s.telephony_configured and not s.TRANSFER_ALLOWED_PREFIXES:
        problems.append("TRANSFER_ALLOWED_PREFIXES must list the E.164 prefixes phone transfers may dial in production (e.g. +1,+44): "
                        "an empty list would let a stolen agent session call anywhere")
    return problems


def log_choice(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(format, level) of the logs, from APP_ENV, LOG_FORMAT and LOG_LEVEL alone: for gunicorn's
    master process (gunicorn.conf.py), which logs before any app exists and must not have
    load_settings' side effects (the development SECRET_KEY file). A value that is not allowed
    counts as unset here; the app refuses it, with any other problem, when it starts."""
    environ = os.environ if environ is None else environ
    values = {name: environ.get(name, "").strip() for name in ("APP_ENV", "LOG_FORMAT", "LOG_LEVEL")}
    settings = Settings(
        APP_ENV=values["APP_ENV"] or Settings.APP_ENV,
        LOG_FORMAT=values["LOG_FORMAT"] if values["LOG_FORMAT"] in LOG_FORMATS else "",
        LOG_LEVEL=values["LOG_LEVEL"] if values["LOG_LEVEL"].upper() in LOG_LEVELS else Settings.LOG_LEVEL,
    )
    return settings.log_format, settings.log_level


def parse_rate(value: str, name: str = "rate") -> tuple[int, int]:
    try:
        count, seconds = (int(part) for part in value.split("/"))
    except ValueError as exc:
        raise ConfigError(f"{name} must look like COUNT/SECONDS, got {value!r}") from exc
    if count < 1 or seconds < 1:
        raise ConfigError(f"{name} must have a positive count and window")
    return count, seconds


def load_dotenv_for_development() -> None:
    """Developers keep secrets in `.env`; production sets real environment variables."""
    if os.environ.get("APP_ENV", "development") != "development":
        return  # production and test processes get their settings only from the environment
    from dotenv import load_dotenv

    load_dotenv(PROJECT_ROOT / ".env", override=False)
