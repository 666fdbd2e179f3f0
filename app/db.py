"""Database engines, transactions and the idempotent schema migration.

Services open short, explicit transactions (`with db.transaction() as s:`) and never hold one
open across a network call. On SQLite every writing transaction starts with BEGIN IMMEDIATE:
with WAL, a deferred transaction that reads and then writes fails with SQLITE_BUSY_SNAPSHOT when
another writer got there first, which would turn a lost race into a 500 instead of a clean 409.
Reads use a second engine with ordinary deferred transactions so they never take the write lock.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, delete, event, inspect, make_url, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.db_deadline import connect_args, connection_class
from app.event_ids import events_autoincrement
from app.models import Base, SchemaMigration


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    # hide_parameters (both engines): SQLAlchemy's error messages otherwise quote a statement's
    # values (a context note, a summary), and an unhandled error's traceback is logged (app.logs).
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15}, pool_size=20, max_overflow=40, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy's "begin" event decide how transactions start (pysqlite would
        # otherwise issue its own deferred BEGIN).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=15000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(url: str, connection_cls, args: dict, pool_timeout_s: float) -> Engine:
    engine = create_engine(
        url, pool_size=10, max_overflow=30, pool_timeout=pool_timeout_s, pool_pre_ping=True, pool_recycle=1800, connect_args=args,
        hide_parameters=True,
    )

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):
        return connection_cls.connect(*cargs, **cparams)  # bounded waits (app.db_deadline)

    return engine


class Database:
    def __init__(self, url: str, *, connect_timeout_s: float = 5.0, exchange_timeout_s: float = 10.0):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.is_postgres = url.startswith("postgresql")
        self._connection_cls = connection_class(exchange_timeout_s)
        self._connect_args = connect_args(connect_timeout_s=connect_timeout_s, exchange_timeout_s=exchange_timeout_s)
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
        else:
            self.engine = _postgres_engine(url, self._connection_cls, self._connect_args, pool_timeout_s=exchange_timeout_s)
            self.read_engine = self.engine
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)
        # Pooled connections must never be shared with a forked child (gunicorn --preload).
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self.engine.dispose(close=False)
        if self.read_engine is not self.engine:
            self.read_engine.dispose(close=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back if it raises."""
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    def delete_in_batches(self, model, condition, *, batch: int, order_by=None) -> int:
        """Delete `model` rows matching `condition`, `batch` at a time, each batch its own short
        transaction so no pass holds a lock for long. Candidates are read first and the delete
        re-checks `condition`, so a pass with nothing to delete (nearly every pass) never takes
        SQLite's write lock, and a row that changed meanwhile is left alone."""
        key = model.__mapper__.primary_key[0]
        deleted = 0
        while True:
            with self.reading() as s:
                query = select(key).where(condition).limit(batch)
                ids = list(s.scalars(query.order_by(order_by) if order_by is not None else query))
            if not ids:
                return deleted
            with self.transaction() as s:
                gone = s.execute(delete(model).where(key.in_(ids), condition).execution_options(synchronize_session=False))
                deleted += gone.rowcount

    def listener(self):
        """A separate autocommit PostgreSQL connection for LISTEN, with the same bounds."""
        conninfo = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        return self._connection_cls.connect(conninfo, autocommit=True, **self._connect_args)

    def ping(self) -> None:
        with self.read_engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def _initial_schema(session: Session) -> None:
    Base.metadata.create_all(bind=session.connection())


def _add_missing(session: Session, tables: tuple[str, ...]) -> None:
    """Create any of `tables` that are missing, and add any of their columns that are missing.

    A database created by step 1 after these were added to the models already has them (step 1
    builds the current models), so every change here checks first."""
    connection = session.connection()
    Base.metadata.create_all(bind=connection, tables=[Base.metadata.tables[t] for t in tables], checkfirst=True)
    inspector = inspect(connection)
    for table in tables:
        present = {c["name"] for c in inspector.get_columns(table)}
        for column in Base.metadata.tables[table].columns:
            if column.name in present:
                continue
            kind = column.type.compile(dialect=connection.dialect)
            connection.exec_driver_sql(f'ALTER TABLE {table} ADD COLUMN "{column.name}" {kind}')


