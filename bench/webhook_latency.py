"""Webhook latency while Twilio, LiveKit and the LLM are slow: the webhooks must not notice.

One phone call's life, round after round, every webhook posted as Twilio or livekit-server posts
it (real X-Twilio-Signature from RequestValidator, real signed LiveKit webhook tokens): the
caller arrives, LiveKit reports them, a transcript line comes in, a phone transfer rings, is
answered and declined, the caller hangs up. Run twice in one process: with every double
answering at once, then with the LiveKit Twirp double, Twilio's REST API and the LLM each taking
--delay seconds per request. The app and a worker run in this process (the app behind werkzeug's
threaded server), because Twilio's REST API is reached through the twilio library's HTTP client.

Usage: .venv/bin/python -m bench.webhook_latency [--rounds 10] [--delay 5]
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import uuid
from collections import defaultdict

import requests
from livekit.protocol import models
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bench.common import in_process_app, percentile
from bench.sse_latency import Agent
from tests.doubles.livekit_twirp import LiveKitTwirpDouble
from tests.doubles.openai_compat import OpenAICompatibleDouble

ACCOUNT_SID = "AC" + "2" * 32
AUTH_TOKEN = "bench-auth-token-webhooks"
ROUTES = ("voice", "livekit joined", "transcription", "transfer status", "transfer answer", "transfer gather",
          "dial-action", "status", "livekit left")


class SlowTwilioHttp(HttpClient):
    """Twilio's REST answers (201 + a Call for create, 200 for updates), `delay` late."""

    def __init__(self):
        super().__init__(logging.getLogger("bench.twilio"), False)
        self.delay = 0.0

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False):
        time.sleep(self.delay)  # the slow Twilio this benchmark is about
        if url.endswith("/Calls.json"):
            return Response(201, json.dumps({"sid": "CA" + uuid.uuid4().hex, "status": "queued"}))
        return Response(200, json.dumps({"sid": url.rsplit("/", 1)[-1].removesuffix(".json"), "status": "completed"}))


class Webhooks:
    def __init__(self, base: str, livekit: LiveKitTwirpDouble):
        self.base = base
        self.livekit = livekit
        self.validator = RequestValidator(AUTH_TOKEN)
        self.http = requests.Session()
        self.times: dict[str, list[float]] = defaultdict(list)

    def _timed(self, route: str, send):
        t0 = time.monotonic()
        response = send()
        self.times[route].append(time.monotonic() - t0)
        assert response.status_code == 200, (route, response.status_code, response.text[:300])
        return response

    def twilio(self, route: str, path: str, params: dict):
        url = self.base + path
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        return self._timed(route, lambda: self.http.post(url, data=params, headers=headers, timeout=30))

    def livekit_event(self, route: str, event: str, room: str, participant: models.ParticipantInfo):
        body, token = self.livekit.webhook(event, room=room, participant=participant)
        return self._timed(route, lambda: self.http.post(self.base + "/livekit/webhook", data=body, headers={"Authorization": token}, timeout=30))


