"""A slow or stuck PostgreSQL makes requests fail fast, never hang (docs/architecture.md,
"Database timeouts"). Found by the fault suite: with every exchange slowed to 3 s, API requests
held gunicorn threads for as long as the database took, past Twilio's 15 s webhook budget.

The database is made slow for real here: another connection holds a lock the request needs, so
the request's statement waits on the server exactly as it would behind a stuck migration or a
long transaction. The lock is released only after the request has answered (or given up), so
without the request budget the request would simply wait and then succeed.
"""
from __future__ import annotations

import threading
import time

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.db import Database
from app.db_deadline import request_budget

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_a_request_behind_a_lock_answers_503_within_its_budget(make_app, database_url):
    app = make_app(DB_REQUEST_BUDGET_S=1.0, DB_TIMEOUT_S=60.0)
    client = app.test_client()
    assert client.post("/api/create-call", json={"customer_name": "Before"}).status_code == 201

    answers: list = []
    with psycopg.connect(_plain(database_url)) as locker:
        locker.execute("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")
        thread = threading.Thread(target=lambda: answers.append(client.post("/api/create-call", json={"customer_name": "Stuck"})))
        thread.start()
        thread.join(30)  # a bound for a broken build, not a wait the test relies on
        locker.rollback()
    thread.join()

    response = answers[0]
    assert response.status_code == 503, response.get_json()
    assert response.get_json()["error"]["code"] == "db_unavailable"
    # Nothing was half-written, and the pool gave the next request a working connection.
    again = client.post("/api/create-call", json={"customer_name": "After"})
    assert again.status_code == 201
    services = app.extensions["wt"]
    with services.db.reading() as s:
        names = [row[0] for row in s.execute(text("SELECT customer_name FROM calls ORDER BY created_at"))]
    assert names == ["Before", "After"]


def test_one_exchange_is_bounded_without_a_budget(database_url):
    db = Database(database_url, exchange_timeout_s=1.0)
    try:
        started = time.monotonic()
        # Whichever bound fires first: ours on the client, or the server's statement_timeout.
        with pytest.raises(OperationalError, match="did not answer|statement timeout"), db.engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(30)"))
        assert time.monotonic() - started < 20
        with db.engine.connect() as conn:  # the broken connection was not handed out again
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        db.dispose()


def test_the_budget_covers_all_exchanges_together(database_url):
    db = Database(database_url, exchange_timeout_s=60.0)
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # a pooled connection, so no connect below
        with pytest.raises(OperationalError, match="did not answer"), request_budget(1.0), db.engine.connect() as conn:
            for _ in range(10):  # each alone fits in the budget; together they do not
                conn.execute(text("SELECT pg_sleep(0.4)"))
    finally:
        db.dispose()


def test_no_connection_is_started_without_time_left(database_url):
    db = Database(database_url)
    try:
        with pytest.raises(OperationalError, match="no time left"), request_budget(0), db.engine.connect():
            pass
            pass
    finally:
        db.dispose()
