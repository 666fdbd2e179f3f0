"""Transfer click → Twilio `calls.create` sent for a phone Agent B, with an LLM that takes 1.5 s.

The app and a worker run in this process (the app behind a real threaded HTTP server), because
Twilio's REST API is unreachable here: their `twilio.rest.Client` is given an HTTP client that
answers exactly what Twilio answers (201 and a Call resource) and records when the request was
made. The worker places the call (a task written by initiate-transfer). Latency = from just before
Agent A's initiate-transfer request to the moment `calls.create` goes out.

- draft ready (this design): the background draft exists before the click;
- generate on click (the original design): the summary is made when Agent A clicks.

Usage: .venv/bin/python -m bench.phone_transfer [--rounds 20] [--llm-latency 1.5]
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import uuid

import requests
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bench.common import describe, in_process_app, percentile
from bench.sse_latency import Agent
from tests.doubles.livekit_twirp import LiveKitTwirpDouble
from tests.doubles.openai_compat import OpenAICompatibleDouble

ACCOUNT_SID = "AC" + "1" * 32


class RecordingTwilioHttp(HttpClient):
    """Twilio's side of `POST /2010-04-01/Accounts/<sid>/Calls.json`: the real response shape."""

    def __init__(self):
        super().__init__(logging.getLogger("bench.twilio"), False)
        self.created: list[float] = []

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False):
        now = time.monotonic()
        if method == "POST" and url.endswith("/Calls.json"):
            self.created.append(now)
            sid = "CA" + uuid.uuid4().hex
            body = {"sid": sid, "account_sid": ACCOUNT_SID, "status": "queued", "to": data.get("To"), "from": data.get("From")}
            return Response(201, json.dumps(body))
        return Response(200, json.dumps({"sid": url.rsplit("/", 1)[-1].removesuffix(".json"), "status": "canceled"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--llm-latency", type=float, default=1.5)
    args = parser.parse_args()
    for noisy in ("werkzeug", "httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    livekit, llm = LiveKitTwirpDouble().start(), OpenAICompatibleDouble()
    llm.latency_s = args.llm_latency
    twilio_http = RecordingTwilioHttp()
    tmp = tempfile.mkdtemp(prefix="wt-bench-")
    config = {
        "APP_ENV": "test",
        "SECRET_KEY": "bench-secret-key-long-enough-xxxxxxxx",
        "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
        "LIVEKIT_HTTP_URL": livekit.url,
        "LIVEKIT_API_KEY": livekit.api_key,
        "LIVEKIT_API_SECRET": livekit.api_secret,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "bench-auth-token",
        "TWILIO_PHONE_NUMBER": "+15550001111",
        "LIVEKIT_SIP_HOST": "127.0.0.1:5060",
        "LIVEKIT_SIP_USERNAME": "twilio",
        "LIVEKIT_SIP_PASSWORD": "sip-password",
        "LLM_PROVIDER": "openai",
        "LLM_BASE_URL": llm.base_url,
        "LLM_MODEL": "bench-model",
        "LLM_TIMEOUT_S": 5.0,
        "TRANSFER_SUMMARY_BUDGET_S": 4.0,
        "DRAFT_DEBOUNCE_S": 0.3,
        "CREATE_CALL_RATE_LIMIT": "100000/60",
        "PHONE_DIAL_RATE_LIMIT": "100000/3600",
    }
    try:
        with in_process_app(config, Client(ACCOUNT_SID, "bench-auth-token", http_client=twilio_http)) as (url, services):
            services.agents.add("alice", "Alice", "alice-password")
            a = Agent(url, "alice", "alice-password")
            a_stream = a.stream()
            a_stream.wait_for("ready")
            measure(args, a, a_stream, url, twilio_http)
    finally:
        livekit.stop()
        llm.stop()


def measure(args, a: Agent, a_stream, url: str, twilio_http: RecordingTwilioHttp) -> None:
    results: dict[str, list[float]] = {"draft": [], "click": []}
    for round_ in range(args.rounds):
        for mode in ("draft", "click"):
            call = requests.post(f"{url}/api/create-call", json={"customer_name": f"Caller {round_}"}, timeout=10).json()
            sid = call["session_id"]
            a.post("/api/token", {"session_id": sid})
            a.post("/api/add-context", {"session_id": sid, "text": f"Order A-{7000 + round_} was charged twice"})
            if mode == "draft":
                while a_stream.wait_for("summary_ready", timeout=30)["data"]["session_id"] != sid:
                    continue
            before = len(twilio_http.created)
            t0 = time.monotonic()
            transfer = a.post("/api/initiate-transfer", {"session_id": sid, "to_phone": "+14155550188"})["transfer"]
            deadline = time.monotonic() + 30
            while len(twilio_http.created) == before:
                assert time.monotonic() < deadline, "calls.create was not sent"
                time.sleep(0.001)  # the worker sends it; we watch for it
            results[mode].append(twilio_http.created[-1] - t0)
            a.post("/api/cancel-transfer", {"transfer_id": transfer["id"]})
            a.post("/api/end-call", {"session_id": sid})
    print(f"LLM double latency {args.llm_latency}s; {args.rounds} rounds; in-process app on werkzeug's threaded server and worker; sqlite")
    print(describe("draft ready → calls.create", results["draft"]))
    print(describe("generate on click → calls.create", results["click"]))
    print(f"p99 ratio on-click/draft: {percentile(results['click'], 99) / percentile(results['draft'], 99):.0f}x")


if __name__ == "__main__":
    main()
