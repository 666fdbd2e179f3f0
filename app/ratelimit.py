"""Fixed-window rate limits kept in the database, so every worker and instance shares them."""
from __future__ import annotations

import time

from sqlalchemy import case, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.db import Database
from app.errors import RateLimited
from app.models import RateLimitWindow


class RateLimiter:
    def __init__(self, db: Database):
        self.db = db

    def hit(self, key: str, limit: int, window_s: int, what: str, scope: str = "from this address") -> None:
        """Count one request for `key`; raise RateLimited once `limit` is exceeded in the window."""
        count, retry_after = self.add(key, window_s, limit)
        if count > limit:
            raise RateLimited(f"Too many {what} {scope}; try again in {retry_after} seconds.", retry_after)

    def check(self, key: str, limit: int, window_s: int, what: str, scope: str) -> None:
        """Raise RateLimited if `key` has already been counted `limit` times in this window,
        without counting anything (for limits that count only failures)."""
        now = int(time.time())
        start = now - now % window_s
        with self.db.reading() as s:
            row = s.get(RateLimitWindow, key)
        if row is not None and row.window_start == start and row.count >= limit:
            raise RateLimited(f"Too many {what} {scope}; try again in {start + window_s - now} seconds.", start + window_s - now)

    def add(self, key: str, window_s: int, limit: int) -> tuple[int, int]:
        """Count one for `key`: (count in this window, seconds until the window ends)."""
        now = int(time.time())
        start = now - now % window_s
        return self._bump(key, start), start + window_s - now

    def _bump(self, key: str, start: int) -> int:
        # One upsert statement, so a hot key (every web customer behind one proxy address, the
        # global dial budget) is locked only while the statement runs: a SELECT ... FOR UPDATE
        # then UPDATE then COMMIT held it across three round trips, and under load every
        # request queued behind it (found by the load run, bench/load_calls.py). In ON CONFLICT
        # DO UPDATE every SET expression sees the row as it was, on PostgreSQL and SQLite alike.
        table = RateLimitWindow.__table__
        insert = pg_insert if self.db.is_postgres else sqlite_insert
        stmt = insert(table).values(key=key, window_start=start, count=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"count": case((table.c.window_start == start, table.c.count + 1), else_=1), "window_start": start},
        ).returning(table.c.count)
        if self.db.is_postgres:
            # Autocommit: the row lock ends with the statement, not one round trip later.
            with self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                return conn.execute(stmt).scalar_one()
        with self.db.transaction() as s:
            return s.execute(stmt).scalar_one()

    def sweep(self, older_than_s: int = 3600) -> None:
        cutoff = int(time.time()) - older_than_s
        with self.db.transaction() as s:
            s.execute(delete(RateLimitWindow).where(RateLimitWindow.window_start < cutoff))
