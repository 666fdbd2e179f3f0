"""Event ids that never go back: the migration that gives an existing SQLite `events` table
AUTOINCREMENT (app.models.Event says why).

SQLite cannot add AUTOINCREMENT to a table in place, so the table is rebuilt: renamed, created
anew from the model, its rows copied with their ids, the old one dropped. PostgreSQL needs
nothing: a SERIAL/identity sequence never hands out an id twice, whatever is deleted.
"""
from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from app.models import Event

OLD_NAME = "events_before_autoincrement"


def events_autoincrement(session: Session) -> None:
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    ddl = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'").scalar()
    if ddl is None or "AUTOINCREMENT" in ddl.upper():
        return  # created from the current model (step 1 on a new database): nothing to rebuild
    # The highest id anyone may have seen: the newest row, or a session's starting point (a session
    # remembers the newest id when it began; the rows above it may already have been pruned).
    seen = connection.exec_driver_sql(
        "SELECT max(coalesce((SELECT max(id) FROM events), 0), coalesce((SELECT max(first_event_id) FROM agent_sessions), 0))"
    ).scalar() or 0
    connection.exec_driver_sql(f"ALTER TABLE events RENAME TO {OLD_NAME}")
    # Indexes keep their names when their table is renamed; the model's must be free to create.
    for (name,) in connection.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (OLD_NAME,)
    ).all():
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    Event.__table__.create(bind=connection)
    _copy_rows(connection)
    connection.exec_driver_sql(f"DROP TABLE {OLD_NAME}")
    _seed_sequence(connection, seen)


def _copy_rows(connection: Connection) -> None:
    present = {row[1] for row in connection.exec_driver_sql(f"PRAGMA table_info({OLD_NAME})").all()}
    columns = ", ".join(f'"{c.name}"' for c in Event.__table__.columns if c.name in present)
    connection.exec_driver_sql(f"INSERT INTO events ({columns}) SELECT {columns} FROM {OLD_NAME} ORDER BY id")


def _seed_sequence(connection: Connection, seen: int) -> None:
    """Copying rows with their ids already set the sequence to the highest copied id; a session's
    starting point above it counts too."""
    if seen <= 0:
        return
    params = {"seen": seen}
    updated = connection.execute(text("UPDATE sqlite_sequence SET seq = :seen WHERE name = 'events' AND seq < :seen"), params).rowcount
    if not updated:
        connection.execute(
            text("INSERT INTO sqlite_sequence (name, seq) SELECT 'events', :seen WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events')"),
            params,
        )
