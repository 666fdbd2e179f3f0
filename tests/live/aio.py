"""Run a coroutine on a fresh event loop in its own thread.

Live tests drive asyncio code (the `livekit` SDKs) from synchronous pytest tests. Other plugins
or fixtures may leave an event loop running in the main thread for the whole session (the
Playwright sync API does), where `asyncio.run()` refuses to start; a thread of our own never
has one.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable


def run_async(make_coro: Callable[[], Awaitable[Any]], timeout: float = 300.0) -> Any:
    """`asyncio.run(make_coro())` in a new thread; returns its result or raises its exception."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = asyncio.run(make_coro())
        except BaseException as exc:  # handed to the calling thread, re-raised there
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="live-asyncio", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"coroutine still running after {timeout:.0f}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
