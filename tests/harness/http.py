"""What the multi-process suites (fault, cluster) share over HTTP: an agent's event stream read on
a thread. (The simulator's webhook poster over HTTP is tests/doubles/twilio_http.WebhookClient.)"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

from tests.support import parse_sse


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
