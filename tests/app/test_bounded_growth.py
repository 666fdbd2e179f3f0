"""Bounded growth in detail: held draft refreshes, retention that never touches what is live,
the events-table rebuild on an old SQLite database, health caching, and who lists which call."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, text, update

from app import outbox
from app.db import MIGRATIONS, migrate
from app.event_dispatcher import GAP_SPAN, Dispatcher
from app.event_ids import events_autoincrement
from app.events import emit
from app.models import Agent, AgentSession, Base, Call, Event, SchemaMigration, Summary, utcnow
from app.services import effects, retention
from app.services.health import HealthMonitor
from tests.support import run_tasks, start_call, start_transfer
from tests.telephony import agent_on


def _drafts(services, sid: str) -> list[Summary]:
    with services.db.reading() as s:
        return list(s.scalars(select(Summary).where(Summary.call_id == sid, Summary.kind == "draft").order_by(Summary.id)))


def _pending_refresh(services):
    return [t for t in outbox.list_tasks(services.db, state="pending") if t.kind == effects.REFRESH_DRAFT]


# -- draft refreshes --------------------------------------------------------------------------------
def test_a_held_refresh_waits_for_the_window_and_then_covers_everything(make_app):
    app = make_app(DRAFT_DEBOUNCE_S=0.0, SUMMARY_REDRAFT_S=30)
    services = app.extensions["wt"]
    a = agent_on(app, "alice")
    sid = start_call(app.test_client(), a)["session_id"]
    a.post("/api/add-context", {"session_id": sid, "text": "Router drops Wi-Fi"})
    run_tasks(services)
    first, = _drafts(services, sid)
    a.post("/api/add-context", {"session_id": sid, "text": "Serial SN-88231"})
    run_tasks(services)
    held, = _pending_refresh(services)
    assert len(_drafts(services, sid)) == 1
    assert held.due_at == first.created_at + timedelta(seconds=30)
    # More context does not pull the held refresh forward (a debounce only moves it later).
    last = a.post("/api/add-context", {"session_id": sid, "text": "Firmware 2.1"}).json["entry"]
    run_tasks(services)
    assert [(t.id, t.due_at) for t in _pending_refresh(services)] == [(held.id, held.due_at)]
    run_tasks(services, after_s=31)
    drafts = _drafts(services, sid)
    assert len(drafts) == 2 and drafts[-1].covering_entry_id == last["id"]
    assert _pending_refresh(services) == []


def test_an_explicit_refresh_is_not_held(make_app):
    app = make_app(DRAFT_DEBOUNCE_S=60, SUMMARY_REDRAFT_S=3600)
    services = app.extensions["wt"]
    a = agent_on(app, "alice")
    sid = start_call(app.test_client(), a)["session_id"]
    a.post("/api/add-context", {"session_id": sid, "text": "First"})
    assert services.drafts.refresh(sid) is not None
    a.post("/api/add-context", {"session_id": sid, "text": "Second"})
    assert services.drafts.refresh(sid) is not None  # the worker's task is held; a direct request is not


# -- retention --------------------------------------------------------------------------------------
def _session(services, sid: str, agent_id: str, **values) -> None:
    now = utcnow()
    row = dict(id=sid, agent_id=agent_id, csrf_token="x", created_at=now, expires_at=now + timedelta(hours=1), revoked_at=None, first_event_id=0)
    row.update(values)
    with services.db.transaction() as s:
        s.add(AgentSession(**row))


def test_sessions_are_pruned_in_batches_and_a_live_one_never(services):
    services.agents.add("alice", "Alice", "pw-alice-123456")
    long_ago = utcnow() - timedelta(days=40)
    for i in range(5):
        _session(services, f"expired-{i}", "alice", expires_at=long_ago)
    _session(services, "revoked-lately", "alice", revoked_at=utcnow() - timedelta(days=1))
    _session(services, "live", "alice")
    assert retention.prune_sessions(services.db, 30, batch=2) == 5
    with services.db.reading() as s:
        assert sorted(s.scalars(select(AgentSession.id))) == ["live", "revoked-lately"]


def test_a_finished_call_something_still_points_at_is_kept(client, make_agent, services):
    a = make_agent("alice")
    held = start_call(client, a)["session_id"]
    a.post("/api/end-call", {"session_id": held})
    open_ = start_call(client, a, "Second")["session_id"]
    make_agent("bob")
    start_transfer(a, {"session_id": open_}, "bob")
    long_ago = utcnow() - timedelta(days=200)
    with services.db.transaction() as s:
        # Neither can really happen to a call this old; retention must not rely on that.
        s.execute(update(Call).values(status="completed", created_at=long_ago, ended_at=long_ago))
        s.execute(update(Agent).where(Agent.id == "bob").values(active_call_id=held))
    assert retention.prune_calls(services.db, 90) == 0
    with services.db.transaction() as s:
        s.execute(update(Agent).where(Agent.id == "bob").values(active_call_id=None))
    assert retention.prune_calls(services.db, 90) == 1  # the one with the open transfer stays
    with services.db.reading() as s:
        assert list(s.scalars(select(Call.id))) == [open_]


def test_every_table_that_points_at_calls_is_pruned_with_them():
    pointing = {fk.parent.table.name for table in Base.metadata.tables.values() for fk in table.foreign_keys if fk.column.table.name == "calls"}
    covered = [m.__tablename__ for m in retention.CALL_CHILDREN]
    assert pointing <= set(covered)
    # Children before parents: a table is emptied before any table it points at.
    for i, name in enumerate(covered):
        targets = {fk.column.table.name for fk in Base.metadata.tables[name].foreign_keys}
        assert not targets & set(covered[:i]), name


# -- event ids ---------------------------------------------------------------------------------------
OLD_EVENTS = """CREATE TABLE events (
    id INTEGER NOT NULL PRIMARY KEY, event_key VARCHAR(32) NOT NULL, audience VARCHAR(64),
    call_id VARCHAR(32), type VARCHAR(32) NOT NULL, payload JSON NOT NULL, created_at DATETIME NOT NULL)"""
OLD_INDEXES = (
    "CREATE INDEX ix_events_event_key ON events (event_key)",
    "CREATE INDEX ix_events_call_id ON events (call_id)",
    "CREATE INDEX ix_events_audience_id ON events (audience, id)",
)
STEP = max(v for v, _n, _f in MIGRATIONS if _f is events_autoincrement)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL: the no-op test
def test_an_old_sqlite_events_table_is_rebuilt_keeping_its_rows_and_ids(services):
    with services.db.transaction() as s:
        s.execute(text("DROP TABLE events"))
        s.execute(text(OLD_EVENTS))
        for ddl in OLD_INDEXES:
            s.execute(text(ddl))
        for i in (3, 5, 7):
            s.execute(text("INSERT INTO events (id, event_key, audience, call_id, type, payload, created_at) "
                           "VALUES (:i, 'k', 'alice', NULL, 'call_queued', '{}', '2024-01-01 00:00:00.000000')"), {"i": i})
        s.execute(delete(SchemaMigration).where(SchemaMigration.version == STEP))
    services.agents.add("alice", "Alice", "pw-alice-123456")
    _session(services, "s1", "alice", first_event_id=9)  # a session began after rows 8 and 9 were pruned

    assert [name for name in migrate(services.db) if name.startswith(f"{STEP}:")]
    assert migrate(services.db) == []
    with services.db.reading() as s:
        ddl = s.execute(text("SELECT sql FROM sqlite_master WHERE name = 'events'")).scalar()
        indexes = set(s.scalars(text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")))
        assert [(e.id, e.type) for e in s.scalars(select(Event).order_by(Event.id))] == [(3, "call_queued"), (5, "call_queued"), (7, "call_queued")]
        assert s.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'events_before_autoincrement'")).scalar() == 0
    assert "AUTOINCREMENT" in ddl.upper()
    assert {"ix_events_event_key", "ix_events_call_id", "ix_events_audience_id"} <= indexes
    with services.db.transaction() as s:
        s.execute(delete(Event))
        emit(s, "call_queued", {}, audiences=["alice"], call_id=None)
    with services.db.reading() as s:
        assert s.scalar(select(func.max(Event.id))) == 10


def test_the_rebuild_changes_nothing_on_a_current_table_or_on_postgresql(services):
    with services.db.transaction() as s:
        emit(s, "call_queued", {}, audiences=["alice"], call_id=None)
    with services.db.transaction() as s:
        events_autoincrement(s)
    with services.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 1


# -- health --------------------------------------------------------------------------------------------
def test_the_database_check_is_cached_for_a_second(services, monkeypatch):
    clock = [100.0]
    monitor = HealthMonitor(services, clock=lambda: clock[0])
    checks = []
    original = monitor._db.compute
    monitor._db.compute = lambda: checks.append(1) or original()
    for _ in range(5):
        assert monitor.public() == ({"status": "ok"}, 200)
    clock[0] += 1.1
    monitor.public()
    assert len(checks) == 2


def test_a_database_that_needs_migrating_is_degraded(app, services):
    a = agent_on(app, "alice")
    with services.db.transaction() as s:
        s.execute(delete(SchemaMigration).where(SchemaMigration.version == STEP))
    r = app.test_client().get("/api/health")
    assert r.status_code == 503 and r.json == {"status": "degraded"}
    details = a.get("/api/health/details")
    assert details.status_code == 200 and details.json["db"] == {"status": "needs_migration", "backend": details.json["db"]["backend"], "missing_migrations": [STEP]}


# -- the call list ----------------------------------------------------------------------------------
def test_agent_b_who_was_briefed_keeps_the_call_in_their_list(client, make_agent):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    t = start_transfer(a, call, "bob")
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    assert a.post("/api/cancel-transfer", {"transfer_id": t["id"]}).status_code == 200
    assert [c["session_id"] for c in b.get("/api/calls").json["calls"]] == [call["session_id"]]


def test_a_dispatcher_started_on_a_pruned_table_delivers_at_once(services):
    """A process that starts when every event has been pruned begins at 0, and the next id is far
    above that (ids never go back): that jump is not a gap to wait for, row by row."""
    with services.db.transaction() as s:
        if services.db.is_sqlite:
            emit(s, "call_queued", {}, audiences=["alice"], call_id=None)
            s.execute(text("UPDATE sqlite_sequence SET seq = 50000 WHERE name = 'events'"))
        else:
            s.execute(text("SELECT setval(pg_get_serial_sequence('events', 'id'), 50000)"))
        s.execute(delete(Event))
    dispatcher = Dispatcher(services.db, 0.02)
    try:
        sub = dispatcher.subscribe("alice")
        for _ in range(2):
            with services.db.transaction() as s:
                emit(s, "call_queued", {}, audiences=["alice"], call_id=None)
            dispatcher.poke()
            assert sub.ready.wait(2.0)
            assert [d.id > 50000 for d in sub.drain()] == [True]
        assert len(dispatcher._gaps) <= GAP_SPAN
    finally:
        dispatcher.stop()
