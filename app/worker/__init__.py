"""The worker process (`flask --app app worker`): runs the outbox's tasks and plays hold audio.

Web processes validate, change state and answer; everything that must happen *because* of a
change (a LiveKit room deleted, Agent B's phone leg hung up or moved, Agent B dialled, a draft
summary refreshed) and every timer (ring timeouts, grace periods) is a row in `tasks`, run here.
Any number of workers may run on any machines. See docs/architecture.md.
"""
from app.worker.runner import Worker

__all__ = ["Worker"]
