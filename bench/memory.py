"""Memory per active call and per SSE connection, on one gunicorn worker.

Active calls live in the database, not in the process, so the worker's memory should stay flat as
calls accumulate; each open SSE stream costs a thread and a small queue. RSS is read from
/proc/<worker>/status after each step.

Usage: .venv/bin/python -m bench.memory [--calls 2000] [--streams 400]
"""
from __future__ import annotations

import argparse
import gc
from pathlib import Path

import requests

from bench.common import IdleStreams, add_agents, login_cookie, running_app


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=400)
    args = parser.parse_args()

    with running_app(workers=1, threads=args.streams + 64) as (server, env, _double):
        worker = worker_pid(server.proc.pid)
        http = requests.Session()
        for _ in range(50):  # warm the worker: imports, pools, first-request caches
            http.post(f"{server.url}/api/create-call", json={"customer_name": "Warm Up"}, timeout=10)
        base = rss_kb(worker)
        print(f"worker RSS after warm-up: {base / 1024:.1f} MiB")
        print(f"{'active calls':>13} {'RSS MiB':>8} {'KiB/call since warm-up':>23}")
        made = 50
        for target in [args.calls // 4, args.calls // 2, args.calls]:
            while made < target:
                r = http.post(f"{server.url}/api/create-call", json={"customer_name": f"Caller {made}"}, timeout=10)
                r.raise_for_status()
                made += 1
            now = rss_kb(worker)
            print(f"{made:>13} {now / 1024:>8.1f} {(now - base) / (made - 50):>23.2f}")

        add_agents(env, [(f"idle{i}", "idle-password") for i in range(args.streams)])
        cookies = [login_cookie(server.url, f"idle{i}", "idle-password") for i in range(args.streams)]
        gc.collect()
        before = rss_kb(worker)
        print(f"{'SSE streams':>13} {'RSS MiB':>8} {'KiB/stream':>23}")
        opened: list[IdleStreams] = []
        for step in (args.streams // 4, args.streams // 2, args.streams):
            chunk = cookies[sum(len(o._socks) for o in opened):step]
            streams = IdleStreams(server.url, chunk)
            streams.wait_ready()
            opened.append(streams)
            now = rss_kb(worker)
            print(f"{step:>13} {now / 1024:>8.1f} {(now - before) / step:>23.1f}")
        for streams in opened:
            streams.close()


if __name__ == "__main__":
    main()
