"""Event delivery to Agent B: Server-Sent Events vs the original design's polling every 2 s.

Agent A repeatedly starts and cancels a transfer to Agent B on a real gunicorn server. Each of
those writes one event for Agent B. The same events are received two ways at once: over Agent B's
SSE stream and by a poller calling /api/notifications every POLL_INTERVAL seconds (the original
design). Latency = from just before Agent A's request is sent to the moment the event arrives.
Optional idle SSE subscribers load the server like a floor of connected agents.

Usage: .venv/bin/python -m bench.sse_latency [--events 200] [--idle 100] [--poll-interval 2]
"""
from __future__ import annotations

import argparse
import threading
import time

import requests

from bench.common import IdleStreams, add_agent, add_agents, describe, login_cookie, percentile, running_app
from tests.support import SSEReader


class Agent:
    def __init__(self, url: str, agent_id: str, password: str):
        self.url, self.id = url, agent_id
        self.http = requests.Session()
        r = self.http.post(f"{url}/api/login", json={"agent_id": agent_id, "password": password}, timeout=10)
        r.raise_for_status()
        self.csrf = r.json()["csrf_token"]

    def post(self, path: str, body: dict) -> dict:
        r = self.http.post(f"{self.url}{path}", json=body, headers={"X-CSRF-Token": self.csrf}, timeout=10)
        r.raise_for_status()
        return r.json()

    def stream(self) -> SSEReader:
        r = self.http.get(f"{self.url}/api/events", stream=True, timeout=(5, 60))
        r.raise_for_status()
        return SSEReader(r.iter_content(chunk_size=None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--idle", type=int, default=100, help="idle SSE subscribers connected during the run")
    parser.add_argument("--poll-interval", type=float, default=2.0)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between events")
    args = parser.parse_args()

    with running_app() as (server, env, _double):
        add_agent(env, "alice", "alice-password")  # through the operator CLI, as in production
        add_agents(env, [("bob", "bob-password-1")] + [(f"idle{i}", "idle-password") for i in range(args.idle)])
        a = Agent(server.url, "alice", "alice-password")
        call = requests.post(f"{server.url}/api/create-call", json={"customer_name": "Bench Caller"}, timeout=10).json()
        b = Agent(server.url, "bob", "bob-password-1")
        poller = Agent(server.url, "bob", "bob-password-1")
        a.post("/api/token", {"session_id": call["session_id"]})

        idle = IdleStreams(server.url, [login_cookie(server.url, f"idle{i}", "idle-password") for i in range(args.idle)])
        connected = idle.wait_ready()
        stream = b.stream()
        start_id = int(stream.wait_for("ready", timeout=10)["id"])

        sent: list[float] = []
        sse_got: list[float] = []
        poll_got: list[float] = []
        done = threading.Event()

        def poll() -> None:
            cursor = start_id
            while not done.is_set() or len(poll_got) < len(sent):
                r = poller.http.get(f"{server.url}/api/notifications/bob?since={cursor}", timeout=10).json()["notifications"]
                now = time.monotonic()
                for _ in r:
                    poll_got.append(now)
                if r:
                    cursor = r[-1]["id"]
                if done.is_set() and len(poll_got) >= len(sent):
                    break
                time.sleep(args.poll_interval)  # the original design: poll on a fixed period

        def listen() -> None:
            while len(sse_got) < args.events:
                event = stream.next(timeout=30)
                if event.get("event") in ("transfer_requested", "transfer_cancelled"):
                    sse_got.append(time.monotonic())

        threads = [threading.Thread(target=poll, daemon=True), threading.Thread(target=listen, daemon=True)]
        for t in threads:
            t.start()
        transfer_id = None
        for i in range(args.events):
            sent.append(time.monotonic())
            if i % 2 == 0:
                transfer_id = a.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_agent_id": "bob"})["transfer"]["id"]
            else:
                a.post("/api/cancel-transfer", {"transfer_id": transfer_id})
            time.sleep(args.gap)
        done.set()
        for t in threads:
            t.join(timeout=args.poll_interval * 3 + 30)

        sse = [r - s for s, r in zip(sent, sse_got, strict=False)]
        polled = [r - s for s, r in zip(sent, poll_got, strict=False)]
        idle.close()
        print(f"server: gunicorn gthread, 2 workers; db: {env['DATABASE_URL'].split(':')[0]}; idle SSE subscribers: {connected} of {args.idle}")
        print(describe("SSE push (this design)", sse))
        print(describe(f"polling every {args.poll_interval:g}s (original)", polled))
        print(f"p50 ratio polling/SSE: {percentile(polled, 50) / percentile(sse, 50):.0f}x   p99 ratio: {percentile(polled, 99) / percentile(sse, 99):.0f}x")
        missing = args.events - min(len(sse), len(polled))
        print(f"events lost: {missing}")


if __name__ == "__main__":
    main()
