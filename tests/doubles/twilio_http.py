"""The Twilio simulator's REST half over real HTTP, for a worker running in another process.

In-process code reaches the simulator through `responses`; a separate process cannot, so this
serves the same two endpoints (`POST /2010-04-01/Accounts/<sid>/Calls.json` and
`.../Calls/<CallSid>.json`) on loopback, checks HTTP basic auth as Twilio does (401 otherwise),
and answers with the simulator's own JSON bodies and error format.
"""
from __future__ import annotations

import base64
import re
import threading
from http.server import ThreadingHTTPServer
from types import SimpleNamespace

from tests.doubles.http import DoubleHandler
from tests.doubles.twilio_sim import TwilioSim

LOOPBACK = "127.0.0.1"


class TwilioHttp:
    def __init__(self, sim: TwilioSim, auth_token: str):
        self.sim = sim
        expected = base64.b64encode(f"{sim.account_sid}:{auth_token}".encode()).decode()
        calls = re.escape(f"/2010-04-01/Accounts/{sim.account_sid}/Calls")
        create, update = re.compile(calls + r"\.json$"), re.compile(calls + r"/CA[0-9a-f]{32}\.json$")
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
                request = SimpleNamespace(method="POST", url=front.base + self.path, body=body)
                status, headers, payload = sim._gate(request, handler)
                self.send(status, headers.get("Content-Type", "application/json"), payload.encode())

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
