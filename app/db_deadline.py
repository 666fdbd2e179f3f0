"""No wait on PostgreSQL is unbounded (docs/architecture.md, "Database timeouts").

Without this, a database that answers slowly, or a link that died without a reset (a network
partition, a half-open connection), holds a request thread or the worker's task-claiming loop
for as long as TCP does — minutes, and with keepalives off, forever. Three bounds:

- every exchange with the server (a statement, a commit, a ping) gives up after DB_TIMEOUT_S:
  psycopg's own `Connection.wait` takes a timeout (psycopg 3.3, connection.py; it raises
  `_WaitTimeout`), which this connection class always passes. The connection is then in an
  unknown state, so it is closed, and SQLAlchemy sees a disconnect (a 503 `db_unavailable` to
  the client; the worker retries the task);
- within a web request all waits on the database together get DB_REQUEST_BUDGET_S
  (`request_budget`), so a request answers in bounded time however many statements it makes — a
  degraded database makes requests fail fast rather than pile up on gunicorn's threads. Only
  time spent waiting on the database counts: a busy machine, where a thread waits for the CPU,
  or a request waiting on LiveKit is not a database fault and is not cut short;
- connecting gives up after DB_CONNECT_TIMEOUT_S (libpq `connect_timeout`), a dead peer is
  noticed by TCP keepalives and `tcp_user_timeout`, and the server itself stops a statement
  after DB_TIMEOUT_S (`statement_timeout`) and drops a transaction left idle by a dead client.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import psycopg
from psycopg import errors as pg_errors


class Budget:
    """Seconds of database waiting one request has left (exchanges and connects together)."""

    __slots__ = ("left",)

    def __init__(self, seconds: float):
        self.left = seconds


_budget: ContextVar[Budget | None] = ContextVar("wt_db_budget", default=None)


@contextmanager
def request_budget(seconds: float) -> Iterator[Budget]:
    """All database waits in this block (this thread's context) add up to at most `seconds`."""
    token = _budget.set(Budget(seconds))
    try:
        yield token.var.get()
    finally:
        _budget.reset(token)


def start_budget(seconds: float):
    """The same, for code that cannot use a with-block (Flask's before/teardown request)."""
    return _budget.set(Budget(seconds))


def end_budget(token) -> None:
    try:
        _budget.reset(token)
    except ValueError:  # set in another context (should not happen): clear it all the same
        _budget.set(None)


def connection_class(exchange_timeout_s: float) -> type[psycopg.Connection]:
    class DeadlineConnection(psycopg.Connection):
        """A psycopg connection none of whose waits outlasts the exchange timeout or the budget."""

        @classmethod
        def connect(cls, conninfo: str = "", **kwargs):
            # Connecting counts against the request's budget too (a pre-ping that fails makes
            # SQLAlchemy reconnect at once). psycopg, like libpq, waits at least 2 s
            # (conninfo.timeout_from_conninfo), so a connection may overrun the budget by that.
            budget = _budget.get()
            if budget is None:
                return super().connect(conninfo, **kwargs)
            if budget.left <= 0:
                raise psycopg.OperationalError("no time left in this request to connect to the database")
            kwargs["connect_timeout"] = max(2, min(int(kwargs.get("connect_timeout") or 2), math.ceil(budget.left)))
            started = time.monotonic()
            try:
                return super().connect(conninfo, **kwargs)
            finally:
                budget.left -= time.monotonic() - started

        def wait(self, gen, interval: float = 0.1, timeout: float | None = None):
            limit = exchange_timeout_s
            budget = _budget.get()
            if budget is not None:
                limit = min(limit, budget.left)
            ours = timeout is None or limit < timeout
            started = time.monotonic()
            try:
                return super().wait(gen, interval=interval, timeout=max(limit, 0.001) if ours else timeout)
            except pg_errors._WaitTimeout:
                if not ours:
                    raise  # the caller's own timeout (e.g. notifies(timeout=1)): theirs to handle
                # Mid-exchange, the protocol state is unknown: the connection cannot be reused.
                self.pgconn.finish()
                raise psycopg.OperationalError(f"the database did not answer within {max(limit, 0):.1f} s") from None
            finally:
                if budget is not None:
                    budget.left -= time.monotonic() - started

    return DeadlineConnection


def connect_args(*, connect_timeout_s: float, exchange_timeout_s: float) -> dict:
    """libpq parameters bounding a connection's setup and its life on a dead link."""
    timeout_ms = int(exchange_timeout_s * 1000)
    return {
        "connect_timeout": max(1, round(connect_timeout_s)),
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        # Data unacknowledged this long means the peer is gone (Linux TCP_USER_TIMEOUT).
        "tcp_user_timeout": timeout_ms,
        "options": f"-c statement_timeout={timeout_ms} -c idle_in_transaction_session_timeout={max(60_000, 4 * timeout_ms)}",
    }
