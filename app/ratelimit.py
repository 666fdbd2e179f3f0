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

    def hit(self, key: str, limit: int, window_s: int, what: str) -> None:
        """Count one request for `key`; raise RateLimited once `limit` is exceeded in the window."""
        now = int(time.time())
        start = now - now % window_s
        for _attempt in range(3):
            try:
                with self.db.transaction() as s:
                    count = self._bump(s, key, start)
                break
            except IntegrityError:
                continue  # a concurrent first hit created the row; count again
        else:
            count = limit + 1
        if count > limit:
            raise RateLimited(f"Too many {what} from this address; try again in {start + window_s - now} seconds.", start + window_s - now)

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
