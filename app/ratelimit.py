"""Fixed-window rate limits kept in the database, so every worker and instance shares them."""
from __future__ import annotations

import time

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

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
        """Count one for `key`: (count in this window, seconds until the window ends). If the
        count cannot be stored (three lost races in a row) it is reported as over `limit`."""
        now = int(time.time())
        start = now - now % window_s
        for _attempt in range(3):
            try:
                with self.db.transaction() as s:
                    return self._bump(s, key, start), start + window_s - now
            except IntegrityError:
                continue  # a concurrent first hit created the row; count again
        return limit + 1, start + window_s - now

    @staticmethod
    def _bump(s, key: str, start: int) -> int:
        row = s.get(RateLimitWindow, key, with_for_update=True)
        if row is None:
            s.add(RateLimitWindow(key=key, window_start=start, count=1))
            s.flush()
            return 1
        if row.window_start != start:
            s.execute(update(RateLimitWindow).where(RateLimitWindow.key == key).values(window_start=start, count=1))
            return 1
        counted = row.count + 1  # read before the UPDATE, which refreshes `row` in the session
        s.execute(update(RateLimitWindow).where(RateLimitWindow.key == key).values(count=RateLimitWindow.count + 1))
        return counted

    def sweep(self, older_than_s: int = 3600) -> None:
        cutoff = int(time.time()) - older_than_s
        with self.db.transaction() as s:
            s.execute(delete(RateLimitWindow).where(RateLimitWindow.window_start < cutoff))
