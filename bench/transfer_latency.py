"""Transfer click → Agent B notified, with an LLM that takes 1.5 s to answer.

Three ways, measured in one run on one server:
- draft ready (this design): context changes trigger a background draft summary; by the time
  Agent A clicks, the summary exists, so the transfer goes out at once and Agent B gets it by SSE;
- generate on click, SSE: the summary is made when Agent A clicks (the original design's flow),
  with push delivery;
- original design: generate on click, and Agent B polls every 2 s.

Latency = from just before Agent A's initiate-transfer request to Agent B receiving
`transfer_requested`. The LLM is a local OpenAI-compatible server with a fixed latency.

Usage: .venv/bin/python -m bench.transfer_latency [--rounds 20] [--llm-latency 1.5]
"""
from __future__ import annotations

import argparse
import threading
import time

import requests

from bench.common import add_agent, describe, percentile, running_app
from bench.sse_latency import Agent
from tests.doubles.openai_compat import OpenAICompatibleDouble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--llm-latency", type=float, default=1.5)
    parser.add_argument("--poll-interval", type=float, default=2.0)
    args = parser.parse_args()

    llm = OpenAICompatibleDouble()
    llm.latency_s = args.llm_latency
    env = {
        "LLM_PROVIDER": "openai",
        "LLM_BASE_URL": llm.base_url,
        "LLM_MODEL": "bench-model",
        "LLM_TIMEOUT_S": "5",
        "TRANSFER_SUMMARY_BUDGET_S": "4",
        "DRAFT_DEBOUNCE_S": "0.3",
    }
    try:
        with running_app(env) as (server, server_env, _double):
            add_agent(server_env, "alice", "alice-password")
            add_agent(server_env, "bob", "bob-password-1")
            agents = {name: Agent(server.url, name, pw) for name, pw in (("alice", "alice-password"), ("bob", "bob-password-1"))}
            streams = {name: agent.stream() for name, agent in agents.items()}
            starts = {name: int(stream.wait_for("ready")["id"]) for name, stream in streams.items()}

            polled: dict[str, float] = {}
            stop = threading.Event()

            def poll(name: str, password: str) -> None:
                poller = Agent(server.url, name, password)
                cursor = starts[name]
                while not stop.is_set():
                    items = poller.http.get(f"{server.url}/api/notifications/{name}?since={cursor}", timeout=10).json()["notifications"]
                    now = time.monotonic()
                    for n in items:
                        if n["type"] == "transfer_requested":
                            polled[n["payload"]["transfer_id"]] = now
                        cursor = n["id"]
                    stop.wait(args.poll_interval)  # the original design's fixed polling period

            for name, pw in (("alice", "alice-password"), ("bob", "bob-password-1")):
                threading.Thread(target=poll, args=(name, pw), daemon=True).start()
            results = {"draft": [], "click_sse": [], "click_poll": []}
            for round_ in range(args.rounds):
                for mode in ("draft", "click"):
                    call = requests.post(f"{server.url}/api/create-call", json={"customer_name": f"Caller {round_}"}, timeout=10).json()
                    sid = call["session_id"]
                    # Routing picks the longest-idle agent: whoever gets the call is Agent A.
                    a_name = call["agent_id"]
                    b_name = "bob" if a_name == "alice" else "alice"
                    a, a_stream, b_stream = agents[a_name], streams[a_name], streams[b_name]
                    a.post("/api/token", {"session_id": sid})
                    a.post("/api/add-context", {"session_id": sid, "text": f"Order A-{7000 + round_} was charged twice"})
                    if mode == "draft":
                        while a_stream.wait_for("summary_ready", timeout=30)["data"]["session_id"] != sid:
                            continue
                    t0 = time.monotonic()
                    transfer = a.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": b_name})["transfer"]
                    while True:
                        event = b_stream.wait_for("transfer_requested", timeout=30)
                        if event["data"]["transfer_id"] == transfer["id"]:
                            break
                    got = time.monotonic()
                    if mode == "draft":
                        results["draft"].append(got - t0)
                    else:
                        results["click_sse"].append(got - t0)
                        deadline = time.monotonic() + args.poll_interval * 2 + 5
                        while transfer["id"] not in polled and time.monotonic() < deadline:
                            time.sleep(0.01)  # waiting for the poller thread's next round
                        results["click_poll"].append(polled[transfer["id"]] - t0)
                    a.post("/api/cancel-transfer", {"transfer_id": transfer["id"]})
                    a.post("/api/end-call", {"session_id": sid})
            stop.set()

            print(f"LLM double latency {args.llm_latency}s; {args.rounds} rounds; db: {server_env['DATABASE_URL'].split(':')[0]}")
            print(describe("draft ready + SSE (this design)", results["draft"]))
            print(describe("generate on click + SSE", results["click_sse"]))
            print(describe(f"generate on click + poll {args.poll_interval:g}s", results["click_poll"]))
            base = percentile(results["click_poll"], 99)
            print(f"p99 ratio original/this design: {base / percentile(results['draft'], 99):.0f}x")
            print(f"LLM requests: {len(llm.requests)} (drafts and on-click summaries)")
    finally:
        llm.stop()


if __name__ == "__main__":
    main()
