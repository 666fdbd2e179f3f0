"""Rendering a scrape: this process's metrics (or, under gunicorn, every worker's), plus the task
counts read from the database; and the bearer-token check both metrics endpoints share.

Multiprocess mode (docs/architecture.md §12). prometheus_client's documentation
(https://prometheus.github.io/client_python/multiprocess/) lists what it costs: the directory
must be wiped between runs; "registries can not be used as normal, all instantiated metrics are
exported"; custom collectors do not work (they run in whichever process answers, not in all);
gauges need a multiprocess mode and cannot use set_function; no Info or Enum, no exemplars,
no pushgateway. So a scrape builds a fresh registry with the MultiProcessCollector, which
merges every process's files, and the one custom collector here (TaskStates) is safe only
because it reads the shared database: any process that answers sees the same counts.
"""
from __future__ import annotations

import glob
import hmac
import logging
import os

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app import outbox
from app.db import Database
from app.models import Task

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
TASK_STATES = (outbox.PENDING, outbox.RUNNING, outbox.DONE, outbox.FAILED)


def multiprocess_dir() -> str | None:
    """The shared directory when this process runs in prometheus_client's multiprocess mode."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return path if path and os.path.isdir(path) else None


class TaskStates:
    """wt_tasks{state}: the tasks table counted by state when scraped. A gauge of the database, not
    of a process: every exposer reports the same value (aggregate with max, never sum). With the
    database down it yields nothing rather than failing the scrape."""

    def __init__(self, db: Database):
        self.db = db

    def describe(self):
        return []  # registering must not query the database

    def collect(self):
        try:
            with self.db.reading() as s:
                counts = dict(s.execute(select(Task.state, func.count()).group_by(Task.state)).all())
        except SQLAlchemyError as err:
            log.warning("wt_tasks skipped: the database did not answer (%s)", type(err).__name__)
            return
        family = GaugeMetricFamily("wt_tasks", "Tasks in the tasks table by state (the whole deployment's, read at scrape time).", labels=["state"])
        for state in TASK_STATES:
            family.add_metric([state], counts.get(state, 0))
        yield family


class _OwnFiles:
    """This process's files only, for a process that shares a multiprocess directory but must
    expose only itself (the worker, should PROMETHEUS_MULTIPROC_DIR reach it too)."""

    def __init__(self, path: str):
        self.path = path

    def collect(self):
        files = glob.glob(os.path.join(self.path, f"*_{os.getpid()}.db"))
        return MultiProcessCollector.merge(files, accumulate=True)


def render(db: Database | None, *, all_processes: bool) -> bytes:
    """The exposition text. `all_processes`: every gunicorn worker's metrics (the web app);
    else this process's alone (the worker). `db`: also count the tasks table."""
    path = multiprocess_dir()
    if path is None:
        body = generate_latest(REGISTRY)  # one process: its own registry, with process_* and python_*
    else:
        registry = CollectorRegistry()
        if all_processes:
            MultiProcessCollector(registry, path)
        else:
            registry.register(_OwnFiles(path))
        body = generate_latest(registry)
    if db is not None:
        tasks = CollectorRegistry(auto_describe=False)
        tasks.register(TaskStates(db))
        body += generate_latest(tasks)
    return body


def token_ok(expected: str, authorization: str | None) -> bool:
    """True when no token is configured, or `authorization` is `Bearer <expected>` (compared in
    constant time, so the answer's timing says nothing about how much of a guess was right)."""
    if not expected:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())
