"""The worker as a separate process for the live rig, so a test can SIGKILL it.

    python -m tests.live.worker_process CONFIG.json TWILIO_API_BASE

It is `flask --app app worker` with two test-only differences: settings come from a JSON file
(the live app's own, same database), and Twilio's REST API is the simulator's HTTP front
(tests/doubles/twilio_http.py) instead of api.twilio.com: the twilio library's HTTP client is
given a base URL to send its requests to, everything else (paths, form fields, auth, error
parsing) is the real library's.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from twilio.rest import Client

from tests.doubles.twilio_rebased import RebasedHttpClient
from tests.harness.server import ChildProcess


def main(config_path: str, twilio_base: str) -> int:
    from app import create_app
    from app.config import load_settings
    from app.services import build_services
    from app.worker import Worker

    config = json.loads(Path(config_path).read_text())
    settings = load_settings(environ={}, overrides=config)
    client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=RebasedHttpClient(twilio_base, timeout=settings.TWILIO_TIMEOUT_S))
    services = build_services(settings, twilio_client=client)
    create_app(config, services=services)
    worker = Worker(services)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.request_stop())
    print(f"Worker {worker.holder} ready", flush=True)
    worker.run_forever()
    return 0


class WorkerProcess(ChildProcess):
    """This module as a child process: start, SIGKILL, stop; output in `<name>.log`."""

    name = "worker process"

    def __init__(self, config: dict, twilio_base: str, workdir: Path, name: str):
        config_path = workdir / f"{name}.json"
        config_path.write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "TWILIO_", "DATABASE_URL"))}
        super().__init__([sys.executable, "-m", "tests.live.worker_process", str(config_path), twilio_base], env, workdir / f"{name}.log")

    def ready(self) -> bool:
        return self.holder() is not None

    def holder(self) -> str | None:
        """The holder id this process claims tasks and leases with (its `main` prints it)."""
        for line in self.output().splitlines():
            if line.startswith("Worker ") and line.endswith(" ready"):
                return line.split()[1]
        return None


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
