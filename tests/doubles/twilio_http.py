"""The Twilio simulator over real HTTP, for an app running in other processes (gunicorn, a worker).

`TwilioHttp`, the REST half: in-process code reaches the simulator through `responses`; a
separate process cannot, so this serves the same endpoints (`POST /2010-04-01/Accounts/<sid>/Calls.json`
and `.../Calls/<CallSid>.json`; a recording's media, `GET .../Recordings/<RecordingSid>.mp3|.wav`,
and its deletion, `DELETE .../Recordings/<RecordingSid>.json`) on loopback, checks
HTTP basic auth as Twilio does (401 otherwise), and answers with the simulator's own JSON bodies
and error format.

`WebhookClient`, the webhook half: what the simulator posts goes to the app over HTTP instead of
through a Flask test client.
"""
from __future__ import annotations

import base64
import re
import threading
import time
from http.server import ThreadingHTTPServer
from types import SimpleNamespace

import requests

from tests.doubles.http import DoubleHandler
from tests.doubles.twilio_sim import TwilioSim

LOOPBACK = "127.0.0.1"


class TwilioHttp:
    def __init__(self, sim: TwilioSim, auth_token: str):
        self.sim = sim
        expected = base64.b64encode(f"{sim.account_sid}:{auth_token}".encode()).decode()
        calls = re.escape(f"/2010-04-01/Accounts/{sim.account_sid}/Calls")
        create, update = re.compile(calls + r"\.json$"), re.compile(calls + r"/CA[0-9a-f]{32}\.json$")
        recordings = re.escape(f"/2010-04-01/Accounts/{sim.account_sid}/Recordings/") + r"RE[0-9a-f]{32}"
        media, delete = re.compile(recordings + r"(\.mp3|\.wav)?$"), re.compile(recordings + r"\.json$")
        front = self

        class Handler(DoubleHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = self.read_body()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    self.send(401, "application/json", b'{"code": 20003, "message": "Authenticate", "status": 401}')
                    return
                handler = sim._create if create.search(self.path) else sim._update if update.search(self.path) else None
                if handler is None:
                    self.send(404, "application/json", b'{"code": 20404, "message": "Not found", "status": 404}')
                    return
                request = SimpleNamespace(method="POST", url=front.base + self.path, body=body, headers=self.headers)
                status, headers, payload = sim._gate(request, handler)
                self.send(status, headers.get("Content-Type", "application/json"), payload.encode())

            def _recording(self, method: str, pattern, handler):
                if not pattern.search(self.path):
                    self.send(404, "application/json", b'{"code": 20404, "message": "Not found", "status": 404}')
                    return
                request = SimpleNamespace(method=method, url=front.base + self.path, body=b"", headers=self.headers)
                status, headers, payload = sim._gate(request, handler)
                self.send(status, headers.get("Content-Type", "application/json"), payload if isinstance(payload, bytes) else payload.encode())

            def do_GET(self):  # noqa: N802 (http.server naming)
                self._recording("GET", media, sim._media)

            def do_DELETE(self):  # noqa: N802 (http.server naming)
                self._recording("DELETE", delete, sim._delete_recording)

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="twilio-http", daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WebhookClient:
    """The simulator posts its webhooks to the app (gunicorn) over HTTP (it was written for a
    Flask test client: same call shape, same answer shape). `answers` records each post's path,
    status and seconds."""

    class _Answer:
        def __init__(self, r: requests.Response):
            self.status_code = r.status_code
            self.mimetype = r.headers.get("Content-Type", "").split(";")[0].strip()
            self.headers = r.headers
            self._content = r.content

        def get_data(self, as_text: bool = False):
            return self._content.decode() if as_text else self._content

    def __init__(self, timeout: tuple[float, float] = (3.0, 8.0)):
        self.http = requests.Session()
        self.timeout = timeout  # (connect, read) seconds
        self.answers: list[tuple[str, int, float]] = []

    def post(self, path, data=None, headers=None, base_url="", content_type=None):
        all_headers = dict(headers or {})
        if content_type:
            all_headers["Content-Type"] = content_type
        started = time.monotonic()
        r = self.http.post(base_url + path, data=data, headers=all_headers, timeout=self.timeout)
        self.answers.append((path, r.status_code, time.monotonic() - started))
        return self._Answer(r)