def _worker_tables(session: Session) -> None:
    _add_missing(session, ("tasks", "hold_leases", "calls", "transfers"))


def _agent_disabled(session: Session) -> None:
    _add_missing(session, ("agents",))


def _event_streams(session: Session) -> None:
    _add_missing(session, ("event_streams",))


def _teams(session: Session) -> None:
    # transfers last: its new to_team column refers to teams.
    _add_missing(session, ("teams", "agent_teams", "transfer_offers", "transfers"))


def _recordings(session: Session) -> None:
    _add_missing(session, ("recordings",))


def _customer_streams(session: Session) -> None:
    _add_missing(session, ("customer_streams",))


def _roles_and_supervisions(session: Session) -> None:
    _add_missing(session, ("agents", "supervisions"))
    # `_add_missing` adds the column without a default: every account that existed before roles
    # is an agent (the model's default only applies to rows inserted through it).
    session.execute(text("UPDATE agents SET role = 'agent' WHERE role IS NULL"))


def _transfer_notified_at(session: Session) -> None:
    _add_missing(session, ("transfers",))


def _status_changed_at(session: Session) -> None:
    _add_missing(session, ("calls", "transfers"))
    # Rows from before the column: their last change is not known; the newest moment recorded.
    session.execute(text(
        "UPDATE calls SET status_changed_at = COALESCE(ended_at, answered_at, assigned_at, created_at) WHERE status_changed_at IS NULL"
    ))
    session.execute(text(
        "UPDATE transfers SET status_changed_at = COALESCE(ended_at, answered_at, requested_at) WHERE status_changed_at IS NULL"
    ))
    # The supervisor's reads by period (the floor, GET /api/stats): the models declare the same
    # indexes, which a new database gets from create_all. Built inside the migration's
    # transaction (not CONCURRENTLY), so writes to these tables wait while they are built: seconds
    # for tables that retention keeps to CALL_RETENTION_DAYS / EVENT_RETENTION_DAYS.
    for statement in (
        "CREATE INDEX IF NOT EXISTS ix_calls_created_at ON calls (created_at)",
        "CREATE INDEX IF NOT EXISTS ix_transfers_requested_at ON transfers (requested_at)",
        "CREATE INDEX IF NOT EXISTS ix_events_type_created_at ON events (type, created_at)",
    ):
        session.execute(text(statement))


# Append new steps; never edit one that has shipped. Each runs once, in its own transaction.
MIGRATIONS: list[tuple[int, str, Callable[[Session], None]]] = [
    (1, "initial schema", _initial_schema),
    (2, "tasks, hold leases, bridge diagnostics", _worker_tables),
    (3, "agents.disabled_at", _agent_disabled),
    (4, "event streams", _event_streams),
    (5, "events ids never reused (SQLite AUTOINCREMENT)", events_autoincrement),
    (6, "teams, their members, team transfer offers", _teams),
    (7, "recordings of phone calls", _recordings),
    (8, "customer status streams", _customer_streams),
    (9, "agents.role, supervisions", _roles_and_supervisions),
    (10, "transfers.notified_at", _transfer_notified_at),
    (11, "calls and transfers: status_changed_at; indexes for reads by period", _status_changed_at),
]


def migrate(db: Database) -> list[str]:
    """Bring the schema up to date. Safe to run any number of times, from several processes."""
    applied_now: list[str] = []
    with db.transaction() as session:
        if db.is_postgres:
            # Serialise concurrent release steps; released at commit.
            session.execute(text("SELECT pg_advisory_xact_lock(7274001)"))
        SchemaMigration.__table__.create(bind=session.connection(), checkfirst=True)
        done = set(session.scalars(select(SchemaMigration.version)))
        for version, name, step in MIGRATIONS:
            if version in done:
                continue
            step(session)
            session.add(SchemaMigration(version=version, name=name))
            applied_now.append(f"{version}: {name}")
    return applied_now
