"""`make run` stops every process it started when it is told to stop.

Found in review: run.sh ran gunicorn in the foreground, and bash runs a trap only after its
foreground child exits, so a SIGTERM to `make run` (GNU make passes SIGTERM on to the recipe it is
running) left gunicorn — and with it the port — behind. This starts the README's first command as
a user or a supervisor would (its own session, a free port, a throwaway SQLite file), sends
`make` one SIGTERM, and checks that every process under it is gone.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.harness.server import ROOT, free_port

pytestmark = pytest.mark.e2e


def _descendants(root: int) -> dict[int, str]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited while we looked
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found: dict[int, str] = {}
    stack = [root]
    while stack:
        for pid in children.get(stack.pop(), []):
            try:
                found[pid] = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()
            except OSError:
                continue
            stack.append(pid)
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_sigterm_to_make_run_stops_everything_it_started(tmp_path):
    port = free_port()
    env = dict(os.environ, API_PORT=str(port), DATABASE_URL=f"sqlite:///{tmp_path}/run.db", WEB_CONCURRENCY="1")
    env.pop("APP_ENV", None)
    log = tmp_path / "make-run.log"
    with open(log, "wb") as out:
        make = subprocess.Popen(["make", "-s", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    tree: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health/live", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert make.poll() is None, f"make run exited early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"make run never answered:\n{log.read_text()[-3000:]}"
            time.sleep(0.25)  # polling the child's port until it serves
        tree = _descendants(make.pid)
        assert any("gunicorn" in cmd for cmd in tree.values()) and any("worker" in cmd for cmd in tree.values()), tree

        os.kill(make.pid, signal.SIGTERM)
        make.wait(60)
        left = {pid: cmd for pid, cmd in tree.items() if _running(pid)}
        assert left == {}, f"still running after make run was stopped: {left}\n{log.read_text()[-2000:]}"
    finally:
        # Whatever this test left (on failure), it must not outlive it.
        for pid in [make.pid, *tree]:
            if _running(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
