"""Shared plumbing for benchmarks: a real gunicorn server and a worker process on a fresh database
with a LiveKit Twirp double, and small statistics helpers. Benchmarks print figures; they never
assert speed."""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from app.db import migrate  # noqa: E402
from tests.doubles.livekit_twirp import LiveKitTwirpDouble  # noqa: E402
from tests.harness.server import GunicornServer, WorkerProcess, flask_cli  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def describe(label: str, seconds: list[float]) -> str:
    ms = [v * 1000 for v in seconds]
    return (
        f"{label:<34} n={len(ms):<5} p50={percentile(ms, 50):8.1f} ms  p99={percentile(ms, 99):8.1f} ms  "
        f"mean={statistics.fmean(ms):8.1f} ms  max={max(ms):8.1f} ms"
    )


@contextmanager
def running_app(extra_env: dict | None = None, *, workers: int = 2, threads: int = 512):
    """Yield (server, env, double) for a fresh database (PostgreSQL if BENCH_DATABASE_URL is set),
    with a worker process beside gunicorn (without hold audio: the Twirp double has no media)."""
    double = LiveKitTwirpDouble().start()
    tmp = Path(tempfile.mkdtemp(prefix="wt-bench-"))
    db_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.db"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "APP_ENV": "test",
        "SECRET_KEY": "bench-secret-key-long-enough-xxxxxxxx",
        "DATABASE_URL": db_url,
        "LIVEKIT_HTTP_URL": double.url,
        "LIVEKIT_WS_URL": double.url.replace("http", "ws"),
        "LIVEKIT_API_KEY": double.api_key,
        "LIVEKIT_API_SECRET": double.api_secret,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "LOGIN_RATE_LIMIT": "100000/60",
        "CREATE_CALL_RATE_LIMIT": "100000/60",
        **(extra_env or {}),
    }
    app = create_app({k: v for k, v in env.items() if k not in ("PATH",)})
    migrate(app.extensions["wt"].db)
    app.extensions["wt"].close()
    server = GunicornServer(env, tmp / "gunicorn.log", workers=workers, threads=threads).start()
    worker = WorkerProcess(env, tmp / "worker.log").start()
    try:
        yield server, env, double
    finally:
        worker.stop()
        server.stop()
        double.stop()


def add_agents(env: dict, accounts: list[tuple[str, str]]) -> None:
    """Create agent accounts directly in the benchmark's database (one CLI process per agent
    would dominate the set-up time of a 500-agent run)."""
    app = create_app({k: v for k, v in env.items() if k != "PATH"})
    services = app.extensions["wt"]
    try:
        for agent_id, password in accounts:
            services.agents.add(agent_id, agent_id.title(), password)
    finally:
        services.close()


def add_agent(env: dict, agent_id: str, password: str) -> None:
    flask_cli(env, "agents", "add", agent_id, "--name", agent_id.title(), "--password", password)


class IdleStreams:
    """Many connected-but-idle agents, as a floor full of dashboards would be.

    One selector thread holds every SSE connection and discards what arrives, so the benchmark
    client itself does not become the bottleneck it is trying to measure on the server."""

    def __init__(self, url: str, cookies: list[str]):
        import selectors
        import socket
        import threading
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self._selector = selectors.DefaultSelector()
        self.ready = 0
        self._stop = threading.Event()
        self._socks = []
        for cookie in cookies:
            sock = socket.create_connection((parts.hostname, parts.port))
            sock.sendall(
                f"GET /api/events HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n"
                f"Cookie: wt_session={cookie}\r\n\r\n".encode()
            )
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ, data={"seen_ready": False})
            self._socks.append(sock)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _mask in self._selector.select(timeout=0.2):
                chunk = key.fileobj.recv(65536)
                if not key.data["seen_ready"] and b"event: ready" in chunk:
                    key.data["seen_ready"] = True
                    self.ready += 1
                if not chunk:
                    self._selector.unregister(key.fileobj)

    def wait_ready(self, timeout: float = 60.0) -> int:
        import time

        deadline = time.monotonic() + timeout
        while self.ready < len(self._socks) and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting on the selector thread's progress
        return self.ready

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self._socks:
            sock.close()


def login_cookie(url: str, agent_id: str, password: str) -> str:
    import requests

    session = requests.Session()
    session.post(f"{url}/api/login", json={"agent_id": agent_id, "password": password}, timeout=10).raise_for_status()
    return session.cookies["wt_session"]


@contextmanager
def in_process_app(config: dict, twilio_client):
    """Yield (base URL, services) of the app and a worker running in this process, the app behind
    werkzeug's threaded HTTP server, with `twilio_client` as its Twilio REST client (Twilio's API
    is unreachable here; a separate process could not be handed a client object). PUBLIC_BASE_URL
    is set to the server's own URL, which Twilio-signed webhooks must be signed for."""
    import threading

    from werkzeug.serving import make_server

    from app.config import load_settings
    from app.services import build_services
    from app.worker import Worker

    holder = make_server("127.0.0.1", 0, None)
    port = holder.server_port
    holder.server_close()
    config = dict(config, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    services = build_services(load_settings(environ={}, overrides=config), twilio_client=twilio_client)
    app = create_app(config, services=services)
    migrate(services.db)
    worker = Worker(services, hold_audio=False).start()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}", services
    finally:
        worker.stop(timeout=2)
        server.shutdown()
        services.close()
