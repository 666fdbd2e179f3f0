"""A local OpenAI-compatible chat-completions server, for tests and benchmarks.

It answers `POST /v1/chat/completions` the way OpenAI (and vLLM, Ollama...) do, so the app's real
`openai` SDK client talks to it over HTTP: latency, HTTP errors and malformed output are scriptable,
and every request body is recorded for assertions.
"""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

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

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # http.server writes headers and body separately; without TCP_NODELAY, Nagle's
                # algorithm and the client's delayed ACK add ~40 ms to every keep-alive response.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    status, payload = 404, {"error": {"message": f"no route {self.path}"}}
                else:
                    status, payload = double._reply(body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up waiting (a timeout under test); nothing to answer

            def log_message(self, fmt, *args):
                return None

        return Handler
