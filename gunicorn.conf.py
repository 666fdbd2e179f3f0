"""gunicorn settings for the web process (Procfile `web:` and `make run`).

Threaded workers: every open Server-Sent Events stream holds a thread, so an instance needs as
many threads as it has connected agents plus headroom for ordinary requests. Threads are created
on demand, so a large pool costs little until it is used.
"""
import os

bind = f"{os.environ.get('API_HOST', '0.0.0.0')}:{os.environ.get('PORT') or os.environ.get('API_PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "512"))
worker_connections = 2000
# SSE responses are long-lived; the gthread worker keeps heartbeating while they stream.
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = "-" if os.environ.get("ACCESS_LOG", "1") == "1" else None
errorlog = "-"

# -- Prometheus multiprocess mode (docs/architecture.md §12) ------------------------------------
# Each worker writes its metrics to files in PROMETHEUS_MULTIPROC_DIR and /metrics merges them all.
# prometheus_client chooses the mode from the environment when it is first imported, which happens
# in the workers after they fork from this master, so setting it here reaches every worker. Unset,
# a fresh directory is made for this run (and removed at exit); an operator's directory is emptied
# at start, as prometheus_client requires: https://prometheus.github.io/client_python/multiprocess/
# This runs before the app is imported below, so prometheus_client is never imported without it.
_METRICS_DIR_PREFIX = "wt-metrics-"  # marks a directory made here (a reload re-reads this file)
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=_METRICS_DIR_PREFIX)

# Logs: gunicorn's own lines (the master's, errors, the access log) in the app's format, through the
# app's one handler, access lines without query strings (app.logs, docs/architecture.md §13).
from app.config import load_dotenv_for_development, log_choice  # noqa: E402
from app.logs import gunicorn_logconfig  # noqa: E402

load_dotenv_for_development()
logconfig_dict = gunicorn_logconfig(*log_choice(), access_log=accesslog is not None)


def post_worker_init(worker):
    """On a graceful stop (SIGTERM), end this worker's SSE streams first.

    Otherwise every open stream holds the worker until graceful_timeout. The browser's
    EventSource reconnects (to another worker) with Last-Event-ID and misses nothing.
    """
    import signal

    def handle_exit(sig, frame):
        from app.event_dispatcher import close_local_streams

        close_local_streams()
        worker.handle_exit(sig, frame)

    signal.signal(signal.SIGTERM, handle_exit)


def on_starting(server):
    import glob

    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)  # counts of a previous run would be merged into this one's


def child_exit(server, worker):
    # A dead worker's live gauges (open SSE streams) must stop counting; its counters stay summed.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    if os.path.basename(path).startswith(_METRICS_DIR_PREFIX):
        import shutil

        shutil.rmtree(path, ignore_errors=True)
