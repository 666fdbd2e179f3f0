"""Run the real app under gunicorn in a child process (its own process group), as production does."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flask_cli(env: dict, *args: str) -> str:
    result = subprocess.run([str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


class ChildProcess:
    """A command in a child process of its own group (so SIGKILL takes all of it), its output in
    `log_path`; `start` returns once `ready()` says so."""

    name = "child"

    def __init__(self, args: list[str], env: dict, log_path: Path):
        self.args, self.env, self.log_path = args, env, log_path
        self.proc: subprocess.Popen | None = None
        self.log_start = 0  # where this start's output begins in the (appended) log

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 30.0):
        # The child keeps its own copy of the descriptor; ours is closed once it has started.
        self.log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not become ready:\n{self.log_tail()}")
            time.sleep(0.05)  # waiting for the child to come up
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: it dies with no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a graceful stop), SIGKILL if that takes longer than `timeout`."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        """What this process (its latest start, not an earlier one's) has written so far."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_start)
                return f.read().decode(errors="replace")
        except OSError as err:
            return f"(no log: {err})"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as err:
            return f"(no log: {err})"


class GunicornServer(ChildProcess):
    name = "gunicorn"

    def __init__(self, env: dict, log_path: Path, *, workers: int = 2, threads: int = 32):
        self.port = free_port()
        env = dict(env, API_HOST="127.0.0.1", API_PORT=str(self.port), WEB_CONCURRENCY=str(workers),
                   GUNICORN_THREADS=str(threads), ACCESS_LOG="0")
        super().__init__([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"], env, log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/api/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, timeout: float = 20.0) -> None:
        super().stop(timeout)


class WorkerProcess(ChildProcess):
    """`flask --app app worker`, as the Procfile runs it (without hold audio unless asked: the
    LiveKit doubles have no media)."""

    name = "worker"

    def __init__(self, env: dict, log_path: Path, *, hold_audio: bool = False):
        super().__init__([str(BIN / "flask"), "--app", "app", "worker"] + ([] if hold_audio else ["--no-hold-audio"]), dict(env), log_path)

    def ready(self) -> bool:
        return "Worker " in self.output()


def app_env(database_url: str, livekit_double, **more: str) -> dict[str, str]:
    """The environment of an app process (gunicorn, the worker, the CLI) in a test: a fresh
    environment rather than ours, the given database, the LiveKit double, cheap password hashes
    and quick polling; `more` adds or overrides settings."""
    env = {
        "PATH": "/usr/bin:/bin",
        "APP_ENV": "test",
        "SECRET_KEY": "e2e-secret-key-long-enough-for-sessions",
        "DATABASE_URL": database_url,
        "LIVEKIT_HTTP_URL": livekit_double.url,
        "LIVEKIT_WS_URL": livekit_double.url.replace("http", "ws"),
        "LIVEKIT_API_KEY": livekit_double.api_key,
        "LIVEKIT_API_SECRET": livekit_double.api_secret,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "EVENT_POLL_INTERVAL_S": "0.02",
        "WORKER_POLL_INTERVAL_S": "0.02",
    }
    env.update(more)
    return env
