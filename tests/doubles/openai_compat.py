"""A local OpenAI-compatible chat-completions server, for tests and benchmarks.

It answers `POST /v1/chat/completions` the way OpenAI (and vLLM, Ollama...) do, so the app's real
`openai` SDK client talks to it over HTTP: latency, HTTP errors and malformed output are scriptable,
and every request body is recorded for assertions.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import ThreadingHTTPServer

from tests.doubles.http import DoubleHandler

DEFAULT_SUMMARY = {
    "customer_name": "Jane Doe",
    "reason": "a duplicate charge on her order",
    "details": ["Order A-7731 was charged twice"],
    "steps_taken": ["Agent checked the payment history"],
    "next_steps": "Refund the duplicate charge",
    "sentiment": "frustrated",
    "urgency": "medium",
}


class OpenAICompatibleDouble:
    def __init__(self):
        self.latency_s = 0.0
        self.status = 200
        self.content: Callable[[dict], str] | str | None = None  # None: DEFAULT_SUMMARY as JSON
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="llm-double", daemon=True).start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _reply(self, body: dict) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(body)
            latency, status, content = self.latency_s, self.status, self.content
        time.sleep(latency)  # the scripted model latency this double exists to provide
        if status != 200:
            return status, {"error": {"message": "scripted failure", "type": "server_error", "code": None}}
        if content is None:
            text = json.dumps(DEFAULT_SUMMARY)
        elif callable(content):
            text = content(body)
        else:
            text = content
        return 200, {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "test-model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
        }

    def _handler(self):
        double = self

        class Handler(DoubleHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = json.loads(self.read_body() or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    status, payload = 404, {"error": {"message": f"no route {self.path}"}}
                else:
                    status, payload = double._reply(body)
                self.send(status, "application/json", json.dumps(payload).encode())

        return Handler
