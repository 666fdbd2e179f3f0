"""HTTP clients the multi-process suites (fault, cluster) share: an agent's event stream read on
a thread, and the Twilio simulator's webhook poster over real HTTP."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

from tests.support import parse_sse

# How long a webhook post may take before the simulator gives up (Twilio waits 15 s; our
# suites' bound is tighter so that a hung app fails the test quickly).
WEBHOOK_TIMEOUT_S = 8.0


class Stream:
    """An agent's open `/api/events` stream, read on a thread; every event is kept."""

    def __init__(self, response: requests.Response, resumed_from: int | None = None):
        self.response = response
        self.resumed_from = resumed_from  # the Last-Event-ID it was opened with
        self.events: list[dict] = []
        self.closed: str | None = None
        self._cond = threading.Condition()
        threading.Thread(target=self._read, name="sse-reader", daemon=True).start()

    def _read(self) -> None:
        buffer = ""
        why = "ended"
        try:
            for chunk in self.response.iter_content(chunk_size=None):
                buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    if block.startswith(":"):
                        continue
                    parsed = parse_sse(block + "\n\n")
                    with self._cond:
                        self.events.extend(parsed)
                        self._cond.notify_all()
        except Exception as err:  # the stream broke (server gone, connection cut): recorded
            why = f"broken: {type(err).__name__}"
        with self._cond:
            self.closed = why
            self._cond.notify_all()

    @property
    def last_id(self) -> int | None:
        with self._cond:
            ids = [int(e["id"]) for e in self.events if str(e.get("id", "")).isdigit()]
        if self.resumed_from is not None:
            ids.append(self.resumed_from)
        return max(ids) if ids else None

    def find(self, event_type: str, where: Callable[[dict], bool] = lambda d: True) -> dict | None:
        with self._cond:
            for event in self.events:
                if event.get("event") == event_type and isinstance(event.get("data"), dict) and where(event["data"]):
                    return event
        return None

    def wait_for(self, event_type: str, where: Callable[[dict], bool] = lambda d: True, timeout: float = 10.0) -> dict | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if event.get("event") == event_type and isinstance(event.get("data"), dict) and where(event["data"]):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self._cond.wait(left)

    def close(self) -> None:
        self.response.close()


class WebhookClient:
    """The simulator posts its webhooks to gunicorn over HTTP (it was written for a Flask test
    client: same call shape, same answer shape)."""

    class _Answer:
        def __init__(self, r: requests.Response):
            self.status_code = r.status_code
            self.mimetype = r.headers.get("Content-Type", "").split(";")[0].strip()
            self.headers = r.headers
            self._content = r.content

        def get_data(self, as_text: bool = False):
            return self._content.decode() if as_text else self._content

    def __init__(self):
        self.http = requests.Session()
        self.answers: list[tuple[str, int, float]] = []

    def post(self, path, data=None, headers=None, base_url="", content_type=None):
        all_headers = dict(headers or {})
        if content_type:
            all_headers["Content-Type"] = content_type
        started = time.monotonic()
        r = self.http.post(base_url + path, data=data, headers=all_headers, timeout=(3.0, WEBHOOK_TIMEOUT_S))
        self.answers.append((path, r.status_code, time.monotonic() - started))
        return self._Answer(r)
