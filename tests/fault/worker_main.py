"""`flask --app app worker --no-hold-audio`, with Twilio's REST API at a given base URL.

    python -m tests.fault.worker_main TWILIO_API_BASE

Settings come from the environment exactly as for `flask --app app worker`. The one difference:
the twilio library's HTTP client sends what it would send to https://api.twilio.com to
TWILIO_API_BASE instead (the fault proxy in front of the Twilio simulator's HTTP front). Paths,
form fields, auth, timeouts (TWILIO_TIMEOUT_S) and error parsing are the real library's.
Only the worker talks to Twilio's REST API; the web process never does.
"""
from __future__ import annotations

import signal
import sys

from twilio.rest import Client

from tests.doubles.twilio_rebased import RebasedHttpClient


def main(twilio_base: str) -> int:
    from app import create_app
    from app.config import load_settings
    from app.db import migrate
    from app.services import build_services
    from app.worker import Worker

    settings = load_settings()
    client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN,
                    http_client=RebasedHttpClient(twilio_base, timeout=settings.TWILIO_TIMEOUT_S))
    services = build_services(settings, twilio_client=client)
    create_app(services=services)  # logging and wiring, as `flask --app app` does
    migrate(services.db)
    worker = Worker(services, hold_audio=False)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.request_stop())
    print(f"Worker {worker.holder}: {worker.threads} task threads, hold audio off, Twilio REST at {twilio_base}.", flush=True)
    worker.run_forever()
    print("Worker stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
