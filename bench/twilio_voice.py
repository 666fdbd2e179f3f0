"""/twilio/voice under load: new inbound calls per second, each creating a call, its assignment and
the bridging TwiML; the call's LiveKit room is created by the worker process (a task written in
the same transaction), through the Twirp double over HTTP, after the webhook has answered.

Open-loop: requests are sent on a fixed schedule whatever the server does, and latency is measured
from the scheduled send time, so a slow server cannot hide its queueing (no coordinated omission).
Every request carries a real X-Twilio-Signature computed with RequestValidator.

Usage: .venv/bin/python -m bench.twilio_voice [--rate 100] [--seconds 10]
"""
from __future__ import annotations

import argparse
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from twilio.request_validator import RequestValidator

from bench.common import add_agents, describe, running_app

AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "0" * 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="new calls per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--agents", type=int, default=50, help="available agents (the rest of the calls queue)")
    args = parser.parse_args()

    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": "+15550001111",
        "LIVEKIT_SIP_HOST": "127.0.0.1:5060",
        "LIVEKIT_SIP_USERNAME": "twilio",
        "LIVEKIT_SIP_PASSWORD": "sip-password",
    }
    with running_app(env) as (server, server_env, double):
        # PUBLIC_BASE_URL must be what the client signs: the server's own URL.
        server.stop()
        server.env["PUBLIC_BASE_URL"] = server.url
        server.start()
        add_agents(server_env, [(f"agent{i}", "agent-password") for i in range(args.agents)])
        for i in range(args.agents):
            requests.post(f"{server.url}/api/login", json={"agent_id": f"agent{i}", "password": "agent-password"}, timeout=10)

        url = f"{server.url}/twilio/voice"
        validator = RequestValidator(AUTH_TOKEN)
        local = threading.local()
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def one(scheduled: float) -> None:
            if not hasattr(local, "http"):
                local.http = requests.Session()
            params = {
                "CallSid": "CA" + uuid.uuid4().hex,
                "AccountSid": ACCOUNT_SID,
                "From": "+14155550123",
                "To": "+15550001111",
                "CallStatus": "ringing",
                "Direction": "inbound",
            }
            headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
            try:
                r = local.http.post(url, data=params, headers=headers, timeout=10)
                ok = r.status_code == 200 and r.headers["Content-Type"].startswith("text/xml") and ("<Dial" in r.text or "<Redirect" in r.text)
                problem = None if ok else f"{r.status_code} {r.text[:120]}"
            except requests.RequestException as err:
                problem = repr(err)
            done = time.monotonic()
            with lock:
                latencies.append(done - scheduled)
                if problem:
                    errors.append(problem)

        total = int(args.rate * args.seconds)
        start = time.monotonic() + 0.5
        with ThreadPoolExecutor(max_workers=64) as pool:
            for i in range(total):
                scheduled = start + i / args.rate
                delay = scheduled - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # the open-loop schedule itself
                pool.submit(one, scheduled)
        elapsed = time.monotonic() - start
        last = time.monotonic()
        while len(double.rooms) < total - len(errors) and time.monotonic() - last < 60:
            time.sleep(0.05)  # the worker creates the rooms after the webhooks answered
        print(f"{total} inbound calls at {args.rate:g}/s for {args.seconds:g}s (achieved {total / elapsed:.0f}/s); "
              f"db: {server_env['DATABASE_URL'].split(':')[0]}; rooms created by the worker: {len(double.rooms)}, "
              f"the last {time.monotonic() - last:.2f}s after the last call")
        print(describe("/twilio/voice", latencies))
        print(f"errors: {len(errors)}" + (f"  first: {errors[0]}" if errors else ""))


if __name__ == "__main__":
    main()
