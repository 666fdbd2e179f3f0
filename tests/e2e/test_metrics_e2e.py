"""Metrics under real processes: gunicorn with two workers merges every worker's counts
(prometheus_client's multiprocess mode, set up by gunicorn.conf.py) and checks METRICS_TOKEN; the
worker process serves its own /metrics on WORKER_METRICS_PORT."""
from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.server import GunicornServer, WorkerProcess, app_env, flask_cli, free_port

pytestmark = pytest.mark.e2e

TOKEN = "e2e-metrics-token-" + "z" * 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


@pytest.fixture
def env(database_url, livekit_double, make_app, tmp_path):
    make_app()
    return app_env(database_url, livekit_double, METRICS_TOKEN=TOKEN)


def test_two_gunicorn_workers_are_scraped_as_one(env, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from an earlier run")
    # Two threads per worker, one of them reserved: each worker holds at most one event stream,
    # so two open streams are on two different workers.
    env = dict(env, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), SSE_THREAD_RESERVE="1")
    server = GunicornServer(env, tmp_path / "gunicorn.log", workers=2, threads=2).start()
    streams = []
    try:
        assert not (metrics_dir / "counter_999999.db").exists()  # emptied at start
        assert requests.get(f"{server.url}/metrics", timeout=5).status_code == 401
        wrong = requests.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=5)
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "metrics_token_required"

        flask_cli(env, "agents", "add", "alice", "--name", "Alice", "--password", "alice-password-1")
        alice = requests.Session()
        assert alice.post(f"{server.url}/api/login", json={"agent_id": "alice", "password": "alice-password-1"}, timeout=5).status_code == 200
        for _attempt in range(50):  # a full worker answers 503 streams_full; the other takes it
            r = alice.get(f"{server.url}/api/events", headers={"Connection": "close"}, stream=True, timeout=(5, 30))
            if r.status_code == 200:
                streams.append(r)
            else:
                assert r.status_code == 503 and r.json()["error"]["code"] == "streams_full"
                r.close()
            if len(streams) == 2:
                break
        assert len(streams) == 2
        key = ("wt_webhook_seconds_count", (("route", "livekit.webhook"),))
        before = _samples(requests.get(f"{server.url}/metrics", headers=AUTH, timeout=5).text).get(key, 0)
        sent = 20
        for _ in range(sent):  # a forged webhook is still answered (401), and timed
            r = requests.post(f"{server.url}/livekit/webhook", data="{}", headers={"Authorization": "forged", "Connection": "close"}, timeout=5)
            assert r.status_code == 401
        for _ in range(6):  # whichever worker answers the scrape reports both workers' numbers
            scraped = _samples(requests.get(f"{server.url}/metrics", headers={**AUTH, "Connection": "close"}, timeout=5).text)
            assert scraped[("wt_sse_streams", ())] == 2
            assert scraped[key] - before == sent
            assert scraped[("wt_tasks", (("state", "pending"),))] >= 0
    finally:
        for r in streams:
            r.close()
        server.stop()


def test_the_worker_serves_its_own_metrics(env, tmp_path):
    port = free_port()
    worker = WorkerProcess(dict(env, WORKER_METRICS_PORT=str(port), API_HOST="127.0.0.1"), tmp_path / "worker.log").start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        refused = requests.get(url, timeout=5)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "metrics_token_required"
        r = requests.get(url, headers=AUTH, timeout=5)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
        names = {f.name for f in text_string_to_metric_families(r.text)}
        assert {"wt_transfers", "wt_transfer_notify_seconds", "wt_external_errors", "wt_llm_seconds"} <= names
        assert "wt_tasks" not in names  # the web app's, read from the database: one exposer
        assert requests.get(f"http://127.0.0.1:{port}/other", headers=AUTH, timeout=5).status_code == 404
    finally:
        worker.stop()
