"""The polling route's notifications: an agent's own events, a page at a time.

The SSE stream (app.sse) delivers the same rows as they are written; this is the fallback a
dashboard uses when it cannot hold a stream open, and what it reads to catch up.
"""
from __future__ import annotations

from app.db import Database
from app.errors import Forbidden
from app.events import fetch_for_audience
from app.services.agents import AuthContext


class Notifications:
    def __init__(self, db: Database, page_size: int):
        self.db = db
        self.page_size = page_size

    def page(self, auth: AuthContext, agent_id: str, since: int | None) -> list[dict]:
        """Events for `agent_id` after `since` (by default, from the start of this login: an
        agent signing in does not get what was addressed to them before)."""
        if agent_id != auth.agent_id:
            raise Forbidden("You can only read your own notifications.")
        after = auth.first_event_id if since is None else since
        return [item.as_notification() for item in fetch_for_audience(self.db, agent_id, after, self.page_size)]