def one_call(hooks: Webhooks, a: Agent, round_: int, services) -> None:
    call_sid, b_sid = "CA" + uuid.uuid4().hex, "CA" + uuid.uuid4().hex
    caller = {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": "+14155550123", "To": "+15550001111", "Direction": "inbound"}
    hooks.twilio("voice", "/twilio/voice", dict(caller, CallStatus="ringing"))
    from sqlalchemy import select

    from app.models import Call

    with services.db.reading() as s:
        call = s.scalar(select(Call).where(Call.twilio_call_sid == call_sid))
    sip = models.ParticipantInfo(sid=f"PA_{round_}", identity="sip_+14155550123", kind=models.ParticipantInfo.Kind.SIP,
                                 joined_at=int(time.time()), attributes={"wt_call": call.id, "wt_role": "customer", "sip.callStatus": "active"})
    hooks.livekit_event("livekit joined", "participant_joined", call.room_name, sip)
    a.post("/api/token", {"session_id": call.id})
    hooks.twilio("transcription", "/twilio/transcription", dict(
        caller, CallStatus="in-progress", TranscriptionEvent="transcription-content", Final="true", Track="inbound_track",
        TranscriptionSid="GT" + uuid.uuid4().hex, SequenceId="1",
        TranscriptionData=json.dumps({"transcript": f"Order A-{7000 + round_} arrived broken.", "confidence": 0.9})))
    transfer = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": "+14155550188"})["transfer"]
    tid = transfer["id"]
    leg = {"CallSid": b_sid, "AccountSid": ACCOUNT_SID, "From": "+15550001111", "To": "+14155550188", "Direction": "outbound-api"}
    hooks.twilio("transfer status", f"/twilio/transfer/{tid}/status", dict(leg, CallStatus="ringing"))
    hooks.twilio("transfer answer", f"/twilio/transfer/{tid}/answer", dict(leg, CallStatus="in-progress", AnsweredBy="human"))
    hooks.twilio("transfer gather", f"/twilio/transfer/{tid}/gather", dict(leg, CallStatus="in-progress", Digits="9"))
    hooks.twilio("dial-action", "/twilio/dial-action", dict(caller, CallStatus="completed", DialCallStatus="completed", DialCallSid="CA" + uuid.uuid4().hex))
    hooks.twilio("status", "/twilio/status", dict(caller, CallStatus="completed"))
    sip.attributes["sip.callStatus"] = "hangup"
    hooks.livekit_event("livekit left", "participant_left", call.room_name, sip)


def run(rounds: int, delay: float) -> dict[str, list[float]]:
    livekit, llm, twilio_http = LiveKitTwirpDouble().start(), OpenAICompatibleDouble(), SlowTwilioHttp()
    tmp = tempfile.mkdtemp(prefix="wt-bench-")
    config = {
        "APP_ENV": "test", "SECRET_KEY": "bench-secret-key-long-enough-xxxxxxxx", "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
        "LIVEKIT_HTTP_URL": livekit.url, "LIVEKIT_API_KEY": livekit.api_key, "LIVEKIT_API_SECRET": livekit.api_secret,
        "LIVEKIT_TIMEOUT_S": delay + 5, "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_PHONE_NUMBER": "+15550001111",
        "TWILIO_TIMEOUT_S": delay + 5, "TRANSCRIPTION_ENABLED": True,
        "LIVEKIT_SIP_HOST": "127.0.0.1:5060", "LIVEKIT_SIP_USERNAME": "twilio", "LIVEKIT_SIP_PASSWORD": "sip-password",
        "LLM_PROVIDER": "openai", "LLM_BASE_URL": llm.base_url, "LLM_MODEL": "bench-model", "LLM_TIMEOUT_S": delay + 5,
        "TRANSFER_SUMMARY_BUDGET_S": 0.5, "DRAFT_DEBOUNCE_S": 0.0, "PHONE_DIAL_RATE_LIMIT": "100000/3600",
    }
    try:
        with in_process_app(config, Client(ACCOUNT_SID, AUTH_TOKEN, http_client=twilio_http)) as (base, services):
            services.agents.add("alice", "Alice", "alice-password")
            a = Agent(base, "alice", "alice-password")
            livekit.delay_s = twilio_http.delay = llm.latency_s = delay
            hooks = Webhooks(base, livekit)
            for round_ in range(rounds):
                one_call(hooks, a, round_, services)
            return hooks.times
    finally:
        livekit.delay_s = twilio_http.delay = llm.latency_s = 0.0
        livekit.stop()
        llm.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--delay", type=float, default=5.0, help="seconds each LiveKit, Twilio and LLM request takes in the slow run")
    args = parser.parse_args()
    for noisy in ("werkzeug", "httpx", "httpx2", "app", "livekit"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    fast = run(args.rounds, 0.0)
    slow = run(args.rounds, args.delay)
    print(f"{args.rounds} phone calls' webhooks; LiveKit, Twilio REST and the LLM answering at once vs after {args.delay:g} s; sqlite")
    print(f"{'webhook':<18} {'p50 fast':>10} {'p50 slow':>10} {'p99 fast':>10} {'p99 slow':>10}   (ms)")
    for route in ROUTES:
        f, s = [v * 1000 for v in fast[route]], [v * 1000 for v in slow[route]]
        print(f"{route:<18} {percentile(f, 50):10.1f} {percentile(s, 50):10.1f} {percentile(f, 99):10.1f} {percentile(s, 99):10.1f}")
    every_fast = [v * 1000 for r in ROUTES for v in fast[r]]
    every_slow = [v * 1000 for r in ROUTES for v in slow[r]]
    print(f"{'all webhooks':<18} {percentile(every_fast, 50):10.1f} {percentile(every_slow, 50):10.1f} "
          f"{percentile(every_fast, 99):10.1f} {percentile(every_slow, 99):10.1f}   max slow {max(every_slow):.1f} ms")


if __name__ == "__main__":
    main()
