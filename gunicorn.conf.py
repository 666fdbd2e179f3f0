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

# Logs: gunicorn's own lines (the master's, errors, the access log) in the app's format, through the
# app's one handler, access lines without query strings (app.logs, docs/architecture.md §12).
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
